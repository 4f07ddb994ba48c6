// iocp_backend.hpp — the Windows I/O completion port: the completion thread, overlapped
// operations, cancellation, and timers (iocp_backend.cpp; iocp_none.cpp elsewhere).
//
// One thread dequeues with GetQueuedCompletionStatusEx, up to 256 entries a call, finishes each
// operation, expires due timers, and hands the whole batch to the completion queue with one push
// — what the epoll and io_uring threads do on Linux. Its wait's timeout is the nearest timer's
// deadline; PostQueuedCompletionStatus wakes it (a new earliest timer, shutdown).
//
// An overlapped operation is parked in the backend (op->place == backend, kind iocp) from just
// before its system call until its completion has been taken. A striped lock (by the op's
// address) settles the races: the starter holds it across the call, so a completion dequeued
// before the call has even returned (the early-completion race) waits for the starter to let go;
// a canceller holds it across CancelIoEx, so the op cannot complete and be freed meanwhile. The
// op then completes exactly once, through the port: with its result, or with operation_aborted
// when the cancel won. With FILE_SKIP_COMPLETION_PORT_ON_SUCCESS (used when every installed
// IPv4/IPv6 stream and datagram provider hands out real handles, and
// TASKPORT_IOCP_SKIP_ON_SUCCESS is not 0) a call that succeeds at once queues no packet, and the
// starter finishes the op itself.
#pragma once

#include "completion_backend.hpp"
#include "completion_queue.hpp"
#include "timer_queue.hpp"

#include <taskport/io/detail/operation.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <system_error>

namespace taskport::io::detail {

// Starts one step of an overlapped operation (a WSARecv, a ReadFile...) with op's OVERLAPPED,
// on the backend's behalf and under op's lock. Returns 0 when the call succeeded at once
// (op->plat.transferred set), ERROR_IO_PENDING (997) when it is under way, iocp_done_now when
// the step finished without any system call (a zero-length read...), iocp_warning when the call
// finished at once with a warning status (WSAEMSGSIZE, ERROR_MORE_DATA: op->plat.error and
// op->plat.transferred set), else the Win32/WSA error the call failed with at once.
//
// Which of these queue a packet on the port: a pending call always; a success or a warning
// (NTSTATUS not an error) unless the handle has FILE_SKIP_COMPLETION_PORT_ON_SUCCESS; an error
// returned at once never. (Wine 8 behaves so, warnings included; not checked on Windows here.)
using iocp_issue_fn = int (*)(operation* op) noexcept;
inline constexpr int iocp_pending = 997;  // ERROR_IO_PENDING == WSA_IO_PENDING
inline constexpr int iocp_done_now = -1;
inline constexpr int iocp_warning = -2;

// For overlapped operations op->perform has this meaning: a step finished with
// op->plat.error (0 or a Win32/WSA code) and op->plat.transferred bytes; fold that into
// op->ec/op->bytes and return true when the operation is finished, false to run the issue
// function again for another step (the rest of a write_all). It runs under op's lock, on the
// completion thread or on the starting thread. A final ERROR_OPERATION_ABORTED becomes
// operation_aborted() afterwards.

// A completion_backend (associate binds a handle to the port; forget, before it is closed, says
// shutdown need not cancel its operations; a file step is one ReadFile/WriteFile of at most
// 1 GiB, the sync goes to the pool), plus what sockets and timers need of the port.
class iocp_backend : public completion_backend {
public:
    // Null, with `why`, where there is no completion port (every system but Windows).
    static std::unique_ptr<iocp_backend> try_create(completion_queue& cq, std::error_code& why);

    // Starts op (op->svc, op->perform set) on handle: true if it is parked (its completion will
    // go through the completion queue), false if it finished now (ec/bytes set, nothing queued).
    virtual bool start(operation* op, std::uintptr_t handle, iocp_issue_fn issue) noexcept = 0;
    // The timers (timer_queue.hpp): the port's wait times out at the nearest deadline.
    virtual timer_queue& timers() noexcept = 0;

    // completion_backend::cancel: CancelIoEx if op is still parked. shutdown also aborts the
    // timers.
};

// The file step on the port (iocp_file.cpp): one ReadFile/WriteFile of the rest of op's
// transfer (an iocp_issue_fn), and its completion (op->perform).
int issue_file_step(operation* op) noexcept;
bool finish_file_step(operation* op) noexcept;

// A Win32 or Winsock error code as a std::error_code whose message is the system's and which
// compares equal to the matching std::errc (WSAECONNREFUSED == std::errc::connection_refused),
// which libstdc++ 12's system_category does not do for Winsock codes. ERROR_OPERATION_ABORTED
// becomes operation_aborted(). Windows only (iocp_error.cpp).
std::error_code win32_error(int code) noexcept;

}  // namespace taskport::io::detail
