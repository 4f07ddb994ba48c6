// taskport/latch.hpp — a single-use countdown tasks wait on (std::latch for coroutines).
//
// count_down(n) lowers the count; co_await wait() parks the task until it reaches zero, then
// every waiter resumes (in arrival order) and later waits pass at once. co_await
// arrive_and_wait(n) is count_down(n) then wait(). Counting below zero is a caller's bug:
// std::invalid_argument, and the count is left as it was. A waiting wait() honours cancel()
// (cancelled_error) and with_timeout (timed_out); an arrive_and_wait() so interrupted has
// already counted down (an arrival is not taken back, as in std::latch).
// Fairness: the count reaching zero releases every waiter at once, resumed in arrival order.
// Invariant (under the lock): waiters queue only while count_ > 0.
#pragma once

#include <taskport/detail/sync_wait.hpp>

#include <cstddef>
#include <stdexcept>

namespace taskport {

/// A single-use countdown tasks wait on (std::latch for coroutines; see the file comment). Every
/// member may be called from any thread.
class latch : private detail::sync_core {
public:
    /// A latch counting down from expected. Throws std::invalid_argument when expected < 0.
    explicit latch(std::ptrdiff_t expected) : count_(expected) {
        if (expected < 0) throw std::invalid_argument("taskport::latch: negative count");
    }

    struct wait_awaiter : detail::sync_waiter {
        wait_awaiter(latch* l, std::ptrdiff_t arrive) noexcept : lt(l), arrive_n(arrive) { core = l; }
        bool await_ready() {
            if (arrive_n) lt->count_down(arrive_n);
            arrive_n = 0;
            return lt->try_wait();
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return lt->suspend(
                this, [this] { return lt->count_ == 0; }, [this] { lt->q_.push_back(this); });
        }
        void await_resume() const {
            if (aborted()) throw cancelled_error();
        }
        latch* lt;
        std::ptrdiff_t arrive_n;
    };

    /// Lowers the count by n; at zero every waiter resumes. Throws std::invalid_argument (count
    /// unchanged) when n < 0 or the count would go below zero.
    void count_down(std::ptrdiff_t n = 1) {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        if (n < 0 || n > count_)
            throw std::invalid_argument("taskport::latch::count_down: below zero (or negative)");
        count_ -= n;
        if (count_ == 0)
            while (detail::sync_waiter* w = q_.pop_front()) {
                w->state = detail::sync_waiter::st::woken;
                wake.add(w);
            }
    }
    /// True once the count is zero; never waits.
    bool try_wait() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return count_ == 0;
    }
    /// co_await wait(): until the count is zero. Honours cancel() and with_timeout.
    wait_awaiter wait() noexcept { return wait_awaiter(this, 0); }
    /// co_await arrive_and_wait(n): count_down(n), then wait(). An interrupted wait has already
    /// counted down.
    wait_awaiter arrive_and_wait(std::ptrdiff_t n = 1) noexcept { return wait_awaiter(this, n); }

    // From an outside thread: blocks until zero. On a worker it throws (co_await wait()).
    void wait_blocking() {
        detail::refuse_on_worker("taskport::latch::wait_blocking");
        detail::blocking_waiter w;
        if (suspend(&w, [this] { return count_ == 0; }, [&] { q_.push_back(&w); })) w.wait();
    }

    // A snapshot: tasks (and threads) waiting now. For tests and monitoring.
    std::size_t waiters() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return q_.size();
    }

private:
    void unlink(detail::sync_waiter* w) noexcept override { q_.remove(w); }

    detail::wait_queue q_;   // under lock_
    std::ptrdiff_t count_;   // under lock_
};

}  // namespace taskport
