// test_future_wait.cpp — future::wait_for / wait_until (std::future's timed waits): ready before
// and after, timeout on a future never completed before the deadline (then completed: ready), a
// deadline already passed, saturation of huge durations, other clocks, errors (no state, a task
// waiting for its own future), many outside threads and worker tasks timed-waiting on one future
// while it completes, a worker that times out with its node still registered and the state
// completing afterwards (the order forced by the registration hook), and a one-worker runtime
// whose waiting task is completed by a later task it helps run.
//
// Timing never decides a test: a `timeout` is asserted only for a future that nothing completes
// before the deadline, and a `ready` only with a generous deadline (tp_test::hang_deadline).
#include "registrations.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace taskport;
using namespace std::chrono_literals;

namespace {

using tp_test::registrations;

constexpr auto generous = tp_test::hang_deadline;

bool is_self_wait(const std::system_error& e) {
    return e.code() == std::make_error_code(std::errc::resource_deadlock_would_occur);
}

template <class F>
std::error_code future_error_code(F&& f) {
    try {
        f();
    } catch (const std::future_error& e) {
        return e.code();
    }
    return {};
}

}  // namespace

TEST_CASE("future wait_for: ready before, ready after") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("wait_for ready before/after");

    auto r = make_ready_future<int>(7);
    REQUIRE(r.wait_for(0s) == std::future_status::ready);
    REQUIRE(r.wait_for(-1s) == std::future_status::ready);
    REQUIRE(r.wait_until(std::chrono::steady_clock::now() - 1h) == std::future_status::ready);
    REQUIRE(r.wait_until(std::chrono::system_clock::now() + 1h) == std::future_status::ready);
    REQUIRE(r.valid());
    REQUIRE(r.get() == 7);

    // Completed by another thread while an outside thread waits.
    promise<int> p;
    auto f = p.get_future();
    registrations regs(f.state_ptr());
    std::thread setter([&] {
        REQUIRE(regs.wait_for(1));
        p.set_value(42);
    });
    REQUIRE(f.wait_for(generous) == std::future_status::ready);
    setter.join();
    REQUIRE(f.valid());
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    REQUIRE(f.get() == 42);

    // A spawned task's future, waited for with wait_until from outside and from a task.
    auto g = rt.spawn([] { return 5; });
    REQUIRE(g.wait_until(std::chrono::steady_clock::now() + generous) == std::future_status::ready);
    REQUIRE(rt.spawn([&] {
                auto h = rt.spawn([] { return 6; });
                return h.wait_for(generous) == std::future_status::ready ? h.get() : -1;
            }).get() == 6);
    REQUIRE(g.get() == 5);
}

TEST_CASE("future wait_for: timeout on a future never completed, then ready once completed") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("wait_for timeout");

    // Outside thread.
    promise<int> p;
    auto f = p.get_future();
    REQUIRE(f.wait_for(20ms) == std::future_status::timeout);
    REQUIRE(f.wait_until(std::chrono::system_clock::now() + 5ms) == std::future_status::timeout);
    REQUIRE(f.valid());
    REQUIRE_FALSE(f.is_ready());
    p.set_value(1);
    REQUIRE(f.wait_for(generous) == std::future_status::ready);
    REQUIRE(f.get() == 1);

    // Worker: times out (helping, parking with a timeout), then the same future completes.
    promise<int> q;
    auto g = q.get_future();
    auto status = rt.spawn([&] { return g.wait_for(20ms); }).get();
    REQUIRE(status == std::future_status::timeout);
    REQUIRE(g.valid());
    q.set_value(2);
    REQUIRE(rt.spawn([&] { return g.wait_for(generous); }).get() == std::future_status::ready);
    REQUIRE(g.get() == 2);
}

TEST_CASE("future wait_for: a deadline already passed only looks; huge durations saturate") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("wait_for past deadline");

    promise<void> p;
    auto f = p.get_future();
    {
        registrations regs(f.state_ptr());
        REQUIRE(f.wait_for(0ns) == std::future_status::timeout);
        REQUIRE(f.wait_for(-1h) == std::future_status::timeout);
        REQUIRE(f.wait_until(std::chrono::steady_clock::now() - 1s) == std::future_status::timeout);
        REQUIRE(f.wait_until(std::chrono::steady_clock::time_point::min()) ==
                std::future_status::timeout);
        REQUIRE(f.wait_until(std::chrono::system_clock::now() - 1h) == std::future_status::timeout);
        REQUIRE(rt.spawn([&] { return f.wait_for(0s); }).get() == std::future_status::timeout);
        REQUIRE(regs.count() == 0);  // nothing registered: a passed deadline only looks
    }

    // wait_for(hours::max()) must not wrap into the past (it would time out at once).
    registrations regs(f.state_ptr());
    std::thread setter([&] {
        REQUIRE(regs.wait_for(1));
        p.set_value();
    });
    REQUIRE(f.wait_for(std::chrono::hours::max()) == std::future_status::ready);
    REQUIRE(f.wait_until(std::chrono::steady_clock::time_point::max()) == std::future_status::ready);
    REQUIRE(f.wait_for(std::chrono::duration<double>(1e300)) == std::future_status::ready);
    setter.join();
}

TEST_CASE("future wait_for: errors as wait()") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("wait_for errors");

    future<int> none;
    REQUIRE(future_error_code([&] { (void)none.wait_for(1s); }) == std::future_errc::no_state);
    REQUIRE(future_error_code([&] { (void)none.wait_until(std::chrono::steady_clock::now()); }) ==
            std::future_errc::no_state);
    auto f = make_ready_future<int>(1);
    (void)f.get();
    REQUIRE(future_error_code([&] { (void)f.wait_for(0s); }) == std::future_errc::no_state);

    // A task timed-waiting for its own future: the self-wait error, even with a passed deadline.
    promise<void> go;
    future<void> started = go.get_future();
    future<int>* self = nullptr;
    future<int> g = rt.spawn([&]() -> int {
        started.wait();
        int errors = 0;
        for (auto d : {0ms, 10ms, 1000ms}) {
            try {
                (void)self->wait_for(d);
            } catch (const std::system_error& e) {
                errors += is_self_wait(e) ? 1 : 0;
            }
        }
        return errors;
    });
    self = &g;
    go.set_value();
    REQUIRE(g.get() == 3);
}

// Many outside threads and worker tasks timed-waiting on one future while it completes: some
// with a generous deadline (must see ready), some in short rounds (each round that times out
// leaves a node registered on a worker; completion frees them: ASan/LSan check the frees, TSan
// the hand-over). No lost wake-up: every waiter sees ready.
TEST_CASE("future wait_for: many outside threads and tasks timed-waiting on one future") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("many timed waiters");

    const int rounds = static_cast<int>(tp_test::scaled(100));
    const int outside = 4;
    const int tasks = 6;
    for (int round = 0; round < rounds; ++round) {
        promise<int> p;
        auto f = p.get_future();
        std::atomic<int> saw_ready{0};
        std::atomic<int> started{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < outside; ++i)
            threads.emplace_back([&, i] {
                started.fetch_add(1);
                if (i % 2 == 0) {
                    if (f.wait_for(generous) == std::future_status::ready) saw_ready.fetch_add(1);
                } else {
                    while (f.wait_for(100us) == std::future_status::timeout) {
                    }
                    saw_ready.fetch_add(1);
                }
            });
        std::vector<future<void>> waiters;
        for (int i = 0; i < tasks; ++i)
            waiters.push_back(rt.spawn([&, i] {
                started.fetch_add(1);
                if (i % 2 == 0) {
                    if (f.wait_for(generous) == std::future_status::ready) saw_ready.fetch_add(1);
                } else {
                    while (f.wait_until(std::chrono::steady_clock::now() + 50us) ==
                           std::future_status::timeout) {
                    }
                    saw_ready.fetch_add(1);
                }
            }));
        REQUIRE(tp_test::eventually([&] { return started.load() >= outside + 1; }));
        p.set_value(round);
        for (auto& t : threads) t.join();
        for (auto& w : waiters) w.get();
        REQUIRE(saw_ready.load() == outside + tasks);
        REQUIRE(f.get() == round);
    }
}

// A worker's wait_for returns at its deadline with its node still on the state's list; the
// state completes only afterwards, and the completer must then find the node alive (it is the
// completer's to free). The registration hook holds the worker until its deadline has passed
// right after it registered, so the order is certain, not hoped for.
TEST_CASE("future wait_for: a worker times out with its node registered; completion comes after") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("timeout with node registered");

    for (int i = 0; i < 3; ++i) {
        promise<std::string> p;
        auto f = p.get_future();
        // The deadline must not pass before the worker even registers (a loaded machine may
        // start the task late): then the wait times out unregistered, and the next attempt
        // doubles the deadline. The outcome asserted is the same either way.
        for (auto d = 20ms;; d *= 2) {
            const auto deadline = std::chrono::steady_clock::now() + d;
            registrations regs(f.state_ptr(), deadline);
            const auto status = rt.spawn([&] { return f.wait_until(deadline); }).get();
            REQUIRE(status == std::future_status::timeout);
            if (regs.count() == 1) break;  // it registered, then timed out: the case wanted
            REQUIRE(d < 60s);
        }
        REQUIRE_FALSE(f.is_ready());
        p.set_value(std::string(100, 'x'));  // notifies the abandoned node, which it frees
        REQUIRE(f.wait_for(generous) == std::future_status::ready);
        REQUIRE(f.get().size() == 100);
    }
}

// One worker: the waiting task must run the task that completes its future (a later task, on
// the same worker's queue) while it waits, and wake for it, not at its deadline.
TEST_CASE("future wait_for: one worker, completed by a later task the waiter runs") {
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("one worker timed wait");

    auto status = rt.spawn([&] {
        promise<int> p;
        auto f = p.get_future();
        // The promise moves into the completing task (destroying it under a running set_value()
        // would be the caller's race, as with std::promise); its future is dropped (detached).
        (void)rt.spawn([p = std::move(p)]() mutable { p.set_value(3); });
        return f.wait_for(generous);
    }).get();
    REQUIRE(status == std::future_status::ready);

    // The same with the completing task spawned by another task, after the waiter parked.
    promise<int> p;
    auto f = p.get_future();
    registrations regs(f.state_ptr());
    auto waiter = rt.spawn([&] { return f.wait_for(generous); });
    REQUIRE(regs.wait_for(1));
    rt.spawn([&] { p.set_value(4); }).get();
    REQUIRE(waiter.get() == std::future_status::ready);
    REQUIRE(f.get() == 4);
}

#if TASKPORT_TEST_HAVE_TBB && !defined(__SANITIZE_THREAD__)
// tbb_arena: the default help_until_deadline blocks the worker thread (TBB cannot suspend with a
// timeout): timeout and ready still hold.
TEST_CASE("future wait_for: tbb_arena scheduler") {
    runtime_options o;
    o.workers = 2;
    o.scheduler = scheduler_kind::tbb_arena;
    runtime rt(o);
    tp_test::watchdog dog("tbb_arena timed wait");

    promise<int> p;
    auto f = p.get_future();
    REQUIRE(rt.spawn([&] { return f.wait_for(20ms); }).get() == std::future_status::timeout);
    registrations regs(f.state_ptr());
    auto waiter = rt.spawn([&] { return f.wait_for(generous); });
    REQUIRE(regs.wait_for(1));
    p.set_value(9);
    REQUIRE(waiter.get() == std::future_status::ready);
    REQUIRE(f.get() == 9);
}
#endif
