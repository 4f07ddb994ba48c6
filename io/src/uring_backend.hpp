// uring_backend.hpp — the io_uring completion thread (Linux, liburing; optional at build time).
//
// Workers submit SQEs under a lock (liburing's submission side is single-producer); one thread
// waits for CQEs, takes every one available as a batch, sets each operation's result, and
// hands the batch to the completion queue with one push. Cancellation submits
// IORING_OP_ASYNC_CANCEL for the op; the op still completes exactly once (with -ECANCELED ->
// operation_aborted, or its real result if it won the race).
#pragma once

#include "completion_backend.hpp"
#include "completion_queue.hpp"

#include <taskport/io/detail/operation.hpp>

#include <cstdint>
#include <memory>
#include <system_error>

namespace taskport::io::detail {

// A completion_backend: every file step (read, write — at most 1 GiB each — and fsync) is one
// SQE; op->perform is not used. Sockets stay on the readiness core.
class uring_backend : public completion_backend {
public:
    // Null (and `why` set) when the kernel, a seccomp filter or the build does not allow it.
    static std::unique_ptr<uring_backend> try_create(completion_queue& cq, std::error_code& why);

    // The SQEs submit_file_step sends, on any descriptor and buffer (tests drive the backend
    // with them directly): op completes as completion_backend's contract says, with op->bytes
    // what it moved (at most 1 GiB, possibly less than len).
    virtual void read_at(operation* op, int fd, void* buf, std::size_t len, std::uint64_t off) noexcept = 0;
    virtual void write_at(operation* op, int fd, const void* buf, std::size_t len, std::uint64_t off) noexcept = 0;
    virtual void fsync(operation* op, int fd) noexcept = 0;
};

}  // namespace taskport::io::detail
