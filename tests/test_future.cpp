// test_future.cpp — future/promise: get, wait, is_ready, then (value and future forms), exceptions,
// cancel before start, broken promise, a promise set from an outside thread, when_all, when_any;
// any number of waiters on one future (outside threads, worker tasks, a co_await) all waking; a
// task waiting for its own future getting an error instead of a deadlock.
#include "registrations.hpp"
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

using namespace taskport;

namespace {

using tp_test::registrations;

bool is_cancelled(const std::system_error& e) {
    return e.code() == std::make_error_code(std::errc::operation_canceled);
}

bool is_self_wait(const std::system_error& e) {
    return e.code() == std::make_error_code(std::errc::resource_deadlock_would_occur) &&
           std::string(e.what()).find("taskport: a task waits for its own future") !=
               std::string::npos;
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

TEST_CASE("future: get, wait, is_ready") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("future basics");

    auto f = rt.spawn([] { return 42; });
    REQUIRE(f.valid());
    f.wait();
    REQUIRE(f.is_ready());
    REQUIRE(f.get() == 42);
    REQUIRE_FALSE(f.valid());  // get() consumes
    REQUIRE(future_error_code([&] { (void)f.get(); }) == std::future_errc::no_state);
    REQUIRE(future_error_code([&] { (void)f.is_ready(); }) == std::future_errc::no_state);

    // Not ready until the task can finish.
    tp_test::gate go;
    auto g = rt.spawn([&] {
        go.wait();
        return std::string("done");
    });
    REQUIRE_FALSE(g.is_ready());
    go.open();
    REQUIRE(g.get() == "done");

    // void and move-only results.
    std::atomic<int> side{0};
    auto v = rt.spawn([&] { side = 7; });
    v.get();
    REQUIRE(side.load() == 7);
    auto u = rt.spawn([] { return std::make_unique<int>(9); });
    REQUIRE(*u.get() == 9);

    // A default-constructed future has no state.
    future<int> none;
    REQUIRE_FALSE(none.valid());
    REQUIRE(future_error_code([&] { none.wait(); }) == std::future_errc::no_state);
}

TEST_CASE("future: exceptions travel to get() and do not kill the worker") {
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("future exceptions");
    for (int i = 0; i < 100; ++i) {
        auto f = rt.spawn([]() -> int { throw std::runtime_error("boom"); });
        REQUIRE_THROWS_WITH(f.get(), "boom");
    }
    auto e = rt.spawn([] { throw std::out_of_range("range"); });
    REQUIRE_THROWS_AS(e.get(), std::out_of_range);
    // The single worker is still alive.
    REQUIRE(rt.spawn([] { return 1; }).get() == 1);
}

TEST_CASE("future: then, value form and future form") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("future then");

    // Value form, chained, type-changing.
    auto s = rt.spawn([] { return 20; })
                 .then([](int x) { return x + 1; })
                 .then([](int x) { return std::to_string(x * 2); });
    REQUIRE(s.get() == "42");

    // void -> value, value -> void.
    std::atomic<int> seen{0};
    auto a = rt.spawn([] {}).then([] { return 5; });
    REQUIRE(a.get() == 5);
    auto b = rt.spawn([] { return 6; }).then([&](int x) { seen = x; });
    b.get();
    REQUIRE(seen.load() == 6);

    // Value form: an exception skips the continuation and propagates.
    std::atomic<bool> ran{false};
    auto c = rt.spawn([]() -> int { throw std::runtime_error("first"); }).then([&](int x) {
        ran = true;
        return x;
    });
    REQUIRE_THROWS_WITH(c.get(), "first");
    REQUIRE_FALSE(ran.load());

    // Future form: the continuation sees the exception and may recover.
    auto d = rt.spawn([]() -> int { throw std::runtime_error("second"); })
                 .then([](future<int> f) {
                     try {
                         return f.get();
                     } catch (const std::runtime_error& e) {
                         return static_cast<int>(std::string(e.what()).size());
                     }
                 });
    REQUIRE(d.get() == 6);

    // A continuation that throws.
    auto t = rt.spawn([] { return 1; }).then([](int) -> int { throw std::logic_error("cont"); });
    REQUIRE_THROWS_AS(t.get(), std::logic_error);

    // then() on an already ready future and on a future completed later from outside.
    auto r = make_ready_future<int>(3).then([](int x) { return x * 3; });
    REQUIRE(r.get() == 9);
    promise<int> p;
    auto later = p.get_future().then([](int x) { return x + 100; });
    REQUIRE_FALSE(later.is_ready());
    std::thread setter([&] { p.set_value(1); });
    REQUIRE(later.get() == 101);
    setter.join();

    // Continuations chained from inside a task run on the runtime's workers.
    auto inside = rt.spawn([&] {
                      return rt.spawn([] { return 2; }).then([&](int x) {
                          return rt.executor().in_worker() ? x : -1;
                      });
                  }).get();
    REQUIRE(inside.get() == 2);
}

TEST_CASE("future: cancel before start completes with operation_canceled") {
    // Before the runtime: the futures below complete at cancel(), possibly while the worker is
    // still on its way out of go.wait(); the runtime's destructor joins it before go goes.
    tp_test::gate go;
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("future cancel");
    // Hold the only worker (outside taskport, so it cannot help with the queued task).
    rt.post([&] { go.wait(); });
    std::atomic<bool> ran{false};
    auto f = rt.spawn([&] {
        ran = true;
        return 1;
    });
    auto chained = rt.spawn([] { return 2; }).then([](int x) { return x; });
    f.cancel();
    chained.cancel();
    go.open();
    try {
        (void)f.get();
        FAIL("a cancelled task's future returned a value");
    } catch (const std::system_error& e) {
        REQUIRE(is_cancelled(e));
    }
    REQUIRE_FALSE(ran.load());
    try {
        (void)chained.get();
        FAIL("a cancelled continuation's future returned a value");
    } catch (const std::system_error& e) {
        REQUIRE(is_cancelled(e));
    }
    REQUIRE(cancelled_error().code() == std::errc::operation_canceled);

    // A finished task is unaffected by cancel().
    auto done = rt.spawn([] { return 5; });
    done.wait();
    done.cancel();
    REQUIRE(done.get() == 5);
}

TEST_CASE("future: promise, broken promise, errors of misuse") {
    {
        promise<int> p;
        auto f = p.get_future();
        REQUIRE(future_error_code([&] { (void)p.get_future(); }) ==
                std::future_errc::future_already_retrieved);
        p.set_value(1);
        REQUIRE(future_error_code([&] { p.set_value(2); }) ==
                std::future_errc::promise_already_satisfied);
        REQUIRE(f.get() == 1);
    }
    {
        future<int> f;
        {
            promise<int> p;
            f = p.get_future();
        }  // destroyed unfulfilled
        REQUIRE(f.is_ready());
        REQUIRE(future_error_code([&] { (void)f.get(); }) == std::future_errc::broken_promise);
    }
    {
        // Broken while someone waits, from another thread.
        auto p = std::make_unique<promise<void>>();
        auto f = p->get_future();
        std::thread t([&] { p.reset(); });
        REQUIRE(future_error_code([&] { f.get(); }) == std::future_errc::broken_promise);
        t.join();
    }
    {
        promise<int> never_retrieved;  // destroyed without get_future(): no leak (ASan checks)
        promise<int> moved_from;
        promise<int> moved_to(std::move(moved_from));
        auto f = moved_to.get_future();
        moved_to.set_exception(std::make_exception_ptr(std::runtime_error("set")));
        REQUIRE_THROWS_WITH(f.get(), "set");
    }
    REQUIRE(make_exceptional_future<int>(std::make_exception_ptr(std::runtime_error("x")))
                .then([](future<int> f) { return f.is_ready(); })
                .get());
}

TEST_CASE("future: a promise set from an outside thread wakes a waiting task") {
    // A task on a worker waits (get() on a worker helps, then parks) for a value an outside
    // thread provides; the worker's wake-up must not be lost. Repeated so the worker is caught
    // both before and after it parks.
    const int rounds = static_cast<int>(tp_test::scaled(1500));
    for (std::size_t w : {1u, 2u}) {
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("promise from outside");
        for (int i = 0; i < rounds; ++i) {
            promise<int> p;
            auto pf = p.get_future();
            auto f = rt.spawn([&pf] { return pf.get() + 1; });
            std::thread t([&p, i] { p.set_value(i); });
            REQUIRE(f.get() == i + 1);
            t.join();
        }
    }
}

TEST_CASE("future: tasks waiting on tasks do not deadlock a single worker") {
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("tasks waiting on tasks");
    struct rec {
        static int depth(runtime& rt, int n) {
            if (n == 0) return 0;
            return rt.spawn([&rt, n] { return depth(rt, n - 1); }).get() + 1;
        }
    };
    REQUIRE(rt.spawn([&] { return rec::depth(rt, 200); }).get() == 200);
}

TEST_CASE("future: dropping a future detaches its task") {
    runtime rt(tp_test::workers(2));
    tp_test::counter_latch done;
    for (int i = 0; i < 100; ++i) (void)rt.spawn([&] { done.arrive(); });
    REQUIRE(done.wait_for(100));
}

TEST_CASE("when_all over a vector, variadic, void, empty, with an exception") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("when_all");

    std::vector<future<int>> fs;
    for (int i = 0; i < 200; ++i) fs.push_back(rt.spawn([i] { return i * i; }));
    auto all = when_all(std::move(fs)).get();
    REQUIRE(all.size() == 200);
    for (int i = 0; i < 200; ++i) REQUIRE(all[static_cast<std::size_t>(i)] == i * i);

    // Inputs completing after when_all() was called (from an outside thread).
    promise<int> p1, p2;
    std::vector<future<int>> late;
    late.push_back(p1.get_future());
    late.push_back(p2.get_future());
    auto late_all = when_all(std::move(late));
    REQUIRE_FALSE(late_all.is_ready());
    std::thread t([&] {
        p2.set_value(2);
        p1.set_value(1);
    });
    REQUIRE(late_all.get() == std::vector<int>{1, 2});
    t.join();

    // Variadic: mixed types, void included.
    std::atomic<bool> v_ran{false};
    auto tup = when_all(rt.spawn([] { return 1; }), rt.spawn([] { return std::string("two"); }),
                        rt.spawn([&] { v_ran = true; }))
                   .get();
    REQUIRE(std::get<0>(tup) == 1);
    REQUIRE(std::get<1>(tup) == "two");
    REQUIRE(v_ran.load());

    // Vector of void.
    std::atomic<int> n{0};
    std::vector<future<void>> vs;
    for (int i = 0; i < 50; ++i) vs.push_back(rt.spawn([&] { n++; }));
    when_all(std::move(vs)).get();
    REQUIRE(n.load() == 50);

    // Empty: ready at once.
    auto empty = when_all(std::vector<future<int>>{});
    REQUIRE(empty.is_ready());
    REQUIRE(empty.get().empty());
    auto empty_void = when_all(std::vector<future<void>>{});
    REQUIRE(empty_void.is_ready());
    empty_void.get();

    // An exception: the first by position, after all inputs finished.
    std::vector<future<int>> bad;
    bad.push_back(rt.spawn([] { return 1; }));
    bad.push_back(rt.spawn([]() -> int { throw std::runtime_error("second input"); }));
    bad.push_back(rt.spawn([]() -> int { throw std::logic_error("third input"); }));
    REQUIRE_THROWS_WITH(when_all(std::move(bad)).get(), "second input");
    REQUIRE_THROWS_AS(when_all(rt.spawn([] { return 1; }),
                               rt.spawn([]() -> int { throw std::out_of_range("v"); }))
                          .get(),
                      std::out_of_range);

    // Invalid inputs are refused.
    std::vector<future<int>> invalid(1);
    REQUIRE(future_error_code([&] { (void)when_all(std::move(invalid)); }) ==
            std::future_errc::no_state);

    // when_all awaited from inside a task.
    auto inner = rt.spawn([&] {
        std::vector<future<int>> xs;
        for (int i = 0; i < 20; ++i) xs.push_back(rt.spawn([i] { return i; }));
        int sum = 0;
        for (int x : when_all(std::move(xs)).get()) sum += x;
        return sum;
    });
    REQUIRE(inner.get() == 190);
}

TEST_CASE("when_any: first to finish wins, the rest keep running") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("when_any");

    promise<int> p0, p1, p2;
    std::vector<future<int>> fs;
    fs.push_back(p0.get_future());
    fs.push_back(p1.get_future());
    fs.push_back(p2.get_future());
    auto any = when_any(std::move(fs));
    REQUIRE_FALSE(any.is_ready());
    std::thread t([&] { p1.set_value(11); });
    auto r = any.get();
    t.join();
    REQUIRE(r.index == 1);
    REQUIRE(r.value == 11);
    p0.set_value(0);  // late inputs are discarded, and nothing leaks (ASan)
    p2.set_value(2);

    // Void inputs, one of them already ready.
    promise<void> pv;
    std::vector<future<void>> vs;
    vs.push_back(pv.get_future());
    vs.push_back(make_ready_future<void>());
    auto rv = when_any(std::move(vs)).get();
    REQUIRE(rv.index == 1);
    pv.set_value();

    // The first input to finish threw.
    promise<int> q0;
    std::vector<future<int>> ex;
    ex.push_back(q0.get_future());
    ex.push_back(make_exceptional_future<int>(std::make_exception_ptr(std::runtime_error("any"))));
    REQUIRE_THROWS_WITH(when_any(std::move(ex)).get(), "any");
    q0.set_value(1);

    // Spawned inputs: exactly one winner, whose value matches its index.
    std::vector<future<int>> sp;
    for (int i = 0; i < 10; ++i) sp.push_back(rt.spawn([i] { return i * 10; }));
    auto w = when_any(std::move(sp)).get();
    REQUIRE(w.index < 10);
    REQUIRE(w.value == static_cast<int>(w.index) * 10);

    REQUIRE_THROWS_AS(when_any(std::vector<future<int>>{}), std::invalid_argument);
}

// Issue 8 item 1: wait() is const and callable from many threads at once. Every waiter on one
// future (outside threads blocking in wait(), worker tasks helping in wait(), a coroutine's
// co_await) must wake once the value is set. Each case waits until every waiter is registered
// before it sets the value; the watchdog turns a lost waiter into a failure with a message.
TEST_CASE("future: an outside thread and a worker task wait on one future; both wake") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("an outside thread and a worker task waiting on one future");
    promise<int> p;
    future<int> f = p.get_future();
    registrations reg(f.state_ptr());

    std::atomic<bool> outside_saw_ready{false};
    std::thread outside([&] {
        f.wait();
        outside_saw_ready = f.is_ready();
    });
    REQUIRE(reg.wait_for(1));  // the outside thread blocks first
    auto worker = rt.spawn([&] {
        f.wait();
        return f.is_ready();
    });
    REQUIRE(reg.wait_for(2));  // then the worker parks on the same future
    p.set_value(5);
    REQUIRE(worker.get());
    outside.join();
    REQUIRE(outside_saw_ready);
    REQUIRE(f.get() == 5);
}

TEST_CASE("future: two worker tasks on two workers wait on one future; both wake") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("two worker tasks waiting on one future");
    promise<int> p;
    future<int> f = p.get_future();
    registrations reg(f.state_ptr());

    // b occupies one worker (blocked in a gate, not helping) so that a runs on the other.
    tp_test::gate go;
    std::atomic<bool> b_started{false};
    auto b = rt.spawn([&] {
        b_started = true;
        go.wait();
        f.wait();
        return f.is_ready();
    });
    REQUIRE(tp_test::eventually([&] { return b_started.load(); }));
    auto a = rt.spawn([&] {
        f.wait();
        return f.is_ready();
    });
    REQUIRE(reg.wait_for(1));  // a's worker parks on f
    go.open();
    REQUIRE(reg.wait_for(2));  // b's worker parks on f too
    p.set_value(1);
    REQUIRE(a.get());
    REQUIRE(b.get());
    REQUIRE(f.get() == 1);
}

TEST_CASE("future: outside threads and worker tasks mixed wait on one future; all wake") {
    constexpr int workers = 3;
    constexpr int outsiders = 3;
    runtime rt(tp_test::workers(workers));
    tp_test::watchdog dog("outside threads and worker tasks waiting on one future");
    const int rounds = static_cast<int>(tp_test::scaled(40));
    for (int round = 0; round < rounds; ++round) {
        promise<int> p;
        future<int> f = p.get_future();
        registrations reg(f.state_ptr());

        // The tasks meet at a barrier that blocks their threads: each is on its own worker.
        tp_test::barrier all_running(workers);
        std::vector<future<bool>> tasks;
        for (int i = 0; i < workers; ++i)
            tasks.push_back(rt.spawn([&] {
                all_running.arrive_and_wait();
                f.wait();
                return f.is_ready();
            }));
        std::atomic<int> outside_woke{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < outsiders; ++i)
            threads.emplace_back([&] {
                f.wait();
                if (f.is_ready()) outside_woke.fetch_add(1);
            });
        REQUIRE(reg.wait_for(workers + outsiders));
        p.set_value(round);
        for (auto& t : tasks) REQUIRE(t.get());
        for (auto& t : threads) t.join();
        REQUIRE(outside_woke.load() == outsiders);
        REQUIRE(f.get() == round);
    }
}

TEST_CASE("future: a co_await, an outside thread and a worker task wait on one future") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("a co_await and two waiters on one future");
    promise<int> p;
    future<int> f = p.get_future();
    registrations reg(f.state_ptr());

    auto coro = rt.spawn([&]() -> task<int> {
        const int v = co_await f;  // an lvalue: f stays valid for the others
        co_return v + 1;
    });
    REQUIRE(reg.wait_for(1));
    std::atomic<bool> outside_saw_ready{false};
    std::thread outside([&] {
        f.wait();
        outside_saw_ready = f.is_ready();
    });
    REQUIRE(reg.wait_for(2));
    auto worker = rt.spawn([&] {
        f.wait();
        return f.is_ready();
    });
    REQUIRE(reg.wait_for(3));
    REQUIRE_FALSE(coro.is_ready());  // not woken before the value exists
    p.set_value(41);
    REQUIRE(coro.get() == 42);
    REQUIRE(worker.get());
    outside.join();
    REQUIRE(outside_saw_ready);
    REQUIRE(f.get() == 41);
}

// Issue 8 item 9: a task that waits for the future of its own task can never finish; it gets a
// std::system_error(resource_deadlock_would_occur) naming the mistake instead of hanging.
TEST_CASE("future: a task waiting for its own future gets an error, not a deadlock") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("a task waiting for its own future");

    promise<void> go;
    future<void> started = go.get_future();
    future<int>* self = nullptr;
    future<int> f = rt.spawn([&]() -> int {
        started.wait();  // until `self` is set
        self->wait();
        return 1;
    });
    self = &f;
    go.set_value();
    f.wait();
    REQUIRE_THROWS_MATCHES(f.get(), std::system_error,
                           Catch::Predicate<std::system_error>(is_self_wait, "a self-wait error"));

    // The same through co_await in a coroutine (and in a task<> it awaits).
    promise<void> go2;
    future<void> started2 = go2.get_future();
    future<int>* self2 = nullptr;
    future<int> g = rt.spawn([&]() -> task<int> {
        co_await started2;
        auto inner = [&]() -> task<int> { co_return co_await *self2; };
        co_return co_await inner();
    });
    self2 = &g;
    go2.set_value();
    g.wait();
    REQUIRE_THROWS_MATCHES(g.get(), std::system_error,
                           Catch::Predicate<std::system_error>(is_self_wait, "a self-wait error"));

    // Waiting for another task's future from a task still works.
    auto other = rt.spawn([] { return 2; });
    REQUIRE(rt.spawn([&] { return other.get() + 1; }).get() == 3);
}

// An error handed on (then(), when_all, when_any, a coroutine whose start throws) is published
// only after the worker has let go of its own references to the exception: otherwise the last
// reference, and the free, can fall on the worker after the taker has read the message. That
// is correct (exception_ptr counts atomically) but the count is inside uninstrumented
// libstdc++, so ThreadSanitizer reports the free as a race: CI's TSan stage failed on it in 1
// of its runs of "future: then". Many rounds here give the interleaving a chance under TSan;
// every build checks the messages.
TEST_CASE("future: an error handed on is published after the worker lets go of it") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("error hand-off");
    auto thrower = [](const char* what) {
        return [what]() -> int { throw std::runtime_error(what); };
    };
    for (int round = 0; round < 300; ++round) {
        auto t = rt.spawn(thrower("then")).then([](int x) { return x; });
        REQUIRE_THROWS_WITH(t.get(), "then");

        std::vector<future<int>> in;
        in.push_back(rt.spawn([] { return 1; }));
        in.push_back(rt.spawn(thrower("all")));
        REQUIRE_THROWS_WITH(when_all(std::move(in)).get(), "all");

        auto tup = when_all(rt.spawn(thrower("tuple")), rt.spawn([] { return 2; }));
        REQUIRE_THROWS_WITH(tup.get(), "tuple");

        std::vector<future<int>> one;
        one.push_back(rt.spawn(thrower("any")));
        REQUIRE_THROWS_WITH(when_any(std::move(one)).get(), "any");

        auto co = rt.spawn([]() -> task<int> {
            throw std::runtime_error("coroutine");
            co_return 0;
        });
        REQUIRE_THROWS_WITH(co.get(), "coroutine");
    }
}
