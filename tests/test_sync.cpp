// test_sync.cpp — async_semaphore, async_mutex, async_event, latch, barrier: FIFO hand-off,
// cancellation and with_timeout of every waiting operation, exactly-once under a cancel racing
// a release, the blocking forms from outside threads (refused on a worker).
#include <catch2/catch.hpp>

#include "test_util.hpp"
#include "thread_probe.hpp"

#include <taskport/taskport.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using taskport::task;

namespace {

bool is_cancelled(const std::system_error& e) { return e.code() == std::errc::operation_canceled; }

}  // namespace

TEST_CASE("semaphore: FIFO hand-off, a large head request is not starved by small ones") {
    taskport::runtime rt({.workers = 2});
    taskport::async_semaphore sem(0);
    std::mutex mu;
    std::vector<int> order;
    auto waiter = [&](int id, std::size_t n) {
        return rt.spawn([&, id, n]() -> task<void> {
            co_await sem.acquire(n);
            std::lock_guard<std::mutex> g(mu);
            order.push_back(id);
        });
    };
    auto a = waiter(1, 3);
    tp_test::wait_until([&] { return sem.waiters() == 1; });
    auto b = waiter(2, 1);
    tp_test::wait_until([&] { return sem.waiters() == 2; });
    sem.release(1);  // covers b, but a is first: nobody gets it
    CHECK(sem.waiters() == 2);
    CHECK(!sem.try_acquire());  // no barging past the queue
    sem.release(2);  // a's 3
    a.get();
    CHECK(sem.waiters() == 1);
    sem.release(1);
    b.get();
    CHECK(order == std::vector<int>{1, 2});
    CHECK(sem.available() == 0);
}

TEST_CASE("semaphore: cancelled head waiter hands on what it was blocking") {
    taskport::runtime rt({.workers = 2});
    taskport::async_semaphore sem(1);
    auto big = rt.spawn([&]() -> task<void> { co_await sem.acquire(5); });
    tp_test::wait_until([&] { return sem.waiters() == 1; });
    auto small = rt.spawn([&]() -> task<void> { co_await sem.acquire(1); });
    tp_test::wait_until([&] { return sem.waiters() == 2; });
    big.cancel();
    try {
        big.get();
        FAIL("cancelled acquire returned");
    } catch (const std::system_error& e) {
        CHECK(is_cancelled(e));
    }
    small.get();  // the permit the big one blocked went on
    CHECK(sem.available() == 0);
    CHECK(sem.waiters() == 0);
}

TEST_CASE("semaphore: cancel vs release, both orders, the permit is taken exactly once") {
    taskport::runtime rt({.workers = 2});
    for (int release_first = 0; release_first < 2; ++release_first) {
        taskport::async_semaphore sem(0);
        auto f = rt.spawn([&]() -> task<int> {
            co_await sem.acquire();
            co_return 1;
        });
        tp_test::wait_until([&] { return sem.waiters() == 1; });
        if (release_first) {
            sem.release();
            f.cancel();  // too late: it already holds the permit (it may still throw at a later co_await: none)
            CHECK(f.get() == 1);
            CHECK(sem.available() == 0);
        } else {
            f.cancel();
            CHECK_THROWS_AS(f.get(), std::system_error);
            sem.release();
            CHECK(sem.available() == 1);  // the cancelled waiter did not take it
        }
        CHECK(sem.waiters() == 0);
    }
}

TEST_CASE("semaphore: stress, cancels racing releases: every permit accounted for") {
    taskport::runtime rt({.workers = 4});
    const int rounds = static_cast<int>(tp_test::scaled(200));
    const int n = 16;
    for (int r = 0; r < rounds; ++r) {
        taskport::async_semaphore sem(0);
        std::atomic<int> got{0};
        std::vector<taskport::future<void>> fs;
        for (int i = 0; i < n; ++i)
            fs.push_back(rt.spawn([&]() -> task<void> {
                co_await sem.acquire();
                got++;
            }));
        tp_test::wait_until([&] { return sem.waiters() == static_cast<std::size_t>(n); });
        std::thread canceller([&] {
            for (int i = 0; i < n; i += 2) fs[i].cancel();
        });
        for (int i = 0; i < n / 2; ++i) sem.release();
        canceller.join();
        sem.release(n / 2);  // n permits in all: enough for everyone not cancelled
        int cancelled = 0;
        for (auto& f : fs) {
            try {
                f.get();
            } catch (const std::system_error& e) {
                REQUIRE(is_cancelled(e));
                ++cancelled;
            }
        }
        // Every waiter either got a permit or was cancelled, never both, never neither, and no
        // permit was lost or made up.
        REQUIRE(sem.waiters() == 0);
        REQUIRE(got + cancelled == n);
        REQUIRE(static_cast<int>(sem.available()) == n - got);
    }
}

TEST_CASE("semaphore: with_timeout on acquire, and a permit guard") {
    taskport::runtime rt({.workers = 2});
    taskport::async_semaphore sem(0);
    auto f = rt.spawn(tp_test::times_out(20ms, sem.acquire()));
    CHECK(f.get());
    CHECK(sem.waiters() == 0);
    sem.release();
    CHECK(sem.available() == 1);
    // Acquired within the deadline: no time-out.
    auto g = rt.spawn([&]() -> task<std::size_t> {
        {
            taskport::semaphore_permit p = co_await sem.scoped_acquire();
            CHECK(sem.available() == 0);
            (void)p;
        }
        co_await taskport::with_timeout(10s, sem.acquire());
        co_return sem.available();
    });
    CHECK(g.get() == 0);
}

TEST_CASE("semaphore: blocking acquire from an outside thread; refused on a worker") {
    taskport::runtime rt({.workers = 2});
    taskport::async_semaphore sem(0);
    std::thread t([&] { sem.acquire_blocking(2); });
    tp_test::wait_until([&] { return sem.waiters() == 1; });
    sem.release(2);
    t.join();
    CHECK(sem.available() == 0);
    auto f = rt.spawn([&] { sem.acquire_blocking(); });
    try {
        f.get();
        FAIL("acquire_blocking on a worker did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::resource_deadlock_would_occur);
    }
}

TEST_CASE("mutex: mutual exclusion across suspension, FIFO, cancel and timeout") {
    taskport::runtime rt({.workers = 4});
    taskport::async_mutex m;
    long counter = 0;  // guarded by m only
    const int tasks = 8, iters = static_cast<int>(tp_test::scaled(2000));
    std::vector<taskport::future<void>> fs;
    for (int i = 0; i < tasks; ++i)
        fs.push_back(rt.spawn([&]() -> task<void> {
            for (int k = 0; k < iters; ++k) {
                auto g = co_await m.scoped_lock();
                long v = counter;
                if (k % 16 == 0) co_await taskport::yield();  // held across a suspension
                counter = v + 1;
            }
        }));
    for (auto& f : fs) f.get();
    CHECK(counter == static_cast<long>(tasks) * iters);
    CHECK(!m.is_locked());

    // FIFO and cancel of a waiter.
    REQUIRE(m.try_lock());
    std::vector<int> order;
    auto w1 = rt.spawn([&]() -> task<void> {
        co_await m.lock();
        order.push_back(1);
        m.unlock();
    });
    tp_test::wait_until([&] { return m.waiters() == 1; });
    auto w2 = rt.spawn([&]() -> task<void> {
        co_await m.lock();
        order.push_back(2);
        m.unlock();
    });
    tp_test::wait_until([&] { return m.waiters() == 2; });
    auto w3 = rt.spawn([&]() -> task<void> {
        co_await m.lock();
        order.push_back(3);
        m.unlock();
    });
    tp_test::wait_until([&] { return m.waiters() == 3; });
    w2.cancel();
    CHECK_THROWS_AS(w2.get(), std::system_error);
    CHECK(m.waiters() == 2);
    auto t = rt.spawn(tp_test::times_out(10ms, m.lock()));
    CHECK(t.get());
    m.unlock();
    w1.get();
    w3.get();
    CHECK(order == std::vector<int>{1, 3});
    CHECK(!m.is_locked());
    CHECK_THROWS_AS(m.unlock(), std::logic_error);
}

TEST_CASE("mutex: a waiter handed the lock by a task that then blocks its thread runs elsewhere") {
    // unlock() hands the lock to the waiter and schedules it in the unlocking worker's LIFO slot
    // (schedule_next). The unlocking task then blocks its thread (not through taskport) until the
    // waiter has run: only the other worker can run it, once the slot is stale. It must be awake
    // to do so: woken by the hand-off when it sleeps without a timeout (even rounds: the pool
    // asleep apart from the holder, itself asleep on a gate), or watching the slot
    // (lifo_watch.hpp). A hand-off that wakes nobody would hang here (the gate's deadline).
    const int rounds = static_cast<int>(tp_test::scaled(400));
    tp_test::pool_probe probe;
    taskport::runtime rt({.workers = 2});
    probe.capture();
    for (int i = 0; i < rounds; ++i) {
        taskport::async_mutex m;
        tp_test::gate go, waiter_ran;
        std::atomic<bool> holder_ok{false};
        REQUIRE(m.try_lock());
        rt.post([&] {
            const bool opened = go.wait();
            m.unlock();  // the waiter goes to this worker's LIFO slot
            holder_ok = opened && waiter_ran.wait();
        });
        auto w = rt.spawn([&]() -> task<void> {
            auto g = co_await m.scoped_lock();
            waiter_ran.open();
        });
        tp_test::wait_until([&] { return m.waiters() == 1; });
        if (i % 2 == 0) REQUIRE(probe.wait_all_asleep());
        go.open();
        INFO("round " << i);
        REQUIRE(waiter_ran.wait());
        w.get();
        REQUIRE(tp_test::eventually([&] { return holder_ok.load(); }));
    }
    CHECK(rt.stats().lifo_steals >= 1);
}

TEST_CASE("event: manual reset wakes all; auto reset one at a time, FIFO, stored signal") {
    taskport::runtime rt({.workers = 2});
    taskport::async_event ev;
    std::atomic<int> woke{0};
    std::vector<taskport::future<void>> fs;
    for (int i = 0; i < 5; ++i)
        fs.push_back(rt.spawn([&]() -> task<void> {
            co_await ev.wait();
            woke++;
        }));
    tp_test::wait_until([&] { return ev.waiters() == 5; });
    ev.set();
    for (auto& f : fs) f.get();
    CHECK(woke == 5);
    CHECK(ev.is_set());
    CHECK(ev.try_wait());
    ev.reset();
    CHECK(!ev.try_wait());

    taskport::async_event au(taskport::event_mode::auto_reset);
    au.set();  // stored for the next wait
    CHECK(au.try_wait());
    CHECK(!au.try_wait());
    std::vector<int> order;
    std::mutex mu;
    fs.clear();
    for (int i = 0; i < 3; ++i) {
        fs.push_back(rt.spawn([&, i]() -> task<void> {
            co_await au.wait();
            std::lock_guard<std::mutex> g(mu);
            order.push_back(i);
        }));
        tp_test::wait_until([&] { return au.waiters() == static_cast<std::size_t>(i + 1); });
    }
    au.set();
    fs[0].get();
    CHECK(au.waiters() == 2);
    CHECK(!au.is_set());
    fs[1].cancel();  // a cancelled waiter consumes no signal
    CHECK_THROWS_AS(fs[1].get(), std::system_error);
    au.set();
    fs[2].get();
    CHECK(order == std::vector<int>{0, 2});
    CHECK(!au.is_set());

    // notify_waiters wakes those waiting, stores nothing; with_timeout on wait.
    auto t = rt.spawn(tp_test::times_out(10ms, au.wait()));
    CHECK(t.get());
    au.notify_waiters();
    CHECK(!au.is_set());

    // Outside thread.
    std::thread th([&] { au.wait_blocking(); });
    tp_test::wait_until([&] { return au.waiters() == 1; });
    au.set();
    th.join();
}

TEST_CASE("latch and barrier for tasks") {
    taskport::runtime rt({.workers = 4});
    taskport::latch l(3);
    std::atomic<int> past{0};
    std::vector<taskport::future<void>> fs;
    for (int i = 0; i < 3; ++i)
        fs.push_back(rt.spawn([&]() -> task<void> {
            co_await l.arrive_and_wait();
            past++;
        }));
    for (auto& f : fs) f.get();
    CHECK(past == 3);
    CHECK(l.try_wait());
    CHECK_THROWS_AS(l.count_down(), std::invalid_argument);

    taskport::latch l2(1);
    auto c = rt.spawn([&]() -> task<void> { co_await l2.wait(); });
    tp_test::wait_until([&] { return l2.waiters() == 1; });
    c.cancel();
    CHECK_THROWS_AS(c.get(), std::system_error);
    std::thread th([&] { l2.wait_blocking(); });
    tp_test::wait_until([&] { return l2.waiters() == 1; });
    l2.count_down();
    th.join();

    const int parties = 4, phases = static_cast<int>(tp_test::scaled(200));
    taskport::barrier b(parties);
    std::atomic<int> leaders{0};
    std::vector<std::atomic<int>> reached(static_cast<std::size_t>(phases));
    std::atomic<bool> bad{false};
    fs.clear();
    for (int p = 0; p < parties; ++p)
        fs.push_back(rt.spawn([&]() -> task<void> {
            for (int ph = 0; ph < phases; ++ph) {
                reached[static_cast<std::size_t>(ph)]++;
                const bool leader = co_await b.arrive_and_wait();
                if (leader) leaders++;
                // Nobody passes phase ph before all arrived at it.
                if (reached[static_cast<std::size_t>(ph)].load() != parties) bad = true;
            }
        }));
    for (auto& f : fs) f.get();
    CHECK(!bad);
    CHECK(leaders == phases);

    // A cancelled waiter's arrival counts; with_timeout on arrive_and_wait.
    taskport::barrier b2(2);
    auto t = rt.spawn(tp_test::times_out(10ms, b2.arrive_and_wait()));
    CHECK(t.get());
    auto last = rt.spawn([&]() -> task<bool> { co_return co_await b2.arrive_and_wait(); });
    CHECK(last.get());  // completes the phase the timed-out arrival began
}

// The two waits the tests above leave out: a latch wait under with_timeout (times out, leaves no
// waiter behind, takes nothing from the count) and a barrier arrival cancelled while it waits
// (its arrival still counts: the phase completes for the others).
TEST_CASE("latch wait with_timeout; barrier arrive_and_wait cancelled") {
    taskport::runtime rt({.workers = 2});
    taskport::latch l(2);
    auto t = rt.spawn(tp_test::times_out(10ms, l.wait()));
    CHECK(t.get());
    CHECK(l.waiters() == 0);
    CHECK(!l.try_wait());
    auto w = rt.spawn([&]() -> task<void> { co_await l.wait(); });
    tp_test::wait_until([&] { return l.waiters() == 1; });
    l.count_down(2);  // the count was untouched by the timed-out wait: two arrivals release it
    CHECK_NOTHROW(w.get());

    taskport::barrier b(2);
    auto c = rt.spawn([&]() -> task<void> { (void)co_await b.arrive_and_wait(); });
    tp_test::wait_until([&] { return b.waiters() == 1; });
    c.cancel();
    try {
        c.get();
        FAIL("a cancelled arrive_and_wait returned");
    } catch (const std::system_error& e) {
        CHECK(is_cancelled(e));
    }
    CHECK(b.waiters() == 0);
    // Its arrival counted: the next one completes the phase, and leads it, without waiting.
    auto last = rt.spawn([&]() -> task<bool> { co_return co_await b.arrive_and_wait(); });
    CHECK(last.get());
}

// The window between a waiter registering its cancel hook and queueing: a cancel landing there
// finds the waiter not queued yet. It must still abort the wait (cancel_early), not be lost
// (the waiter would then queue and wait for ever despite the cancel).
namespace {
std::atomic<taskport::detail::sync_waiter*> in_window{nullptr};
taskport::async_semaphore* window_sem = nullptr;
void cancel_in_window(taskport::detail::sync_waiter* w, int phase) noexcept {
    if (phase != 1) return;
    in_window = w;
    w->scope->request_cancel();  // what future::cancel() does, from "another thread", right here
}
void release_in_window(taskport::detail::sync_waiter*, int phase) noexcept {
    if (phase == 1) window_sem->release();
}
}  // namespace

TEST_CASE("a cancel landing between hook registration and queueing is not lost") {
    taskport::runtime rt({.workers = 2});
    taskport::async_semaphore sem(0);
    taskport::detail::sync_before_queue_hook = &cancel_in_window;
    auto f = rt.spawn([&]() -> task<void> { co_await sem.acquire(); });
    const bool finished = tp_test::eventually([&] { return f.is_ready(); });
    taskport::detail::sync_before_queue_hook = nullptr;
    if (!finished) {
        sem.release();  // let the test end
        FAIL("the cancel that landed in the window was lost: the waiter queued and waited");
    }
    CHECK(in_window.load() != nullptr);
    try {
        f.get();
        FAIL("acquire returned");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::operation_canceled);
    }
    CHECK(sem.waiters() == 0);
    CHECK(sem.available() == 0);

    // A release landing in the same window: the waiter takes the permit without queueing.
    window_sem = &sem;
    taskport::detail::sync_before_queue_hook = &release_in_window;
    auto g = rt.spawn([&]() -> task<void> { co_await sem.acquire(); });
    const bool got = tp_test::eventually([&] { return g.is_ready(); });
    taskport::detail::sync_before_queue_hook = nullptr;
    REQUIRE(got);
    g.get();
    CHECK(sem.available() == 0);
    CHECK(sem.waiters() == 0);
}

// with_timeout starts its timer before the operation queues: an expiry landing before the
// waiter queues must find it (its primitive known from construction) and abort the wait
// (before: the waiter named its primitive only when queueing, and the expiry's withdraw read a
// null pointer: SIGSEGV in the channel time-out stress test).
namespace {
void wait_for_expiry_in_window(taskport::detail::sync_waiter* w, int phase) noexcept {
    // The expiry (on another worker) withdraws w while it is idle; wait for that here, as the
    // waiter begins to suspend.
    if (phase == 0)
        (void)tp_test::eventually([&] { return w->core && w->core->cancel_pending(w); });
}
}  // namespace

TEST_CASE("with_timeout: an expiry before the wait queues times it out, nothing taken") {
    taskport::runtime rt({.workers = 2});
    taskport::async_semaphore sem(0);
    taskport::detail::sync_before_queue_hook = &wait_for_expiry_in_window;
    auto f = rt.spawn(tp_test::times_out(0ms, sem.acquire()));
    const bool finished = tp_test::eventually([&] { return f.is_ready(); });
    taskport::detail::sync_before_queue_hook = nullptr;
    REQUIRE(finished);
    CHECK(f.get());
    CHECK(sem.waiters() == 0);
    sem.release();
    CHECK(sem.available() == 1);
}
