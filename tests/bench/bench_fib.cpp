// bench_fib.cpp — fib(30), one task per call, written five ways: taskport task_group, taskport
// futures (spawn + get on the workers), taskport coroutines (spawn one child, co_await the other),
// taskport coroutines with fork_join (fork one child, call the other: continuation stealing,
// fork.hpp) and oneTBB task_group, the peer all four are compared with.
//
// Both sides use two compute threads: taskport's two workers (the main thread blocks), and TBB's
// main thread plus its one default worker (hardware threads - 1).
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/task_group.h>

namespace {

int fib_tbb(int n) {
    if (n < 2) return n;
    int x = 0, y = 0;
    tbb::task_group g;
    g.run([&] { x = fib_tbb(n - 1); });
    y = fib_tbb(n - 2);
    g.wait();
    return x + y;
}

int fib_tg(taskport::runtime& rt, int n) {
    if (n < 2) return n;
    int x = 0, y = 0;
    taskport::task_group g(rt);
    g.run([&] { x = fib_tg(rt, n - 1); });
    y = fib_tg(rt, n - 2);
    g.wait();
    return x + y;
}

int fib_fut(taskport::runtime& rt, int n) {
    if (n < 2) return n;
    auto f = rt.spawn([&rt, n] { return fib_fut(rt, n - 1); });
    int y = fib_fut(rt, n - 2);
    return f.get() + y;
}

taskport::task<int> fib_co(taskport::runtime& rt, int n) {
    if (n < 2) co_return n;
    auto f = rt.spawn(fib_co(rt, n - 1));
    int y = co_await fib_co(rt, n - 2);
    int x = co_await std::move(f);
    co_return x + y;
}

taskport::task<int> fib_fork(int n) {
    if (n < 2) co_return n;
    int x = 0, y = 0;
    taskport::fork_join fj;
    co_await fj.fork(x, fib_fork(n - 1));
    co_await fj.call(y, fib_fork(n - 2));
    co_await fj.join();
    co_return x + y;
}

int expected(int n) {
    int a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        int c = a + b;
        a = b;
        b = c;
    }
    return a;
}

void check(int got, int n, const char* who) {
    if (got != expected(n)) {
        std::fprintf(stderr, "bench_fib: %s computed fib(%d) = %d, expected %d\n", who, n, got,
                     expected(n));
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 30;
    const int r = bench::reps(9);
    taskport::runtime rt;

    auto tbb_side = [&] {
        auto t0 = bench::clock::now();
        int v = fib_tbb(n);
        double ms = bench::ms_since(t0);
        check(v, n, "tbb task_group");
        return ms;
    };
    auto tg_side = [&] {
        auto t0 = bench::clock::now();
        int v = 0;
        taskport::task_group g(rt);
        g.run([&] { v = fib_tg(rt, n); });
        g.wait();
        double ms = bench::ms_since(t0);
        check(v, n, "taskport task_group");
        return ms;
    };
    auto fut_side = [&] {
        auto t0 = bench::clock::now();
        int v = rt.spawn([&] { return fib_fut(rt, n); }).get();
        double ms = bench::ms_since(t0);
        check(v, n, "taskport futures");
        return ms;
    };
    auto co_side = [&] {
        auto t0 = bench::clock::now();
        int v = rt.block_on(fib_co(rt, n));
        double ms = bench::ms_since(t0);
        check(v, n, "taskport coroutines");
        return ms;
    };
    auto fork_side = [&] {
        auto t0 = bench::clock::now();
        int v = rt.block_on(fib_fork(n));
        double ms = bench::ms_since(t0);
        check(v, n, "taskport fork_join");
        return ms;
    };

    // `bench_fib N side [reps]`: one side alone, for profiling.
    if (argc > 2) {
        const std::string which = argv[2];
        const int k = argc > 3 ? std::atoi(argv[3]) : 20;
        std::function<double()> f = which == "tg"    ? std::function<double()>(tg_side)
                                    : which == "co"  ? std::function<double()>(co_side)
                                    : which == "fut" ? std::function<double()>(fut_side)
                                    : which == "fork" ? std::function<double()>(fork_side)
                                                     : std::function<double()>(tbb_side);
        std::vector<double> v;
        for (int i = 0; i < k; ++i) v.push_back(f());
        std::printf("%s: median %.3f ms over %d\n", which.c_str(), bench::median(v), k);
        return 0;
    }

    const std::string name = "fib(" + std::to_string(n) + "), one task per call";
    bench::row_samples(name + ": task_group vs tbb::task_group", bench::alternate(r, tg_side, tbb_side),
                       "ms", 1.0);
    bench::row_samples(name + ": coroutines vs tbb::task_group", bench::alternate(r, co_side, tbb_side),
                       "ms", 1.5);
    bench::row_samples(name + ": coroutines, fork/join vs tbb::task_group",
                       bench::alternate(r, fork_side, tbb_side), "ms", 0.5);
    bench::row_samples(name + ": futures vs tbb::task_group", bench::alternate(r, fut_side, tbb_side),
                       "ms", 2.0);
}
