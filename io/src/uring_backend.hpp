// uring_backend.hpp — the io_uring completion thread (Linux, liburing; optional at build time).
//
// Workers submit SQEs under a lock (liburing's submission side is single-producer); one thread
// waits for CQEs, takes every one available as a batch, sets each operation's result, and
// hands the batch to the completion queue with one push. Cancellation submits
// IORING_OP_ASYNC_CANCEL for the op; the op still completes exactly once (with -ECANCELED ->
// operation_aborted, or its real result if it won the race).
#pragma once

#include "completion_queue.hpp"

#include <taskport/io/detail/operation.hpp>

#include <cstdint>
#include <memory>
#include <system_error>

namespace taskport::io::detail {

class uring_backend {
public:
    // Null (and `why` set) when the kernel, a seccomp filter or the build does not allow it.
    static std::unique_ptr<uring_backend> try_create(completion_queue& cq, std::error_code& why);
    virtual ~uring_backend() = default;

    // One transfer each: op completes (through the completion queue) with op->bytes what it
    // moved — at most 1 GiB, possibly less than len — or with op->ec. The caller (file.cpp)
    // continues a short transfer. op->svc must be set; op->perform is not used.
    virtual void read_at(operation* op, int fd, void* buf, std::size_t len, std::uint64_t off) noexcept = 0;
    virtual void write_at(operation* op, int fd, const void* buf, std::size_t len, std::uint64_t off) noexcept = 0;
    virtual void fsync(operation* op, int fd) noexcept = 0;
    // Canceller side.
    virtual void cancel(operation* op) noexcept = 0;
    // Waits for every submitted op to complete (cancelling them), stops the thread.
    virtual void shutdown() noexcept = 0;
};

}  // namespace taskport::io::detail
