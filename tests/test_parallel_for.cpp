// test_parallel_for.cpp — parallel_for: every index visited exactly once for many sizes and
// index types, negative and empty ranges, an explicit grain, calls from inside tasks, and
// exception propagation.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

using namespace taskport;

namespace {

// Runs parallel_for over [first, last) and checks each index was visited exactly once.
template <class Index>
void check_once(runtime& rt, Index first, Index last, std::size_t grain = 0) {
    const std::size_t n = first < last ? static_cast<std::size_t>(static_cast<long long>(last) -
                                                                  static_cast<long long>(first))
                                       : 0;
    std::unique_ptr<std::atomic<std::uint8_t>[]> seen(new std::atomic<std::uint8_t>[n ? n : 1]);
    for (std::size_t i = 0; i < n; ++i) seen[i].store(0, std::memory_order_relaxed);
    std::atomic<std::size_t> outside{0};
    parallel_for(
        rt, first, last,
        [&](Index i) {
            if (i < first || !(i < last)) {
                outside.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            auto k = static_cast<std::size_t>(static_cast<long long>(i) - static_cast<long long>(first));
            seen[k].fetch_add(1, std::memory_order_relaxed);
        },
        grain);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (seen[i].load(std::memory_order_relaxed) != 1) ++wrong;
    INFO("range [" << static_cast<long long>(first) << ", " << static_cast<long long>(last)
                   << ") grain " << grain);
    REQUIRE(outside.load() == 0);
    REQUIRE(wrong == 0);
}

}  // namespace

TEST_CASE("parallel_for: every index exactly once, many sizes") {
    const long big = tp_test::scaled(1000000);
    for (std::size_t w : {1u, 2u, 4u}) {
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("parallel_for sizes");
        for (long n : {0L, 1L, 2L, 7L, 64L, 1000L, 4097L, big}) check_once<long>(rt, 0, n);
        if (w == 2) check_once<long>(rt, 0, 1000000);  // the full million at least once
    }
}

TEST_CASE("parallel_for: negative, empty and reversed ranges, other index types") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("parallel_for ranges");
    check_once<int>(rt, -1000, 1000);
    check_once<int>(rt, -5000, -10);
    check_once<long long>(rt, -3, 4);
    check_once<std::int64_t>(rt, std::numeric_limits<std::int64_t>::max() - 5000,
                             std::numeric_limits<std::int64_t>::max());
    check_once<int>(rt, std::numeric_limits<int>::min(), std::numeric_limits<int>::min() + 3000);
    check_once<short>(rt, -300, 300);
    check_once<unsigned>(rt, 10u, 20000u);
    check_once<std::uint8_t>(rt, 0, 255);
    // Empty and reversed ranges call nothing.
    std::atomic<int> calls{0};
    parallel_for(rt, 5, 5, [&](int) { calls++; });
    parallel_for(rt, 10, -10, [&](int) { calls++; });
    REQUIRE(calls.load() == 0);
}

TEST_CASE("parallel_for: explicit grain sizes") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("parallel_for grain");
    for (std::size_t g : {1u, 3u, 100u, 100000u}) check_once<int>(rt, 0, 20000, g);
}

TEST_CASE("parallel_for: from inside tasks, nested") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("parallel_for nested");
    // Called on a worker, several at once, each nesting another parallel_for.
    std::atomic<long> total{0};
    std::vector<future<void>> fs;
    for (int k = 0; k < 8; ++k)
        fs.push_back(rt.spawn([&] {
            parallel_for(rt, 0, 100, [&](int) {
                parallel_for(rt, 0, 100, [&](int) { total.fetch_add(1, std::memory_order_relaxed); });
            });
        }));
    for (auto& f : fs) f.get();
    REQUIRE(total.load() == 8 * 100 * 100);
    // A single-worker pool can still run a nested parallel_for (the waiter helps).
    runtime one(tp_test::workers(1));
    REQUIRE(one.spawn([&] {
                   check_once<int>(one, 0, 5000);
                   return true;
               }).get());
}

TEST_CASE("parallel_for: an exception propagates, the runtime stays usable") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("parallel_for exceptions");
    std::atomic<long> calls{0};
    REQUIRE_THROWS_WITH(parallel_for(rt, 0, 100000,
                                     [&](int i) {
                                         calls++;
                                         if (i == 77777) throw std::runtime_error("index 77777");
                                     }),
                        "index 77777");
    REQUIRE(calls.load() >= 1);
    REQUIRE(calls.load() <= 100000);
    // Thrown from inside a task too.
    auto f = rt.spawn([&] {
        parallel_for(rt, 0, 1000, [](int i) {
            if (i == 500) throw std::out_of_range("inside");
        });
    });
    REQUIRE_THROWS_AS(f.get(), std::out_of_range);
    // Every index thrown from: still exactly one exception out.
    REQUIRE_THROWS_AS(parallel_for(rt, 0, 1000, [](int) { throw std::logic_error("all"); }),
                      std::logic_error);
    check_once<int>(rt, 0, 10000);
}
