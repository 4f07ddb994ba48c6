// bench_echo.cpp — echo server throughput: taskport vs Boost.Asio, loaded by the same client.
//
//   bench_echo [CONNECTIONS [BYTES [CLIENT_THREADS]]]      (default 64 64 1)
//
// Each rep starts a fresh server (taskport: a runtime and coroutines; Asio: one io_context run
// by as many threads as the taskport runtime has workers; see echo_servers.hpp), connects the
// neutral epoll client (neither library), lets it ping-pong for a warm-up, then counts round trips
// over a fixed window. The two servers alternate rep by rep (bench::alternate) so background load
// falls on both alike. Figures: round trips per second (higher is better; ratio = taskport / Asio,
// goal >= 1.0x) and, from the same runs, the server's CPU time per round trip (the process's CPU
// time less the client threads'), which depends less on what else the machine is running.
// Server and client share this machine's cores, as they would on one box; the client is the same
// for both servers, so it is not the variable.
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

    // Round trips/s over the window; cpu_us gets the server's CPU time per round trip (the
    // process's CPU time less the client threads'; the main thread sleeps meanwhile).
    auto measure = [&](auto& server, std::vector<double>& cpu_us) {
        bench::echo::load_client client(server.port(), conns, bytes, client_threads);
        bench::echo::wait_accepted(server, conns);
        client.start();
        std::this_thread::sleep_for(warm);
        const std::uint64_t c0 = client.round_trips();
        const double p0 = bench::process_cpu_ms(), k0 = client.cpu_ms();
        const auto t0 = bench::clock::now();
        std::this_thread::sleep_for(window);
        const std::uint64_t c1 = client.round_trips();
        const double p1 = bench::process_cpu_ms(), k1 = client.cpu_ms();
        const double s = std::chrono::duration<double>(bench::clock::now() - t0).count();
        client.stop();
        cpu_us.push_back(((p1 - p0) - (k1 - k0)) * 1e3 / static_cast<double>(c1 - c0));
        return static_cast<double>(c1 - c0) / s;
    };
    std::vector<double> tp_cpu, asio_cpu;
    auto taskport_side = [&] {
        bench::echo::taskport_echo_server server(workers);
        return measure(server, tp_cpu);
    };
    auto asio_side = [&] {
        bench::echo::asio_echo_server server(workers);
        return measure(server, asio_cpu);
    };

    std::printf("# bench_echo: %zu connections x %zu bytes, %zu server threads each (taskport workers; "
                "Asio io_context threads), %zu client thread(s), %d reps of %lld ms\n",
                conns, bytes, workers, client_threads, r, static_cast<long long>(window.count()));
    bench::row_rate("echo " + std::to_string(conns) + " conns x " + std::to_string(bytes) +
                        " B: round trips/s, taskport vs Asio",
                    bench::alternate(r, taskport_side, asio_side), "rt/s", 1.0);
    // Load-independent view of the same runs: server CPU per round trip (lower is better).
    // The warm-up rounds are left out (alternate() runs one unmeasured round of each first).
    tp_cpu.erase(tp_cpu.begin());
    asio_cpu.erase(asio_cpu.begin());
    char note[160];
    std::snprintf(note, sizeof note, "<!-- n=%zu taskport %.3f..%.3f peer %.3f..%.3f -->", tp_cpu.size(),
                  *std::min_element(tp_cpu.begin(), tp_cpu.end()), *std::max_element(tp_cpu.begin(), tp_cpu.end()),
                  *std::min_element(asio_cpu.begin(), asio_cpu.end()),
                  *std::max_element(asio_cpu.begin(), asio_cpu.end()));
    bench::row("echo " + std::to_string(conns) + " conns x " + std::to_string(bytes) +
                   " B: server CPU per round trip, taskport vs Asio",
               bench::median(tp_cpu), bench::median(asio_cpu), "us", 0, note);
}
