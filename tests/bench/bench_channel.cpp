// bench_channel.cpp — channel throughput: taskport::channel<int> between coroutine tasks, against
// tbb::concurrent_bounded_queue<int> between threads and against a Go channel between goroutines.
//
// Each configuration moves N ints (default 1M; argv[1] overrides) from P producers to C
// consumers, P and C in {1, 4}, through a channel bounded at 1024 and through an unbounded one:
//   taskport: P producer tasks co_await send(i), C consumer tasks co_await receive() until end of
//             stream; the producers' driver closes the channel once every producer is done. A
//             runtime of hardware-threads workers (2 here).
//   oneTBB:   P producer threads push(), C consumer threads pop() (blocking); after the producers,
//             the driver pushes one -1 per consumer as end of stream (tbb's queue has no close).
//             Unbounded: the same queue without set_capacity.
//   Go:       tests/bench/peers/go_channel: make(chan int, 1024); Go has no unbounded channel, so
//             for those rows make(chan int, N), which never fills (its fastest stand-in),
//             GOMAXPROCS = hardware threads; one process per
//             round, timing only the transfer (its own start-up is outside the figure).
// `bench_channel N taskport` runs taskport's side alone, once per configuration (for callgrind).
// Every side checks the sum of what its consumers received. The three sides alternate round by
// round, the order rotating (A B C, B C A, C A B), after one unmeasured warm-up round each;
// BENCH_REPS rounds (default 5). Prints every round, then one row per peer with the medians:
//   | channel P=4 C=1 cap=1024: taskport vs Go | taskport | Go | ratio | goal | verdict |
// Goal: taskport at least as fast as Go (ratio <= 1). oneTBB's rows are reports.
//
// The Go peer is the binary meson builds when `go` (Debian's golang-go) is found at configure
// time, or the one named by TASKPORT_GO_CHANNEL. Without it the Go rows say "absent".
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/concurrent_queue.h>

#include <array>
#include <cstdio>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

#ifndef TASKPORT_GO_CHANNEL
#define TASKPORT_GO_CHANNEL ""
#endif

namespace {

using taskport::task;

struct config {
    int producers, consumers;
    std::size_t cap;  // 0: unbounded
};

std::int64_t expected_sum(std::int64_t n) { return n * (n - 1) / 2; }

// Producer p sends p, p+P, p+2P, ... below n: every value 0..n-1 exactly once in all.
task<void> produce(taskport::channel<int>& ch, int p, int P, int n) {
    for (int i = p; i < n; i += P) co_await ch.send(i);
}

task<std::int64_t> consume(taskport::channel<int>& ch) {
    std::int64_t sum = 0;
    for (;;) {
        std::optional<int> v = co_await ch.receive();
        if (!v) break;
        sum += *v;
    }
    co_return sum;
}

task<std::int64_t> drive(taskport::runtime& rt, taskport::channel<int>& ch, const config& c, int n) {
    std::vector<taskport::future<std::int64_t>> cons;
    for (int i = 0; i < c.consumers; ++i) cons.push_back(rt.spawn(consume(ch)));
    std::vector<taskport::future<void>> prod;
    for (int p = 0; p < c.producers; ++p) prod.push_back(rt.spawn(produce(ch, p, c.producers, n)));
    for (auto& f : prod) co_await std::move(f);
    ch.close();
    std::int64_t sum = 0;
    for (auto& f : cons) sum += co_await std::move(f);
    co_return sum;
}

double taskport_round(taskport::runtime& rt, const config& c, int n) {
    auto ch = c.cap ? std::make_unique<taskport::channel<int>>(c.cap) : std::make_unique<taskport::channel<int>>();
    const auto t0 = bench::clock::now();
    const std::int64_t sum = rt.spawn(drive(rt, *ch, c, n)).get();
    const double ms = bench::ms_since(t0);
    if (sum != expected_sum(n)) {
        std::fprintf(stderr, "bench_channel: taskport sum %lld, expected %lld\n", static_cast<long long>(sum),
                     static_cast<long long>(expected_sum(n)));
        std::abort();
    }
    return ms;
}

double tbb_round(const config& c, int n) {
    tbb::concurrent_bounded_queue<int> q;
    if (c.cap) q.set_capacity(static_cast<std::ptrdiff_t>(c.cap));
    std::vector<std::int64_t> sums(static_cast<std::size_t>(c.consumers) * 8, 0);  // 64 bytes apart
    const auto t0 = bench::clock::now();
    std::vector<std::thread> th;
    for (int i = 0; i < c.consumers; ++i)
        th.emplace_back([&, i] {
            std::int64_t s = 0;
            for (;;) {
                int v = 0;
                q.pop(v);
                if (v < 0) break;
                s += v;
            }
            sums[static_cast<std::size_t>(i) * 8] = s;
        });
    std::vector<std::thread> pt;
    for (int p = 0; p < c.producers; ++p)
        pt.emplace_back([&, p] {
            for (int i = p; i < n; i += c.producers) q.push(i);
        });
    for (auto& t : pt) t.join();
    for (int i = 0; i < c.consumers; ++i) q.push(-1);
    for (auto& t : th) t.join();
    const double ms = bench::ms_since(t0);
    std::int64_t sum = 0;
    for (int i = 0; i < c.consumers; ++i) sum += sums[static_cast<std::size_t>(i) * 8];
    if (sum != expected_sum(n)) {
        std::fprintf(stderr, "bench_channel: tbb sum wrong\n");
        std::abort();
    }
    return ms;
}

std::string go_binary() {
    if (const char* e = std::getenv("TASKPORT_GO_CHANNEL"); e && *e) return e;
    return TASKPORT_GO_CHANNEL;
}

bool executable(const std::string& p) {
    struct stat st{};
    return !p.empty() && ::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXUSR);
}

// Runs the Go peer once; returns its transfer time in ms (it prints "ms cpu_ms sum"), NAN on
// failure. Its CPU figure goes to *cpu.
double go_round(const std::string& bin, const config& c, int n, double* cpu) {
    char cmd[1024];
    std::snprintf(cmd, sizeof cmd, "'%s' -p %d -c %d -cap %zu -n %d", bin.c_str(), c.producers, c.consumers,
                  c.cap, n);
    FILE* f = ::popen(cmd, "r");
    if (!f) return NAN;
    double ms = NAN, cms = NAN;
    long long sum = -1;
    const int got = std::fscanf(f, "%lf %lf %lld", &ms, &cms, &sum);
    const int st = ::pclose(f);
    if (got != 3 || st != 0 || sum != expected_sum(n)) {
        std::fprintf(stderr, "bench_channel: Go peer failed (%s: read %d fields, status %d, sum %lld)\n", cmd,
                     got, st, sum);
        return NAN;
    }
    *cpu = cms;
    return ms;
}

std::string name(const config& c) {
    char b[96];
    if (c.cap)
        std::snprintf(b, sizeof b, "channel P=%d C=%d cap=%zu", c.producers, c.consumers, c.cap);
    else
        std::snprintf(b, sizeof b, "channel P=%d C=%d unbounded", c.producers, c.consumers);
    return b;
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
    // `bench_channel N taskport`: taskport's side only, one round per configuration (for
    // valgrind --tool=callgrind: instructions per value, deterministic on a loaded machine).
    const bool taskport_only = argc > 2 && std::strcmp(argv[2], "taskport") == 0;
    const int rounds = bench::reps(5);
    const std::string go = go_binary();
    const bool have_go = !taskport_only && executable(go);
    if (!have_go && !taskport_only)
        std::printf("Go peer absent (%s): install golang-go and reconfigure, or set TASKPORT_GO_CHANNEL\n",
                    go.empty() ? "go was not found at configure time" : go.c_str());
    const unsigned hw = std::thread::hardware_concurrency();
    std::printf("bench_channel: %d ints per run, %d rounds, %u hardware threads, load average %s\n", n, rounds,
                hw, [] {
                    static char b[64] = "?";
                    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
                        if (!std::fgets(b, sizeof b, f)) b[0] = 0;
                        std::fclose(f);
                        if (char* e = std::strchr(b, ' ')) {
                            if ((e = std::strchr(e + 1, ' ')) && (e = std::strchr(e + 1, ' '))) *e = 0;
                        }
                    }
                    return b;
                }());
    taskport::runtime rt;

    const std::array<config, 8> configs{{{1, 1, 1024}, {4, 1, 1024}, {1, 4, 1024}, {4, 4, 1024},
                                         {1, 1, 0}, {4, 1, 0}, {1, 4, 0}, {4, 4, 0}}};
    if (const char* only = std::getenv("BENCH_CHANNEL_ONLY"); only && *only)
        std::printf("(BENCH_CHANNEL_ONLY=%s)\n", only);
    for (const config& c : configs) {
        const std::string nm = name(c);
        const std::string label = nm + ", " + std::to_string(n) + " ints";
        if (const char* only = std::getenv("BENCH_CHANNEL_ONLY"); only && *only && nm.find(only) == std::string::npos)
            continue;
        if (taskport_only) {
            // With the scheduler's counters per value: how often a hand-off moved a task between
            // workers (steals, LIFO-slot steals) and how often a worker slept (parks, wakeups).
            const taskport::runtime_stats s0 = rt.stats();
            const double c0 = bench::process_cpu_ms();
            const double ms = taskport_round(rt, c, n);
            const double cpu = bench::process_cpu_ms() - c0;
            const taskport::runtime_stats s1 = rt.stats();
            const auto per = [n](std::uint64_t a, std::uint64_t b) { return n ? double(b - a) / n : 0.0; };
            std::printf("%s: taskport %.1f ms (cpu %.1f); per value: tasks run %.4f, steals %.4f (LIFO slot %.4f), "
                        "parks %.4f, wakeups %.4f\n",
                        label.c_str(), ms, cpu, per(s0.tasks_run, s1.tasks_run), per(s0.steals, s1.steals),
                        per(s0.lifo_steals, s1.lifo_steals), per(s0.parks, s1.parks), per(s0.wakeups, s1.wakeups));
            continue;
        }
        bench::samples tb, tg;  // a: taskport (shared), b: peer
        std::vector<double> tp, tp_cpu, tbbv, tbb_cpu, gov, go_cpu;
        auto run_tp = [&](bool keep) {
            const double c0 = bench::process_cpu_ms();
            const double ms = taskport_round(rt, c, n);
            if (keep) {
                tp.push_back(ms);
                tp_cpu.push_back(bench::process_cpu_ms() - c0);
            }
        };
        auto run_tbb = [&](bool keep) {
            const double c0 = bench::process_cpu_ms();
            const double ms = tbb_round(c, n);
            if (keep) {
                tbbv.push_back(ms);
                tbb_cpu.push_back(bench::process_cpu_ms() - c0);
            }
        };
        auto run_go = [&](bool keep) {
            if (!have_go) return;
            double cpu = NAN;
            const double ms = go_round(go, c, n, &cpu);
            if (keep) {
                gov.push_back(ms);
                go_cpu.push_back(cpu);
            }
        };
        auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };
        run_tp(false);
        run_tbb(false);
        run_go(false);
        for (int r = 0; r < rounds; ++r) {
            for (int k = 0; k < 3; ++k) {
                switch ((r + k) % 3) {
                    case 0: run_tp(true); break;
                    case 1: run_tbb(true); break;
                    default: run_go(true); break;
                }
                pause();
            }
            std::printf("  %s round %d: taskport %.1f ms (cpu %.1f), tbb %.1f ms (cpu %.1f), Go %s\n", nm.c_str(),
                        r + 1, tp.back(), tp_cpu.back(), tbbv.back(), tbb_cpu.back(),
                        have_go && !gov.empty() ? (bench::fmt(gov.back(), "ms") + " (cpu " +
                                                   bench::fmt(go_cpu.back(), "ms") + ")")
                                                      .c_str()
                                                : "absent");
        }
        tb.a = tp;
        tb.a_cpu = tp_cpu;
        tb.b = tbbv;
        tb.b_cpu = tbb_cpu;
        bench::row_samples(label + ": taskport tasks vs tbb::concurrent_bounded_queue threads", tb, "ms");
        if (have_go && gov.size() == tp.size()) {
            tg.a = tp;
            tg.a_cpu = tp_cpu;
            tg.b = gov;
            tg.b_cpu = go_cpu;
            bench::row_samples(label + ": taskport tasks vs Go goroutines", tg, "ms", 1.0);
        } else {
            bench::row(label + ": taskport tasks vs Go goroutines", bench::median(tp), NAN, "ms", 1.0,
                       "<!-- Go peer absent -->");
        }
    }
    return 0;
}
