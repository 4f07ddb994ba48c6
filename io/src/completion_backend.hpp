// completion_backend.hpp — the completion-model backends (io_uring on Linux, the I/O completion
// port on Windows) behind one interface, as the readiness backends (epoll, kqueue) share
// poller.hpp. The service holds the one in use (service::completion; null on a readiness-only
// runtime), and the file layer (file_core.cpp) and the cancel path (service.cpp) use only this.
//
// Contract (operation.hpp's exactly-once protocol): an operation handed to submit_file_step is
// parked in the backend (op->kind == place_kind::completion, op->place == the backend) from its
// submission until its result is taken; it then completes exactly once through the completion
// queue — with the step's result, with operation_aborted when cancel() won or shutdown() came
// first, or at once (still through the queue, never inside the call) when the system finished
// or refused it there and then.
#pragma once

#include <taskport/io/detail/operation.hpp>

#include <cstdint>

namespace taskport::io::detail {

struct file_rw_op;

class completion_backend {
public:
    virtual ~completion_backend() = default;

    // A handle (socket or file) before its first operation, and before it is closed. io_uring:
    // nothing to do. IOCP: bound to the port; throws std::system_error (operation_aborted after
    // shutdown).
    virtual void associate(std::uintptr_t handle) = 0;
    virtual void forget(std::uintptr_t handle) noexcept = 0;

    // One step of a file transfer: op->len - op->done bytes (the backend may move fewer) at
    // op->offset + op->done, or the sync. op->svc is set. False: this backend does not do that
    // kind of step (the caller uses the blocking pool); true: op completes as the contract says,
    // with op->bytes what this step moved.
    virtual bool submit_file_step(file_rw_op* op) noexcept = 0;

    // Canceller side (any thread; detail::cancel). Asks the system to stop op if it is still
    // parked; op still completes once, through its own completion.
    virtual void cancel(operation* op) noexcept = 0;

    // Refuses new operations (operation_aborted), cancels every parked one and waits until the
    // system has returned each, then stops the backend's thread.
    virtual void shutdown() noexcept = 0;
};

}  // namespace taskport::io::detail
