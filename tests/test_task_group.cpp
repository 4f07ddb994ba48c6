// test_task_group.cpp — task_group: nesting inside tasks, exceptions rethrown by wait(), reuse
// after wait, waiting from an outside thread, cancel, and the destructor's wait.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace taskport;

namespace {

long fib_seq(int n) { return n < 2 ? n : fib_seq(n - 1) + fib_seq(n - 2); }

// One group per call, run inside tasks of the parent's group: groups nest, and wait() on a
// worker runs other tasks instead of blocking it.
long fib_group(runtime& rt, int n) {
    if (n < 2) return n;
    long a = 0, b = 0;
    task_group g(rt);
    g.run([&] { a = fib_group(rt, n - 1); });
    g.run([&] { b = fib_group(rt, n - 2); });
    g.wait();
    return a + b;
}

}  // namespace

TEST_CASE("task_group: recursive fib nests groups inside tasks") {
    const int n = tp_test::tsan ? 16 : 22;
    for (std::size_t w : {1u, 2u, 4u}) {
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("task_group fib");
        // From a worker (the whole tree inside tasks)...
        REQUIRE(rt.spawn([&] { return fib_group(rt, n); }).get() == fib_seq(n));
        // ...and from this (outside) thread at the top.
        REQUIRE(fib_group(rt, n) == fib_seq(n));
    }
}

TEST_CASE("task_group: wait() rethrows a task's exception, and the group is reusable") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("task_group exceptions");
    task_group g(rt);
    std::atomic<int> ran{0};
    for (int i = 0; i < 100; ++i)
        g.run([&, i] {
            ran++;
            if (i == 37) throw std::runtime_error("task 37 failed");
        });
    REQUIRE_THROWS_WITH(g.wait(), "task 37 failed");
    REQUIRE(ran.load() >= 1);
    REQUIRE(ran.load() <= 100);

    // After wait() the error is consumed: reuse runs everything and waits cleanly.
    ran = 0;
    for (int i = 0; i < 100; ++i) g.run([&] { ran++; });
    REQUIRE_NOTHROW(g.wait());
    REQUIRE(ran.load() == 100);

    // Exceptions from nested tasks of the group (run from inside a group task).
    g.run([&] {
        g.run([] { throw std::logic_error("nested"); });
    });
    REQUIRE_THROWS_AS(g.wait(), std::logic_error);
    REQUIRE_NOTHROW(g.wait());  // nothing pending, nothing to rethrow
}

TEST_CASE("task_group: reuse after wait, many rounds, same group and fresh groups") {
    // A group reused (or a fresh one at the same address) right after wait() returns: the
    // previous round's last task may still be waking waiters by that address when the next
    // round's waiter registers. That stale wake-up must not cost the next round its real one.
    const int rounds = static_cast<int>(tp_test::scaled(10000));
    for (std::size_t w : {1u, 2u, 4u}) {
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("task_group reuse");
        std::atomic<long> ran{0};
        {
            task_group g(rt);
            for (int r = 0; r < rounds; ++r) {
                g.run([&] { ran++; });
                g.run([&] { ran++; });
                g.wait();
                REQUIRE(ran.load() == 2L * (r + 1));
            }
        }
        ran = 0;
        for (int r = 0; r < rounds; ++r) {
            task_group g(rt);
            g.run([&] { ran++; });
            g.wait();
        }
        REQUIRE(ran.load() == rounds);
        // The same from inside a task (the waiter helps instead of blocking).
        ran = 0;
        rt.spawn([&] {
              for (int r = 0; r < rounds; ++r) {
                  task_group g(rt);
                  g.run([&] { ran++; });
                  g.run([&] { ran++; });
                  g.wait();
              }
          }).get();
        REQUIRE(ran.load() == 2L * rounds);
    }
}

TEST_CASE("task_group: wait from an outside thread while tasks block on it") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("task_group outside wait");
    tp_test::gate go;
    std::atomic<int> ran{0};
    task_group g(rt);
    for (int i = 0; i < 4; ++i)
        g.run([&] {
            go.wait();
            ran++;
        });
    // Another outside thread waits on the group while the tasks are still blocked.
    std::atomic<bool> waited{false};
    std::thread waiter([&] {
        g.wait();
        waited = true;
    });
    REQUIRE_FALSE(waited.load());
    go.open();
    waiter.join();
    REQUIRE(waited.load());
    REQUIRE(ran.load() == 4);
}

TEST_CASE("task_group: cancel skips tasks that have not started") {
    runtime rt(tp_test::workers(1));
    tp_test::watchdog dog("task_group cancel");
    tp_test::gate go;
    std::atomic<int> ran{0};
    task_group g(rt);
    // The only worker is held by a task outside the group, so the group's tasks wait in queue.
    rt.post([&] { go.wait(); });
    for (int i = 0; i < 50; ++i) g.run([&] { ran++; });
    g.cancel();
    REQUIRE(g.is_cancelling());
    go.open();
    REQUIRE_NOTHROW(g.wait());
    REQUIRE(ran.load() == 0);
    REQUIRE_FALSE(g.is_cancelling());  // wait() resets it: the group is reusable
    g.run([&] { ran++; });
    g.wait();
    REQUIRE(ran.load() == 1);
}

TEST_CASE("task_group: the destructor waits for running tasks") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("task_group destructor");
    std::atomic<int> ran{0};
    {
        task_group g(rt);
        for (int i = 0; i < 1000; ++i) g.run([&] { ran++; });
    }
    REQUIRE(ran.load() == 1000);
}

// Any number of threads may wait on one group: outside threads blocking in wait() and worker
// tasks helping in wait(), mixed. Each waiter is registered (the library's wait_registered_hook
// counts it) before the gate lets the group's last task finish; a lost waiter hangs, and the
// watchdog turns that into a failure with a message.
namespace {
std::atomic<int> group_waits{0};
void count_group_wait(const void*) noexcept { group_waits.fetch_add(1); }
struct count_group_waits {
    count_group_waits() {
        group_waits.store(0);
        detail::wait_registered_hook.store(&count_group_wait);
    }
    ~count_group_waits() { detail::wait_registered_hook.store(nullptr); }
};
}  // namespace

TEST_CASE("task_group: two outside threads and a worker task wait on one group; all wake") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog dog("several waiters on one task_group");
    const int rounds = static_cast<int>(tp_test::scaled(20));
    for (int round = 0; round < rounds; ++round) {
        task_group g(rt);
        tp_test::gate go;
        std::atomic<int> ran{0};
        g.run([&] {
            go.wait();  // holds the group open (and this worker) until every waiter waits
            ran.fetch_add(1);
        });
        count_group_waits hook;  // counts registrations from here on (none but the group's)
        std::atomic<int> woke{0};
        std::thread a([&] {
            g.wait();
            woke.fetch_add(1);
        });
        std::thread b([&] {
            g.wait();
            woke.fetch_add(1);
        });
        REQUIRE(tp_test::eventually([] { return group_waits.load() >= 2; }));
        std::atomic<bool> task_woke{false};
        rt.post([&] {  // on the other worker: help_until, registered with the group
            g.wait();
            woke.fetch_add(1);
            task_woke = true;  // the task's last touch of this round's locals
        });
        REQUIRE(tp_test::eventually([] { return group_waits.load() >= 3; }));
        go.open();
        a.join();
        b.join();
        REQUIRE(tp_test::eventually([&] { return task_woke.load(); }));
        REQUIRE(woke.load() == 3);
        REQUIRE(ran.load() == 1);
    }
}
