// test_coroutine.cpp — task<T>: awaiting tasks and futures, exceptions through co_await,
// co_await yield(), a million nested awaits on constant stack, spawning a lambda that returns a
// task, block_on, and cancellation observed at the next co_await.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <coroutine>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

using namespace taskport;

namespace {

task<int> value(int x) { co_return x; }
task<> nothing() { co_return; }
task<int> add(int a, int b) { co_return co_await value(a) + co_await value(b); }

task<int> thrower(std::string what) {
    co_await nothing();
    throw std::runtime_error(what);
}

task<std::string> catcher() {
    try {
        (void)co_await thrower("inner");
    } catch (const std::runtime_error& e) {
        co_return std::string("caught ") + e.what();
    }
    co_return "not caught";
}

task<std::unique_ptr<int>> move_only(int x) { co_return std::make_unique<int>(x); }

// n nested awaits: each level suspends into its child and is resumed by the child's final
// suspend; without symmetric transfer every level would add stack frames.
task<long> nested(long n) {
    if (n == 0) co_return 0;
    co_return 1 + co_await nested(n - 1);
}

// n sequential awaits of tasks that complete synchronously: each resume of the caller from the
// child's final_suspend must be a tail call too, or the loop grows the stack.
task<long> sequential(long n) {
    long sum = 0;
    for (long i = 0; i < n; ++i) sum += co_await value(1);
    co_return sum;
}

// An awaitable the test resumes by hand: it reports (in await_suspend) that the coroutine is
// really suspended, so the test can cancel at a known point. Copyable on purpose (GCC 12 copies
// an awaiter that await_transform returns by reference).
struct hand_gate {
    struct state {
        std::atomic<void*> handle{nullptr};
        tp_test::counter_latch suspended;
    };
    std::shared_ptr<state> s = std::make_shared<state>();

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        s->handle.store(h.address());
        s->suspended.arrive();
    }
    int await_resume() const noexcept { return 5; }

    // From the test: wait until suspended, then resume the coroutine on a worker of rt.
    bool wait_suspended() { return s->suspended.wait_for(1); }
    void resume_on(runtime& rt) {
        void* a = s->handle.load();
        rt.post([a] { std::coroutine_handle<>::from_address(a).resume(); });
    }
};

// Spawns its child and awaits it at once, n levels deep. On one worker each child is still the
// newest task of the worker's queue when awaited, so the awaiter takes it back and runs it in
// place, nested (executor::run_if_newest); the nesting is bounded, past the bound the awaiter
// suspends as before, so any depth fits the stack.
task<long> spawned_chain(runtime& rt, long n) {
    if (n == 0) co_return 0;
    auto f = rt.spawn(spawned_chain(rt, n - 1));
    long v = co_await std::move(f);
    co_return v + 1;
}

bool is_cancelled(const std::system_error& e) {
    return e.code() == std::make_error_code(std::errc::operation_canceled);
}

}  // namespace

TEST_CASE("coroutine: await tasks, values, void, move-only") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("coroutine basics");
    REQUIRE(rt.block_on(value(7)) == 7);
    REQUIRE(rt.block_on(add(2, 3)) == 5);
    rt.block_on(nothing());
    REQUIRE(*rt.block_on(move_only(4)) == 4);
    // A task is lazy: nothing runs until it is awaited or spawned.
    std::atomic<bool> started{false};
    auto lazy = [&]() -> task<int> {
        started = true;
        co_return 1;
    };
    task<int> t = lazy();
    REQUIRE(t.valid());
    REQUIRE_FALSE(started.load());
    REQUIRE(rt.block_on(std::move(t)) == 1);
    REQUIRE(started.load());
    // A task awaited as an lvalue.
    REQUIRE(rt.block_on([]() -> task<int> {
        task<int> inner = value(10);
        int v = co_await inner;
        co_return v + 1;
    }()) == 11);
}

TEST_CASE("coroutine: exceptions travel through co_await and block_on") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("coroutine exceptions");
    REQUIRE(rt.block_on(catcher()) == "caught inner");
    REQUIRE_THROWS_WITH(rt.block_on(thrower("outer")), "outer");
    auto f = rt.spawn(thrower("spawned"));
    REQUIRE_THROWS_WITH(f.get(), "spawned");
    // Through two levels of await.
    auto two = []() -> task<int> { co_return co_await thrower("deep") + 1; };
    REQUIRE_THROWS_WITH(rt.block_on(two()), "deep");
}

TEST_CASE("coroutine: co_await a future") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("coroutine await future");
    auto c = [&]() -> task<int> {
        future<int> f = rt.spawn([] { return 20; });
        int a = co_await std::move(f);
        future<int> g = rt.spawn([] { return 22; });
        int b = co_await g;  // lvalue form
        co_return a + b;
    };
    REQUIRE(rt.block_on(c()) == 42);

    // A future completed by an outside thread resumes the coroutine on a worker.
    promise<int> p;
    future<int> pf = p.get_future();
    auto waiter = rt.spawn([&]() -> task<bool> {
        int v = co_await std::move(pf);
        co_return v == 5 && rt.executor().in_worker();
    });
    std::thread t([&] { p.set_value(5); });
    REQUIRE(waiter.get());
    t.join();

    // A future's exception is rethrown at the co_await.
    auto bad = [&]() -> task<int> {
        co_return co_await rt.spawn([]() -> int { throw std::logic_error("from future"); });
    };
    REQUIRE_THROWS_AS(rt.block_on(bad()), std::logic_error);

    // Many coroutines each awaiting a spawned future.
    const int n = static_cast<int>(tp_test::scaled(20000));
    std::vector<future<int>> fs;
    for (int i = 0; i < n; ++i)
        fs.push_back(rt.spawn([&rt, i]() -> task<int> {
            co_return co_await rt.spawn([i] { return i; }) + 1;
        }));
    long sum = 0;
    for (auto& f : fs) sum += f.get();
    REQUIRE(sum == static_cast<long>(n) * (n - 1) / 2 + n);
}

TEST_CASE("coroutine: co_await yield() lets queued work run first") {
    // One worker: a coroutine that yields in a loop until a posted task sets a flag terminates
    // only if yield() really puts it behind already queued tasks.
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("coroutine yield");
    std::atomic<bool> flag{false};
    auto spinner = [&]() -> task<long> {
        rt.post([&] { flag = true; });
        long yields = 0;
        while (!flag.load() && yields < 1000000) {
            co_await yield();
            ++yields;
        }
        co_return yields;
    };
    long yields = rt.block_on(spinner());
    REQUIRE(flag.load());
    REQUIRE(yields >= 1);
    REQUIRE(yields < 1000000);

    // Many coroutines yielding many times each all finish.
    std::atomic<long> done{0};
    std::vector<future<void>> fs;
    for (int i = 0; i < 100; ++i)
        fs.push_back(rt.spawn([&]() -> task<> {
            for (int k = 0; k < 100; ++k) co_await yield();
            done++;
        }));
    for (auto& f : fs) f.get();
    REQUIRE(done.load() == 100);

}

TEST_CASE("coroutine: a million nested awaits do not overflow the stack") {
    // Symmetric transfer: constant stack however deep the await chain. Runs on a worker
    // (default 8 MiB thread stack): a million frames of even 16 bytes of stack each would not fit.
    const long n = 1000000;
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("nested awaits");
    REQUIRE(rt.block_on(nested(n)) == n);
    REQUIRE(rt.block_on(sequential(n)) == n);
}

TEST_CASE("coroutine: spawn a lambda that returns a task; the lambda outlives the coroutine") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("spawn lambda task");
    // The captures are used after a suspension: the runtime must keep the lambda alive until
    // the coroutine finishes (ASan would see a use after free otherwise).
    auto text = std::make_shared<std::string>("captured");
    auto f = rt.spawn([text, &rt]() -> task<std::size_t> {
        co_await yield();
        co_await rt.spawn([] { return 0; });
        co_return text->size();
    });
    REQUIRE(f.get() == 8);
    // The lambda (and so its captures) is gone once the future is ready.
    REQUIRE(text.use_count() == 1);

    // post() of a lambda returning a task runs the coroutine.
    tp_test::counter_latch ran;
    rt.post([&]() -> task<> {
        co_await yield();
        ran.arrive();
    });
    REQUIRE(ran.wait_for(1));
}

TEST_CASE("coroutine: block_on from outside and from a worker") {
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("block_on");
    // From a task on the only worker: block_on runs other tasks while it waits.
    auto f = rt.spawn([&] { return rt.block_on(add(20, 22)); });
    REQUIRE(f.get() == 42);
    // Nested: a coroutine spawned from a coroutine on a worker, awaited through a future.
    auto outer = [&]() -> task<int> {
        auto inner = rt.spawn(add(1, 1));
        co_return co_await std::move(inner) * 10;
    };
    REQUIRE(rt.block_on(outer()) == 20);
}

TEST_CASE("coroutine: cancel a spawned coroutine, observed at its next co_await") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("coroutine cancel");

    // Cancelled while suspended: the co_await it is suspended on completes normally; the next
    // co_await throws cancelled_error(), and nothing after it runs.
    hand_gate gate;
    std::atomic<int> got{-1};
    std::atomic<bool> after_next{false};
    auto f = rt.spawn([&]() -> task<int> {
        got = co_await gate;
        co_await yield();  // throws here
        after_next = true;
        co_return 1;
    });
    REQUIRE(gate.wait_suspended());
    f.cancel();
    gate.resume_on(rt);
    try {
        (void)f.get();
        FAIL("a cancelled coroutine returned a value");
    } catch (const std::system_error& e) {
        REQUIRE(is_cancelled(e));
    }
    REQUIRE(got.load() == 5);
    REQUIRE_FALSE(after_next.load());

    // Cancellation reaches awaited child tasks too, and a coroutine can ask without throwing.
    hand_gate gate2;
    std::atomic<bool> child_saw{false};
    std::atomic<bool> child_after{false};
    auto child = [&]() -> task<int> {
        co_await gate2;
        child_saw = co_await this_task_cancelled();
        co_await nothing();  // throws
        child_after = true;
        co_return 0;
    };
    auto g = rt.spawn([&]() -> task<int> {
        try {
            co_return co_await child();
        } catch (const std::system_error& e) {
            co_return is_cancelled(e) ? 100 : -1;
        }
    });
    REQUIRE(gate2.wait_suspended());
    g.cancel();
    gate2.resume_on(rt);
    REQUIRE(g.get() == 100);
    REQUIRE(child_saw.load());
    REQUIRE_FALSE(child_after.load());

    // Not cancelled: this_task_cancelled() is false.
    REQUIRE_FALSE(rt.block_on([]() -> task<bool> { co_return co_await this_task_cancelled(); }()));

    // Cancelled before it starts: it never runs.
    tp_test::gate hold;
    runtime one(tp_test::workers(1));
    one.post([&] { hold.wait(); });
    std::atomic<bool> ran{false};
    auto h = one.spawn([&]() -> task<int> {
        ran = true;
        co_return 1;
    });
    h.cancel();
    hold.open();
    REQUIRE_THROWS_AS(h.get(), std::system_error);
    REQUIRE_FALSE(ran.load());
}

TEST_CASE("coroutine: spawn then await at once, a chain deeper than any stack, on one worker") {
    // Every child is taken back and run nested in its awaiter, up to the nesting bound; without
    // the bound, 100k levels of nested runs (a few hundred bytes of stack each) overflow the
    // worker's 8 MiB stack.
    const long n = 100000;
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("spawned chain");
    REQUIRE(rt.block_on(spawned_chain(rt, n)) == n);
    // And a worker's blocking wait() on a child it spawned: taken back the same way.
    REQUIRE(rt.spawn([&] { return rt.spawn([] { return 41; }).get() + 1; }).get() == 42);
}

TEST_CASE("coroutine: an awaited child that is taken back and suspends resumes its awaiter later") {
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("taken back, suspends");
    // The child suspends (yield) while run in place: the awaiter then registers and suspends,
    // and is resumed when the child finishes.
    REQUIRE(rt.block_on([](runtime& r) -> task<int> {
                auto f = r.spawn([]() -> task<int> {
                    co_await yield();
                    co_return 7;
                }());
                int v = co_await std::move(f);
                co_return v * 2;
            }(rt)) == 14);
    // Held by the test until the awaiter is known to wait: the awaiter does not finish early.
    hand_gate gate;
    std::atomic<bool> parent_done{false};
    auto p = rt.spawn([&]() -> task<int> {
        auto f = rt.spawn([&]() -> task<int> { co_return co_await gate + 1; });  // kept alive
        int v = co_await std::move(f);
        parent_done = true;
        co_return v;
    });
    REQUIRE(gate.wait_suspended());
    REQUIRE_FALSE(parent_done.load());
    gate.resume_on(rt);
    REQUIRE(p.get() == 6);
    // Exceptions from a child run in place, before and after a suspension, reach the awaiter.
    auto thrower_at = [&](bool suspend_first) -> task<int> {
        auto f = rt.spawn([](bool s) -> task<int> {
            if (s) co_await yield();
            throw std::runtime_error("child");
        }(suspend_first));
        try {
            (void)co_await std::move(f);
        } catch (const std::runtime_error& e) {
            co_return std::string(e.what()) == "child" ? 1 : -1;
        }
        co_return 0;
    };
    REQUIRE(rt.block_on(thrower_at(false)) == 1);
    REQUIRE(rt.block_on(thrower_at(true)) == 1);
    // A child cancelled before it was taken back completes with cancelled_error, unrun.
    std::atomic<bool> ran{false};
    REQUIRE(rt.block_on([&]() -> task<int> {
                auto f = rt.spawn([&]() -> task<int> {
                    ran = true;
                    co_return 1;
                });
                f.cancel();
                try {
                    (void)co_await std::move(f);
                } catch (const std::system_error& e) {
                    co_return is_cancelled(e) ? 2 : -1;
                }
                co_return 0;
            }()) == 2);
    REQUIRE_FALSE(ran.load());
}

namespace {
// A value that counts the live copies of itself: a future's state that is never freed keeps
// its value (moved from, but alive) for ever, and one freed twice destroys it twice.
std::atomic<int> counted_live{0};
struct counted {
    int v = 0;
    explicit counted(int x) noexcept : v(x) { ++counted_live; }
    counted(counted&& o) noexcept : v(o.v) { ++counted_live; }
    counted& operator=(counted&&) = delete;
    ~counted() { --counted_live; }
};

task<counted> counted_fib(runtime& rt, int n) {
    if (n < 2) co_return counted(n);
    auto f = rt.spawn(counted_fib(rt, n - 1));
    counted y = co_await counted_fib(rt, n - 2);
    counted x = co_await std::move(f);  // taken back by its sole owner: a private completion
    co_return counted(x.v + y.v);
}

counted counted_fib_get(runtime& rt, int n) {
    if (n < 2) return counted(n);
    auto f = rt.spawn([&rt, n] { return counted_fib_get(rt, n - 1); });
    counted y = counted_fib_get(rt, n - 2);
    counted x = f.get();  // get() on a worker: taken back privately too
    return counted(x.v + y.v);
}
}  // namespace

TEST_CASE("coroutine: a child taken back by its future's sole owner is freed exactly once") {
    runtime rt(tp_test::workers(GENERATE(1, 2)));
    tp_test::watchdog dog("private take-back");
    counted_live = 0;
    // A state is freed by its last holder: a task run by another worker may still be between
    // its completion and its release when the awaiter has gone on, so wait for the count (a
    // leaked state never lets it reach 0: the deadline then fails the test with the count).
    auto require_none_live = [] {
        (void)tp_test::eventually([] { return counted_live.load() == 0; });
        REQUIRE(counted_live.load() == 0);
    };
    // Spawn + co_await (and spawn + get()) at once: nearly every child runs in place while its
    // future's owner is the only other holder; its state must still be freed, once.
    REQUIRE(rt.block_on(counted_fib(rt, 16)).v == 987);
    require_none_live();
    REQUIRE(rt.spawn([&] { return counted_fib_get(rt, 16).v; }).get() == 987);
    require_none_live();
    // An exception through the private path, before and after a suspension.
    for (bool suspend : {false, true}) {
        auto r = rt.block_on([](runtime& r, bool s) -> task<int> {
            auto f = r.spawn([](bool s2) -> task<counted> {
                counted keep(1);
                if (s2) co_await yield();
                throw std::runtime_error("child");
            }(s));
            try {
                (void)co_await std::move(f);
            } catch (const std::runtime_error&) {
                co_return 1;
            }
            co_return 0;
        }(rt, suspend));
        REQUIRE(r == 1);
        require_none_live();
    }
    // A second holder (an async_scope tracking the task) keeps the completion shared: the
    // scope's reference is released by its own notification, and the state freed once.
    {
        async_scope scope(rt);
        REQUIRE(rt.block_on([](runtime& r, async_scope& sc) -> task<int> {
                    auto f = sc.spawn([](runtime& r2) -> task<counted> {
                        co_return co_await counted_fib(r2, 8);
                    }(r));
                    counted x = co_await std::move(f);
                    co_return x.v;
                }(rt, scope)) == 21);
        rt.block_on([](async_scope& sc) -> task<void> { co_await sc.join(); }(scope));
    }
    require_none_live();
    // co_await of an lvalue future (not consumed: no private completion) and a plain wait().
    REQUIRE(rt.block_on([](runtime& r) -> task<int> {
                auto f = r.spawn(counted_fib(r, 10));
                counted x = co_await f;
                co_return x.v;
            }(rt)) == 55);
    require_none_live();
}
