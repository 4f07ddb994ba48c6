// taskport/fork.hpp — fork_join: child-first fork/join for task<T> coroutines, with
// continuation stealing (as in Cilk and libfork).
//
//   taskport::task<int> fib(int n) {
//       if (n < 2) co_return n;
//       int a = 0, b = 0;
//       taskport::fork_join fj;
//       co_await fj.fork(a, fib(n - 1));  // runs fib(n-1) now; the rest of fib(n) may be stolen
//       co_await fj.call(b, fib(n - 2));  // runs fib(n-2) now, inline
//       co_await fj.join();               // a and b are set (or the first exception is thrown)
//       co_return a + b;
//   }
//
// fork() runs the child at once on the calling thread and leaves the parent's continuation on
// the worker's deque, where an idle worker may steal it. When the child ends and nobody stole
// the continuation, the child takes it back and resumes the parent with a plain jump: the only
// atomics are the deque's own push and pop, no future, no shared state, no allocation besides
// the child's frame (the per-worker task cache). The join counter lives in the parent's frame
// (detail/fork_counter.hpp states the protocol; tests/model/fork_join_model.cpp checks it).
//
// Off the work-stealing scheduler: on the tbb_arena executor the continuation is handed to the
// arena, which always runs it (never taken back): correct, without the fast path. On a thread
// that is no runtime's worker, fork() runs the child to its end before the parent goes on, as
// call() does (no parallelism).
#pragma once

#include <taskport/task.hpp>

#include <coroutine>
#include <cstdio>
#include <exception>
#include <future>
#include <type_traits>
#include <utility>

namespace taskport {

namespace detail {

// co_await fj.fork(...) / fj.call(...): starts the child (owns its frame until then).
template <class T>
class [[nodiscard]] fork_awaiter : cancel_exempt {
public:
    using child_handle = std::coroutine_handle<task_promise<T>>;
    fork_awaiter(fork_frame* f, child_handle c, void* slot, bool push) noexcept
        : f_(f), child_(c), slot_(slot), push_(push) {}
    fork_awaiter(fork_awaiter&& o) noexcept
        : f_(o.f_), child_(std::exchange(o.child_, {})), slot_(o.slot_), push_(o.push_) {}
    fork_awaiter& operator=(fork_awaiter&&) = delete;
    ~fork_awaiter() {
        if (child_) child_.destroy();  // never awaited
    }

    bool await_ready() const noexcept { return !child_; }  // an invalid task: error recorded

    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
        const child_handle c = std::exchange(child_, {});
        auto& cp = c.promise();
        fork_frame* const f = f_;
        if constexpr (std::is_base_of_v<promise_base, P>) {
            // A cancelled parent starts no more children: the join throws cancelled_error.
            if (parent.promise().cancelled()) {
                f->record_error(std::make_exception_ptr(cancelled_error()));
                c.destroy();
                // Not a plain `return parent`: below -O2 that resumes it nested, a stack frame
                // per refused fork (transfer_to's trampoline unwinds it).
                return transfer_to(parent, parent);
            }
            cp.cancel_scope = parent.promise().cancel_scope;  // its cancel() reaches the child
        }
        cp.fork = f;
        cp.fork_slot = slot_;
        f->parent = parent;
        if (push_) {
            if (executor* ex = current_executor()) {
                cp.fork_ex = ex;
                // From here a thief may run the parent (and free this awaiter): locals only.
                ex->schedule_accepted(f);
            }
        }
        return transfer_to(parent, c);
    }
    void await_resume() const noexcept {}

private:
    fork_frame* f_;
    child_handle child_;
    void* slot_;
    bool push_;
};

// co_await fj.join().
class [[nodiscard]] join_awaiter : cancel_exempt {
public:
    explicit join_awaiter(fork_frame* f) noexcept : f_(f) {}
    bool await_ready() const noexcept { return f_->counter.all_taken_back(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P>) noexcept {
        return f_->counter.join_must_wait();  // false: every child is done, go on at once
    }
    void await_resume() {
        f_->forks = 0;
        f_->counter.reset();
        if (f_->error) {
            f_->counter.clear_error();
            std::rethrow_exception(std::exchange(f_->error, nullptr));
        }
    }

private:
    fork_frame* f_;
};

}  // namespace detail

/// Child-first fork/join inside a task<T> coroutine: a local object of the parent (it lives in
/// the parent's frame). `co_await fj.fork(slot, child)` runs `child` at once on this thread while
/// the rest of the parent may be stolen by another worker; `co_await fj.call(slot, child)` runs
/// `child` inline, the parent going on after it; `co_await fj.join()` waits until every child
/// forked or called since the last join has ended. Each child's value is moved into its `slot`
/// (a T the parent owns, read after the join). A fork_join may be used for several rounds of
/// forks, each ended by a join.
///
/// Errors: a child's exception does not reach the parent at once; the join rethrows the first
/// one (the first child to end with one, in time); the others are dropped, and every child still
/// runs to its end first. An invalid (moved-from) task is such an error:
/// std::future_error(no_state) at the join. Cancellation: children inherit the parent's
/// cancellation (future::cancel() of the spawned root), as a co_awaited task does, so their
/// co_awaits throw cancelled_error; a fork or call made once the parent is cancelled does not
/// start its child and the join throws cancelled_error. fork(), call() and join() themselves
/// never throw cancelled_error (the join waits for the running children first).
///
/// Every fork must be joined before the fork_join is destroyed: destroying it with forks not
/// joined (an exception leaving the parent between fork and join) calls std::terminate, since
/// children may still write into the parent's frame. Use call() for a child run inline so that
/// its exception, too, waits for the join.
///
/// Not thread-safe: only the parent coroutine uses it. Works on any executor (see fork.hpp).
class fork_join {
public:
    fork_join() noexcept = default;
    fork_join(const fork_join&) = delete;
    fork_join& operator=(const fork_join&) = delete;
    /// Calls std::terminate (after a message on stderr) when forks are not joined.
    ~fork_join() {
        if (f_.forks != 0) {
            std::fputs("taskport: fork_join destroyed with forked children not joined "
                       "(did an exception leave the coroutine between fork() and join()?)\n",
                       stderr);
            std::terminate();
        }
    }

    /// co_await it: starts `child` now on this thread; its value goes to `result` (read it after
    /// join()). The rest of the parent may meanwhile run on another worker.
    template <class T>
    detail::fork_awaiter<T> fork(T& result, task<T> child) noexcept {
        return start<T>(&result, std::move(child), true);
    }
    /// co_await it: starts `child` now on this thread (no value).
    detail::fork_awaiter<void> fork(task<void> child) noexcept {
        return start<void>(nullptr, std::move(child), true);
    }
    /// co_await it: runs `child` now, inline; the parent goes on once it has ended. Its value goes
    /// to `result`, its exception waits for join().
    template <class T>
    detail::fork_awaiter<T> call(T& result, task<T> child) noexcept {
        return start<T>(&result, std::move(child), false);
    }
    /// co_await it: runs `child` now, inline (no value); its exception waits for join().
    detail::fork_awaiter<void> call(task<void> child) noexcept {
        return start<void>(nullptr, std::move(child), false);
    }
    /// co_await it: waits until every child forked or called since the last join has ended, then
    /// rethrows the first child's exception, if any. Never throws cancelled_error of its own.
    detail::join_awaiter join() noexcept { return detail::join_awaiter(&f_); }

private:
    template <class T>
    detail::fork_awaiter<T> start(void* slot, task<T>&& child, bool push) noexcept {
        static_assert(std::is_void_v<T> || std::is_move_assignable_v<T>,
                      "fork_join: a child's value is move-assigned into its slot");
        if (push) ++f_.forks;
        if (!child.valid())
            f_.record_error(std::make_exception_ptr(std::future_error(std::future_errc::no_state)));
        return detail::fork_awaiter<T>(&f_, child.release(), slot, push);
    }

    detail::fork_frame f_;
};

}  // namespace taskport
