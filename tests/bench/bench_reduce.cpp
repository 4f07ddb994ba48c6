// bench_reduce.cpp — parallel reduce: the sum of a cheap hash of every i in [0, 100M).
//
// taskport: parallel_for over chunks of 64K indices, each chunk writing its partial sum into its
// own (cache-line padded) slot, then a serial sum of the partials. Peer: tbb::parallel_reduce
// over a blocked_range with its default (auto) partitioner. The same per-element work on both
// sides; two compute threads each (TBB: main + 1 worker; taskport: 2 workers, main waits).
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_reduce.h>

namespace {

constexpr std::uint64_t total = 100'000'000;
constexpr std::uint64_t chunk = 1 << 16;

inline std::uint64_t h(std::uint64_t i) { return (i * 0x9E3779B97F4A7C15ull) >> 57; }

// noinline: both sides call this one compiled loop, so neither gets a better-vectorised copy.
[[gnu::noinline]] std::uint64_t serial_sum(std::uint64_t a, std::uint64_t b) {
    std::uint64_t s = 0;
    for (std::uint64_t i = a; i < b; ++i) s += h(i);
    return s;
}

struct alignas(64) partial {
    std::uint64_t v;
};

}  // namespace

int main() {
    const int r = bench::reps(9);
    taskport::runtime rt;
    const std::uint64_t want = serial_sum(0, total);
    const std::uint64_t nchunks = (total + chunk - 1) / chunk;
    std::vector<partial> parts(nchunks);

    auto tp_side = [&] {
        auto t0 = bench::clock::now();
        taskport::parallel_for(rt, std::uint64_t{0}, nchunks, [&](std::uint64_t c) {
            parts[c].v = serial_sum(c * chunk, std::min(total, (c + 1) * chunk));
        });
        std::uint64_t s = 0;
        for (auto& p : parts) s += p.v;
        double ms = bench::ms_since(t0);
        if (s != want) std::abort();
        return ms;
    };
    auto tbb_side = [&] {
        auto t0 = bench::clock::now();
        std::uint64_t s = tbb::parallel_reduce(
            tbb::blocked_range<std::uint64_t>(0, total), std::uint64_t{0},
            [](const tbb::blocked_range<std::uint64_t>& rg, std::uint64_t acc) {
                return acc + serial_sum(rg.begin(), rg.end());
            },
            [](std::uint64_t a, std::uint64_t b) { return a + b; });
        double ms = bench::ms_since(t0);
        if (s != want) std::abort();
        return ms;
    };
    bench::row_samples("parallel reduce, 100M elements: parallel_for + chunk partials vs tbb::parallel_reduce",
                       bench::alternate(r, tp_side, tbb_side), "ms");
}
