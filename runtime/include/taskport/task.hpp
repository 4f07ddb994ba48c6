// taskport/task.hpp — task<T>, a lazy coroutine, and co_await yield().
//
// A task<T> does nothing until awaited (or spawned). Awaiting one transfers control to it
// symmetrically and it transfers back to its awaiter at the end, so a chain of a million awaits
// uses constant stack (through transfer_to/resume_coroutine, future.hpp, also in the builds
// where the compiler does not make the transfer a tail call). Cancellation: a spawned root task's future can be cancelled; every
// co_await inside the task tree first checks that request and throws cancelled_error().
#pragma once

#include <taskport/detail/fork_frame.hpp>
#include <taskport/future.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>
#include <utility>
#include <variant>

namespace taskport {

/// A lazy coroutine returning T (see task<T> below).
template <class T = void>
class task;
struct cancellation_query;

namespace detail {

// Hook a spawned root task uses to learn that its coroutine finished.
struct root_hook {
    virtual void on_done() noexcept = 0;

protected:
    ~root_hook() = default;
};

struct promise_base {
    std::coroutine_handle<> continuation;  // the awaiting coroutine, or null at the root
    root_hook* root = nullptr;              // set on the root coroutine of a spawned task
    state_base* cancel_scope = nullptr;  // the root's state: whose cancel() applies
    // Set when fork_join::fork or ::call started this coroutine (fork.hpp): the parent's side,
    // where the result goes, and the executor the parent's continuation was pushed to (null:
    // not pushed, the child was called inline).
    fork_frame* fork = nullptr;
    void* fork_slot = nullptr;
    executor* fork_ex = nullptr;

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            promise_base& p = h.promise();
            if (p.continuation) return transfer_to(h, p.continuation);
            if constexpr (requires { h.promise().deliver(nullptr); }) {
                if (fork_frame* const f = p.fork) {
                    // A forked child: deliver the result into the parent's frame, free this
                    // frame (the allocator's cache is hot for the next fork), then resume the
                    // parent or leave it to its join (fork_frame::child_done).
                    if (std::exception_ptr e = h.promise().deliver(p.fork_slot))
                        f->record_error(std::move(e));
                    executor* const pushed_to = p.fork_ex;
                    h.destroy();
                    if (const std::coroutine_handle<> next = f->child_done(pushed_to))
                        return transfer_to(h, next);  // h: only its address
                    return std::noop_coroutine();
                }
            }
            if (p.root) {
                // Taken back by its future's sole owner, which runs it nested and completes it
                // privately (state_base::take_back; a root's cancel_scope is its state): no
                // one is registered, so there is nobody to hand off to.
                if (private_take_back_state() == p.cancel_scope) {
                    p.root->on_done();  // may destroy the frame
                    return std::noop_coroutine();
                }
                // A coroutine awaiting the root's future on this worker is handed back through
                // the hand-off slot (future.hpp) and resumed from here.
                handoff_slot& d = this_thread_handoff();
                const auto sp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
                if (sp > d.stack_top) d.stack_top = sp;
                executor* const outer_ex = d.ex;  // an enclosing completion's, restored below
                const std::coroutine_handle<> outer_next = d.next;
                d.ex = d.stack_top - sp < handoff_stack_budget ? current_executor() : nullptr;
                d.next = {};
                p.root->on_done();  // may destroy the frame: touch nothing of it below
                const std::coroutine_handle<> next = d.next;
                d.ex = outer_ex;
                d.next = outer_next;
                if (next) return transfer_to(h, next);  // h: only its address
            }
            return std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }

    bool cancelled() const noexcept { return cancel_scope && cancel_scope->cancel_requested(); }

    template <class A>
    A&& await_transform(A&& a) {
        if constexpr (!std::is_same_v<std::decay_t<A>, cancellation_query> &&
                      !std::is_base_of_v<cancel_exempt, std::decay_t<A>>)
            if (cancelled()) throw cancelled_error();
        return std::forward<A>(a);
    }

    static void* operator new(std::size_t n) { return allocate_task(n); }
    static void operator delete(void* p, std::size_t n) noexcept { deallocate_task(p, n); }
};

template <class T>
struct task_promise final : promise_base {
    task<T> get_return_object() noexcept;

    template <class U = T>
    void return_value(U&& v) {
        result.template emplace<1>(std::forward<U>(v));
    }
    void unhandled_exception() noexcept { result.template emplace<2>(std::current_exception()); }

    // A forked child's end (fork.hpp): moves the value into *slot (a T the parent owns); returns
    // the exception instead, or the one moving threw.
    // fork_join only forks tasks whose T is move-assignable (fork.hpp); the final awaiter
    // instantiates this for every T, hence the if constexpr.
    std::exception_ptr deliver(void* slot) noexcept {
        if (result.index() == 2) return std::move(std::get<2>(result));
        if constexpr (std::is_move_assignable_v<T>) {
            try {
                *static_cast<T*>(slot) = std::move(std::get<1>(result));
            } catch (...) {
                return std::current_exception();
            }
        } else {
            (void)slot;
        }
        return nullptr;
    }

    T take() {
        // Moved out, as shared_state::take() does (future.hpp says why).
        if (result.index() == 2) std::rethrow_exception(std::exchange(std::get<2>(result), nullptr));
        return std::move(std::get<1>(result));
    }

    std::variant<std::monostate, T, std::exception_ptr> result;
};

template <>
struct task_promise<void> final : promise_base {
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
    std::exception_ptr deliver(void*) noexcept { return std::move(error); }
    void take() {
        if (error) std::rethrow_exception(std::exchange(error, nullptr));
    }
    std::exception_ptr error;
};

}  // namespace detail

/// A lazy coroutine: does nothing until awaited, spawned (runtime::spawn) or run by
/// runtime::block_on; it then runs on a worker. Move-only; owns its frame (destroyed with the
/// task if it never ran). Awaited once. Not for concurrent use: one owner at a time.
template <class T>
class [[nodiscard]] task {
public:
    /// The coroutine's promise type (internal).
    using promise_type = detail::task_promise<T>;
    /// The coroutine handle type.
    using handle_type = std::coroutine_handle<promise_type>;
    /// The type co_await gives.
    using value_type = T;

    task() noexcept = default;
    /// Adopts a coroutine handle (used by the promise).
    explicit task(handle_type h) noexcept : h_(h) {}
    /// Takes over o's coroutine; o becomes invalid.
    task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    /// Destroys this task's coroutine (if any), then takes over o's.
    task& operator=(task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() {
        if (h_) h_.destroy();
    }

    /// True while the task owns a coroutine.
    bool valid() const noexcept { return static_cast<bool>(h_); }
    /// Gives up ownership of the coroutine handle (the caller must destroy it).
    handle_type release() noexcept { return std::exchange(h_, {}); }

    struct awaiter {
        handle_type h;
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> caller) noexcept {
            h.promise().continuation = caller;
            if constexpr (std::is_base_of_v<detail::promise_base, P>)
                h.promise().cancel_scope = caller.promise().cancel_scope;
            return detail::transfer_to(caller, h);
        }
        T await_resume() { return h.promise().take(); }
    };

    // co_await a task: runs it to completion, then resumes here with its value or exception.
    awaiter operator co_await() && {
        if (!h_) throw std::future_error(std::future_errc::no_state);
        return awaiter{h_};
    }
    /// co_await t on an lvalue: the same as on an rvalue. Throws std::future_error(no_state) on an
    /// invalid task.
    awaiter operator co_await() & {
        if (!h_) throw std::future_error(std::future_errc::no_state);
        return awaiter{h_};
    }

private:
    handle_type h_;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise<T>>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise<void>>::from_promise(*this));
}

template <class>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

struct yield_awaiter : task_node {
    yield_awaiter() noexcept : task_node(&yield_awaiter::on_run) {}
    bool await_ready() const noexcept { return current_executor() == nullptr; }
    void await_suspend(std::coroutine_handle<> caller) noexcept {
        h = caller;
        current_executor()->schedule_yield(this);
    }
    void await_resume() const noexcept {}
    static void on_run(task_node* t) noexcept {
        resume_coroutine(static_cast<yield_awaiter*>(t)->h);
    }
    std::coroutine_handle<> h;
};
}  // namespace detail

// co_await yield(): let every task queued before this one run first, then continue.
inline detail::yield_awaiter yield() noexcept { return {}; }

// co_await this_task_cancelled(): true when the spawned task this coroutine belongs to was
// cancelled (for loops that want to stop without an exception).
struct cancellation_query {
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        if constexpr (std::is_base_of_v<detail::promise_base, P>) result = h.promise().cancelled();
        return false;
    }
    bool await_resume() const noexcept { return result; }
    /// The answer: whether the task was cancelled.
    bool result = false;
};
/// co_await this_task_cancelled(): true when the spawned task this coroutine belongs to was
/// cancelled. Never throws; outside a task coroutine it is false.
inline cancellation_query this_task_cancelled() noexcept { return {}; }

}  // namespace taskport
