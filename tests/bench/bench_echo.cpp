// bench_echo.cpp — echo server throughput: taskport vs Boost.Asio, loaded by the same client.
//
//   bench_echo [CONNECTIONS [BYTES [CLIENT_THREADS]]]      (default 64 64 1)
//
// Each rep starts a fresh server (taskport: a runtime and coroutines; Asio: one io_context run
// by as many threads as the taskport runtime has workers; see echo_servers.hpp), connects the
// neutral epoll client (neither library), lets it ping-pong for a warm-up, then counts round trips
// over a fixed window. The two servers alternate rep by rep (bench::alternate) so background load
// falls on both alike. Figure: round trips per second (higher is better); ratio = taskport /
// Asio, goal >= 1.0x. Server, client and load share this machine's cores, as they would on one
// box; the client is identical for both servers, so it is not the variable.
#include "echo_servers.hpp"
#include "io_report.hpp"

#include <string>

int main(int argc, char** argv) {
    const std::size_t conns = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
    const std::size_t bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
    const std::size_t client_threads = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1;
    const int r = bench::reps(5);
    const auto warm = std::chrono::milliseconds(300);
    const auto window = std::chrono::milliseconds(1500);
    bench::raise_nofile();

    std::size_t workers = 0;  // taskport's default (TASKPORT_WORKERS or hardware threads)
    {
        taskport::runtime probe;
        workers = probe.workers();
    }

    auto measure = [&](auto& server) {
        bench::echo::load_client client(server.port(), conns, bytes, client_threads);
        bench::echo::wait_accepted(server, conns);
        client.start();
        std::this_thread::sleep_for(warm);
        const std::uint64_t c0 = client.round_trips();
        const auto t0 = bench::clock::now();
        std::this_thread::sleep_for(window);
        const std::uint64_t c1 = client.round_trips();
        const double s = std::chrono::duration<double>(bench::clock::now() - t0).count();
        client.stop();
        return static_cast<double>(c1 - c0) / s;
    };
    auto taskport_side = [&] {
        bench::echo::taskport_echo_server server(workers);
        return measure(server);
    };
    auto asio_side = [&] {
        bench::echo::asio_echo_server server(workers);
        return measure(server);
    };

    std::printf("# bench_echo: %zu connections x %zu bytes, %zu server threads each (taskport workers; "
                "Asio io_context threads), %zu client thread(s), %d reps of %lld ms\n",
                conns, bytes, workers, client_threads, r, static_cast<long long>(window.count()));
    bench::row_rate("echo " + std::to_string(conns) + " conns x " + std::to_string(bytes) +
                        " B: round trips/s, taskport vs Asio",
                    bench::alternate(r, taskport_side, asio_side), "rt/s", 1.0);
}
