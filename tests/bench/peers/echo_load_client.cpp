// echo_load_client — the neutral echo load (echo_servers.hpp's load_client: plain non-blocking
// sockets, one level-triggered epoll loop per thread, one message in flight per connection) as a
// process of its own, so that a server's CPU time and system calls can be counted alone.
//
//   echo_load_client PORT [CONNS [BYTES [WARM_MS [WINDOW_MS [WINDOWS [THREADS]]]]]]
//                                                              (defaults: 64 64 500 2000 2 1)
//
// Connects, ping-pongs for WARM_MS, then WINDOWS windows of WINDOW_MS back to back: before each
// it prints "start I" (the driver starts counting the server then), after it "round_trips N
// seconds S" (the driver stops counting on that line). Exits after the last.
#include "../echo_servers.hpp"

#include <string>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: echo_load_client PORT [CONNS [BYTES [WARM_MS [WINDOW_MS [WINDOWS [THREADS]]]]]]\n");
        return 2;
    }
    auto arg = [&](int i, unsigned long d) { return argc > i ? std::strtoul(argv[i], nullptr, 10) : d; };
    const auto port = static_cast<std::uint16_t>(arg(1, 0));
    const std::size_t conns = arg(2, 64), bytes = arg(3, 64);
    const auto warm = std::chrono::milliseconds(arg(4, 500)), window = std::chrono::milliseconds(arg(5, 2000));
    const unsigned long windows = arg(6, 2);
    const std::size_t threads = arg(7, 1);
    bench::echo::load_client client(port, conns, bytes, threads);
    client.start();
    std::this_thread::sleep_for(warm);
    for (unsigned long w = 0; w < windows; ++w) {
        const std::uint64_t c0 = client.round_trips();
        const auto t0 = std::chrono::steady_clock::now();
        std::printf("start %lu\n", w);
        std::fflush(stdout);
        std::this_thread::sleep_for(window);
        const std::uint64_t c1 = client.round_trips();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("round_trips %llu seconds %.4f\n", static_cast<unsigned long long>(c1 - c0), s);
        std::fflush(stdout);
    }
    client.stop();
    return 0;
}
