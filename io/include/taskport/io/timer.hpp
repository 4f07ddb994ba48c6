// taskport/io/timer.hpp — sleep_for, sleep_until, with_timeout.
//
// Timers live in the I/O side's heap (the readiness thread sleeps until the nearest deadline);
// an expiry is a completion like any other and resumes the coroutine on a worker.
#pragma once

#include <taskport/detail/sync_wait.hpp>
#include <taskport/io/detail/operation.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport {

namespace io::detail {

struct timer_awaiter : coro_operation {
    explicit timer_awaiter(std::chrono::steady_clock::time_point w) noexcept : when(w) {}

    bool await_ready() const noexcept { return when <= std::chrono::steady_clock::now(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        capture(h);
        service& s = current_service();
        if (!enter_scope()) return false;
        start_timer(s, this, when);
        return true;
    }
    void await_resume() const { throw_if(ec, "taskport::sleep"); }

    std::chrono::steady_clock::time_point when;
};

// A timer whose completion is routed to a with_timeout awaiter.
struct plain_timer : operation {
    plain_timer() noexcept : operation(nullptr, nullptr) {}
};

}  // namespace io::detail

// co_await sleep_for(d): resumes after at least d (throws operation_aborted if cancelled or
// the runtime shuts down first).
template <class Rep, class Period>
io::detail::timer_awaiter sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
    return io::detail::timer_awaiter(
        std::chrono::steady_clock::now() +
        std::chrono::ceil<std::chrono::steady_clock::duration>(d));
}
/// co_await sleep_until(tp): resumes at or after tp on the steady clock (throws
/// operation_aborted if cancelled or the runtime shuts down first). Needs a worker of a runtime.
inline io::detail::timer_awaiter sleep_until(std::chrono::steady_clock::time_point tp) noexcept {
    return io::detail::timer_awaiter(tp);
}

// co_await with_timeout(d, op): op's result, or std::system_error(std::errc::timed_out) when d
// passes first (op is then cancelled, and awaited until it has completed, so its buffer is
// free again when this returns). op is a taskport I/O awaitable (read_some, accept, ...) or a
// waiting operation of the sync toolbox (a semaphore's acquire(), a channel's send()/receive(),
// a mutex's lock(), ...: taskport/detail/sync_wait.hpp), which on time-out has not happened.
template <class Op>
class timeout_awaiter {
    static constexpr bool is_sync = std::is_base_of_v<taskport::detail::sync_waiter, Op>;
    static_assert(std::is_base_of_v<io::detail::coro_operation, Op> || is_sync,
                  "with_timeout takes a taskport I/O operation (read_some, accept, sleep_for...) "
                  "or a waiting operation of the sync toolbox (acquire, send, receive, lock...)");

public:
    timeout_awaiter(std::chrono::steady_clock::time_point deadline, Op&& op)
        : op_(std::move(op)), deadline_(deadline) {}
    // Before it starts only (compilers may move an awaiter on its way to co_await).
    timeout_awaiter(timeout_awaiter&& o) noexcept : op_(std::move(o.op_)), deadline_(o.deadline_) {}

    bool await_ready() { return op_.await_ready(); }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        using namespace io::detail;
        h_ = h;
        service& s = current_service();
        op_.run_fn = &timeout_awaiter::on_op_done;
        op_.user = this;
        timer_.run_fn = &timeout_awaiter::on_timer_done;
        timer_.user = this;
        start_timer(s, &timer_, deadline_);
        if (op_.await_suspend(h)) return true;  // `this` may be resumed elsewhere from here
        // The op finished at once: withdraw the timer, resume when its abort has arrived.
        cancel(&timer_);
        return remaining_.fetch_sub(1, std::memory_order_acq_rel) != 1;
    }

    decltype(auto) await_resume() {
        if (timed_out_ && op_aborted())
            throw std::system_error(std::make_error_code(std::errc::timed_out),
                                    "taskport::with_timeout");
        return op_.await_resume();
    }

private:
    bool op_aborted() const noexcept {
        if constexpr (is_sync)
            return op_.aborted();
        else
            return op_.ec == io::operation_aborted();
    }
    void cancel_op() noexcept {
        if constexpr (is_sync)
            op_.core->withdraw(&op_);
        else
            io::detail::cancel(&op_);
    }

    static void on_op_done(taskport::detail::task_node* t) noexcept {
        auto* op = static_cast<Op*>(t);
        auto* self = static_cast<timeout_awaiter*>(op->user);
        op->leave_scope();
        io::detail::cancel(&self->timer_);
        if (self->remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) self->h_.resume();
    }
    static void on_timer_done(taskport::detail::task_node* t) noexcept {
        auto* tm = static_cast<io::detail::plain_timer*>(t);
        auto* self = static_cast<timeout_awaiter*>(tm->user);
        if (!tm->ec) {
            self->timed_out_ = true;
            self->cancel_op();
        }
        if (self->remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) self->h_.resume();
    }

    Op op_;
    io::detail::plain_timer timer_;
    std::chrono::steady_clock::time_point deadline_;
    std::coroutine_handle<> h_;
    std::atomic<int> remaining_{2};
    bool timed_out_ = false;  // written by the timer's completion, read after both finished
};

/// See timeout_awaiter above: co_await with_timeout(d, op) gives op's result, or throws
/// std::system_error(std::errc::timed_out) once d has passed (op cancelled and finished first).
template <class Rep, class Period, class Op>
timeout_awaiter<std::decay_t<Op>> with_timeout(std::chrono::duration<Rep, Period> d, Op&& op) {
    return timeout_awaiter<std::decay_t<Op>>(
        std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(d),
        std::forward<Op>(op));
}

}  // namespace taskport
