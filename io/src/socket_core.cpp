// socket_core.cpp — the socket layer written once for both I/O models: opening a socket's state,
// closing and cancelling it from any thread, and the awaiters' common path (checks, the
// cooperative budget, parking, callback forms). What differs per model is socket_backend
// (socket_ops.hpp): the readiness core's in tcp.cpp, the completion port's in iocp_socket.cpp.
#include <taskport/io/tcp.hpp>
#include <taskport/io/detail/test_hooks.hpp>

#include "service.hpp"
#include "socket_ops.hpp"

namespace taskport::io::detail {

void descriptor_state::close_fd() noexcept { close_socket(fd); }

socket_core::socket_core(service* s, native_socket fd) {
    descriptor_state* st;
    try {
        st = new descriptor_state(s, fd);
    } catch (...) {
        close_socket(fd);
        throw;
    }
    st_ = descriptor_ref(st);
    try {
        socket_backend::attach(st);
    } catch (...) {
        st->closed.store(true, std::memory_order_release);
        st->release_fd();
        st_ = descriptor_ref();
        throw;
    }
}

void socket_core::close() noexcept {
    descriptor_state* st = st_.get();
    if (!st || st->closed.load(std::memory_order_acquire)) return;
    run_test_hook(hook_point::close_before_abort, st);
    socket_backend::close(st);  // st_ keeps st alive: the object is not written (see tcp.hpp)
}

void socket_core::cancel() noexcept {
    if (descriptor_state* st = st_.get()) socket_backend::cancel(st);
}

bool socket_core::is_open() const noexcept {
    return st_ && !st_.get()->closed.load(std::memory_order_acquire);
}

native_socket socket_core::fd() const noexcept { return is_open() ? st_.get()->fd : invalid_socket; }

// ---- the common awaiter path ----

bool socket_op::await_ready() noexcept {
    descriptor_state* s = st.get();
    if (!s || s->closed.load(std::memory_order_acquire)) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return true;
    }
    svc = s->svc;
    if (svc->stopped()) {  // its runtime is gone (or going)
        ec = operation_aborted();
        return true;
    }
    if (!take_inline_budget()) {
        force_queue = true;
        return false;
    }
    return socket_backend::try_now(s, this);
}

bool socket_op::start() noexcept {
    descriptor_state* s = st.get();
    if (!s) {  // a moved-from or default object (await_ready has said so already)
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return false;
    }
    svc = s->svc;
    if (!enter_scope()) return false;
    if (socket_backend::park(s, this)) return true;
    // Finished at once.
    if (force_queue) {  // budget spent: let others run before this task continues
        force_queue = false;
        complete(this);
        return true;
    }
    leave_scope();
    return false;
}

void start_detached(socket_op* op) noexcept {
    descriptor_state* s = op->st.get();
    if (!s || s->closed.load(std::memory_order_acquire)) {
        op->ec = std::make_error_code(std::errc::bad_file_descriptor);
        if (auto* ex = taskport::detail::current_executor())
            ex->schedule_accepted(op);
        else
            op->run();
        return;
    }
    op->svc = s->svc;
    if (!socket_backend::park(s, op)) complete(op);
}

}  // namespace taskport::io::detail
