// taskport/io/detail/operation.hpp — an I/O operation record, which is also a scheduler task.
//
// Life of an operation: started by a task (often completing at once: the speculative fast
// path); otherwise parked in one *place* — a descriptor's queue (readiness backends), the
// timer queue, the blocking pool, or a completion backend (io_uring, IOCP) — until a backend finishes it, sets ec/bytes and
// pushes it onto the runtime's completion queue. A worker pops it and runs it: that resumes the
// awaiting coroutine or calls the callback. Nothing is allocated between the kernel's report and
// the continuation.
//
// Exactly once: every operation completes once, with a result, an error, or operation_aborted.
// Cancellation races are settled by the place's lock: an operation is "parked" iff its `place`
// equals that place, and both the backend finishing it and a canceller removing it check and
// clear `place` under that lock. A cancel that arrives before the operation parks is caught by
// the Dekker pair (parker: store place, load cancelled; canceller: store cancelled, load place,
// all seq_cst): at least one of them sees the other, and the lock makes it at most one.
#pragma once

#include <taskport/future.hpp>
#include <taskport/io/detail/config.hpp>
#include <taskport/sched/task_node.hpp>
#include <taskport/task.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport {
class runtime;
}

namespace taskport::io {

// The error a cancelled or aborted operation completes with (ECANCELED, as in Asio on POSIX).
inline std::error_code operation_aborted() noexcept {
    return std::make_error_code(std::errc::operation_canceled);
}

}  // namespace taskport::io

namespace taskport::io::detail {

class service;
struct descriptor_state;

// completion: io_uring or the completion port (io/src/completion_backend.hpp).
enum class place_kind : unsigned char { none, descriptor, timer, pool, completion, composite };

// An operation made of other operations (a TLS read runs socket reads and writes): while it
// runs, its `place` points to one of these and cancel() calls fn(op), which forwards the cancel
// to the step now in flight (tls.cpp).
struct operation;
struct composite_place {
    void (*fn)(operation* op) noexcept;
};

struct operation : taskport::detail::task_node, taskport::detail::cancel_hook {
    // Readiness backends: one non-blocking attempt. True when finished (ec/bytes set); false
    // when it would block (the op stays parked). Runs under the descriptor's lock.
    using perform_fn = bool (*)(operation*) noexcept;

    operation(run_fn_t on_complete, perform_fn p) noexcept
        : task_node(on_complete), cancel_hook(&operation::on_cancel_hook), perform(p) {}
    // Moving is for awaiters being passed around before they start (with_timeout takes one by
    // value); a started operation never moves.
    operation(operation&& o) noexcept
        : task_node(o.run_fn), cancel_hook(o.fn), perform(o.perform), ec(o.ec), bytes(o.bytes),
          svc(o.svc), user(o.user), scope(o.scope) {}
    operation& operator=(operation&&) = delete;

    perform_fn perform;
    std::error_code ec;
    std::size_t bytes = 0;
    service* svc = nullptr;
    std::atomic<void*> place{nullptr};       // the place it is parked in (see file comment)
    place_kind kind = place_kind::none;      // which kind of place; set before parking
    std::atomic<bool> cancelled{false};      // a cancel was requested
    unsigned char dir = 0;                   // descriptor ops: 0 read queue, 1 write queue
    std::size_t heap_index = 0;              // timers: position in the heap (under its lock)
    std::chrono::steady_clock::time_point deadline{};  // timers
    void* user = nullptr;                    // free for the op's owner (with_timeout)
    taskport::detail::state_base* scope = nullptr;     // spawned task whose cancel() applies
    [[no_unique_address]] platform_op_storage plat;    // Windows: the OVERLAPPED (config.hpp)

    // Registers this op as its task's pending operation. False if the task was already
    // cancelled: then ec is operation_aborted and the op must not start.
    bool enter_scope() noexcept {
        if (scope && !scope->set_cancel_hook(this)) {
            scope = nullptr;
            ec = operation_aborted();
            return false;
        }
        return true;
    }
    void leave_scope() noexcept {
        if (scope) scope->clear_cancel_hook(this);
        scope = nullptr;
    }

private:
    static void on_cancel_hook(cancel_hook* h) noexcept;
};

// A counted reference to an open socket's state (io/src/descriptor.hpp), which the backend
// owns: the user's socket object holds one, and so does every operation on it, by value, so
// that moving or destroying the user's object never leaves an operation pointing into it.
void descriptor_add_ref(descriptor_state* st) noexcept;
void descriptor_release(descriptor_state* st) noexcept;  // the last one frees the state

class descriptor_ref {
public:
    descriptor_ref() noexcept = default;
    explicit descriptor_ref(descriptor_state* adopt) noexcept : p_(adopt) {}  // takes over a reference
    descriptor_ref(const descriptor_ref& o) noexcept : p_(o.p_) {
        if (p_) descriptor_add_ref(p_);
    }
    descriptor_ref(descriptor_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    descriptor_ref& operator=(descriptor_ref o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~descriptor_ref() {
        if (p_) descriptor_release(p_);
    }
    descriptor_state* get() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    descriptor_state* p_ = nullptr;
};

// Requests cancellation of a started operation from any thread. If it is still parked it
// completes with operation_aborted; if it already finished this does nothing.
void cancel(operation* op) noexcept;

// Pushes a finished operation (ec/bytes set) to its service's completion queue.
void complete(operation* op) noexcept;

// Timers: op completes (ec empty) at `when`, or with operation_aborted when cancelled.
void start_timer(service& svc, operation* op, std::chrono::steady_clock::time_point when) noexcept;

service& service_of(runtime& rt);
// The service of the runtime whose worker calls it; std::logic_error off the workers.
service& current_service();

// Cooperative budget: after this many operations in a row finish without suspending on one
// thread, the next one goes through the completion queue, so a task reading an always-ready
// socket cannot starve the rest (Tokio's coop budget, coarser).
bool take_inline_budget() noexcept;

// An operation awaited by a coroutine: completion resumes it.
struct coro_operation : operation {
    explicit coro_operation(perform_fn p = nullptr) noexcept
        : operation(&coro_operation::on_done, p) {}

    template <class P>
    void capture(std::coroutine_handle<P> caller) noexcept {
        h = caller;
        if constexpr (std::is_base_of_v<taskport::detail::promise_base, P>)
            scope = caller.promise().cancel_scope;
    }

    static void on_done(taskport::detail::task_node* t) noexcept {
        auto* op = static_cast<coro_operation*>(t);
        op->leave_scope();
        op->h.resume();
    }

    std::coroutine_handle<> h;
};

// An exception that escaped a callback: to the runtime's on_unhandled_exception (service.cpp).
void report_callback_exception(std::exception_ptr e) noexcept;

// Callback forms of every I/O object (sockets, files): a heap op of kind Base that runs
// f(ec, bytes) as a task once Base completes, then frees itself.
template <class Base, class F>
struct callback_op final : Base, taskport::detail::task_allocated {
    // fn by value: async_read_some(buf, handler) with an lvalue handler copies it (an F&&
    // parameter here, with F already decayed, accepted rvalues only and did not compile).
    template <class... A>
    callback_op(F fn, A&&... a) : Base(std::forward<A>(a)...), f(std::move(fn)) {
        this->run_fn = &callback_op::on_done;
    }
    static void on_done(taskport::detail::task_node* t) noexcept {
        auto* self = static_cast<callback_op*>(t);
        std::error_code ec = self->ec;
        std::size_t n = self->bytes;
        F f = std::move(self->f);
        delete self;
        try {
            f(ec, n);
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    // Sockets: start it (start_detached(socket_op*), tcp.hpp). Files call their own start_detached().
    void go() noexcept { start_detached(this); }
    F f;
};

// Throws std::system_error(ec, what) if ec is set.
void throw_if(const std::error_code& ec, const char* what);

}  // namespace taskport::io::detail
