// io_report.hpp — output rows for the I/O benchmarks (bench_echo, bench_parked_latency,
// bench_files), in the table format of common.hpp:
//   | benchmark | taskport | peer | ratio | goal | verdict |
// common.hpp's row() is for times (lower is better, goal "<="). Rates (round trips/s, MB/s) are
// higher-is-better: ratio = taskport / peer, goal ">=", and the ratio is rounded *down* so that
// rounding never favours taskport.
#pragma once

#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace bench {

// A ratio printed with 3 decimals, rounded down (for higher-is-better goals).
inline std::string fmt_ratio_down(double r) {
    if (std::isnan(r) || std::isinf(r)) return "n/a";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3fx", std::floor(r * 1000.0) / 1000.0);
    return buf;
}

// Median of each side; goal <= 0: report only.
inline void row_rate(const std::string& name, const samples& s, const char* unit, double goal = 0) {
    const double tp = median(s.a), peer = median(s.b), r = tp / peer;
    std::string goal_s = goal > 0 ? (">= " + fmt_ratio_down(goal)) : "report";
    std::string verdict = goal > 0 ? (r >= goal ? "met" : "MISSED") : "-";
    char note[256];
    std::snprintf(note, sizeof note,
                  "<!-- n=%zu taskport %.0f..%.0f peer %.0f..%.0f; CPU ms per run (median) taskport %.1f "
                  "peer %.1f -->",
                  s.a.size(), *std::min_element(s.a.begin(), s.a.end()),
                  *std::max_element(s.a.begin(), s.a.end()), *std::min_element(s.b.begin(), s.b.end()),
                  *std::max_element(s.b.begin(), s.b.end()), median(s.a_cpu), median(s.b_cpu));
    std::printf("| %s | %s | %s | %s | %s | %s | %s\n", name.c_str(), fmt(tp, unit).c_str(),
                fmt(peer, unit).c_str(), fmt_ratio_down(r).c_str(), goal_s.c_str(), verdict.c_str(), note);
    std::fflush(stdout);
}

// The p-th percentile (0..100) of v, nearest rank.
inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    std::size_t rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()));
    return v[std::min(rank, v.size() - 1)];
}

// Lifts the soft descriptor limit to the hard one; returns the new soft limit.
inline rlim_t raise_nofile() {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

}  // namespace bench
