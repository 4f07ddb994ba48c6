// lifo_watch.hpp — whether a hand-off into a LIFO slot must wake a parked worker.
//
// A thief may take another worker's LIFO slot only once it is stale (lifo_slot.hpp: ~50 us).
// Waking a parked worker at every hand-off (schedule_next) is then futex traffic for nothing:
// the woken worker finds the slot fresh, searches and parks again (bench_mutex: a wake-up per
// few increments, 3x std::mutex's time). Not waking anyone is unsafe: if the slot's owner then
// blocks its thread on the woken task (not through taskport), no awake worker would ever look
// at the slot (test_parking, tokio#4941).
//
// The rule: a worker that parks while some slot is occupied (or was refilled since its last
// look) parks *watching*: it announces itself (begin()), sleeps at most the stale time, looks
// again, and retracts (end()) before its next park's re-check. The owner of a slot that
// displaced nothing into its deque wakes a worker only when nobody watches (must_wake()). A
// worker that parks while every slot is empty and unchanged sleeps without a timeout: an idle
// pool makes no wake-ups.
//
// No lost hand-off (the Dekker pair, both fences seq_cst):
//   owner:   put(t) into its slot (a read-modify-write);   fence; read watchers_
//   watcher: end() (read-modify-write on watchers_) ... next park: fence; look at every slot
// If the owner reads a count that does not include the watcher's end(), the watcher's look
// comes after the owner's fence in the fences' total order, so it sees t (or what the owner did
// with it since): it watches again, or t has run. If the count includes the end() and is zero,
// the owner wakes a sleeper the usual way (idle.hpp), the watcher being listed by then or its
// re-check covering t. A watcher that announced but found nothing sleeps with its timeout all
// the same: an announcement is never relied on beyond the timed sleep it precedes.
//
// Checked by tests/model/lifo_slot_model.cpp (suite "handoff", which runs this header and
// lifo_slot.hpp under Relacy) and test_parking's/test_sync's blocked-owner cases.
#pragma once

#include <taskport/sched/atomics.hpp>

#include <cstdint>

namespace taskport::detail {

template <class A = std_atomics>
class basic_lifo_watch {
public:
    // Owner of a slot, after a put() that displaced nothing: true when no parked worker watches
    // the slots, so the caller must wake one (idle set's notify_one, which skips it when a
    // worker searches: a searcher's park re-check sees the slot and watches).
    bool must_wake() noexcept {
#ifdef TASKPORT_PLANT_LIFO_NAIVE_SKIP  // test only: never wake for a slot (a lost hand-off)
        return false;
#else
        // seq_cst fence after the put's read-modify-write: the owner's half of the Dekker pair.
#ifndef TASKPORT_PLANT_LIFO_NO_FENCE  // test only: the owner may read a count from before an end()
        A::fence(A::seq_cst);
#endif
        // relaxed: ordered by the fences (see the file comment).
        return watchers_.load(A::relaxed) == 0;
#endif
    }

    // A parking worker, after its re-check fence, when it saw a slot occupied or refilled: it
    // will sleep at most the stale time and look again. relaxed: nothing relies on an owner
    // seeing it (a missed announcement costs a wake-up only).
    void begin() noexcept { watchers_.fetch_add(1, A::relaxed); }

    // The watcher woke (timeout or wake-up), before anything else it does; its next park's
    // re-check fence comes after. A read-modify-write sequenced before that fence is all the
    // Dekker pair needs (relaxed suffices there; seq_cst costs nothing on this cold path).
    void end() noexcept { watchers_.fetch_sub(1, A::seq_cst); }

private:
    // Workers parked watching: +1 by begin(), -1 by end(), each by the watching worker; read by
    // slot owners in must_wake() after their fence.
    typename A::template atomic<std::uint32_t> watchers_{0};
};

using lifo_watch = basic_lifo_watch<>;

}  // namespace taskport::detail
