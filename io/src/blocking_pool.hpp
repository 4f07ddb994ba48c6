// blocking_pool.hpp — threads for work that must block (file opens, name resolution, and file
// reads/writes when io_uring is not used). A finished call's operation goes to the completion
// queue like any other.
//
// Two kinds of work:
//  - submit(op): op->perform(op) runs on a pool thread, on the operation itself (pread/pwrite/
//    fsync into the user's buffer: bounded calls). Cancellable while queued only.
//  - submit(op, call): a *detachable* call (open, getaddrinfo: calls that may not return for a
//    long time, or ever). The call runs on its own heap context (blocking_call), never on op, so
//    op can complete — cancelled, timed out, shut down — while the call is still in the kernel:
//    cancel() then completes op with operation_aborted at once, and the thread, when the call
//    finally returns, finds it detached and frees the late result (closes the descriptor, frees
//    the list). While queued or running, op->place points at its call (the place it is parked
//    in, as operation.hpp defines it); delivering or detaching clears it, under the pool's lock.
//
// Threads: started on demand whenever queued work outnumbers idle threads, up to max_threads
// (512, as Tokio's blocking pool); an idle thread waits on a condition variable (no polling)
// and leaves after keep_alive (10 s) without work.
//
// Shutdown: queued work completes with operation_aborted at once; running work is waited for at
// most shutdown_timeout (runtime_options). Past it the pool abandons what still runs: a
// detachable call's operation completes with operation_aborted, the thread is detached and
// frees the late result itself; a perform(op) step still running keeps its operation (it is
// writing into it) and that operation never completes. One line on stderr names how many
// calls were abandoned. Calls already cancelled are not waited for at all. The threads share
// the pool's state by reference count, so an abandoned one outlives the service safely.
#pragma once

#include "completion_queue.hpp"
#include "reactor.hpp"

#include <taskport/io/detail/operation.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>

namespace taskport::io::detail {

// Test hook: when set, the pool calls it on the pool thread around each detachable blocking call
// (open, getaddrinfo): hook(name, false) just before the call, hook(name, true) once its result
// was delivered or discarded. Tests hold a call "in the kernel" on a gate they control. Null
// (off) outside tests: one relaxed load per call.
using blocking_call_hook = void (*)(const char* call, bool finished);
void set_blocking_call_hook(blocking_call_hook h) noexcept;
// Calls the hook, if set. Also used by io_uring's open (uring_backend.cpp), at the same points of
// an open that the kernel made: before it is handed over, and once delivered or undone.
void run_blocking_call_hook(const char* call, bool finished) noexcept;

// The heap-owned context of one detachable blocking call. Its destructor frees a result that no
// operation took (the operation completed without it).
struct blocking_call {
    virtual ~blocking_call() = default;
    virtual const char* name() const noexcept = 0;  // "open", "getaddrinfo" (hook, diagnostics)
    // The blocking call, on a pool thread; touches only *this.
    virtual void run() noexcept = 0;
    // Hands the result to op (pool thread, op still waiting; under the pool's lock).
    virtual void deliver(operation* op) noexcept = 0;

    // Pool-private, guarded by the pool's mutex.
    operation* op = nullptr;       // null once op completed without this call's result
    blocking_call* prev = nullptr;  // the running list (for shutdown)
    blocking_call* next = nullptr;
    bool running = false;
};

class blocking_pool;

// Submits op as a detachable call that make() allocates (blocking_pool::submit(op, call)); with
// no memory for the call's own context, op->perform runs the call on op itself instead (then it
// cannot be detached while it runs, but it runs). The start of every detachable operation.
template <class Make>
void submit_detachable(blocking_pool& pool, operation* op, Make make) noexcept;

class blocking_pool {
public:
    static constexpr std::size_t default_max_threads = 512;
    static constexpr std::chrono::milliseconds default_keep_alive{10000};

    blocking_pool(completion_queue& cq, std::size_t max_threads, std::chrono::milliseconds shutdown_timeout);
    ~blocking_pool();
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;

    // op->perform(op) runs on a pool thread (its return value is ignored: it must finish the
    // operation, setting ec/bytes). After shutdown() the op completes with operation_aborted.
    void submit(operation* op) noexcept;
    // Runs call (taking ownership; null: as submit(op)) for op; op completes with call's result, or with
    // operation_aborted when cancelled or shut down first (see the file comment).
    void submit(operation* op, blocking_call* call) noexcept;
    // Canceller side: aborts op if it is queued, or detaches it from its running call.
    void cancel(operation* op) noexcept;
    // Aborts queued work, waits for running work up to shutdown_timeout, then abandons it.
    void shutdown() noexcept;

    // Threads alive now (tests); how long an idle one waits for work before it leaves (tests).
    std::size_t threads() const noexcept;
    void set_keep_alive(std::chrono::milliseconds d) noexcept;

private:
    struct state;
    std::shared_ptr<state> s_;
};

template <class Make>
void submit_detachable(blocking_pool& pool, operation* op, Make make) noexcept {
    blocking_call* call = nullptr;
    try {
        call = make();
    } catch (...) {  // std::bad_alloc
        pool.submit(op);
        return;
    }
    pool.submit(op, call);
}

}  // namespace taskport::io::detail
