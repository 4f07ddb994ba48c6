// taskport/sched/executor.hpp — the interface every scheduler kind implements.
//
// runtime/ talks to a scheduler only through this interface, so the work-stealing scheduler and
// the oneTBB task_arena scheduler are interchangeable. io/ uses schedule_batch() to hand a whole
// batch of completions over with one push and at most one wake-up.
#pragma once

#include <taskport/sched/futex.hpp>
#include <taskport/sched/task_node.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace taskport {

// What an operator needs to see of the scheduler (runtime_stats in runtime.hpp adds the I/O
// side's figures: sched knows nothing of I/O). Counters are totals since start; depths are a
// snapshot.
struct scheduler_stats {
    /// Worker threads.
    std::size_t workers = 0;
    std::uint64_t tasks_spawned = 0;   // tasks submitted (spawn, post, continuations, completions)
    std::uint64_t tasks_run = 0;       // tasks executed
    std::uint64_t steals = 0;          // successful steal operations (each may move several tasks)
    std::uint64_t tasks_stolen = 0;    // tasks moved by those steals
    /// Of those steals, the ones that took a worker's LIFO slot (once stale: see work_stealing.cpp).
    std::uint64_t lifo_steals = 0;
    std::uint64_t parks = 0;           // times a worker went to sleep
    std::uint64_t wakeups = 0;         // times a sleeping worker was woken to look for work
    std::uint64_t injector_pops = 0;   // tasks taken from the shared injector
    std::size_t injector_depth = 0;    // tasks waiting in the shared injector now
    std::vector<std::size_t> worker_queue_depth;  // tasks in each worker's own queue now
};

// Thrown by spawn/post from outside the runtime after shutdown() began.
class runtime_closed : public std::logic_error {
public:
    runtime_closed() : std::logic_error("taskport: runtime is shut down; no new work is accepted") {}
};

namespace detail {

// A queue that lives outside sched but whose tasks the workers run: io/'s central completion
// queue. Workers take batches from it (before the injector, and every few ticks regardless),
// and a parking worker counts it when it re-checks for work.
struct task_source {
    // Any thread. Up to `max` tasks linked through next, null-terminated; count in `n`.
    virtual task_node* pop_batch(std::size_t max, std::size_t& n) noexcept = 0;
    // A seq_cst snapshot (the parking protocol reads it after its fence).
    virtual bool empty() const noexcept = 0;

    // Optional (a readiness poller behind the queue; Go's netpoll): a worker may look for new
    // events itself, so that an event reaches the thread that will run its continuation with
    // one wake-up instead of two. One thread polls at a time. poll(false): harvest what is
    // ready now; poll(true): block until an event, a timer, or interrupt() — unless *wake is
    // non-zero once this thread holds the poller (an interrupt() meant for it may have been
    // consumed by another thread's poll just before; the caller's wake-up token says so).
    // What a poll finds is queued without waking anyone (the polling worker takes it next).
    // may_spin: a blocking poll may first look without blocking for a while (the source's own
    // heuristic); false when the caller knows other workers are running, so that a spin would
    // only take a core from them and from the threads that produce the events.
    // Returns false at once where the source has no poller, another thread is polling, or it
    // is shut down.
    virtual bool poll(bool block, const std::atomic<std::uint32_t>* wake, bool may_spin) noexcept {
        (void)block;
        (void)wake;
        (void)may_spin;
        return false;
    }
    // Any thread: makes a blocking poll() in progress (or the next one) return.
    virtual void interrupt() noexcept {}
    // A hint (no ordering promised beyond the caller's own locks): operations or timers wait for
    // an event that only a poll delivers, and no thread sleeps in the poller now. A worker that
    // was idle inside help_until() and goes back to a task that may run for long then wakes a
    // sleeper to poll (park_protocol.hpp, invariant 5). False where the source has no poller.
    virtual bool needs_poller() const noexcept { return false; }

protected:
    ~task_source() = default;
};

class executor {
public:
    virtual ~executor() = default;

    // From any thread. On one of this executor's workers the task goes to that worker's own
    // queue (stealable); from elsewhere it goes to the shared injector and wakes a worker.
    // Throws runtime_closed when called from outside after shutdown().
    virtual void schedule(task_node* t) = 0;

    // Like schedule(), for work already accepted (a continuation or an I/O completion): never
    // throws, even during shutdown, so nothing accepted is dropped.
    virtual void schedule_accepted(task_node* t) noexcept = 0;

    // A continuation woken by something the current task did: run it next on this worker
    // (the LIFO slot) when called on a worker; otherwise as schedule_accepted().
    virtual void schedule_next(task_node* t) noexcept = 0;

    // Behind everything already queued (co_await yield()).
    virtual void schedule_yield(task_node* t) noexcept = 0;

    // A batch from outside the workers (an I/O thread): linked through task_node::next, one push,
    // at most one wake-up. Never throws.
    virtual void schedule_batch(task_node* first, task_node* last, std::size_t n) noexcept = 0;

    /// On a worker of this executor: if t is still the newest task of the calling worker's own
    /// queue (it was schedule()d by this worker and is neither run nor stolen yet), takes it out
    /// and runs it now, nested in the caller, as a plain call would; returns true once it has
    /// run (it may have suspended: a coroutine then finishes elsewhere). False, and t left where
    /// it is, otherwise: off a worker, t not the newest, taken by a thief, or this worker already
    /// that many runs deep (the nesting is bounded, so a long chain cannot exhaust the stack).
    /// An awaiter calls it for the task it is about to wait for (future.hpp's take-back).
    virtual bool run_if_newest(task_node* t) noexcept {
        (void)t;
        return false;
    }

    /// On a worker of this executor: if t is still the newest task of the calling worker's own
    /// queue (neither run nor stolen yet), takes it out WITHOUT running it and returns true: the
    /// caller now owns t (fork_join's child taking its parent's continuation back, fork.hpp).
    /// False, and t left where it is, otherwise (off a worker, t not the newest, taken by a
    /// thief); executors without such a queue always answer false. Counted as a task run.
    virtual bool take_if_newest(task_node* t) noexcept {
        (void)t;
        return false;
    }

    // True on a worker thread of this executor.
    virtual bool in_worker() const noexcept = 0;

    // Attach the one task_source (before it is first pushed to; it must outlive the executor's
    // workers). notify_source(): the source just got work (after a seq_cst publish) — wake an
    // idle worker unless one is already searching.
    virtual void attach_source(task_source* s) noexcept = 0;
    virtual void notify_source() noexcept = 0;
    // Whether idle workers call the source's poll() (then its readiness thread need only be a
    // backstop). Fixed for the executor's lifetime.
    virtual bool polls_source() const noexcept { return false; }

    // True when the calling worker's own queue holds nothing a thief could take (always true
    // off the workers). parallel_for splits its range only then.
    virtual bool local_queue_empty() const noexcept = 0;

    // On a worker of this executor: run other tasks until w.ready(), parking when there is
    // nothing to do. Precondition: in_worker().
    virtual void help_until(waitable& w) = 0;

    /// As help_until(w), but returns by `deadline` even if w is not ready (a timed wait:
    /// future::wait_for). Returns w.ready(). Leaves w disarmed. Precondition: in_worker(). On
    /// a worker it may return later than the deadline by the length of a task it ran meanwhile.
    /// This default (the tbb_arena executor: TBB cannot suspend with a timeout) runs no other
    /// task: it blocks the calling thread in timed futex sleeps, woken by w's notification.
    /// work_stealing overrides it to help until the deadline, parking with a timeout.
    virtual bool help_until_deadline(waitable& w, std::chrono::steady_clock::time_point deadline) {
        struct sleeper final : continuation {
            sleeper() noexcept : continuation(&sleeper::on_notify) {}
            // Set by the notifier (release: the event's writes), cleared by the sleeper.
            std::atomic<std::uint32_t> flag{0};
            static void on_notify(continuation* c) noexcept {
                auto* self = static_cast<sleeper*>(c);
                self->flag.store(1, std::memory_order_release);
                futex_wake_one(self->flag);
            }
        } s;
        bool armed = false;
        while (!w.ready()) {
            if (!armed) {
                armed = w.arm(&s);
                if (!armed) continue;  // ready meanwhile
            }
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline) break;
            futex_wait_for(s.flag, 0, deadline - now);
            if (s.flag.exchange(0, std::memory_order_acquire) != 0) {
                // Notified (possibly spuriously): the arming is spent; re-arm if not ready.
                w.disarm(&s);
                armed = false;
            }
        }
        // Synchronous (the waitables used here: future.hpp's timed_worker_wait): s is not
        // touched once this returns.
        if (armed) w.disarm(&s);
        return w.ready();
    }

    // Stop accepting outside work, run everything queued, join the workers. Idempotent.
    virtual void shutdown() noexcept = 0;
    virtual bool closed() const noexcept = 0;

    virtual std::size_t concurrency() const noexcept = 0;
    virtual scheduler_stats stats() const = 0;

    // The object that owns this executor (the taskport::runtime), opaque to sched: lets code
    // running on a worker find its runtime. Set once before any task runs.
    void set_owner(void* o) noexcept { owner_ = o; }
    void* owner() const noexcept { return owner_; }

private:
    void* owner_ = nullptr;
};

// The executor whose worker is running on this thread, or null.
executor* current_executor() noexcept;
void set_current_executor(executor* e) noexcept;

// Task memory: oneTBB's scalable allocator when built with it, else operator new.
void* allocate_task(std::size_t bytes);
void deallocate_task(void* p, std::size_t bytes) noexcept;

enum class scheduler_kind { work_stealing, tbb_arena };

struct scheduler_config {
    std::size_t workers = 0;  // 0: default_worker_count()
    bool worker_poll = true;  // idle workers poll the attached source (polls_source())
    scheduler_kind kind = scheduler_kind::work_stealing;
    std::string thread_name = "taskport-w";
};

std::unique_ptr<executor> make_executor(const scheduler_config& cfg);
// The CPUs this process may use: CPUs online, affinity mask, cgroup CPU quota (sched/src/cpu_count.hpp).
std::size_t default_worker_count();

}  // namespace detail
}  // namespace taskport
