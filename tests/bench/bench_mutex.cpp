// bench_mutex.cpp — lock hand-off under contention: K contenders each take a lock M times and
// bump a shared counter inside it (K in {4, 16}; K*M = 1M increments per run, argv[1] overrides).
//
//   taskport: K coroutine tasks on a runtime of hardware-threads workers, each
//             `auto g = co_await m.scoped_lock(); ++counter;` — a contended lock() parks the task
//             and unlock() hands the lock to the oldest waiter (FIFO, async_mutex.hpp).
//   peer:     K std::threads, each `std::lock_guard g(m); ++counter;` on a std::mutex (glibc's
//             futex mutex: barging, not FIFO — the waker may lose the lock to a running thread,
//             which is cheaper and is what a thread-based program gets).
// Both sides alternate round by round (bench::alternate, one warm-up round each), BENCH_REPS
// rounds (default 5); the counter is checked. Rows are reports (no goal): FIFO hand-off costs a
// task switch per acquisition under contention, by design.
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using taskport::task;

task<void> contender(taskport::async_mutex& m, long& counter, long iters) {
    for (long i = 0; i < iters; ++i) {
        auto g = co_await m.scoped_lock();
        ++counter;
    }
}

task<void> drive(taskport::runtime& rt, taskport::async_mutex& m, long& counter, int k, long iters) {
    std::vector<taskport::future<void>> fs;
    for (int i = 0; i < k; ++i) fs.push_back(rt.spawn(contender(m, counter, iters)));
    for (auto& f : fs) co_await std::move(f);
}

}  // namespace

int main(int argc, char** argv) {
    const long total = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    const int r = bench::reps(5);
    std::printf("bench_mutex: %ld increments per run, %d rounds, %u hardware threads\n", total, r,
                std::thread::hardware_concurrency());
    taskport::runtime rt;
    for (int k : {4, 16}) {
        const long iters = total / k;
        auto tp = [&] {
            taskport::async_mutex m;
            long counter = 0;
            const auto t0 = bench::clock::now();
            rt.spawn(drive(rt, m, counter, k, iters)).get();
            const double ms = bench::ms_since(t0);
            if (counter != iters * k) std::abort();
            return ms;
        };
        // `bench_mutex N taskport`: taskport's side alone, once per K, with the scheduler's
        // counters per increment (for perf stat and callgrind).
        if (argc > 2 && std::string(argv[2]) == "taskport") {
            const taskport::runtime_stats s0 = rt.stats();
            const double c0 = bench::process_cpu_ms();
            const double ms = tp();
            const double cpu = bench::process_cpu_ms() - c0;
            const taskport::runtime_stats s1 = rt.stats();
            const auto per = [total](std::uint64_t a, std::uint64_t b) { return total ? double(b - a) / total : 0.0; };
            std::printf("K=%d: taskport %.1f ms (cpu %.1f); per increment: tasks run %.4f, steals %.4f (LIFO slot %.4f), "
                        "parks %.4f, wakeups %.4f\n",
                        k, ms, cpu, per(s0.tasks_run, s1.tasks_run), per(s0.steals, s1.steals),
                        per(s0.lifo_steals, s1.lifo_steals), per(s0.parks, s1.parks), per(s0.wakeups, s1.wakeups));
            continue;
        }
        auto peer = [&] {
            std::mutex m;
            long counter = 0;
            const auto t0 = bench::clock::now();
            std::vector<std::thread> th;
            for (int i = 0; i < k; ++i)
                th.emplace_back([&] {
                    for (long j = 0; j < iters; ++j) {
                        std::lock_guard<std::mutex> g(m);
                        ++counter;
                    }
                });
            for (auto& t : th) t.join();
            const double ms = bench::ms_since(t0);
            if (counter != iters * k) std::abort();
            return ms;
        };
        const bench::samples s = bench::alternate(r, tp, peer);
        for (std::size_t i = 0; i < s.a.size(); ++i)
            std::printf("  K=%d round %zu: taskport %.1f ms (cpu %.1f), std::mutex %.1f ms (cpu %.1f)\n", k, i + 1,
                        s.a[i], s.a_cpu[i], s.b[i], s.b_cpu[i]);
        bench::row_samples("async_mutex hand-off, " + std::to_string(k) + " tasks x " + std::to_string(iters) +
                               " locked increments vs std::mutex, " + std::to_string(k) + " threads",
                           s, "ms");
    }
    return 0;
}
