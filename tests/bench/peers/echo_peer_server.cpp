// echo_peer_server — bench_echo's servers (echo_servers.hpp) as a process of their own, for
// echo_peers.py, which loads each server from another process (echo_load_client) and counts its
// CPU time and system calls alone.
//
//   echo_peer_server taskport|asio [THREADS]   (default 2)
//
// Prints the listening port (127.0.0.1) on stdout, serves until stdin closes.
#include "../echo_servers.hpp"

#include <iostream>
#include <string>

namespace {
template <class Server>
int serve(std::size_t threads) {
    Server s(threads);
    std::printf("%u\n", static_cast<unsigned>(s.port()));
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    const std::string kind = argc > 1 ? argv[1] : "";
    const std::size_t threads = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 2;
    if (kind == "taskport") return serve<bench::echo::taskport_echo_server>(threads);
    if (kind == "asio") return serve<bench::echo::asio_echo_server>(threads);
    std::fprintf(stderr, "usage: echo_peer_server taskport|asio [THREADS]\n");
    return 2;
}
