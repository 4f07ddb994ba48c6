// taskport/async_scope.hpp — structured concurrency: tasks spawned into a scope, joined and
// cancelled together.
//
// scope.spawn(f) runs f (a callable, or one returning task<T>) on the scope's runtime like
// runtime::spawn, and returns its future as usual (dropping it is fine: the scope keeps track).
// co_await scope.join() waits until every task spawned into the scope so far, and any they
// spawn into it meanwhile, has finished, then rethrows the first exception one of them ended
// with (cancelled_error from the scope's own cancel() excepted). scope.cancel() cancels every
// task of the scope (each stops at its next co_await; pending I/O and sync waits abort) and
// every task spawned into it afterwards.
// Cancellation reaches down: a task cancelled while it waits in join() cancels its scope, keeps
// waiting until the scope's tasks have finished (they may reference its frame), then throws
// cancelled_error. with_timeout(d, scope.join()) stops waiting after d (timed_out) without
// cancelling anything. The destructor cancels what still runs and waits for it (on a worker
// it runs other tasks meanwhile), so no task of the scope outlives it.
// std::stop_token interop: a scope built with a stop_token is cancelled when a stop is
// requested on it; get_stop_token() is requested when the scope is cancelled (hand it to code
// that polls std::stop_token).
// Fairness: join() waiters are all released together when the scope's last task finishes,
// resumed in arrival order; a joiner arriving while the scope is empty passes at once.
// A task must not join a scope it belongs to (it would wait for itself).
// Invariant (under the lock): live_ counts the children linked in the list; join waiters
// queue only while live_ > 0. Lock order: a task's cancel-hook lock, then the scope's lock,
// then a child's cancel-hook lock (cancel() cancels children under the scope's lock).
#pragma once

#include <taskport/detail/sync_wait.hpp>
#include <taskport/runtime.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <stop_token>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport {

/// Structured concurrency: tasks spawned into the scope are joined and cancelled together (see
/// the file comment). Every member may be called from any thread; the destructor cancels and
/// waits for the tasks still running.
class async_scope : private detail::sync_core {
public:
    /// A scope whose tasks run on rt.
    explicit async_scope(runtime& rt) noexcept : rt_(rt) {}
    // Cancelled when a stop is requested on st (at once if it already was).
    async_scope(runtime& rt, std::stop_token st) : rt_(rt) { stop_cb_.emplace(std::move(st), canceller{this}); }
    async_scope(const async_scope&) = delete;
    async_scope& operator=(const async_scope&) = delete;

    // Cancels the tasks still running and waits for them (helping on a worker).
    ~async_scope() {
        stop_cb_.reset();
        if (!empty()) {
            cancel();
            join_wait();
        }
    }

    // Runs f as a task of this scope (see runtime::spawn). Throws what runtime::spawn throws
    // (runtime_closed after shutdown), and then nothing is added.
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    auto spawn(F&& f) {
        using Fn = std::decay_t<F>;
        using R = std::invoke_result_t<Fn&>;
        if constexpr (detail::is_task<R>::value) {
            using T = typename R::value_type;
            return track(rt_.spawn(guarded<T, Fn>(Fn(std::forward<F>(f)), this)));
        } else {
            return track(rt_.spawn(guarded_call<Fn>{Fn(std::forward<F>(f)), this}));
        }
    }
    /// Runs the coroutine t on the scope's runtime, as a task of the scope; its future. Throws as
    /// spawn(F&&) does (runtime_closed after shutdown).
    template <class T>
    future<T> spawn(task<T> t) {
        return spawn(detail::task_holder<T>{std::move(t)});
    }

    struct join_awaiter : detail::sync_waiter {
        explicit join_awaiter(async_scope* s) noexcept : sc(s) {
            fn = &join_awaiter::on_parent_cancel;
            core = s;
        }
        join_awaiter(join_awaiter&& o) noexcept : detail::sync_waiter(std::move(o)), sc(o.sc) {}
        bool await_ready() noexcept { return sc->empty(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> caller) noexcept {
            capture(caller);
            return sc->suspend(
                this, [this] { return sc->live_ == 0; }, [this] { sc->q_.push_back(this); });
        }
        void await_resume() {
            if (aborted() || interrupted) throw cancelled_error();
            sc->rethrow_error();
        }
        // The joining task was cancelled: cancel the scope, keep waiting (children may use
        // the joiner's frame). Under the joiner's hook lock.
        static void on_parent_cancel(detail::cancel_hook* h) noexcept {
            auto* self = static_cast<join_awaiter*>(h);
            self->interrupted = true;  // read by the joiner after it resumes
            self->sc->cancel();
        }
        async_scope* sc;
        bool interrupted = false;
    };

    // co_await join(): see the file comment.
    join_awaiter join() noexcept { return join_awaiter(this); }

    // From an outside thread: waits for the scope's tasks, then rethrows the first error as
    // join() does. On a worker it throws (co_await join() instead).
    void join_blocking() {
        detail::refuse_on_worker("taskport::async_scope::join_blocking");
        join_wait();
        rethrow_error();
    }

    // Cancels every task of the scope, and those spawned into it from now on. Idempotent.
    void cancel() noexcept {
        {
            std::lock_guard<detail::spin_lock> g(lock_);
            if (cancelled_) return;
            cancelled_ = true;
            for (child* c = head_; c; c = c->next) c->st->request_cancel();
        }
        stop_.request_stop();
    }
    /// True once cancel() was called (or the stop_token it was built with was requested).
    bool cancel_requested() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return cancelled_;
    }
    // Stop is requested on it when the scope is cancelled.
    std::stop_token get_stop_token() const noexcept { return stop_.get_token(); }

    // A snapshot: tasks of the scope not finished yet.
    std::size_t size() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return live_;
    }
    /// A snapshot: no task of the scope is running now.
    bool empty() const noexcept { return size() == 0; }

    // A snapshot: tasks (and threads) waiting now. For tests and monitoring.
    std::size_t waiters() const noexcept {
        std::lock_guard<detail::spin_lock> g(lock_);
        return q_.size();
    }

private:
    struct canceller {
        async_scope* s;
        void operator()() const noexcept { s->cancel(); }
    };

    // One per task: notified when the task's future completes. Holds a reference to its state.
    struct child final : detail::wait_node, detail::task_allocated {
        child() noexcept : detail::wait_node(&child::on_notify) {}
        static void on_notify(detail::continuation* c) noexcept {
            auto* self = static_cast<child*>(c);
            detail::state_base* st = self->st;
            self->sc->child_done(self);  // unlinks; the scope may be gone after it
            st->release();
            delete self;
        }
        child* prev = nullptr;
        child* next = nullptr;
        detail::state_base* st = nullptr;
        async_scope* sc = nullptr;
    };

    // The task's first exception is recorded by the task itself, before its future completes:
    // reading it from the future's state afterwards would race with the user's get(), which
    // moves it out.
    template <class T, class Fn>
    static task<T> guarded(Fn f, async_scope* sc) {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await f();
            } else {
                co_return co_await f();
            }
        } catch (...) {
            sc->record(std::current_exception());
            throw;
        }
    }
    template <class Fn>
    struct guarded_call {
        Fn f;
        async_scope* sc;
        auto operator()() {
            try {
                return f();
            } catch (...) {
                sc->record(std::current_exception());
                throw;
            }
        }
    };

    void record(std::exception_ptr e) noexcept {
        const bool cancellation = is_cancellation(e);
        std::lock_guard<detail::spin_lock> g(lock_);
        if (!error_ && !(cancelled_ && cancellation)) error_ = std::move(e);
    }

    template <class T>
    future<T> track(future<T> fut) {
        add(fut.state_ptr());
        return fut;
    }

    void add(detail::state_base* st) {
        child* c;
        try {
            c = new child;
        } catch (...) {
            st->request_cancel();  // untracked work must not run past the scope
            throw;
        }
        c->st = st;
        c->sc = this;
        st->add_ref();
        {
            std::lock_guard<detail::spin_lock> g(lock_);
            c->next = head_;
            if (head_) head_->prev = c;
            head_ = c;
            ++live_;
            if (cancelled_) st->request_cancel();
        }
        if (!st->arm(c)) child::on_notify(c);  // finished already
    }

    void child_done(child* c) noexcept {
        detail::wake_list wake;  // run after the unlock below
        lock_.lock();
        (c->prev ? c->prev->next : head_) = c->next;
        if (c->next) c->next->prev = c->prev;
        if (--live_ == 0)
            while (detail::sync_waiter* w = q_.pop_front()) {
                w->state = detail::sync_waiter::st::woken;
                wake.add(w);
            }
        lock_.unlock();
    }

    static bool is_cancellation(const std::exception_ptr& e) noexcept {
        try {
            std::rethrow_exception(e);
        } catch (const std::system_error& x) {
            return x.code() == std::errc::operation_canceled;
        } catch (...) {
            return false;
        }
    }

    // Waits (blocking an outside thread, helping on a worker) until no task is left.
    void join_wait() {
        struct waiter : detail::sync_waiter {
            waiter() { run_fn = &waiter::on_wake; }
            static void on_wake(detail::task_node* t) noexcept {
                // Moved to the waker's stack first: the joiner may free w once f is ready.
                promise<void> p = std::move(static_cast<waiter*>(t)->p);
                p.set_value();
            }
            promise<void> p{nullptr};
        } w;
        future<void> f = w.p.get_future();
        if (suspend(&w, [this] { return live_ == 0; }, [&] { q_.push_back(&w); }))
            f.wait();
        else
            w.p.set_value();
    }

    void rethrow_error() {
        std::exception_ptr e;
        {
            std::lock_guard<detail::spin_lock> g(lock_);
            e = std::exchange(error_, nullptr);
        }
        if (e) std::rethrow_exception(e);
    }

    void unlink(detail::sync_waiter* w) noexcept override { q_.remove(w); }

    runtime& rt_;
    std::stop_source stop_;
    std::optional<std::stop_callback<canceller>> stop_cb_;
    child* head_ = nullptr;     // under lock_
    std::size_t live_ = 0;      // under lock_
    bool cancelled_ = false;    // under lock_
    std::exception_ptr error_;  // under lock_: the first child's error
    detail::wait_queue q_;      // join waiters, under lock_
};

}  // namespace taskport
