// taskport/detail/fork_frame.hpp — the parent's side of a fork_join (fork.hpp), kept in the
// parent coroutine's frame: the continuation node thieves steal, the join counter
// (fork_counter.hpp) and the first child's error. task.hpp's final awaiter calls child_done()
// at the end of a child started by fork_join::fork or ::call.
//
// Who touches what: parent, forks_ and error are the parent's (whoever runs it now), except
// that the one child that claims the error writes `error` (fork_counter.hpp orders it);
// children read `parent` only when they will resume it (they own it then). The node itself is
// in at most one deque at a time: a parent suspended at a fork is suspended at exactly one
// point, and it pushes the node again only after the previous push was consumed.
#pragma once

#include <taskport/detail/fork_counter.hpp>
#include <taskport/future.hpp>

#include <coroutine>
#include <exception>

namespace taskport::detail {

// Awaitables the parent's await_transform must not throw cancelled_error before: a fork or a
// join skipped that way would leave children running against a frame being destroyed.
struct cancel_exempt {};

struct fork_frame : task_node {
    fork_frame() noexcept : task_node(&fork_frame::on_run) {}
    fork_frame(const fork_frame&) = delete;
    fork_frame& operator=(const fork_frame&) = delete;

    // The continuation was run by the scheduler (stolen, or run by this worker's loop after the
    // child suspended): the parent goes on here.
    static void on_run(task_node* t) noexcept {
        auto* f = static_cast<fork_frame*>(t);
        f->counter.count_steal();
        resume_coroutine(f->parent);
    }

    // Any child that ends with an exception (or is refused because of a cancellation).
    void record_error(std::exception_ptr e) noexcept {
        if (counter.claim_error()) error = std::move(e);
    }

    // The end of a child whose frame is already destroyed (its result delivered). ex: the
    // executor its fork pushed the continuation to, or null (the child was called inline, and
    // the parent simply goes on). The take-back asks ex about the calling thread's own queue
    // (take_if_newest is false off ex's workers), so a child that moved elsewhere is fine.
    // Returns what the child's final_suspend transfers to: the parent, or null (nothing).
    std::coroutine_handle<> child_done(executor* ex) noexcept {
        if (!ex) return parent;
        const bool taken = ex->take_if_newest(this);
        if (counter.child_done(taken)) return parent;
        return {};
    }

    basic_fork_counter<std_atomics> counter;
    std::coroutine_handle<> parent;  // the coroutine that owns this frame (set at each fork)
    std::exception_ptr error;        // the first child's exception, rethrown by the join
    unsigned forks = 0;              // pushes since the last join (the destructor's check)
};

}  // namespace taskport::detail
