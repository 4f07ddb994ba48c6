// bench_idle.cpp — an idle runtime uses no CPU: a parked worker stays parked.
//
// After a burst of work (1M tiny tasks posted from outside, then fib(25) with task groups), the
// process's CPU time (getrusage, user + system, every thread) is read over the next second and
// over the second after it, while nothing is submitted. Each side runs in a forked child. TBB
// workers spin for a while before they sleep; taskport's park after a few search rounds.
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace {

constexpr std::uint32_t n = 1'000'000;

int fib_tbb(int k) {
    if (k < 2) return k;
    int x = 0;
    tbb::task_group g;
    g.run([&] { x = fib_tbb(k - 1); });
    int y = fib_tbb(k - 2);
    g.wait();
    return x + y;
}

int fib_tg(taskport::runtime& rt, int k) {
    if (k < 2) return k;
    int x = 0;
    taskport::task_group g(rt);
    g.run([&] { x = fib_tg(rt, k - 1); });
    int y = fib_tg(rt, k - 2);
    g.wait();
    return x + y;
}

void idle_windows(const bench::child_channel& ch) {
    const double c0 = bench::process_cpu_ms();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double c1 = bench::process_cpu_ms();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double c2 = bench::process_cpu_ms();
    ch.report(c1 - c0);
    ch.report(c2 - c1);
}

void tp_child(const bench::child_channel& ch) {
    taskport::runtime rt{{.workers = 2, .scheduler = {}, .on_unhandled_exception = {}}};
    std::atomic<std::uint32_t> done{0};
    for (std::uint32_t i = 0; i < n; ++i)
        rt.post([&done] {
            if (done.fetch_add(1) + 1 == n) done.notify_one();
        });
    bench::wait_for(done, n);
    int v = rt.spawn([&] { return fib_tg(rt, 25); }).get();
    bench::keep(v);
    const auto before = rt.stats();
    idle_windows(ch);
    const auto after = rt.stats();
    ch.report(double(after.wakeups - before.wakeups));
    ch.report(double(after.parks - before.parks));
}

void tbb_child(const bench::child_channel& ch) {
    tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 3);
    tbb::task_arena arena(2, 0);
    arena.initialize();
    std::atomic<std::uint32_t> done{0};
    for (std::uint32_t i = 0; i < n; ++i)
        arena.enqueue([&done] {
            if (done.fetch_add(1) + 1 == n) done.notify_one();
        });
    bench::wait_for(done, n);
    int v = fib_tbb(25);
    bench::keep(v);
    idle_windows(ch);
}

}  // namespace

int main() {
    const int r = bench::reps(3);
    std::vector<double> a1, a2, b1, b2, wk, pk;
    for (int i = 0; i < r; ++i) {
        auto a = bench::in_child(tp_child);
        auto b = bench::in_child(tbb_child);
        if (a.size() != 4 || b.size() != 2) return 1;
        a1.push_back(a[0]);
        a2.push_back(a[1]);
        wk.push_back(a[2]);
        pk.push_back(a[3]);
        b1.push_back(b[0]);
        b2.push_back(b[1]);
    }
    char note[128];
    std::snprintf(note, sizeof note, "<!-- taskport wake-ups %.0f, parks %.0f in the 2 s (median) -->",
                  bench::median(wk), bench::median(pk));
    bench::row("idle CPU time, 1st second after a burst", bench::median(a1), bench::median(b1), "ms", 0, note);
    bench::row("idle CPU time, 2nd second after a burst", bench::median(a2), bench::median(b2), "ms");
}
