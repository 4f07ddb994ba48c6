// service.hpp — everything I/O one runtime owns, created on its first I/O operation.
//
//   completion_queue  — where every backend delivers finished operations (drained by workers)
//   reactor           — the readiness thread (epoll or kqueue) and its timer queue
//   timers            — the one timer queue (timer_queue.hpp), owned by the reactor or the port
//   blocking_pool     — files when io_uring is not used, name resolution
//   uring_backend     — the io_uring completion thread for files, when chosen and allowed
//
// Shutdown (runtime::shutdown, before the workers are joined): every parked operation
// completes with operation_aborted and new ones are refused with it; the threads are joined;
// the workers then run those completions.
#pragma once

#include "blocking_pool.hpp"
#include "completion_queue.hpp"
#include "iocp_backend.hpp"
#include "reactor.hpp"
#include "uring_backend.hpp"

#include <taskport/runtime.hpp>

#include <memory>

namespace taskport::io::detail {

// The runtime's service of this type (runtime::use_service, taskport/detail/service_registry.hpp).
// Reference-counted: the runtime holds one reference, every open socket or file another, so a
// socket that outlives its runtime can still be closed safely (its operations then fail with
// operation_aborted, and callbacks run inline on the calling thread: no worker is left).
class service final : public taskport::detail::runtime_service {
public:
    explicit service(runtime& rt);
    ~service() override;
    void shutdown() noexcept override;
    void release_by_runtime() noexcept override {
        cq.orphan();
        release();
    }
    void fill_stats(runtime_stats& s) const override;
    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    // True once shutdown() has begun: new operations then fail with operation_aborted, also
    // on the fast paths (an object that outlives its runtime). Written once by shutdown();
    // read by any thread starting an operation.
    bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    runtime& rt;
    taskport::detail::executor& ex;
    completion_queue cq;
    std::unique_ptr<reactor> react;        // readiness backends (epoll, kqueue); null with iocp
    std::unique_ptr<iocp_backend> iocp;    // Windows: the completion port, for sockets, files, timers
    blocking_pool pool;
    std::unique_ptr<uring_backend> uring;  // null: files go through the blocking pool
    completion_backend* completion = nullptr;  // iocp or uring, whichever is in use (else null)
    timer_queue* timers = nullptr;         // the backend's (the reactor's or the port's)
    io_backend chosen = io_backend::epoll;
    std::error_code uring_unavailable;     // why io_uring is not in use, if it is not

private:
    std::atomic<std::uint32_t> refs_{1};
    std::atomic<bool> stopped_{false};
};

io_backend backend_from_env(io_backend requested);

// set_write_all_step_limit's value (test_hooks.hpp; service.cpp): 0 unless a test set it.
extern std::atomic<std::size_t> test_write_all_step;
const char* backend_name(io_backend b) noexcept;

}  // namespace taskport::io::detail
