// taskport/detail/sync_wait.hpp — the one waiting shape every async primitive shares
// (async_mutex, async_semaphore, async_event, latch, barrier, channel, async_scope::join).
//
// A primitive (a sync_core) keeps its state and an intrusive FIFO of sync_waiters under one
// small spin lock. A waiter lives in the awaiter, i.e. in the waiting coroutine's frame (or on
// an outside thread's stack for the blocking forms), so waiting allocates nothing. Tokio's
// batch_semaphore has the same shape (STYLE.md: "Waiters in an intrusive list").
//
// Invariants (all under the core's lock):
// - a waiter is in the queue iff its state is `queued`;
// - it leaves `queued` exactly once: to `woken` (the primitive handed it what it waited for: a
//   permit, the lock, a value, end-of-stream) or to `aborted` (a cancel: its task's cancel(),
//   with_timeout's timer). Whoever makes that transition owns the one resumption;
// - resumption never runs under the lock: the transition puts the waiter on a local wake list,
//   and after unlocking the waker schedules each one as a task (its executor's schedule_next /
//   schedule_accepted), or, for a waiter with no executor (an outside thread), runs its run_fn.
// Cancellation: before queueing, the waiter registers itself as its task's cancel hook
// (future.hpp's set_cancel_hook) and only then takes the core's lock, so a cancel arriving
// between the two finds it `idle` and marks it `cancel_early`, which the queueing step sees
// under the lock. The resumed waiter unregisters the hook (which waits out a hook call in
// progress) before its coroutine runs, so the hook never touches a dead frame. with_timeout
// (io/timer.hpp) withdraws the waiter when its timer expires, which may happen before the
// waiter has even begun to suspend: so an awaiter names its core when constructed, and the
// expiry, like an early cancel, finds it `idle` and leaves it `cancel_early`.
// Lock order: a task's hook lock, then the core's lock; never the other way round
// (async_scope adds: the scope's lock, then its children's hook locks).
#pragma once

#include <taskport/future.hpp>
#include <taskport/sched/executor.hpp>
#include <taskport/sched/spin_lock.hpp>
#include <taskport/sched/task_node.hpp>
#include <taskport/task.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport::detail {

class sync_core;
struct sync_waiter;

// Test hook, off (null) in normal use: called twice by a waiter about to queue, where it is
// `idle` and a cancel or a with_timeout expiry must be noted (cancel_early), not lost: with
// phase 0 as suspending begins (with_timeout's timer already runs), with phase 1 after it
// registered its cancel hook, before it takes the primitive's lock. A test lands a cancel, an
// expiry or a release exactly there.
inline std::atomic<void (*)(sync_waiter*, int phase) noexcept> sync_before_queue_hook{nullptr};

/// Test hook, off (null) in normal use: called by a blocking form whose deadline has passed, just
/// before it withdraws its waiter (still queued, or already being handed what it waited for). A
/// test completes the operation exactly there: the hand-off must win, nothing lost.
inline std::atomic<void (*)(sync_waiter*) noexcept> sync_blocking_deadline_hook{nullptr};

struct sync_waiter : task_node, cancel_hook {
    enum class st : unsigned char { idle, queued, woken, aborted };

    sync_waiter() noexcept : task_node(&sync_waiter::on_resume), cancel_hook(&sync_waiter::on_cancel) {}
    // Before it starts only (an awaiter passed by value to with_timeout).
    sync_waiter(sync_waiter&& o) noexcept
        : task_node(o.run_fn), cancel_hook(o.fn), core(o.core), n(o.n), user(o.user) {}
    sync_waiter& operator=(sync_waiter&&) = delete;

    // The task's side of the cancel hook: registered before queueing (false: the task was
    // already cancelled; then state is `aborted` and nothing is queued).
    bool enter_scope() noexcept {
        if (scope && !scope->set_cancel_hook(this)) {
            scope = nullptr;
            state = st::aborted;
            return false;
        }
        return true;
    }
    void leave_scope() noexcept {
        if (scope) scope->clear_cancel_hook(this);
        scope = nullptr;
    }
    bool aborted() const noexcept { return state == st::aborted; }

    template <class P>
    void capture(std::coroutine_handle<P> caller) noexcept {
        h = caller;
        ex = current_executor();
        if constexpr (std::is_base_of_v<promise_base, P>) scope = caller.promise().cancel_scope;
        // A task's coroutine resumed off the workers (by an outside thread completing a promise)
        // still resumes on its runtime: run inline by a canceller, it would unregister its
        // cancel hook under the hook lock that canceller holds.
        if (!ex && scope) ex = scope->exec();
    }

    static void on_resume(task_node* t) noexcept {
        auto* w = static_cast<sync_waiter*>(t);
        w->leave_scope();
        resume_coroutine(w->h);
    }
    static void on_cancel(cancel_hook* c) noexcept;  // below: withdraws it from its core

    sync_waiter* prev = nullptr;  // queue links, under the core's lock
    sync_waiter* next_w = nullptr;
    sync_core* core = nullptr;    // the primitive it waits on (set by the awaiter's constructor)
    std::size_t n = 1;            // what it asks for (semaphore permits)
    void* user = nullptr;         // free for with_timeout (io/timer.hpp)
    void* payload = nullptr;      // the primitive's: where a channel's value is taken or put
    unsigned char which = 0;      // the primitive's: which of its queues holds it
    unsigned char status = 0;     // the primitive's: how it was woken (a channel: closed)
    std::coroutine_handle<> h;    // the waiting coroutine
    executor* ex = nullptr;       // where it resumes; null: run_fn inline on the waker
    state_base* scope = nullptr;  // the spawned task whose cancel() applies
    st state = st::idle;          // under the core's lock, see the file comment
    bool cancel_early = false;    // a cancel came while idle (under the core's lock)
};

// A FIFO of waiters, oldest first. Not thread-safe: its core's lock guards it.
class wait_queue {
public:
    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }
    sync_waiter* front() const noexcept { return head_; }
    void push_back(sync_waiter* w) noexcept {
        w->next_w = nullptr;
        w->prev = tail_;
        if (tail_)
            tail_->next_w = w;
        else
            head_ = w;
        tail_ = w;
        ++size_;
    }
    void remove(sync_waiter* w) noexcept {
        --size_;
        (w->prev ? w->prev->next_w : head_) = w->next_w;
        (w->next_w ? w->next_w->prev : tail_) = w->prev;
        w->prev = w->next_w = nullptr;
    }
    sync_waiter* pop_front() noexcept {
        sync_waiter* w = head_;
        if (w) remove(w);
        return w;
    }

private:
    sync_waiter* head_ = nullptr;
    sync_waiter* tail_ = nullptr;
    std::size_t size_ = 0;
};

// Waiters taken off a queue under the lock, resumed after it (linked through task_node::next,
// free while the waiter is not in a scheduler queue).
class wake_list {
public:
    wake_list() noexcept = default;
    wake_list(const wake_list&) = delete;
    wake_list& operator=(const wake_list&) = delete;
    ~wake_list() { run(); }

    void add(sync_waiter* w) noexcept {
        w->next = nullptr;
        if (tail_)
            tail_->next = w;
        else
            head_ = w;
        tail_ = w;
    }
    // Resumes each waiter, in the order added, as a task on its executor; call after unlocking.
    // The first goes to the waker's LIFO slot (schedule_next) when it is alone. Inline when empty
    // (the common case: every channel operation's awaiter runs its list, mostly empty).
    void run() noexcept {
        if (head_) run_all();
    }

private:
    void run_all() noexcept {
        task_node* t = head_;
        const bool single = t && !t->next;
        head_ = tail_ = nullptr;
        while (t) {
            task_node* const nx = t->next;  // read before t may be resumed and freed
            auto* w = static_cast<sync_waiter*>(t);
            if (!w->ex)
                w->run();
            else if (single)
                w->ex->schedule_next(w);
            else
                w->ex->schedule_accepted(w);
            t = nx;
        }
    }

    task_node* head_ = nullptr;
    task_node* tail_ = nullptr;
};

// What every primitive derives from: its lock, and what a cancelled waiter's withdrawal does.
class sync_core {
public:
    sync_core() = default;
    sync_core(const sync_core&) = delete;
    sync_core& operator=(const sync_core&) = delete;

    // From any thread, any number of times: a queued waiter leaves its queue and resumes with
    // `aborted` (its await_resume throws cancelled_error; with_timeout's, timed_out); an idle
    // one is marked so that it does not queue; a woken or aborted one is left alone.
    void withdraw(sync_waiter* w) noexcept {
        wake_list wake;  // destroyed (run) after the unlock below
        lock_.lock();
        if (w->state == sync_waiter::st::queued) {
            unlink(w);
            w->state = sync_waiter::st::aborted;
            wake.add(w);
            after_withdraw(wake);
        } else if (w->state == sync_waiter::st::idle) {
            w->cancel_early = true;
        }
        lock_.unlock();
    }

    // Whether a cancel came for w while it was not queued yet (tests: see sync_before_queue_hook).
    bool cancel_pending(const sync_waiter* w) const noexcept {
        lock_.lock();
        const bool p = w->cancel_early;
        lock_.unlock();
        return p;
    }

protected:
    ~sync_core() = default;

    // Under the lock: remove w from whichever queue of this primitive holds it.
    virtual void unlink(sync_waiter* w) noexcept = 0;
    // Under the lock, after a waiter was withdrawn: a primitive whose head waiter may have been
    // blocking others (a semaphore's large request) hands on what is now available.
    virtual void after_withdraw(wake_list&) noexcept {}

    // The common suspend step (from await_suspend, with the caller captured in w). try_now
    // (under the lock) completes the operation at once and returns true, or returns false;
    // enqueue (under the lock) puts w in the right queue. Returns whether the caller suspends.
    template <class TryNow, class Enqueue>
    // An awaiter names its core when constructed, before with_timeout may start a timer whose
    // expiry withdraws it (possibly before this runs); the blocking forms name it here.
    bool suspend(sync_waiter* w, TryNow&& try_now, Enqueue&& enqueue) noexcept {
        if (auto hook = sync_before_queue_hook.load(std::memory_order_relaxed)) hook(w, 0);
        if (!w->core) w->core = this;
        if (!w->enter_scope()) return false;  // cancelled before: await_resume throws
        if (auto hook = sync_before_queue_hook.load(std::memory_order_relaxed)) hook(w, 1);
        lock_.lock();
#ifndef TASKPORT_PLANT_SYNC_LOST_CANCEL  // test only: forget a cancel that came while idle
        if (w->cancel_early) {
            w->state = sync_waiter::st::aborted;
            lock_.unlock();
            w->leave_scope();
            return false;
        }
#endif
        if (try_now()) {
            w->state = sync_waiter::st::woken;
            lock_.unlock();
            w->leave_scope();
            return false;
        }
        w->state = sync_waiter::st::queued;
        enqueue();
        lock_.unlock();  // w may be resumed elsewhere from here: not touched again
        return true;
    }

    mutable spin_lock lock_;
};

inline void sync_waiter::on_cancel(cancel_hook* c) noexcept {
    auto* w = static_cast<sync_waiter*>(c);
    w->core->withdraw(w);
}

// The blocking forms (send_blocking, ...) are for outside threads: on a worker, blocking would
// stall the scheduler (and could deadlock it), so they refuse with this error.
inline void refuse_on_worker(const char* what) {
    executor* ex = current_executor();
    if (ex && ex->in_worker()) {
        std::string msg(what);
        msg.append(" called on a worker thread (it would block the worker); "
                   "co_await the asynchronous form instead");
        throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur), msg);
    }
}

// A waiter for an outside thread: the waker's run_fn sets `done` under the mutex and notifies,
// so the blocked thread cannot leave (and free the waiter) before the waker is finished with it.
struct blocking_waiter : sync_waiter {
    blocking_waiter() noexcept { run_fn = &blocking_waiter::on_wake; }
    static void on_wake(task_node* t) noexcept {
        auto* self = static_cast<blocking_waiter*>(t);
        std::lock_guard<std::mutex> g(self->mu);
        self->done = true;
        self->cv.notify_one();
    }
    void wait() {
        std::unique_lock<std::mutex> g(mu);
        cv.wait(g, [&] { return done; });
    }
    /// Waits until woken or `deadline`; false at the deadline. The waiter may then still be
    /// queued: its core must withdraw() it, and wait() must follow (see wait_blocking_until).
    bool wait_until(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock<std::mutex> g(mu);
        return cv.wait_until(g, deadline, [&] { return done; });
    }
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
};

/// A blocking form's wait with a deadline (w was queued by core.suspend()). At the deadline, w
/// is withdrawn; then, whether the withdrawal or a waker settled it first, waits until that one
/// is done with w. Afterwards w.aborted() says it timed out (and the operation did not happen).
inline void wait_blocking_until(sync_core& core, blocking_waiter& w,
                                std::chrono::steady_clock::time_point deadline) {
    if (w.wait_until(deadline)) return;
    if (auto hook = sync_blocking_deadline_hook.load(std::memory_order_relaxed)) hook(&w);
    core.withdraw(&w);
    w.wait();
}

/// What a blocking form throws when its deadline passed first.
inline std::system_error blocking_timed_out(const char* what) {
    return std::system_error(std::make_error_code(std::errc::timed_out), what);
}

/// The deadline `d` from now, rounded up to the clock's tick; saturating (future.hpp's
/// saturating_deadline): a `d` too long for the clock, such as hours::max(), is the clock's
/// last time point instead of wrapping into the past, and a zero or negative `d` is now.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
    return saturating_deadline(d);
}

}  // namespace taskport::detail
