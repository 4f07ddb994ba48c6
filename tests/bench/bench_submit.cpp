// bench_submit.cpp — one outside thread submits 1M tiny tasks.
//
//   post:   rt.post(f) for each; each task bumps a counter, the last one notifies; the outside
//           thread waits for the counter with an atomic wait (it never sleeps on a timer).
//   peer:   tbb::task_arena::enqueue(f) on an arena of 2 worker slots, the same counter and wait.
//   spawn:  rt.spawn(f) for each, keeping the 1M futures, then get() every one, summing values.
//   peer:   enqueue into the same TBB arena, each task writing its value into its own slot of a
//           vector (TBB has no futures), the counter and wait, then summing the slots.
//
// Both sides run two workers and the submitting thread (3 threads on this machine's cores):
// taskport's runtime has 2 workers; TBB's arena has 2 slots with none reserved for the submitter,
// and tbb::global_control lifts TBB's default of (hardware threads - 1) workers to 2.
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>

int main(int argc, char** argv) {
    const std::uint32_t n = argc > 1 ? static_cast<std::uint32_t>(std::atol(argv[1])) : 1'000'000;
    const int r = bench::reps(9);

    tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 3);
    tbb::task_arena arena(2, 0);
    arena.initialize();
    taskport::runtime rt{{.workers = 2, .scheduler = {}, .on_unhandled_exception = {}}};

    std::atomic<std::uint32_t> done{0};
    auto tick = [&done, n] {
        if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) done.notify_one();
    };

    auto post_side = [&] {
        done.store(0);
        auto t0 = bench::clock::now();
        for (std::uint32_t i = 0; i < n; ++i) rt.post(tick);
        bench::wait_for(done, n);
        return bench::ms_since(t0);
    };
    auto enqueue_side = [&] {
        done.store(0);
        auto t0 = bench::clock::now();
        for (std::uint32_t i = 0; i < n; ++i) arena.enqueue(tick);
        bench::wait_for(done, n);
        return bench::ms_since(t0);
    };

    std::vector<taskport::future<std::uint32_t>> futs;
    futs.reserve(n);
    const std::uint64_t want = std::uint64_t(n) * (n - 1) / 2;
    auto spawn_side = [&] {
        futs.clear();
        auto t0 = bench::clock::now();
        for (std::uint32_t i = 0; i < n; ++i) futs.push_back(rt.spawn([i] { return i; }));
        std::uint64_t sum = 0;
        for (auto& f : futs) sum += f.get();
        double ms = bench::ms_since(t0);
        if (sum != want) std::abort();
        futs.clear();
        return ms;
    };
    std::vector<std::uint32_t> slots(n);
    auto enqueue_values_side = [&] {
        done.store(0);
        auto t0 = bench::clock::now();
        for (std::uint32_t i = 0; i < n; ++i)
            arena.enqueue([&slots, &done, i, n] {
                slots[i] = i;
                if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) done.notify_one();
            });
        bench::wait_for(done, n);
        std::uint64_t sum = 0;
        for (auto v : slots) sum += v;
        double ms = bench::ms_since(t0);
        if (sum != want) std::abort();
        return ms;
    };

    const std::string m = std::to_string(n / 1000) + "k";
    bench::row_samples("outside thread, " + m + " tiny tasks: post vs task_arena::enqueue",
                       bench::alternate(r, post_side, enqueue_side), "ms", 1.0);
    bench::row_samples("outside thread, " + m + " tiny tasks: spawn + get all futures vs enqueue (values into slots)",
                       bench::alternate(r, spawn_side, enqueue_values_side), "ms", 2.0);
}
