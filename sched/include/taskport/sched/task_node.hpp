// taskport/sched/task_node.hpp — the one thing every scheduler queue holds.
//
// A task_node is an intrusive, type-erased unit of work. Whatever runs on a worker (a spawned
// callable, a resumed coroutine, a finished I/O operation) *is* a task_node, so no queue ever
// allocates to hold it. Invariant: a node is in at most one queue at a time, and run() is called
// exactly once; run() owns the node from then on (it may free or re-queue it).
#pragma once

#include <cstddef>

namespace taskport::detail {

struct task_node {
    using run_fn_t = void (*)(task_node*) noexcept;

    explicit task_node(run_fn_t fn) noexcept : run_fn(fn) {}
    // Moving is only for objects that are not queued yet (awaiters handed around before they
    // suspend); the link is not carried over.
    task_node(task_node&& o) noexcept : run_fn(o.run_fn) {}
    task_node(const task_node&) = delete;
    task_node& operator=(const task_node&) = delete;

    void run() noexcept { run_fn(this); }

    task_node* next = nullptr;  // intrusive link, owned by whichever queue holds the node
    run_fn_t run_fn;
};

// Something waiting for a one-shot event (a future becoming ready). notify() is called at most
// once per arming, from whichever thread completes the event; the object must stay alive until
// then. Persistent objects (a worker's parker) may be armed repeatedly.
struct continuation {
    using notify_fn_t = void (*)(continuation*) noexcept;

    explicit continuation(notify_fn_t fn) noexcept : notify_fn(fn) {}
    void notify() noexcept { notify_fn(this); }

    notify_fn_t notify_fn;
};

// An event a worker can wait for while helping: ready() is polled; arm() registers a
// continuation to be notified on completion (false if already complete, and then nothing will
// be notified); disarm() withdraws it when the waiter leaves having seen ready() itself. After
// disarm() returns, the continuation is not touched again. One arming gets at most one
// notification, and it may be spurious (wait_table's stale addresses): a waiter that still sees
// !ready() after being notified must arm again before it sleeps again.
struct waitable {
    virtual bool ready() const noexcept = 0;
    virtual bool arm(continuation* c) noexcept = 0;
    virtual void disarm(continuation* c) noexcept = 0;

protected:
    ~waitable() = default;
};

}  // namespace taskport::detail
