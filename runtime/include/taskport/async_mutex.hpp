// taskport/async_mutex.hpp — a mutex for tasks: co_await m.lock() / co_await m.scoped_lock().
//
// Waiting parks the task, never the worker; the holder may suspend while holding it (that is
// what it is for: a std::mutex held across a co_await would block a worker, and a lock taken
// on one thread may be released on another). Fairness: strict FIFO hand-off. unlock() passes
// the lock directly to the oldest waiter (it never becomes free in between), and try_lock()
// fails while anyone waits, so no barging caller can starve a waiter. A waiting lock() honours
// cancel() (cancelled_error) and with_timeout (timed_out), and then does not hold the lock.
// Not recursive: a task locking a mutex it holds waits for ever (as std::mutex is undefined).
// Invariant (under the lock): waiters queue only while locked_ is true.
#pragma once

#include <taskport/detail/sync_wait.hpp>

#include <stdexcept>
#include <utility>

namespace taskport {

class async_mutex;

// Owns a locked async_mutex; unlocks it when destroyed (or at unlock()).
class async_lock_guard {
public:
    async_lock_guard() noexcept = default;
    /// Adopts the lock on m (held by the caller).
    explicit async_lock_guard(async_mutex* m) noexcept : m_(m) {}
    /// Takes over o's lock; o owns nothing.
    async_lock_guard(async_lock_guard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    /// Unlocks what this guard holds, then takes over o's lock.
    async_lock_guard& operator=(async_lock_guard&& o) noexcept {
        if (this != &o) {
            unlock();
            m_ = std::exchange(o.m_, nullptr);
        }
        return *this;
    }
    ~async_lock_guard() { unlock(); }
    /// True while the guard holds the lock.
    bool owns_lock() const noexcept { return m_ != nullptr; }
    /// owns_lock().
    explicit operator bool() const noexcept { return owns_lock(); }
    /// Unlocks now (handing the lock to the oldest waiter, if any); the guard then owns nothing.
    inline void unlock() noexcept;

private:
    async_mutex* m_ = nullptr;
};

/// A mutex for tasks: waiting parks the task, the holder may co_await while holding it (see the
/// file comment). Strict FIFO hand-off; not recursive. Every member may be called from any thread.
class async_mutex : private detail::sync_core {
public:
    async_mutex() noexcept = default;

    struct lock_awaiter : detail::sync_waiter {
        explicit lock_awaiter(async_mutex* mx) noexcept : m(mx) { core = mx; }
        lock_awaiter(lock_awaiter&& o) noexcept : detail::sync_waiter(std::move(o)), m(o.m) {}
        bool await_ready() noexcept { return m->try_lock(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return m->suspend(
                this, [this] { return m->take_locked(); }, [this] { m->q_.push_back(this); });
        }
        void await_resume() const {
            if (aborted()) throw cancelled_error();
        }
        async_mutex* m;
    };
    struct scoped_awaiter : lock_awaiter {
        using lock_awaiter::lock_awaiter;
        async_lock_guard await_resume() const {
            lock_awaiter::await_resume();
            return async_lock_guard(m);
        }
    };

    // co_await lock(): this task holds the mutex until it calls unlock().
    lock_awaiter lock() noexcept { return lock_awaiter(this); }
    // co_await scoped_lock(): the same, as a guard that unlocks.
    scoped_awaiter scoped_lock() noexcept { return scoped_awaiter(this); }

    /// Takes the lock if it is free and nobody waits; never waits.
    bool try_lock() noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return take_locked();
    }

    // Hands the mutex to the oldest waiter, or frees it. Throws std::logic_error when the mutex
    // is not locked.
    void unlock() {
        detail::wake_list wake;
        std::lock_guard<detail::spin_lock> g(lock_);
        if (!locked_) throw std::logic_error("taskport::async_mutex::unlock: the mutex is not locked");
        if (detail::sync_waiter* w = q_.pop_front()) {
            w->state = detail::sync_waiter::st::woken;  // locked_ stays true: it is w's now
            wake.add(w);
        } else {
            locked_ = false;
        }
    }

    /// A snapshot: whether the mutex is held now. For tests and monitoring.
    bool is_locked() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return locked_;
    }
    // A snapshot: tasks waiting now. For tests and monitoring.
    std::size_t waiters() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return q_.size();
    }

private:
    bool take_locked() noexcept {
        if (locked_) return false;
        locked_ = true;
        return true;
    }
    void unlink(detail::sync_waiter* w) noexcept override { q_.remove(w); }

    detail::wait_queue q_;  // under lock_
    bool locked_ = false;   // under lock_
};

inline void async_lock_guard::unlock() noexcept {
    if (m_) std::exchange(m_, nullptr)->unlock();  // held by this guard: cannot throw
}

}  // namespace taskport
