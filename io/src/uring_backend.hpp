// uring_backend.hpp — the io_uring completion thread (Linux, liburing; optional at build time).
//
// Workers submit SQEs under a lock (liburing's submission side is single-producer); one thread
// waits for CQEs, takes every one available as a batch, sets each operation's result, and
// hands the batch to the completion queue with one push. io::file::open is an OPENAT SQE (see
// open()). Cancellation submits
// IORING_OP_ASYNC_CANCEL for the op; the op still completes exactly once (with -ECANCELED ->
// operation_aborted, or its real result if it won the race).
#pragma once

#include "completion_backend.hpp"
#include "completion_queue.hpp"

#include <taskport/io/detail/operation.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <system_error>

namespace taskport::io::detail {

struct file_open_op;

// A completion_backend: every file step (read, write — at most 1 GiB each — and fsync) is one
// SQE; op->perform is not used. Sockets stay on the readiness core.
class uring_backend : public completion_backend {
public:
    // Null (and `why` set) when the kernel, a seccomp filter or the build does not allow it.
    // shutdown() waits at most shutdown_timeout (max(): no limit) for the kernel to return what
    // it still holds, then abandons the ring to its thread (uring_backend.cpp).
    static std::unique_ptr<uring_backend> try_create(completion_queue& cq, std::chrono::milliseconds shutdown_timeout,
                                                     std::error_code& why);

    // The SQEs submit_file_step sends, on any descriptor and buffer (tests drive the backend
    // with them directly): op completes as completion_backend's contract says, with op->bytes
    // what it moved (at most 1 GiB, possibly less than len).
    virtual void read_at(operation* op, int fd, void* buf, std::size_t len, std::uint64_t off) noexcept = 0;
    virtual void write_at(operation* op, int fd, const void* buf, std::size_t len, std::uint64_t off) noexcept = 0;
    virtual void fsync(operation* op, int fd) noexcept = 0;

    // io::file::open as IORING_OP_OPENAT (file_open.cpp), with native_open's semantics: the same
    // flags and create-exclusive-first steps, then native_open_finish on the worker that takes the
    // result. The SQE is submitted by the completion thread (never by a worker: see
    // submit_open_step). op is parked (kind completion) until delivered; a cancel or shutdown
    // completes it at once with operation_aborted and the open, when the kernel finishes it, is
    // undone (native_discard on a worker, or on the completion thread of a ring that shutdown
    // abandoned after shutdown_timeout). False, and op untouched: not done here (the kernel has no
    // OPENAT, TASKPORT_URING_OPEN not 1, or no memory): the caller uses the blocking pool.
    virtual bool open(file_open_op* op) noexcept = 0;
};

}  // namespace taskport::io::detail
