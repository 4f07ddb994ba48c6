// test_fork.cpp — fork_join (taskport/fork.hpp): child-first fork/join with continuation
// stealing. Results for deep and wide recursion and nested forks, a continuation stolen by the
// other worker (forced: the child holds its worker until the continuation has run elsewhere),
// a join that must wait and is resumed by the last child, a child taking back a continuation
// pushed by a later fork, exceptions at the join, cancellation, the tbb_arena executor and a
// thread that is no worker.
#include "test_util.hpp"

#include <taskport/fork.hpp>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace taskport;

namespace {

long fib_expected(int n) {
    long a = 0, b = 1;
    for (int i = 0; i < n; ++i) {
        long c = a + b;
        a = b;
        b = c;
    }
    return a;
}

task<long> fib(int n) {
    if (n < 2) co_return n;
    long a = 0, b = 0;
    fork_join fj;
    co_await fj.fork(a, fib(n - 1));
    co_await fj.call(b, fib(n - 2));
    co_await fj.join();
    co_return a + b;
}

// Both children forked (two continuations per level), the second by an lvalue slot.
task<long> fib2(int n) {
    if (n < 2) co_return n;
    long r[2] = {0, 0};
    fork_join fj;
    co_await fj.fork(r[0], fib2(n - 1));
    co_await fj.fork(r[1], fib2(n - 2));
    co_await fj.join();
    co_return r[0] + r[1];
}

// Waits (not sleeping) for flag with the hang deadline; false when it never came.
bool spin_until(const std::atomic<bool>& flag) {
    return tp_test::eventually([&] { return flag.load(std::memory_order_acquire); });
}

}  // namespace

TEST_CASE("fork_join: fib is correct on 1, 2 and 4 workers", "[fork]") {
    const int n = tp_test::tsan ? 16 : 22;
    for (std::size_t workers : {1u, 2u, 4u}) {
        runtime rt(runtime_options{.workers = workers});
        tp_test::watchdog wd("fork fib");
        REQUIRE(rt.block_on(fib(n)) == fib_expected(n));
        REQUIRE(rt.block_on(fib2(n)) == fib_expected(n));
    }
}

TEST_CASE("fork_join: deep recursion, a chain of forks", "[fork]") {
    // A chain of depth d: each level forks the next and calls nothing (stack stays flat: the
    // child runs by symmetric transfer and comes back the same way).
    struct chain {
        static task<long> down(int d) {
            if (d == 0) co_return 0;
            long below = 0;
            fork_join fj;
            co_await fj.fork(below, down(d - 1));
            co_await fj.join();
            co_return below + 1;
        }
    };
    const int depth = static_cast<int>(tp_test::scaled(100000));
    runtime rt(runtime_options{.workers = 2});
    tp_test::watchdog wd("fork chain");
    REQUIRE(rt.block_on(chain::down(depth)) == depth);
}

TEST_CASE("fork_join: wide rounds, one fork_join reused", "[fork]") {
    struct wide {
        static task<int> leaf(int i) { co_return i; }
        static task<long> run(int width, int rounds) {
            std::vector<int> slot(static_cast<std::size_t>(width));
            long total = 0;
            fork_join fj;
            for (int r = 0; r < rounds; ++r) {
                for (int i = 0; i < width; ++i) co_await fj.fork(slot[static_cast<std::size_t>(i)], leaf(i + r));
                co_await fj.join();
                for (int v : slot) total += v;
            }
            co_return total;
        }
    };
    const int width = static_cast<int>(tp_test::scaled(20000));
    const int rounds = 3;
    long want = 0;
    for (int r = 0; r < rounds; ++r)
        for (int i = 0; i < width; ++i) want += i + r;
    for (std::size_t workers : {1u, 2u}) {
        runtime rt(runtime_options{.workers = workers});
        tp_test::watchdog wd("fork wide");
        REQUIRE(rt.block_on(wide::run(width, rounds)) == want);
    }
}

TEST_CASE("fork_join: a continuation stolen by the other worker; the join waits for the child",
          "[fork]") {
    // Worker A runs the child, which holds A (spinning, not suspending) until the parent's
    // continuation has run on worker B: only a steal can do that. The parent then queues a
    // marker on B's own deque and goes to its join; B runs the marker only once the parent has
    // suspended there (A, spinning, steals nothing), and only then does the child end: it cannot
    // take the continuation back, and as the last child it resumes the parent, on A.
    struct steal {
        std::atomic<bool> cont_ran{false}, marker_ran{false};
        std::thread::id child_thread, cont_thread, after_join_thread;
        bool child_saw_steal = false, child_saw_marker = false;

        task<int> child() {
            child_thread = std::this_thread::get_id();
            child_saw_steal = spin_until(cont_ran);
            child_saw_marker = spin_until(marker_ran);
            co_return 7;
        }
        task<int> parent(runtime& rt) {
            int x = 0;
            fork_join fj;
            co_await fj.fork(x, child());
            cont_thread = std::this_thread::get_id();
            cont_ran.store(true, std::memory_order_release);
            rt.post([this] { marker_ran.store(true, std::memory_order_release); });
            co_await fj.join();
            after_join_thread = std::this_thread::get_id();
            co_return x + 1;
        }
    };
    runtime rt(runtime_options{.workers = 2});
    tp_test::watchdog wd("fork steal");
    for (int round = 0; round < 20; ++round) {
        steal s;
        REQUIRE(rt.block_on(s.parent(rt)) == 8);
        REQUIRE(s.child_saw_steal);
        REQUIRE(s.child_saw_marker);
        REQUIRE(s.cont_thread != s.child_thread);        // stolen
        REQUIRE(s.after_join_thread == s.child_thread);  // resumed by the last child
    }
    REQUIRE(rt.stats().steals > 0);
}

TEST_CASE("fork_join: a stolen continuation reaches its join after the child ended", "[fork]") {
    // As above, but the parent waits (on B) until the child has ended before its join: the
    // child's decrement is not the last, and the join goes on at once on B.
    struct steal {
        std::atomic<bool> cont_ran{false}, child_ending{false};
        std::thread::id cont_thread, after_join_thread;
        bool ok = false;
        task<int> child() {
            ok = spin_until(cont_ran);
            child_ending.store(true, std::memory_order_release);
            co_return 5;
        }
        task<int> parent() {
            int x = 0;
            fork_join fj;
            co_await fj.fork(x, child());
            cont_thread = std::this_thread::get_id();
            cont_ran.store(true, std::memory_order_release);
            (void)spin_until(child_ending);
            co_await fj.join();
            after_join_thread = std::this_thread::get_id();
            co_return x;
        }
    };
    runtime rt(runtime_options{.workers = 2});
    tp_test::watchdog wd("fork steal 2");
    for (int round = 0; round < 20; ++round) {
        steal s;
        REQUIRE(rt.block_on(s.parent()) == 5);
        REQUIRE(s.ok);
        // The child's last step (its decrement) may come just after child_ending: either it or
        // the join is last, and the parent goes on on B or on A; the value is right either way.
    }
}

TEST_CASE("fork_join: a suspended child; the next child's continuation taken back by it",
          "[fork]") {
    // One worker, so the order is fixed. child1 suspends on ev1: the worker's loop runs the
    // parent's continuation (a steal, counted). The parent forks child2, which wakes child1 and
    // suspends on ev2: child1 runs next (the LIFO slot), ends, and takes back the continuation
    // that child2's fork pushed. The parent wakes child2 and joins: child2 is still to end, so
    // the join waits, and child2, ending, resumes it.
    struct s {
        async_event ev1, ev2;
        std::vector<int> order;
        task<int> child1() {
            co_await ev1.wait();
            order.push_back(1);
            co_return 10;
        }
        task<int> child2() {
            ev1.set();
            co_await ev2.wait();
            order.push_back(2);
            co_return 20;
        }
        task<int> parent() {
            int a = 0, b = 0;
            fork_join fj;
            co_await fj.fork(a, child1());
            order.push_back(0);
            co_await fj.fork(b, child2());
            order.push_back(3);
            ev2.set();
            co_await fj.join();
            order.push_back(4);
            co_return a + b;
        }
    };
    runtime rt(runtime_options{.workers = 1});
    tp_test::watchdog wd("fork suspended child");
    s x;
    REQUIRE(rt.block_on(x.parent()) == 30);
    REQUIRE(x.order == std::vector<int>{0, 1, 3, 2, 4});
}

TEST_CASE("fork_join: nested fork_joins and many rounds on 2 workers", "[fork]") {
    struct nest {
        static task<std::int64_t> sum(int lo, int hi) {  // [lo, hi), split in four (64-bit: Windows' long is 32)
            if (hi - lo <= 4) {
                std::int64_t s = 0;
                for (int i = lo; i < hi; ++i) s += i;
                co_return s;
            }
            const int q = (hi - lo) / 4;
            std::int64_t r[4] = {};
            fork_join fj;
            co_await fj.fork(r[0], sum(lo, lo + q));
            co_await fj.fork(r[1], sum(lo + q, lo + 2 * q));
            co_await fj.fork(r[2], sum(lo + 2 * q, lo + 3 * q));
            co_await fj.call(r[3], sum(lo + 3 * q, hi));
            co_await fj.join();
            co_return r[0] + r[1] + r[2] + r[3];
        }
    };
    const int n = static_cast<int>(tp_test::scaled(200000));
    runtime rt(runtime_options{.workers = 2});
    tp_test::watchdog wd("fork nested");
    for (int k = 0; k < 5; ++k) REQUIRE(rt.block_on(nest::sum(0, n)) == static_cast<std::int64_t>(n) * (n - 1) / 2);
}

TEST_CASE("fork_join: exceptions reach the join, the first one wins", "[fork]") {
    struct ex {
        static task<int> ok(int v) { co_return v; }
        static task<int> fail(const char* what) {
            throw std::runtime_error(what);
            co_return 0;
        }
        static task<void> fail_void() {
            throw std::logic_error("void child");
            co_return;
        }
        // Two failing forks among good ones (one worker: the first forked ends first).
        static task<std::string> two(int& good) {
            int a = 0, b = 0, c = 0, d = 0;
            fork_join fj;
            co_await fj.fork(a, ok(1));
            co_await fj.fork(b, fail("first"));
            co_await fj.fork(c, ok(3));
            co_await fj.fork(d, fail("second"));
            try {
                co_await fj.join();
            } catch (const std::runtime_error& e) {
                good = a + c;
                co_return e.what();
            }
            co_return "no exception";
        }
        // A called child's exception waits for the join too; the fork_join is usable after.
        static task<int> called() {
            int a = 0, b = 0;
            fork_join fj;
            co_await fj.fork(a, ok(1));
            co_await fj.call(fail_void());
            bool threw = false;
            try {
                co_await fj.join();
            } catch (const std::logic_error&) {
                threw = true;
            }
            if (!threw) co_return -1;
            co_await fj.fork(b, ok(41));
            co_await fj.join();
            co_return a + b;
        }
        static task<int> invalid() {
            task<int> t = ok(1);
            task<int> moved = std::move(t);
            int a = 0, b = 0;
            fork_join fj;
            co_await fj.fork(a, std::move(t));  // moved-from: no_state at the join
            co_await fj.fork(b, std::move(moved));
            try {
                co_await fj.join();
            } catch (const std::future_error& e) {
                co_return e.code() == std::future_errc::no_state ? b : -2;
            }
            co_return -1;
        }
    };
    {
        runtime rt(runtime_options{.workers = 1});
        tp_test::watchdog wd("fork exceptions");
        int good = 0;
        REQUIRE(rt.block_on(ex::two(good)) == "first");
        REQUIRE(good == 4);
        REQUIRE(rt.block_on(ex::called()) == 42);
        REQUIRE(rt.block_on(ex::invalid()) == 1);
    }
    {
        runtime rt(runtime_options{.workers = 2});
        tp_test::watchdog wd("fork exceptions 2");
        for (int i = 0; i < 50; ++i) {
            int good = 0;
            const std::string w = rt.block_on(ex::two(good));
            REQUIRE((w == "first" || w == "second"));
            REQUIRE(good == 4);
            REQUIRE(rt.block_on(ex::called()) == 42);
        }
    }
}

TEST_CASE("fork_join: an exception from a child whose continuation was stolen", "[fork]") {
    struct s {
        std::atomic<bool> cont_ran{false};
        std::thread::id child_thread, cont_thread;
        task<int> child() {
            child_thread = std::this_thread::get_id();
            (void)spin_until(cont_ran);
            throw std::runtime_error("stolen child failed");
            co_return 0;
        }
        task<int> parent() {
            int x = 0;
            fork_join fj;
            co_await fj.fork(x, child());
            cont_thread = std::this_thread::get_id();
            cont_ran.store(true, std::memory_order_release);
            co_await fj.join();
            co_return x;
        }
    };
    runtime rt(runtime_options{.workers = 2});
    tp_test::watchdog wd("fork stolen exception");
    s x;
    REQUIRE_THROWS_WITH(rt.block_on(x.parent()), "stolen child failed");
    REQUIRE(x.cont_thread != x.child_thread);
}

TEST_CASE("fork_join: the parent's cancel() reaches forked children", "[fork]") {
    // Children wait on an event that is never set; cancelling the spawned root makes their
    // waits throw cancelled_error, the join rethrows it, and the root's future reports it.
    // Forks made after the cancel start no child (and go on without growing the stack).
    struct s {
        async_event never;
        std::atomic<int> started{0}, waiting{0};
        task<int> child() {
            started.fetch_add(1);
            waiting.fetch_add(1);
            co_await never.wait();
            co_return 1;
        }
        task<int> parent(int n) {
            std::vector<int> r(static_cast<std::size_t>(n));
            fork_join fj;
            for (int i = 0; i < n; ++i) co_await fj.fork(r[static_cast<std::size_t>(i)], child());
            co_await fj.join();
            co_return 0;
        }
        std::atomic<bool> late_running{false};
        const long refused = tp_test::scaled(400000);
        task<int> late(int& after) {  // forks once cancelled: nothing starts
            int a = 0;
            fork_join fj;
            late_running.store(true);
            bool cancelled = false;
            while (!cancelled) cancelled = co_await this_task_cancelled();
            const int before = started.load();
            // Many refused forks: each goes on at once, without growing the stack.
            for (long i = 0; i < refused; ++i) co_await fj.fork(a, child());
            after = started.load() - before;
            co_await fj.join();
            co_return a;
        }
    };
    for (std::size_t workers : {1u, 2u}) {
        runtime rt(runtime_options{.workers = workers});
        tp_test::watchdog wd("fork cancel");
        s x;
        auto f = rt.spawn(x.parent(8));
        tp_test::wait_until([&] { return x.waiting.load() == 8; });
        f.cancel();
        REQUIRE_THROWS_WITH(f.get(), Catch::Contains("cancel"));

        int after = -1;
        auto g = rt.spawn(x.late(after));
        tp_test::wait_until([&] { return x.late_running.load(); });
        g.cancel();
        REQUIRE_THROWS_WITH(g.get(), Catch::Contains("cancel"));
        REQUIRE(after == 0);
    }
}

#if TASKPORT_TEST_HAVE_TBB
TEST_CASE("fork_join: on the tbb_arena executor (continuations always run by the arena)", "[fork]") {
    runtime rt(runtime_options{.workers = 2, .scheduler = scheduler_kind::tbb_arena});
    tp_test::watchdog wd("fork tbb");
    const int n = tp_test::tsan ? 14 : 18;
    REQUIRE(rt.block_on(fib(n)) == fib_expected(n));
    REQUIRE(rt.block_on(fib2(n)) == fib_expected(n));
}
#endif

TEST_CASE("fork_join: on a thread that is no worker, fork runs the child inline", "[fork]") {
    // The coroutine is resumed by hand on the test thread: no executor, so nothing is pushed
    // and each child runs to its end before the parent goes on.
    task<long> t = fib2(15);
    auto h = t.release();
    h.resume();
    REQUIRE(h.done());
    REQUIRE(h.promise().take() == fib_expected(15));
    h.destroy();
}
