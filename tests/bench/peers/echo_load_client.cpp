// echo_load_client — the neutral echo load (echo_servers.hpp's load_client: plain non-blocking
// sockets, one level-triggered epoll loop per thread, one message in flight per connection) as a
// process of its own, so that a server's CPU time and system calls can be counted alone.
//
//   echo_load_client PORT [CONNS [BYTES [WARM_MS [THREADS]]]]     (defaults: 64 64 500 1)
//
// Connects, ping-pongs for WARM_MS, prints "ready"; then, for each line "mark" on stdin, prints
// "mark N S": the round trips done so far and the seconds since "ready" (the driver reads the
// server's counters next to each mark, so its windows and the client's agree). Stops at the end
// of stdin.
#include "../echo_servers.hpp"

#include <iostream>
#include <string>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: echo_load_client PORT [CONNS [BYTES [WARM_MS [THREADS]]]]\n");
        return 2;
    }
    auto arg = [&](int i, unsigned long d) { return argc > i ? std::strtoul(argv[i], nullptr, 10) : d; };
    const auto port = static_cast<std::uint16_t>(arg(1, 0));
    const std::size_t conns = arg(2, 64), bytes = arg(3, 64);
    const auto warm = std::chrono::milliseconds(arg(4, 500));
    const std::size_t threads = arg(5, 1);
    bench::echo::load_client client(port, conns, bytes, threads);
    client.start();
    std::this_thread::sleep_for(warm);
    const auto t0 = std::chrono::steady_clock::now();
    std::printf("ready\n");
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line != "mark") continue;
        const std::uint64_t n = client.round_trips();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("mark %llu %.6f\n", static_cast<unsigned long long>(n), s);
        std::fflush(stdout);
    }
    client.stop();
    return 0;
}
