// taskport/async_semaphore.hpp — a counting semaphore for tasks (Tokio's Semaphore).
//
// co_await sem.acquire(n) parks the task (never a worker thread) until n permits are its;
// release(n) returns them. Fairness: strict FIFO hand-off. release() gives permits directly to
// the oldest waiter (and the next, while what is free covers each one's whole request), so they
// are already that waiter's when it resumes; try_acquire() and a new acquire() succeed at once
// only while nobody waits, so a stream of small requests never starves a large one queued
// before them (the head waiter blocks those behind it, as in Tokio's batch_semaphore).
// Cancellation: a waiting acquire() honours its task's cancel() (throws cancelled_error) and
// with_timeout (throws timed_out); it then holds no permit, and permits it was blocking (as the
// head waiter) go on to the waiters behind it. Exactly once: a waiter is either handed its
// permits or aborted, never both (detail/sync_wait.hpp).
// Invariant (under the lock): the head waiter, if any, asks for more than available_.
#pragma once

#include <taskport/detail/sync_wait.hpp>

#include <cstddef>
#include <limits>
#include <stdexcept>
#include <utility>

namespace taskport {

class async_semaphore;

// Holds permits of a semaphore and gives them back when destroyed (co_await scoped_acquire()).
class semaphore_permit {
public:
    semaphore_permit() noexcept = default;
    /// Adopts n permits of s (already acquired by the caller).
    semaphore_permit(async_semaphore* s, std::size_t n) noexcept : s_(s), n_(n) {}
    /// Takes over o's permits; o holds none.
    semaphore_permit(semaphore_permit&& o) noexcept : s_(std::exchange(o.s_, nullptr)), n_(o.n_) {}
    /// Releases what this permit holds, then takes over o's permits.
    semaphore_permit& operator=(semaphore_permit&& o) noexcept {
        if (this != &o) {
            release();
            s_ = std::exchange(o.s_, nullptr);
            n_ = o.n_;
        }
        return *this;
    }
    ~semaphore_permit() { release(); }
    /// True while the permit holds permits.
    explicit operator bool() const noexcept { return s_ != nullptr; }
    /// How many permits it holds (0 once moved from).
    std::size_t count() const noexcept { return s_ ? n_ : 0; }
    inline void release() noexcept;  // gives the permits back now (idempotent)

private:
    async_semaphore* s_ = nullptr;
    std::size_t n_ = 0;
};

/// A counting semaphore for tasks (Tokio's Semaphore; see the file comment). Strict FIFO
/// hand-off. Every member may be called from any thread.
class async_semaphore : private detail::sync_core {
public:
    /// A semaphore with `permits` free permits. Never throws.
    explicit async_semaphore(std::size_t permits) noexcept : available_(permits) {}

    struct acquire_awaiter : detail::sync_waiter {
        acquire_awaiter(async_semaphore* s, std::size_t k) noexcept : sem(s) {
            n = k;
            core = s;
        }
        acquire_awaiter(acquire_awaiter&& o) noexcept : detail::sync_waiter(std::move(o)), sem(o.sem) {}
        bool await_ready() noexcept { return sem->try_acquire(n); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return sem->suspend(
                this, [this] { return sem->take_locked(n); }, [this] { sem->q_.push_back(this); });
        }
        void await_resume() const {
            if (aborted()) throw cancelled_error();
        }
        async_semaphore* sem;
    };
    struct scoped_awaiter : acquire_awaiter {
        using acquire_awaiter::acquire_awaiter;
        semaphore_permit await_resume() const {
            acquire_awaiter::await_resume();
            return semaphore_permit(sem, n);
        }
    };

    // co_await acquire(n): waits until n permits are this task's (FIFO, see the file comment).
    acquire_awaiter acquire(std::size_t n = 1) noexcept { return acquire_awaiter(this, n); }
    // co_await scoped_acquire(n): the same, as a semaphore_permit that releases them.
    scoped_awaiter scoped_acquire(std::size_t n = 1) noexcept { return scoped_awaiter(this, n); }

    // Takes n permits if they are free and nobody waits; never waits.
    bool try_acquire(std::size_t n = 1) noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return take_locked(n);
    }

    // From an outside thread: blocks until n permits are this thread's. On a worker it throws
    // (co_await acquire() there).
    void acquire_blocking(std::size_t n = 1) {
        detail::refuse_on_worker("taskport::async_semaphore::acquire_blocking");
        detail::blocking_waiter w;
        w.n = n;
        if (suspend(&w, [&] { return take_locked(n); }, [&] { q_.push_back(&w); })) w.wait();
    }

    // Returns n permits, handing them to the oldest waiters first. Throws std::overflow_error
    // (and changes nothing) if the count would overflow.
    void release(std::size_t n = 1) {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        if (n > std::numeric_limits<std::size_t>::max() - available_)
            throw std::overflow_error("taskport::async_semaphore::release: too many permits");
        available_ += n;
        grant(wake);
    }

    // Snapshots: free permits, and tasks (or threads) waiting, now.
    std::size_t available() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return available_;
    }
    /// A snapshot: tasks (and threads) waiting now. For tests and monitoring.
    std::size_t waiters() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return q_.size();
    }

private:
    friend class semaphore_permit;

    bool take_locked(std::size_t n) noexcept {
        if (!q_.empty() || available_ < n) return false;
        available_ -= n;
        return true;
    }
    void grant(detail::wake_list& wake) noexcept {
        while (!q_.empty() && q_.front()->n <= available_) {
            detail::sync_waiter* w = q_.pop_front();
            available_ -= w->n;
            w->state = detail::sync_waiter::st::woken;
            wake.add(w);
        }
    }
    void unlink(detail::sync_waiter* w) noexcept override { q_.remove(w); }
    void after_withdraw(detail::wake_list& wake) noexcept override { grant(wake); }

    detail::wait_queue q_;   // under lock_
    std::size_t available_;  // under lock_
};

inline void semaphore_permit::release() noexcept {
    if (s_) std::exchange(s_, nullptr)->release(n_);  // cannot overflow: these were taken
}

}  // namespace taskport
