// test_scope.cpp — async_scope: join waits for every task (and those they spawn into it),
// cancel() reaches them all, a cancelled joiner cancels its scope and still waits, stop_token
// interop, the destructor's wait, and when_any(..., cancel_losers).
#include <catch2/catch.hpp>

#include "test_util.hpp"

#include <taskport/taskport.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using taskport::task;

TEST_CASE("scope: join waits for every task, nested spawns included, and rethrows the first error") {
    taskport::runtime rt({.workers = 4});
    std::atomic<int> done{0};
    auto parent = rt.spawn([&]() -> task<void> {
        taskport::async_scope scope(rt);
        for (int i = 0; i < 8; ++i)
            scope.spawn([&]() -> task<void> {
                for (int j = 0; j < 4; ++j)
                    scope.spawn([&] { done++; });
                co_await taskport::yield();
                done++;
            });
        co_await scope.join();
        CHECK(scope.empty());
    });
    parent.get();
    CHECK(done == 8 * 5);

    auto failing = rt.spawn([&]() -> task<void> {
        taskport::async_scope scope(rt);
        scope.spawn([]() -> int { throw std::runtime_error("child failed"); });
        scope.spawn([] { return 1; });
        co_await scope.join();
    });
    CHECK_THROWS_AS(failing.get(), std::runtime_error);
}

TEST_CASE("scope: cancel() reaches every task, waiting ones and ones spawned later") {
    taskport::runtime rt({.workers = 2});
    taskport::async_scope scope(rt);
    taskport::async_event never;
    std::atomic<int> aborted{0};
    for (int i = 0; i < 6; ++i)
        scope.spawn([&]() -> task<void> {
            try {
                co_await never.wait();
            } catch (const std::system_error& e) {
                if (e.code() == std::errc::operation_canceled) aborted++;
                throw;
            }
        });
    tp_test::wait_until([&] { return never.waiters() == 6; });
    std::stop_token tok = scope.get_stop_token();
    CHECK(!tok.stop_requested());
    scope.cancel();
    CHECK(tok.stop_requested());
    auto late = scope.spawn([] { return 1; });
    CHECK_THROWS_AS(late.get(), std::system_error);  // cancelled before it ran
    scope.join_blocking();  // the scope's own cancellations are not errors
    CHECK(aborted == 6);
    CHECK(never.waiters() == 0);
}

TEST_CASE("scope: a cancelled joiner cancels its scope, waits for it, then throws") {
    taskport::runtime rt({.workers = 2});
    taskport::async_event never;
    std::atomic<int> children_finished{0};
    std::atomic<bool> joined{false};
    auto parent = rt.spawn([&]() -> task<void> {
        int local = 42;  // the children read the parent's frame
        taskport::async_scope scope(rt);
        for (int i = 0; i < 3; ++i)
            scope.spawn([&]() -> task<void> {
                try {
                    co_await never.wait();
                } catch (...) {
                }
                if (local == 42) children_finished++;
            });
        joined = true;
        co_await scope.join();
    });
    tp_test::wait_until([&] { return joined.load() && never.waiters() == 3; });
    parent.cancel();
    try {
        parent.get();
        FAIL("cancelled join returned");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::operation_canceled);
    }
    CHECK(children_finished == 3);  // all finished before the parent's frame went away
}

TEST_CASE("scope: a stop_source request cancels it; the destructor waits for its tasks") {
    taskport::runtime rt({.workers = 2});
    std::stop_source src;
    taskport::async_event never;
    std::atomic<int> finished{0};
    {
        taskport::async_scope scope(rt, src.get_token());
        for (int i = 0; i < 4; ++i)
            scope.spawn([&]() -> task<void> {
                try {
                    co_await never.wait();
                } catch (...) {
                }
                finished++;
            });
        tp_test::wait_until([&] { return never.waiters() == 4; });
        src.request_stop();
        CHECK(scope.cancel_requested());
    }
    CHECK(finished == 4);
    {
        taskport::async_scope scope(rt);
        for (int i = 0; i < 4; ++i)
            scope.spawn([&]() -> task<void> {
                try {
                    co_await never.wait();
                } catch (...) {
                }
                finished++;
            });
        tp_test::wait_until([&] { return never.waiters() == 4; });
    }  // the destructor cancels and waits
    CHECK(finished == 8);
    // with_timeout on join: stops waiting, cancels nothing.
    taskport::async_scope scope(rt);
    scope.spawn([&]() -> task<void> { co_await never.wait(); });
    auto t = rt.spawn(tp_test::times_out(10ms, scope.join()));
    CHECK(t.get());
    CHECK(scope.size() == 1);
    never.set();
    scope.join_blocking();
}

TEST_CASE("when_any with cancel_losers cancels the others") {
    taskport::runtime rt({.workers = 2});
    taskport::async_event never;
    std::vector<taskport::future<int>> fs;
    for (int i = 0; i < 3; ++i)
        fs.push_back(rt.spawn([&]() -> task<int> {
            co_await never.wait();
            co_return 0;
        }));
    tp_test::wait_until([&] { return never.waiters() == 3; });
    fs.push_back(rt.spawn([] { return 7; }));
    auto r = taskport::when_any(std::move(fs), taskport::cancel_losers).get();
    CHECK(r.index == 3);
    CHECK(r.value == 7);
    tp_test::wait_until([&] { return never.waiters() == 0; });  // the losers were cancelled out of their wait
}
