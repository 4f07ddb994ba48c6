// bench_skynet.cpp — skynet: a 10-ary tree of tasks, 1M leaves (1,111,111 tasks), each leaf
// returning its ordinal and each inner task summing its ten children.
//
// taskport is written three ways (task_group with ten runs and a wait; coroutines spawning ten
// children as futures and co_awaiting them; coroutines forking nine children and calling the
// tenth with fork_join, fork.hpp), the peer is oneTBB task_group. Two compute threads on
// each side (see bench_fib.cpp).
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/task_group.h>

namespace {

constexpr long leaves = 1'000'000;
constexpr long want = leaves * (leaves - 1) / 2;

long skynet_tbb(long num, long size) {
    if (size == 1) return num;
    long sums[10];
    tbb::task_group g;
    const long sub = size / 10;
    for (int i = 0; i < 10; ++i) g.run([&sums, i, num, sub] { sums[i] = skynet_tbb(num + i * sub, sub); });
    g.wait();
    long s = 0;
    for (long v : sums) s += v;
    return s;
}

long skynet_tg(taskport::runtime& rt, long num, long size) {
    if (size == 1) return num;
    long sums[10];
    taskport::task_group g(rt);
    const long sub = size / 10;
    for (int i = 0; i < 10; ++i)
        g.run([&rt, &sums, i, num, sub] { sums[i] = skynet_tg(rt, num + i * sub, sub); });
    g.wait();
    long s = 0;
    for (long v : sums) s += v;
    return s;
}

taskport::task<long> skynet_co(taskport::runtime& rt, long num, long size) {
    if (size == 1) co_return num;
    taskport::future<long> f[10];
    const long sub = size / 10;
    for (int i = 0; i < 10; ++i) f[i] = rt.spawn(skynet_co(rt, num + i * sub, sub));
    long s = 0;
    for (auto& x : f) s += co_await std::move(x);
    co_return s;
}

taskport::task<long> skynet_fork(long num, long size) {
    if (size == 1) co_return num;
    long sums[10];
    const long sub = size / 10;
    taskport::fork_join fj;
    for (int i = 0; i < 9; ++i) co_await fj.fork(sums[i], skynet_fork(num + i * sub, sub));
    co_await fj.call(sums[9], skynet_fork(num + 9 * sub, sub));
    co_await fj.join();
    long s = 0;
    for (long v : sums) s += v;
    co_return s;
}

void check(long v, const char* who) {
    if (v != want) {
        std::fprintf(stderr, "bench_skynet: %s got %ld, expected %ld\n", who, v, want);
        std::exit(1);
    }
}

}  // namespace

int main() {
    const int r = bench::reps(9);
    taskport::runtime rt;

    auto tbb_side = [&] {
        auto t0 = bench::clock::now();
        long v = skynet_tbb(0, leaves);
        double ms = bench::ms_since(t0);
        check(v, "tbb");
        return ms;
    };
    auto tg_side = [&] {
        auto t0 = bench::clock::now();
        long v = rt.spawn([&] { return skynet_tg(rt, 0, leaves); }).get();
        double ms = bench::ms_since(t0);
        check(v, "taskport task_group");
        return ms;
    };
    auto co_side = [&] {
        auto t0 = bench::clock::now();
        long v = rt.block_on(skynet_co(rt, 0, leaves));
        double ms = bench::ms_since(t0);
        check(v, "taskport coroutines");
        return ms;
    };
    auto fork_side = [&] {
        auto t0 = bench::clock::now();
        long v = rt.block_on(skynet_fork(0, leaves));
        double ms = bench::ms_since(t0);
        check(v, "taskport fork_join");
        return ms;
    };
    bench::row_samples("skynet 1M leaves: task_group vs tbb::task_group",
                       bench::alternate(r, tg_side, tbb_side), "ms");
    bench::row_samples("skynet 1M leaves: coroutines (spawn + co_await) vs tbb::task_group",
                       bench::alternate(r, co_side, tbb_side), "ms");
    bench::row_samples("skynet 1M leaves: coroutines, fork/join vs tbb::task_group",
                       bench::alternate(r, fork_side, tbb_side), "ms");
}
