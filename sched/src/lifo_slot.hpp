// lifo_slot.hpp — a worker's LIFO slot: the one task its owner runs next (the continuation it just
// woke, schedule_next), and when thieves may take it.
//
// Policy (cf. Go's runqgrab, which backs off ~3 us before taking a running P's runnext): a woken
// task is usually best run by the worker that woke it, right after the waker suspends (its data
// is in that core's cache; a channel's receiver is resumed where the sender is). A thief that
// takes the slot at once makes every hand-off migrate between cores (a 1-to-1 channel
// ping-pongs its consumer, cache lines and all). So a thief takes the slot only when it is
// stale: it saw the slot occupied at an earlier look (a `sighting`), and since then the owner
// has neither taken the slot nor put a task in it (`puts_` unchanged, the same task there). The
// owner is then still inside the task it was running at that look; how long ago that look must
// be is the caller's choice (work_stealing.cpp: a few microseconds).
//
// Protocol (exactly once): the slot word is changed only by read-modify-writes, so exactly one of
// the owner's take() and a thief's steal_if_stale() gets a task the owner put. The owner's put()
// (exchange, acq_rel) releases the task's contents; take()/steal_if_stale() acquire them.
// `puts_` is only a hint for the policy: a stale read of it can delay a steal or let one happen a
// little early, never run a task twice or lose one.
//
// Invariants: the slot holds at most one task; only the owner puts; a task leaves the slot
// exactly once (owner's take, or one thief's successful compare-exchange).
// Parameterised on the atomics policy (taskport/sched/atomics.hpp) so tests/model/
// lifo_slot_model.cpp runs this very code under Relacy.
#pragma once

#include <taskport/sched/atomics.hpp>
#include <taskport/sched/task_node.hpp>

#include <cstdint>

namespace taskport::detail {

template <class A = std_atomics>
class basic_lifo_slot {
public:
    // What a thief saw at one look: the occupant (null: empty) and the owner's put count then.
    struct sighting {
        task_node* task = nullptr;
        std::uint32_t puts = 0;
    };

    // Owner: t becomes the next task to run; returns the task it displaced (null if none), which
    // the owner queues elsewhere.
    task_node* put(task_node* t) noexcept {
        // Only the owner writes puts_ (plain increment, no locked instruction); relaxed: a hint
        // for thieves, see the file comment.
        puts_.store(puts_.load(A::relaxed) + 1, A::relaxed);
        // acq_rel: release publishes t's contents to whoever takes it; acquire, the displaced
        // task's (put by this owner: acquire only matters for uniformity with take()).
        return slot_.exchange(t, A::acq_rel);
    }

    // Owner: the slot's task (null if empty or stolen). acquire: pairs with put()'s release.
    task_node* take() noexcept { return slot_.exchange(nullptr, A::acquire); }

    // Anyone: whether a task is there now (relaxed: a hint; the owner's take() decides).
    bool occupied() const noexcept { return slot_.load(A::relaxed) != nullptr; }
    // For the park protocol's re-check, which needs a seq_cst load (park_protocol.hpp).
    bool occupied_seq_cst() const noexcept { return slot_.load(A::seq_cst) != nullptr; }

    // Thief: what is there now. relaxed: a sighting is a hint; steal_if_stale() re-checks it
    // with a compare-exchange.
    sighting look() const noexcept {
        sighting s;
        s.puts = puts_.load(A::relaxed);
        s.task = slot_.load(A::relaxed);
        return s;
    }

    // Thief: takes the slot's task only if it is the one seen at `earlier` and the owner has put
    // nothing since (so has not taken it either: a re-put would have counted). Returns it, or
    // null (then the caller records a fresh look()).
    task_node* steal_if_stale(const sighting& earlier) noexcept {
        if (!earlier.task) return nullptr;
#ifdef TASKPORT_PLANT_LIFO_STEAL_FRESH  // test only: the old policy, take whatever is there
        return slot_.exchange(nullptr, A::acquire);
#else
        if (puts_.load(A::relaxed) != earlier.puts) return nullptr;
        task_node* expected = earlier.task;
        // acquire: pairs with the put() that stored it (every write to slot_ is a
        // read-modify-write, so that release heads the sequence this reads from).
#ifdef TASKPORT_PLANT_LIFO_STEAL_RELAXED  // test only: the task's contents are not acquired
        if (slot_.compare_exchange_strong(expected, nullptr, A::relaxed, A::relaxed)) return expected;
#else
        if (slot_.compare_exchange_strong(expected, nullptr, A::acquire, A::relaxed)) return expected;
#endif
        return nullptr;
#endif
    }

private:
    // The task; owner put()/take() (exchange), thieves compare-exchange it to null.
    typename A::template atomic<task_node*> slot_{nullptr};
    // put() calls so far: written by the owner only, read by thieves (relaxed hint).
    typename A::template atomic<std::uint32_t> puts_{0};
};

using lifo_slot = basic_lifo_slot<>;

}  // namespace taskport::detail
