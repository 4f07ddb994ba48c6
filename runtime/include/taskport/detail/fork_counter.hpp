// taskport/detail/fork_counter.hpp — the join protocol of fork_join (fork.hpp): child-first
// fork with continuation stealing, after libfork (Schuman et al.) and Cilk's THE protocol.
//
// At a fork the parent pushes its continuation (one task_node in its own frame) onto its
// worker's deque and the child runs at once on the same thread. When the child ends it tries to
// take the continuation back (the deque's pop_if_newest: the owner's pop, no other atomic); if
// it gets it, nobody ran the parent meanwhile and the child resumes it directly. Otherwise the
// continuation was run by the scheduler (a thief, or this worker after the child suspended):
// such a run is counted in steals_ by the parent itself, and the child instead decrements
// pending_. The parent's join adds what it counted: pending_ starts at `idle` and the join
// subtracts (idle - steals); whoever takes pending_ to zero (the join, or the last child) goes
// on with the parent.
//
// Invariant (why the count is exact even when a child takes back a continuation pushed by a
// later fork, as happens when a child suspends and another worker runs the parent on): every
// push of the continuation is consumed exactly once, by a scheduler run (steals_ + 1) or by a
// finishing child's take-back; every pushed child finishes exactly once, by a take-back or a
// decrement. When the parent is at its join, every push was consumed, so
//   decrements = pushes - take-backs = steals.
// With steals == 0 every child took a continuation back, so every child is done: the join goes
// on without any atomic.
//
// Memory order: a child writes its result (and maybe the error) into the parent's frame before
// it decrements; the decrement is acq_rel (release: those writes; acquire: the last one to
// decrement, which may be a child resuming the parent, sees every other child's writes and the
// parent's). The join's subtraction is acq_rel for the same reasons. A take-back is on the
// child's own thread, after its writes, so the parent resumed there sees them in program order.
// steals_ is plain data of whoever runs the parent (the scheduler's steal hands it over).
// The error flag is claimed with a relaxed exchange: only the winner writes the error, and the
// join reads it after the acquire above.
//
// Parameterised on the atomics policy A (taskport/sched/atomics.hpp); checked by
// tests/model/fork_join_model.cpp over this header and the real deque. Planted bugs for the
// model (never defined in a build): TASKPORT_PLANT_FORK_RELAXED_DECREMENT (the child's
// decrement relaxed), TASKPORT_PLANT_FORK_RESUME_WHEN_STOLEN (a child whose continuation was
// stolen resumes the parent anyway).
#pragma once

#include <taskport/sched/atomics.hpp>

#include <cstdint>

namespace taskport::detail {

template <class A>
class basic_fork_counter {
public:
    // pending_'s value between joins: far above any number of steals between two joins.
    static constexpr std::uint32_t idle = 1u << 30;

    basic_fork_counter() noexcept = default;
    basic_fork_counter(const basic_fork_counter&) = delete;
    basic_fork_counter& operator=(const basic_fork_counter&) = delete;

    // ---- the parent (whoever runs it now) ----

    // The scheduler ran the parent's continuation (it was not taken back).
    void count_steal() noexcept { steals_.store(steals_.load() + 1); }

    // At the join: true when no continuation was stolen since the last join, so every pushed
    // child took its continuation back and is done.
    bool all_taken_back() const noexcept { return steals_.load() == 0; }

    // At the join, with steals: adds them to the count. True when some child is still running
    // (the parent must stay suspended; the last child resumes it); false when all are done.
    bool join_must_wait() noexcept {
        const std::uint32_t s = idle - steals_.load();
        // acq_rel: acquire the finished children's writes; release the parent's own writes to
        // the child that will resume it.
        return pending_.fetch_sub(s, A::acq_rel) != s;
    }

    // After the join (every child done, nobody else touches the counter): ready for the next.
    void reset() noexcept {
        if (steals_.load() != 0) {
            steals_.store(0);
            pending_.store(idle, A::relaxed);  // the next round's children come after this
        }
    }

    // ---- a pushed child, at its end ----

    // taken_back: the child got the continuation back from its worker's deque. Returns true
    // when the child must resume the parent (it owns the continuation, or it was the last one
    // the join waits for); false: the parent goes on elsewhere, the child must not touch it.
    bool child_done(bool taken_back) noexcept {
        if (taken_back) return true;
#if defined(TASKPORT_PLANT_FORK_RESUME_WHEN_STOLEN)
        pending_.fetch_sub(1, A::acq_rel);
        return true;
#elif defined(TASKPORT_PLANT_FORK_RELAXED_DECREMENT)
        return pending_.fetch_sub(1, A::relaxed) == 1;
#else
        return pending_.fetch_sub(1, A::acq_rel) == 1;
#endif
    }

    // ---- errors (any child) ----

    // True for the first caller between two joins: it alone stores its exception. Relaxed: the
    // store is read only by the join, after the acquire of child_done/join_must_wait.
    bool claim_error() noexcept { return !failed_.exchange(true, A::relaxed); }
    // The join, after reading the error.
    void clear_error() noexcept { failed_.store(false, A::relaxed); }

private:
    // pending_: decremented by children whose continuation was stolen (acq_rel), by the parent's
    // join (acq_rel, idle - steals at once), reset by the parent after the join.
    typename A::template atomic<std::uint32_t> pending_{idle};
    // steals_: whoever runs the parent (the scheduler's hand-over orders it).
    typename A::template var<std::uint32_t> steals_{0};
    // failed_: claimed by the first failing child (relaxed exchange), cleared by the parent.
    typename A::template atomic<bool> failed_{false};
};

}  // namespace taskport::detail
