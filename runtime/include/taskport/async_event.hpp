// taskport/async_event.hpp — an event tasks wait for: manual reset or auto reset.
//
// manual_reset: set() releases every waiter and stays set (later wait()s pass at once) until
// reset(). auto_reset: set() releases exactly one waiter, the oldest; with nobody waiting it
// stores the signal (one, however many set()s) for the next wait(). That is Tokio's Notify:
// auto_reset set() is notify_one() (a stored permit when nobody waits); notify_waiters()
// here is Notify::notify_waiters() (wakes those waiting now, stores nothing) in either mode.
// Fairness: FIFO; the oldest waiter gets an auto-reset signal first. A waiting wait() honours
// cancel() (cancelled_error) and with_timeout (timed_out); a cancelled waiter never consumes
// an auto-reset signal (the hand-off and the cancel are settled under one lock: exactly one
// wins). Invariant (under the lock): while an auto-reset event has waiters, it is not set.
#pragma once

#include <taskport/detail/sync_wait.hpp>

namespace taskport {

/// manual_reset: set() releases every waiter and stays set until reset(). auto_reset: set()
/// releases the oldest waiter, or stores one signal for the next wait().
enum class event_mode { manual_reset, auto_reset };

/// An event tasks wait for (see the file comment; Tokio's Notify in auto_reset mode). Every member
/// may be called from any thread.
class async_event : private detail::sync_core {
public:
    /// An event in `mode`, set at once when initially_set. Never throws.
    explicit async_event(event_mode mode = event_mode::manual_reset, bool initially_set = false) noexcept
        : mode_(mode), set_(initially_set) {}

    struct wait_awaiter : detail::sync_waiter {
        explicit wait_awaiter(async_event* e) noexcept : ev(e) { core = e; }
        bool await_ready() noexcept { return ev->try_wait(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return ev->suspend(
                this, [this] { return ev->take_locked(); }, [this] { ev->q_.push_back(this); });
        }
        void await_resume() const {
            if (aborted()) throw cancelled_error();
        }
        async_event* ev;
    };

    // co_await wait(): returns once the event is (or becomes) set; auto_reset consumes it.
    wait_awaiter wait() noexcept { return wait_awaiter(this); }

    // Passes if set (auto_reset: consuming it); never waits.
    bool try_wait() noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return take_locked();
    }

    // From an outside thread: blocks until set. On a worker it throws (co_await wait()).
    void wait_blocking() {
        detail::refuse_on_worker("taskport::async_event::wait_blocking");
        detail::blocking_waiter w;
        if (suspend(&w, [this] { return take_locked(); }, [&] { q_.push_back(&w); })) w.wait();
    }

    /// manual_reset: releases every waiter and stays set. auto_reset: releases the oldest waiter, or
    /// stores one signal when nobody waits. Any thread.
    void set() noexcept {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        if (mode_ == event_mode::manual_reset) {
            set_ = true;
            wake_all(wake);
        } else if (detail::sync_waiter* w = q_.pop_front()) {
            w->state = detail::sync_waiter::st::woken;
            wake.add(w);
        } else {
            set_ = true;
        }
    }
    /// Clears a stored signal (manual_reset: later waits wait again). Any thread.
    void reset() noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        set_ = false;
    }
    // Wakes every task waiting now; stores nothing (Notify::notify_waiters).
    void notify_waiters() noexcept {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        wake_all(wake);
    }
    /// A snapshot: whether the event is set now. For tests and monitoring.
    bool is_set() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return set_;
    }

    // A snapshot: tasks (and threads) waiting now. For tests and monitoring.
    std::size_t waiters() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return q_.size();
    }

private:
    bool take_locked() noexcept {
        if (!set_) return false;
        if (mode_ == event_mode::auto_reset) set_ = false;
        return true;
    }
    void wake_all(detail::wake_list& wake) noexcept {
        while (detail::sync_waiter* w = q_.pop_front()) {
            w->state = detail::sync_waiter::st::woken;
            wake.add(w);
        }
    }
    void unlink(detail::sync_waiter* w) noexcept override { q_.remove(w); }

    const event_mode mode_;
    detail::wait_queue q_;  // under lock_
    bool set_;              // under lock_
};

}  // namespace taskport
