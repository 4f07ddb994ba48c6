// test_parking.cpp — the idle/parking protocol (sched/src/idle.hpp, parker.hpp): no lost wake-up
// whichever way work arrives at a parked pool (from outside, from a worker's deque, from a
// worker's LIFO slot, a future completed from outside), and an idle runtime's workers stay
// parked. No sleeps: each test waits for the event, with a deadline that only fails a hang.
#include "test_hooks.hpp"
#include "thread_probe.hpp"

#include <catch2/catch.hpp>

#include <taskport/sched/poll_role.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

using namespace taskport;

namespace {

std::uint64_t parks(const runtime& rt) { return rt.stats().parks; }

using tp_test::pool_probe;

}  // namespace

TEST_CASE("parking: an outside thread posts one task and waits for it, over and over") {
    // Between iterations the poster blocks, so workers run out of work and park; every next
    // post must wake one. A lost wake-up leaves the task queued forever and the wait times out.
    const int rounds = static_cast<int>(tp_test::scaled(2000));
    for (std::size_t w : {1u, 2u, 4u}) {
        pool_probe probe;
        runtime rt(tp_test::workers(w));
        probe.capture();
        if (pool_probe::observable()) REQUIRE(probe.tids.size() >= w);
        tp_test::counter_latch done;
        for (int i = 0; i < rounds; ++i) {
            // Every 8th round, start from a pool that is entirely asleep.
            if (i % 8 == 0) REQUIRE(probe.wait_all_asleep());
            if (i % 2)
                rt.post([&] { done.arrive(); });
            else
                (void)rt.spawn([&] { done.arrive(); });
            INFO("workers " << w << ", round " << i);
            REQUIRE(done.wait_for(i + 1));
        }
        REQUIRE(rt.stats().parks >= 1);
        // tasks_run counts a task after it returns: the last one may still be finishing.
        REQUIRE(tp_test::eventually(
            [&] { return rt.stats().tasks_run >= static_cast<std::uint64_t>(rounds); }));
    }
}

TEST_CASE("parking: spawn().get() from outside, over and over, with two posting threads") {
    const int rounds = static_cast<int>(tp_test::scaled(1500));
    for (std::size_t w : {1u, 2u, 4u}) {
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("spawn/get loop");
        std::atomic<long> sum{0};
        auto poster = [&] {
            for (int i = 0; i < rounds; ++i) sum += rt.spawn([i] { return i; }).get();
        };
        std::thread other(poster);
        poster();
        other.join();
        REQUIRE(sum.load() == 2L * rounds * (rounds - 1) / 2);
    }
}

TEST_CASE("parking: work pushed by a busy worker wakes a parked one") {
    // Task A pushes B onto its own deque, then blocks its thread (not through taskport, so it
    // cannot run B itself) until B has run: only the other, parked, worker can run B.
    const int rounds = static_cast<int>(tp_test::scaled(1000));
    pool_probe probe;
    runtime rt(tp_test::workers(2));
    probe.capture();
    for (int i = 0; i < rounds; ++i) {
        // Start from a pool that is entirely asleep.
        REQUIRE(probe.wait_all_asleep());
        tp_test::gate b_ran;
        std::atomic<bool> ok{false};
        rt.post([&] {
            rt.post([&] { b_ran.open(); });
            ok = b_ran.wait();
        });
        INFO("round " << i);
        REQUIRE(b_ran.wait());
        // A's view: B ran while A held its worker.
        REQUIRE(tp_test::eventually([&] { return ok.load(); }));
    }
}

TEST_CASE("parking: a continuation in a busy worker's LIFO slot wakes a parked one") {
    // Completing a promise on a worker puts its continuation in that worker's LIFO slot; the
    // worker then blocks, so a parked worker must be woken and steal the slot.
    const int rounds = static_cast<int>(tp_test::scaled(1000));
    pool_probe probe;
    runtime rt(tp_test::workers(2));
    probe.capture();
    for (int i = 0; i < rounds; ++i) {
        if (i % 2 == 0) REQUIRE(probe.wait_all_asleep());
        tp_test::gate cont_ran;
        std::atomic<bool> ok{false};
        rt.post([&] {
            promise<int> p;  // continuations run on this runtime (created on its worker)
            auto f = p.get_future().then([&](int) { cont_ran.open(); });
            p.set_value(1);
            ok = cont_ran.wait();
        });
        INFO("round " << i);
        REQUIRE(cont_ran.wait());
        REQUIRE(tp_test::eventually([&] { return ok.load(); }));
    }
    REQUIRE(rt.stats().steals >= 1);
}

TEST_CASE("parking: a worker waiting on a future is woken by an outside completion") {
    // help_until parks the worker when it has nothing else to do; the completion must unpark it.
    const int rounds = static_cast<int>(tp_test::scaled(1500));
    for (std::size_t w : {1u, 2u}) {
        pool_probe probe;
        runtime rt(tp_test::workers(w));
        probe.capture();
        tp_test::watchdog dog("help_until wake-up");
        for (int i = 0; i < rounds; ++i) {
            promise<int> p;
            auto pf = p.get_future();
            tp_test::counter_latch waiting;
            auto f = rt.spawn([&] {
                waiting.arrive();
                return pf.get();
            });
            REQUIRE(waiting.wait_for(1));
            // Sometimes wait until the waiting worker (and every other) has really parked.
            if (i % 4 == 0) REQUIRE(probe.wait_all_asleep());
            p.set_value(i);
            REQUIRE(f.get() == i);
        }
    }
}

TEST_CASE("parking: an idle runtime's workers park and stay parked") {
    if (!pool_probe::observable())
        TP_SKIP("needs /proc/self/task to see that a worker sleeps in the kernel (Linux only)");
    const std::size_t n = 2;
    pool_probe probe;
    runtime rt(tp_test::workers(n));
    probe.capture();
    REQUIRE(probe.tids.size() >= n);

    // Nothing submitted: each worker searches, finds nothing, and parks exactly once.
    REQUIRE(tp_test::eventually([&] { return parks(rt) >= n; }));
    // And is really asleep in the kernel, not spinning.
    REQUIRE(probe.wait_all_asleep());
    auto s1 = rt.stats();
    REQUIRE(s1.parks == n);
    REQUIRE(s1.tasks_run == 0);
    REQUIRE(s1.wakeups == 0);
    // A parked worker stays parked: however long we look, nothing wakes it, it does not
    // re-park (a polling sleep would), and nothing runs.
    for (int i = 0; i < 20000; ++i) std::this_thread::yield();
    auto s2 = rt.stats();
    REQUIRE(s2.parks == n);
    REQUIRE(s2.wakeups == 0);
    REQUIRE(s2.tasks_run == 0);
    REQUIRE(probe.all_asleep());

    // One task wakes a worker, runs, and the pool goes back to sleep.
    tp_test::counter_latch done;
    rt.post([&] { done.arrive(); });
    REQUIRE(done.wait_for(1));
    REQUIRE(tp_test::eventually([&] { return rt.stats().tasks_run == 1; }));
    REQUIRE(tp_test::eventually([&] { return rt.stats().parks > n; }));
    auto s3 = rt.stats();
    REQUIRE(s3.wakeups >= 1);
    REQUIRE(s3.tasks_run == 1);
    REQUIRE(s3.tasks_spawned == 1);
    REQUIRE(s3.injector_depth == 0);
    REQUIRE(s3.worker_queue_depth.size() == n);
    REQUIRE(s3.workers == n);
}

// ---- a searching worker keeps its core ----

#if defined(__linux__)
namespace yields {
std::atomic<bool> counting{false};
std::atomic<std::uint64_t> by_workers{0};
}  // namespace yields

// Interposes on libc's sched_yield for this whole test binary (the executable's definition comes
// first for libtaskport and libstdc++'s std::this_thread::yield alike) and forwards to the
// kernel; while a test counts, it counts the calls made on a runtime's worker threads.
extern "C" int sched_yield() noexcept {
    if (yields::counting.load(std::memory_order_relaxed) && taskport::detail::current_executor())
        yields::by_workers.fetch_add(1, std::memory_order_relaxed);
    return static_cast<int>(::syscall(SYS_sched_yield));
}
#endif

// A worker that ran out of work searches for a few rounds before it parks, counted as searching,
// so producers skip their wake-ups for it (idle.hpp). It must keep its core meanwhile: a
// sched_yield gives the core to any runnable thread of the machine, and a CPU-bound one keeps it
// until the next scheduler tick (4 ms at HZ=250) while the searcher neither runs the work it was
// trusted with nor sleeps in the I/O poller (test_io_tcp's get()-read case: 3.7-7.2 s instead of
// 0.1 s beside two busy processes). Here each round posts one task from outside into a pool
// that sleeps entirely, so the woken worker (fed from outside: it lingers for the next post) and
// the successor it wakes search all their rounds and find nothing: 033a4b9 yielded in two of
// each search's rounds, at least 2 yields a round. Yields by a worker for another reason (a spin
// lock whose holder was preempted) are rare; the bound leaves room for them.
TEST_CASE("parking: a searching worker never yields its core") {
#if defined(__linux__)
    if (!pool_probe::observable())
        TP_SKIP("needs /proc/self/task to see that every worker sleeps (Linux only)");
    const int rounds = static_cast<int>(tp_test::scaled(200));
    pool_probe probe;
    runtime rt(tp_test::workers(2));
    probe.capture();
    REQUIRE(probe.tids.size() >= 2);
    yields::by_workers = 0;
    yields::counting = true;
    tp_test::counter_latch done;
    bool ok = true;
    for (int i = 0; i < rounds && ok; ++i) {
        // Posted into a pool entirely asleep, so the searches after it find nothing and run
        // all their rounds.
        ok = probe.wait_all_asleep();
        rt.post([&] { done.arrive(); });
        ok = ok && done.wait_for(i + 1);
    }
    yields::counting = false;
    REQUIRE(ok);
    const std::uint64_t n = yields::by_workers.load();
    INFO("sched_yield calls on worker threads over " << rounds << " outside-fed rounds: " << n);
    CHECK(n <= static_cast<std::uint64_t>(rounds / 20));
#else
    TP_SKIP("counts sched_yield by interposing on libc's (Linux only)");
#endif
}

// ---- a worker that leaves help_until with work it saw but did not take ----

namespace handoff {
std::atomic<bool> armed{false}, at_park{false}, go{false};
std::atomic<long> waiter{-1};                   // the worker held at its park
std::atomic<unsigned> top_sleepers{0};          // bit per worker asleep at top level
void park_enter(std::size_t w, bool top, bool searching) {
    if (top || !searching || !armed.exchange(false)) return;
    waiter = static_cast<long>(w);
    at_park = true;
    while (!go.load()) std::this_thread::yield();
}
void before_sleep(std::size_t w, bool top) {
    if (top) top_sleepers.fetch_or(1u << w);
}
}  // namespace handoff

// A worker waiting in get() (help_until) searches, finds nothing and goes to park. Held just
// there (a test hook) while still counted as searching: an outside post then skips its wake-up
// (a searcher will find it: idle.hpp's rule), and the awaited promise is set. The worker's
// park re-check sees the task and cancels, its wait is over, and it returns to its task, which
// waits for the posted task: only the other worker, asleep, can run it. Before the fix nobody
// woke it (the same hole as io_tcp's "a read found by a worker waiting in get()" with
// TASKPORT_WORKER_POLL=0, where the completion queue's push skipped its wake-up).
TEST_CASE("parking: work seen by a worker leaving help_until reaches a sleeping worker") {
    namespace H = handoff;
    tp_test::hook_scope h1(detail::test_hooks().park_enter, &H::park_enter);
    tp_test::hook_scope h2(detail::test_hooks().before_sleep, &H::before_sleep);
    for (int round = 0; round < 5; ++round) {
        H::at_park = false;
        H::go = false;
        H::waiter = -1;
        H::top_sleepers = 0;
        pool_probe probe;
        runtime rt(tp_test::workers(2));
        probe.capture();
        std::atomic<bool> posted_ran{false};
        promise<void> pr;
        future<void> f = pr.get_future();
        H::armed = true;
        auto t = rt.spawn([&] {
            f.get();
            while (!posted_ran.load()) std::this_thread::yield();
        });
        REQUIRE(tp_test::eventually([] { return H::at_park.load(); }));
        const unsigned other = 1u << (1 - H::waiter.load());
        // The other worker went to sleep at top level and is asleep in the kernel (the held one
        // spins in the hook, so a sleeping pool thread is the other one).
        REQUIRE(tp_test::eventually([&] {
            if ((H::top_sleepers.load() & other) == 0) return false;
            bool any_asleep = probe.tids.empty();
            for (int tid : probe.tids) any_asleep = any_asleep || tp_test::thread_state(tid) == 'S';
            return any_asleep;
        }));
        rt.post([&] { posted_ran = true; });
        pr.set_value();
        H::go = true;
        tp_test::watchdog dog("work seen by a worker leaving help_until");
        t.get();
        REQUIRE(posted_ran.load());
    }
}

// The poll role's stop() (reactor::shutdown) against an idle worker that takes the role back as
// soon as it lets it go: each interrupt ends the worker's poll, its search finds nothing and ends
// in one round (every other worker asleep), and it parks in the poller again, within a
// microsecond. stop() must end after that holder's current poll, not hope to find the role free
// between two of them (poll_role.hpp, invariant 4). Here on one thread, the interleaving fixed:
// the wake() that stop() calls is where the holder releases and retakes the role. Before the fix
// stop() only retried a CAS from `free` and looped for ever (here: until the holder gave up after
// 1000 wake-ups); under CPU contention test_io_tcp's shutdowns took 15-35 s each with echo13b's
// idle loop (fda80ad).
TEST_CASE("parking: the poll role's stop() ends while the holder keeps taking the role back") {
    using role_t = taskport::detail::poll_role;
    role_t role;
    auto take = [&] {
        std::uint32_t seen;
        return role.try_take(seen);
    };
    int wakes = 0;
    bool retook = false;
    constexpr int give_up = 1000;
    REQUIRE(take());
    role.stop(false, [&] {
        ++wakes;
        // The interrupt ends the holder's poll: it releases and, finding no work, takes the role
        // again at once (or tries to: a stop in progress must refuse it).
        role.release(role_t::role_held);
        if (wakes < give_up) retook = take() || retook;
    });
    INFO("stop() called wake() " << wakes << " times");
    CHECK(wakes == 1);
    CHECK_FALSE(retook);
    CHECK(role.load() == role_t::role_stopped);
    std::uint32_t seen = 0;
    CHECK_FALSE(role.try_take(seen));
    CHECK(seen == role_t::role_stopped);
}

// The same with the real shape: a thread looping in blocking worker polls (the idle worker that
// parks in the poller again as soon as its poll ends), whose cycle sleeps until interrupted, and
// stop() from another thread. It must end, and the worker's next poll must be refused.
TEST_CASE("parking: the poll role's stop() ends a worker's back-to-back blocking polls") {
    using role_t = taskport::detail::poll_role;
    tp_test::watchdog wd("poll role stop against back-to-back blocking polls");
    role_t role;
    const std::atomic<std::uint32_t> token{0};
    std::mutex m;
    std::condition_variable cv;
    unsigned interrupts = 0;  // guarded by m: the eventfd's count
    bool polling = false;     // guarded by m: the worker has held the role once
    std::atomic<int> polls{0};
    std::thread worker([&] {
        auto cycle = [&](bool block) -> std::size_t {
            std::unique_lock<std::mutex> lk(m);
            polling = true;
            cv.notify_all();
            const unsigned seen = interrupts;
            if (block) cv.wait(lk, [&] { return interrupts != seen; });  // epoll_wait(-1)
            return 0;
        };
        while (role.worker_poll(true, &token, cycle, taskport::detail::timed_spin{0}, [] {}))
            polls.fetch_add(1);
    });
    {
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return polling; });  // the worker holds the role, blocking
    }
    role.stop(false, [&] {
        {
            std::lock_guard<std::mutex> g(m);
            ++interrupts;
        }
        cv.notify_all();
    });
    worker.join();  // its last poll was refused: the role is stopped
    CHECK(role.load() == role_t::role_stopped);
    CHECK(polls.load() >= 1);
}
