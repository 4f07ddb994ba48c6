// common.hpp — what every benchmark shares: timing, medians, the output row, process figures.
//
// Each benchmark binary runs taskport and its peer (oneTBB, or Boost for the injector) in one
// process, alternating the two sides rep by rep so background load falls on both alike, and
// prints one markdown row per comparison:
//   | benchmark | taskport | peer | ratio | goal | verdict |
// ratio = taskport / peer (lower is better for taskport). The verdict compares the ratio of the
// medians with the goal; no rounding in either side's favour (ratios print with 3 decimals,
// truncated upwards never). Timing never decides whether a test passes: these are reports.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bench {

using clock = std::chrono::steady_clock;

inline double ms_since(clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock::now() - t0).count();
}

// BENCH_REPS overrides every benchmark's repetition count (e.g. BENCH_REPS=3 for a quick look).
inline int reps(int dflt) {
    if (const char* e = std::getenv("BENCH_REPS"); e && *e) {
        int v = std::atoi(e);
        if (v > 0) return v;
    }
    return dflt;
}

inline double median(std::vector<double> v) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// CPU time (user + system) of the whole process so far, in milliseconds.
inline double process_cpu_ms() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto ms = [](const timeval& tv) { return tv.tv_sec * 1e3 + tv.tv_usec / 1e3; };
    return ms(ru.ru_utime) + ms(ru.ru_stime);
}

struct samples {
    std::vector<double> a, b;          // a: taskport, b: peer: the figures the callables return
    std::vector<double> a_cpu, b_cpu;  // process CPU time (all threads) per call, ms
};

// Runs `warm` unmeasured rounds of each side, then `n` measured rounds, alternating a/b (and
// alternating which side goes first). Each callable returns its own measured figure (usually
// milliseconds of the timed region, so set-up and tear-down stay outside it).
inline samples alternate(int n, const std::function<double()>& a, const std::function<double()>& b,
                         int warm = 1) {
    samples s;
    auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };
    // CPU time beside the figure: on a loaded machine wall time swings with the neighbours, the
    // work a side does much less (spinning counts as work here, on both sides).
    auto run = [](const std::function<double()>& f, std::vector<double>& out, std::vector<double>& cpu) {
        const double c0 = process_cpu_ms();
        out.push_back(f());
        cpu.push_back(process_cpu_ms() - c0);
    };
    for (int i = 0; i < warm; ++i) {
        a();
        pause();
        b();
        pause();
    }
    for (int i = 0; i < n; ++i) {
        if (i % 2 == 0) {
            run(a, s.a, s.a_cpu);
            pause();
            run(b, s.b, s.b_cpu);
        } else {
            run(b, s.b, s.b_cpu);
            pause();
            run(a, s.a, s.a_cpu);
        }
        pause();
    }
    return s;
}

inline std::string fmt(double v, const char* unit) {
    char buf[64];
    if (std::isnan(v))
        std::snprintf(buf, sizeof buf, "n/a");
    else if (std::fabs(v) >= 100)
        std::snprintf(buf, sizeof buf, "%.1f %s", v, unit);
    else if (std::fabs(v) >= 10)
        std::snprintf(buf, sizeof buf, "%.2f %s", v, unit);
    else
        std::snprintf(buf, sizeof buf, "%.3f %s", v, unit);
    return buf;
}

// A ratio printed with 3 decimals, rounded up (never in taskport's favour).
inline std::string fmt_ratio(double r) {
    if (std::isnan(r) || std::isinf(r)) return "n/a";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3fx", std::ceil(r * 1000.0) / 1000.0);
    return buf;
}

// goal <= 0: report only.
inline void row(const std::string& name, double tp, double peer, const char* unit, double goal = 0,
                const std::string& note = "") {
    const double r = tp / peer;
    std::string goal_s = goal > 0 ? ("<= " + fmt_ratio(goal)) : "report";
    std::string verdict = goal > 0 ? (r <= goal ? "met" : "MISSED") : "-";
    if (goal > 0 && (std::isnan(r) || std::isinf(r))) verdict = "n/a";
    std::printf("| %s | %s | %s | %s | %s | %s |%s%s\n", name.c_str(), fmt(tp, unit).c_str(),
                fmt(peer, unit).c_str(), fmt_ratio(r).c_str(), goal_s.c_str(), verdict.c_str(),
                note.empty() ? "" : " ", note.c_str());
    std::fflush(stdout);
}

inline void row_samples(const std::string& name, const samples& s, const char* unit, double goal = 0) {
    // The spread, for the reader to judge noise: min..max of each side.
    char note[256];
    auto mm = [](const std::vector<double>& v) {
        return std::make_pair(*std::min_element(v.begin(), v.end()),
                              *std::max_element(v.begin(), v.end()));
    };
    auto [a0, a1] = mm(s.a);
    auto [b0, b1] = mm(s.b);
    std::snprintf(note, sizeof note,
                  "<!-- n=%zu taskport %.3f..%.3f peer %.3f..%.3f; CPU ms per run (median) taskport %.1f "
                  "peer %.1f -->",
                  s.a.size(), a0, a1, b0, b1, median(s.a_cpu), median(s.b_cpu));
    row(name, median(s.a), median(s.b), unit, goal, note);
}

// A field of /proc/self/status in kB (VmRSS, VmHWM), or -1.
inline long status_kb(const char* field) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    const std::size_t n = std::strlen(field);
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
            v = std::strtol(line + n + 1, nullptr, 10);
            break;
        }
    }
    std::fclose(f);
    return v;
}

// Runs fn in a forked child (a fresh address space and no threads but the caller's) and returns
// the doubles it wrote with report(). For memory and idle-CPU figures, which one process's
// earlier work would otherwise pollute. Call before this process starts any thread pool.
struct child_channel {
    int fd;
    void report(double v) const { (void)!::write(fd, &v, sizeof v); }
};

inline std::vector<double> in_child(const std::function<void(const child_channel&)>& fn) {
    int p[2];
    if (::pipe(p) != 0) std::abort();
    std::fflush(stdout);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        fn(child_channel{p[1]});
        ::close(p[1]);
        std::fflush(stdout);
        ::_exit(0);
    }
    ::close(p[1]);
    std::vector<double> out;
    double v;
    while (::read(p[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v)) out.push_back(v);
    ::close(p[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        std::fprintf(stderr, "bench: child failed (status %d)\n", st);
        out.clear();
    }
    return out;
}

// Spin-free wait for a counter to reach a target (the outside thread blocks in atomic wait).
inline void wait_for(std::atomic<std::uint32_t>& c, std::uint32_t target) {
    for (std::uint32_t v = c.load(std::memory_order_acquire); v < target;
         v = c.load(std::memory_order_acquire))
        c.wait(v, std::memory_order_acquire);
}

// Keeps a value alive against the optimiser.
template <class T>
inline void keep(const T& v) {
    asm volatile("" : : "g"(&v) : "memory");
}

}  // namespace bench
