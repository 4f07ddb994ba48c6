// taskport/barrier.hpp — a reusable barrier for tasks (std::barrier for coroutines).
//
// Each phase waits for `expected` arrivals: co_await arrive_and_wait() parks the task until
// the phase's last arrival, which does not wait, resumes every waiter of the phase (in arrival
// order) and starts the next phase. It returns true to exactly one task per phase, the last to
// arrive (the "leader"). arrive_and_drop() arrives and lowers `expected` for later phases.
// A waiting arrive_and_wait() honours cancel() (cancelled_error) and with_timeout (timed_out);
// its arrival still counts (as in std::barrier, an arrival is not taken back), so the phase
// completes for the others. One that is cancelled before it arrives does not arrive.
// Fairness: a phase's last arrival releases all of that phase's waiters at once, resumed in
// arrival order; arrivals for the next phase wait for it, whoever is resumed first.
// Invariant (under the lock): 0 < remaining_ <= expected_ between phases.
#pragma once

#include <taskport/detail/sync_wait.hpp>

#include <cstddef>
#include <stdexcept>
#include <utility>

namespace taskport {

/// A reusable barrier for tasks (std::barrier for coroutines; see the file comment). Every member
/// may be called from any thread.
class barrier : private detail::sync_core {
public:
    /// Each phase waits for `expected` arrivals. Throws std::invalid_argument when expected < 1.
    explicit barrier(std::ptrdiff_t expected) : expected_(expected), remaining_(expected) {
        if (expected <= 0) throw std::invalid_argument("taskport::barrier: count must be positive");
    }

    struct arrive_awaiter : detail::sync_waiter {
        explicit arrive_awaiter(barrier* b) noexcept : br(b) { core = b; }
        // Before it starts only (with_timeout takes it by value).
        arrive_awaiter(arrive_awaiter&& o) noexcept : detail::sync_waiter(std::move(o)), br(o.br) {}
        bool await_ready() const noexcept { return false; }  // arrives under the lock, below
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return br->suspend(
                this, [this] { return leader = br->arrive_locked(1, wake); },
                [this] { br->q_.push_back(this); });
        }
        bool await_resume() {
            wake.run();  // the leader resumes the phase's waiters (after the lock)
            if (aborted()) throw cancelled_error();
            return leader;
        }
        barrier* br;
        detail::wake_list wake;  // the leader's: the waiters of the phase it completed
        bool leader = false;
    };

    /// co_await arrive_and_wait(): arrives and waits for the phase's last arrival; true for exactly
    /// one task per phase (the last to arrive). Honours cancel() and with_timeout; the arrival counts
    /// either way.
    arrive_awaiter arrive_and_wait() noexcept { return arrive_awaiter(this); }

    // Arrives without waiting, and leaves: later phases expect one arrival fewer.
    void arrive_and_drop() {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        if (expected_ == 0) throw std::logic_error("taskport::barrier::arrive_and_drop: no participant left");
        --expected_;
        arrive_locked(1, wake);
    }

    // A snapshot: tasks (and threads) waiting now. For tests and monitoring.
    std::size_t waiters() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return q_.size();
    }

private:
    // Under the lock. True when this arrival completed the phase (its waiters are in wake).
    bool arrive_locked(std::ptrdiff_t n, detail::wake_list& wake) noexcept {
        remaining_ -= n;
        if (remaining_ > 0) return false;
        while (detail::sync_waiter* w = q_.pop_front()) {
            w->state = detail::sync_waiter::st::woken;
            wake.add(w);
        }
        remaining_ = expected_ > 0 ? expected_ : 1;
        return true;
    }
    void unlink(detail::sync_waiter* w) noexcept override { q_.remove(w); }

    detail::wait_queue q_;        // under lock_
    std::ptrdiff_t expected_;     // under lock_
    std::ptrdiff_t remaining_;    // under lock_
};

}  // namespace taskport
