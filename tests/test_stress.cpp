// test_stress.cpp — a million tasks, every one counted: posted from outside (by several
// threads), spawned from inside tasks, spawned with futures that are all collected, and a
// recursive spawn tree. Counts must be exact; stats must agree.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

using namespace taskport;

TEST_CASE("stress: a million tasks posted from outside and spawned from inside, each counted") {
    const long total = tp_test::scaled(1000000);
    const int outside_threads = 2;
    // Half posted directly from outside; the other half spawned from inside by 1000-ish
    // parent tasks (posted from outside as well).
    const long direct = total / 2;
    const long parents = 1000;
    const long per_parent = (total - direct) / parents;
    const long expected = direct + parents + parents * per_parent;

    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("million-task stress");
    // One counter slot per task id, so a task run twice or never shows up, not just the sum.
    std::unique_ptr<std::atomic<std::uint8_t>[]> seen(new std::atomic<std::uint8_t>[static_cast<std::size_t>(expected)]);
    for (long i = 0; i < expected; ++i) seen[i].store(0, std::memory_order_relaxed);
    std::atomic<long> ran{0};
    auto mark = [&](long id) {
        seen[id].fetch_add(1, std::memory_order_relaxed);
        ran.fetch_add(1, std::memory_order_relaxed);
    };
    const auto before = rt.stats();

    std::vector<std::thread> ts;
    for (int t = 0; t < outside_threads; ++t) {
        ts.emplace_back([&, t] {
            for (long i = t; i < direct; i += outside_threads) rt.post([&mark, i] { mark(i); });
            for (long p = t; p < parents; p += outside_threads) {
                rt.post([&, p] {
                    const long base = direct + parents + p * per_parent;
                    for (long k = 0; k < per_parent; ++k) rt.post([&mark, id = base + k] { mark(id); });
                    mark(direct + p);
                });
            }
        });
    }
    for (auto& t : ts) t.join();
    rt.shutdown();  // runs everything queued, including what the parents spawned

    REQUIRE(ran.load() == expected);
    long wrong = 0;
    for (long i = 0; i < expected; ++i)
        if (seen[i].load(std::memory_order_relaxed) != 1) ++wrong;
    REQUIRE(wrong == 0);
    const auto s = rt.stats();
    REQUIRE(s.tasks_run - before.tasks_run == static_cast<std::uint64_t>(expected));
    REQUIRE(s.tasks_spawned - before.tasks_spawned == static_cast<std::uint64_t>(expected));
    REQUIRE(s.injector_depth == 0);
}

TEST_CASE("stress: spawn with futures, all collected") {
    const long n = tp_test::scaled(300000);
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("spawn/get stress");
    std::vector<future<long>> fs;
    fs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) fs.push_back(rt.spawn([i] { return i; }));
    long long sum = 0;  // not long: 32 bits on Windows, and the sum is about 4.5e10
    for (auto& f : fs) sum += f.get();
    REQUIRE(sum == static_cast<long long>(n) * (n - 1) / 2);
}

namespace {

// A binary spawn tree (skynet-like): every node is a task, leaves count themselves.
long tree(runtime& rt, int depth) {
    if (depth == 0) return 1;
    auto left = rt.spawn([&rt, depth] { return tree(rt, depth - 1); });
    long right = tree(rt, depth - 1);
    return left.get() + right;
}

task<long> co_tree(runtime& rt, int depth) {
    if (depth == 0) co_return 1;
    auto left = rt.spawn(co_tree(rt, depth - 1));
    long right = co_await co_tree(rt, depth - 1);
    co_return co_await std::move(left) + right;
}

}  // namespace

TEST_CASE("stress: recursive spawn trees with futures and coroutines") {
    const int depth = tp_test::tsan ? 14 : 18;
    for (std::size_t w : {1u, 2u, 4u}) {
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("spawn tree");
        REQUIRE(rt.spawn([&] { return tree(rt, depth); }).get() == (1L << depth));
        REQUIRE(rt.block_on(co_tree(rt, depth)) == (1L << depth));
    }
}
