// bench_parked_latency.cpp — one connection's round-trip latency while many others sit parked.
//
//   bench_parked_latency [FEW [MANY [ROUNDS]]]      (default 10 5000 20000)
//
// A phase: a fresh echo server; FEW (or MANY) idle connections, each of which the server holds a
// pending read on; then one blocking client connection ping-pongs 64-byte messages (ROUNDS timed
// round trips after a warm-up) and we take its p50 and p99. Taskport's goal is that parked
// operations cost nothing per completion: p99 with MANY parked <= 1.3x p99 with FEW. Phases
// alternate FEW/MANY (and which goes first) over the reps; each figure is the median over reps.
// Boost.Asio's echo server runs the same phases as a reference (one io_context, as many threads
// as taskport has workers). The client is plain blocking sockets, neither library.
#include "echo_servers.hpp"
#include "io_report.hpp"

#include <string>

namespace {

struct phase_result {
    double p50, p99;
};

template <class Server>
phase_result phase(std::size_t workers, std::size_t idle, std::size_t rounds) {
    Server server(workers);
    std::vector<int> parked;
    parked.reserve(idle);
    for (std::size_t i = 0; i < idle; ++i) parked.push_back(bench::echo::connect_to(server.port()));
    bench::echo::ping_client ping(server.port(), 64);
    bench::echo::wait_accepted(server, idle + 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // every reader reaches its read
    ping.run(rounds / 10);                                        // warm-up
    std::vector<double> us = ping.run(rounds);
    for (int fd : parked) ::close(fd);
    return {bench::percentile(us, 50), bench::percentile(us, 99)};
}

void row_latency(const std::string& name, double many, double few, double goal, const std::string& note) {
    const double r = many / few;
    std::string goal_s = goal > 0 ? ("<= " + bench::fmt_ratio(goal)) : "report";
    std::string verdict = goal > 0 ? (r <= goal ? "met" : "MISSED") : "-";
    std::printf("| %s | %s | %s | %s | %s | %s | %s\n", name.c_str(), bench::fmt(many, "us").c_str(),
                bench::fmt(few, "us").c_str(), bench::fmt_ratio(r).c_str(), goal_s.c_str(), verdict.c_str(),
                note.c_str());
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t few = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10;
    const std::size_t many = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 5000;
    const std::size_t rounds = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 20000;
    const int r = bench::reps(5);
    const rlim_t limit = bench::raise_nofile();
    if (limit < 2 * many + 100) {
        std::fprintf(stderr, "bench_parked_latency: needs %zu descriptors, RLIMIT_NOFILE allows %llu\n",
                     2 * many + 100, static_cast<unsigned long long>(limit));
        return 2;
    }
    std::size_t workers = 0;
    {
        taskport::runtime probe;
        workers = probe.workers();
    }

    std::vector<double> tp_few50, tp_few99, tp_many50, tp_many99, as_few50, as_few99, as_many50, as_many99;
    auto record = [](phase_result p, std::vector<double>& p50, std::vector<double>& p99) {
        p50.push_back(p.p50);
        p99.push_back(p.p99);
    };
    using tps = bench::echo::taskport_echo_server;
    using as = bench::echo::asio_echo_server;
    for (int i = 0; i < r; ++i) {
        const bool few_first = i % 2 == 0;
        for (std::size_t idle : {few_first ? few : many, few_first ? many : few}) {
            const bool is_few = idle == few;
            record(phase<tps>(workers, idle, rounds), is_few ? tp_few50 : tp_many50, is_few ? tp_few99 : tp_many99);
            record(phase<as>(workers, idle, rounds), is_few ? as_few50 : as_many50, is_few ? as_few99 : as_many99);
        }
    }

    auto spread = [](const std::vector<double>& a, const std::vector<double>& b) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "<!-- n=%zu %.1f..%.1f vs %.1f..%.1f -->", a.size(),
                      *std::min_element(a.begin(), a.end()), *std::max_element(a.begin(), a.end()),
                      *std::min_element(b.begin(), b.end()), *std::max_element(b.begin(), b.end()));
        return std::string(buf);
    };
    using bench::median;
    std::printf("# bench_parked_latency: 1 connection ping-pongs 64 B (%zu timed round trips) while %zu, "
                "then %zu others hold a pending read; %zu server threads; %d reps; columns: with %zu "
                "parked | with %zu parked\n",
                rounds, few, many, workers, r, many, few);
    const std::string m = std::to_string(many), f = std::to_string(few);
    row_latency("taskport p99 latency, " + m + " vs " + f + " parked", median(tp_many99), median(tp_few99),
                1.3, spread(tp_many99, tp_few99));
    row_latency("taskport p50 latency, " + m + " vs " + f + " parked", median(tp_many50), median(tp_few50),
                0, spread(tp_many50, tp_few50));
    row_latency("Asio p99 latency, " + m + " vs " + f + " parked (reference)", median(as_many99),
                median(as_few99), 0, spread(as_many99, as_few99));
    row_latency("Asio p50 latency, " + m + " vs " + f + " parked (reference)", median(as_many50),
                median(as_few50), 0, spread(as_many50, as_few50));
    bench::row("p99 latency with " + m + " parked: taskport vs Asio", median(tp_many99), median(as_many99),
               "us", 0, spread(tp_many99, as_many99));
}
