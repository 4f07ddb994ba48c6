// reactor.hpp — the readiness core: descriptor queues, the readiness thread, and timers.
//
// Polling: one thread at a time holds the poll role (role_: taskport/sched/poll_role.hpp, the I/O
// half of the scheduler's park protocol, where its invariants are written) and with it the right to wait on
// the poller and handle events (cycle()). Where the executor's workers poll (work_stealing:
// task_source::poll, Go's netpoll), an idle worker holds it while it sleeps in the poller, and
// a busy one takes it for a moment between tasks; events then reach the thread that runs their
// continuations with one wake-up. The readiness thread is the backstop: every 1-10 ms it polls
// without blocking if nobody holds the role (all workers busy, or blocked outside taskport);
// after a long quiet spell with a worker asleep in the poller, it sleeps until that worker
// leaves. Where workers do not poll (the tbb_arena executor, TASKPORT_WORKER_POLL=0) the
// readiness thread holds the role and waits on the poller itself, as before.
//
// A descriptor is registered once, edge-triggered. An operation first tries its system call at once (the fast path, under
// the descriptor's lock when the queue is empty); only when it would block is it queued. A side
// known drained since the last event handled for it (a short read or write on a stream socket,
// or a would-block: descriptor_state::drained, Tokio's cached readiness) skips that attempt and
// parks at once; start() re-checks the readiness count under the lock, so an edge handled in
// between makes it try instead (no lost wake-up). On a
// readiness event the thread retries the queued operations of that direction in order and
// hands every finished one to the completion queue — one batch per wake-up. The same thread
// owns a timer queue (timer_queue.hpp): the poller's timeout is the nearest deadline.
//
// A descriptor_state is reference-counted (descriptor.hpp); the reactor holds one reference while
// it is registered, and after detach() hands it to the role's holder, who drops it at the start
// of its next cycle — never while an event naming it may still be processed (only the role's
// holder handles events). Operations and the user's object hold their own references.
#pragma once

#include "completion_queue.hpp"
#include "descriptor.hpp"
#include "poller.hpp"
#include "timer_queue.hpp"

#include <taskport/io/detail/operation.hpp>
#include <taskport/sched/poll_role.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace taskport::io::detail {

class reactor final : public poll_target {
public:
    // workers_poll: the executor's workers call worker_poll() (executor::polls_source()).
    reactor(completion_queue& cq, std::unique_ptr<poller> p, bool workers_poll);
    ~reactor();

    // A worker's poll (task_source::poll through the completion queue). may_spin: a blocking
    // poll may spin first (adaptive_spin, poll_role.hpp); false: it goes to sleep at once.
    bool worker_poll(bool block, const std::atomic<std::uint32_t>* wake, bool may_spin) noexcept override;
    void interrupt_poll() noexcept override { poller_->wake(); }
    // Operations queued on descriptors, or timers, wait for an event, and no worker sleeps in the
    // poller (the role is not `blocking`): a hint for a worker going back to its task from
    // help_until (park_protocol.hpp, invariant 5). Relaxed counts: an operation queued by a worker
    // that is still running is that worker's to poll for (it parks in the poller, or polls
    // between tasks); one queued before a worker listed itself asleep is ordered by the idle
    // set's lock, which the caller took after that.
    bool needs_poller() const noexcept override {
        if (parked_ops_.load(std::memory_order_relaxed) == 0 && timers_.pending() == 0) return false;
        return role_.load() != poll_role::role_blocking;
    }

    // Registers st->fd (already non-blocking) and takes the registration reference. Throws
    // std::system_error (operation_aborted after shutdown).
    void attach(descriptor_state* st);
    // Marks st closed, aborts every queued operation, deregisters. False if it was closed
    // already (by another close()). drop_ref: the caller must drop the registration reference
    // itself (nobody polls any more), after this returns. The fd is the caller's to close.
    bool detach(descriptor_state* st, bool& drop_ref) noexcept;
    // Aborts the queued operations of st, keeps it registered.
    void cancel_all(descriptor_state* st) noexcept;

    // Starts op on st's queue `dir`. Returns true if the op is parked (it will complete
    // through the completion queue), false if it finished now (ec/bytes set; nothing queued).
    // seen: the caller already tried the system call and it would block, or it skipped the call
    // because the side was known drained (descriptor_state::drained), having read
    // st->ready_seq[dir] (acquire) just before; if no event has been handled since (and none
    // made the descriptor no_skip), the op is parked without trying (no failed system call).
    bool start(descriptor_state* st, operation* op, int dir, const std::uint32_t* seen = nullptr) noexcept;
    // Canceller side for descriptor ops (see operation.hpp).
    void cancel(operation* op, descriptor_state* st) noexcept;

    // The timers (timer_queue.hpp): the poller's timeout is the nearest deadline.
    timer_queue& timers() noexcept { return timers_; }

    // Aborts everything parked, refuses new operations (operation_aborted), joins the thread.
    void shutdown() noexcept;
    bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
    const char* poller_name() const noexcept { return poller_->name(); }
    // The poller's events carry socket errors (poller.hpp): operations consult event_error.
    bool events_carry_errors() const noexcept { return poller_->events_carry_errors(); }
    // A short read or write on a stream socket proves its side drained (poller.hpp).
    bool short_io_drains() const noexcept { return poller_->short_io_drains(); }

private:
    using poll_role = taskport::detail::poll_role;
    void run();
    void run_backstop();
    // Returns how many operations it queued (finished I/O and expired timers).
    std::size_t cycle(int timeout_ms, bool notify) noexcept;
    int next_timeout_ms();
    void expire_timers(op_batch& b);
    void abort_queues(descriptor_state* st, op_batch& b) noexcept;
    void handle_event(descriptor_state* st, const poll_event& e, op_batch& b) noexcept;  // under st->mu
    void unlink_live(descriptor_state* st) noexcept;  // under mu_

    completion_queue& cq_;
    std::unique_ptr<poller> poller_;
    std::atomic<bool> stopped_{false};

    const bool workers_poll_;
    const int spin_us_;  // a blocking worker poll first looks without blocking up to this long
    taskport::detail::spin_account spin_acct_;  // whether recent spins paid (poll_role.hpp)
    poll_role role_;  // who may poll now (see the file comment; sched's poll_role.hpp)
    std::atomic<std::uint64_t> polls_{0};          // workers' polls, for the backstop's back-off
    std::mutex bs_mu_;                             // the backstop's sleep
    std::condition_variable bs_cv_;
    std::atomic<bool> deep_{false};  // the backstop sleeps until a blocking poller leaves
    // Operations queued on every descriptor's queues (the sum of their `queued` counts): +1 by
    // start() when it queues, -1 wherever one leaves a queue, always under that descriptor's mu.
    // Read without a lock by needs_poller(). Only the park path (an operation that would block)
    // and the completion path touch it, never an operation that finishes at once.
    std::atomic<std::size_t> parked_ops_{0};

    std::mutex mu_;                          // guards the live list and retired_ (registration refs)
    descriptor_state* live_ = nullptr;
    std::vector<descriptor_state*> retired_;
    std::atomic<std::size_t> n_retired_{0};  // retired_.size(), read without mu_
    std::vector<descriptor_state*> to_free_;  // the role holder's

    static void wake_for_timer(void* self) noexcept;  // a new earliest timer: poller_->wake()
    timer_queue timers_{cq_, &reactor::wake_for_timer, this};

    std::thread thread_;
};

}  // namespace taskport::io::detail
