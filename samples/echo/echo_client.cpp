// taskport-echo-client — loads an echo server and reports its round trips per second and latency.
//
//   taskport-echo-client [ADDRESS:PORT] [-c CONNECTIONS] [-s BYTES] [-n COUNT | -d SECONDS]
//
// Each of the C connections is one coroutine: send an S-byte message, read until all S bytes
// came back (and check they are the ones sent), note the round trip's latency, repeat — COUNT
// times per connection, or until SECONDS have passed. At the end: total round trips, round trips
// per second, and latency percentiles over every round trip of every connection.
// Public API only (<taskport/...>); each connection's latencies stay in its own vector, so the
// connections share nothing until the report.
#include <taskport/io/io.hpp>
#include <taskport/taskport.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <vector>

namespace io = taskport::io;
using steady = std::chrono::steady_clock;

namespace {

struct settings {
    io::endpoint server;
    std::size_t size = 64;
    std::uint64_t count = 0;      // round trips per connection; 0: run for `duration`
    steady::time_point deadline;  // used when count == 0
};

// One connection's ping-pong. Returns the latency of each round trip, in nanoseconds.
taskport::task<std::vector<std::uint32_t>> ping_pong(taskport::runtime& rt, const settings& cfg,
                                                     std::size_t id) {
    io::tcp_stream s = co_await io::tcp_stream::connect(rt, cfg.server);
    s.set_nodelay(true);
    std::vector<std::byte> out(cfg.size), in(cfg.size);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::byte(id * 31 + i);
    std::vector<std::uint32_t> latencies;
    latencies.reserve(cfg.count ? cfg.count : 1 << 16);

    for (std::uint64_t round = 0; cfg.count ? round < cfg.count : steady::now() < cfg.deadline;
         ++round) {
        const auto t0 = steady::now();
        co_await s.write_all(out);
        for (std::size_t got = 0; got < in.size();) {
            const std::size_t n = co_await s.read_some(std::span(in).subspan(got));
            if (n == 0) throw std::runtime_error("the server closed the connection");
            got += n;
        }
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0);
        if (std::memcmp(in.data(), out.data(), in.size()) != 0)
            throw std::runtime_error("the server sent back different bytes");
        latencies.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(ns.count(), UINT32_MAX)));
        out[round % out.size()] ^= std::byte{0x5a};  // a different message each time
    }
    s.shutdown_write();  // polite end: the server sees end of stream
    co_return latencies;
}

// The value below which `p` percent of the sorted samples lie (nearest rank).
double percentile_us(const std::vector<std::uint32_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    std::size_t rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted.size()));
    return sorted[std::min(rank, sorted.size() - 1)] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string address = "127.0.0.1:7777";
    std::size_t connections = 64;
    double seconds = 5;
    std::size_t workers = 0;
    settings cfg;
    CLI::App app{"taskport-echo-client: ping-pong load for an echo server"};
    app.allow_windows_style_options(false);  // paths such as /tmp/x are arguments, not options
    app.add_option("address", address, "the echo server, ADDRESS:PORT")->capture_default_str();
    app.add_option("-c,--connections", connections, "concurrent connections")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    app.add_option("-s,--size", cfg.size, "message size in bytes")
        ->capture_default_str()
        ->check(CLI::Range(1, 1 << 24));
    auto* count = app.add_option("-n,--count", cfg.count, "round trips per connection");
    app.add_option("-d,--duration", seconds, "seconds to run (when no --count)")
        ->capture_default_str()
        ->excludes(count);
    app.add_option("-w,--workers", workers, "worker threads (0: one per hardware thread)");
    CLI11_PARSE(app, argc, argv);

    try {
        cfg.server = io::endpoint::parse(address);
        taskport::runtime_options opts;
        opts.workers = workers;
        taskport::runtime rt{opts};

        const auto start = steady::now();
        cfg.deadline = start + std::chrono::duration_cast<steady::duration>(
                                   std::chrono::duration<double>(seconds));
        std::vector<taskport::future<std::vector<std::uint32_t>>> runs;
        for (std::size_t i = 0; i < connections; ++i) runs.push_back(rt.spawn(ping_pong(rt, cfg, i)));
        std::vector<std::uint32_t> all;
        for (auto& r : runs) {  // get() rethrows the first connection's failure
            std::vector<std::uint32_t> one = r.get();
            all.insert(all.end(), one.begin(), one.end());
        }
        const double elapsed = std::chrono::duration<double>(steady::now() - start).count();

        std::sort(all.begin(), all.end());
        std::printf("%zu connections x %zu-byte messages, %zu workers: %zu round trips in %.3f s\n",
                    connections, cfg.size, rt.workers(), all.size(), elapsed);
        std::printf("round trips/s: %.0f\n", static_cast<double>(all.size()) / elapsed);
        std::printf("latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
                    percentile_us(all, 50), percentile_us(all, 90), percentile_us(all, 99),
                    percentile_us(all, 99.9), all.empty() ? 0.0 : all.back() / 1000.0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "taskport-echo-client: %s\n", e.what());
        return 1;
    }
    return 0;
}
