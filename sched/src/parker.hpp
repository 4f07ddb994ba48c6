// parker.hpp — how one worker sleeps: a single wake-up token on a futex word.
//
// unpark() leaves a token and wakes the sleeper; park() consumes a token, sleeping until one is
// there. A token left while the worker was awake makes its next park() return at once (a
// spurious wake-up, which every caller tolerates by re-checking its queues). No polling: a
// parked worker uses no CPU until someone unparks it, except when its owner armed a timeout for
// one park (park_for_next: only while another worker's LIFO slot is occupied, lifo_watch.hpp).
//
// Invariants:
//   - token_ is 1 from an unpark() until the owner's next exchange(0): a wake-up is never lost,
//     only merged with another (then the owner re-checks its queues anyway).
//   - polling_ is non-null exactly while the owner may be asleep inside that source's poll
//     instead of on the futex; unpark() then interrupts the source instead of waking the futex.
//     Dekker pair: unpark() sets token_ then reads polling_; park_polling() sets polling_ then
//     reads token_ (all seq_cst): one of them sees the other.
//   - An interrupt() can be consumed by another thread's poll (the source's wake-up is shared),
//     so the source re-reads the token once it holds the poll role and after each non-blocking
//     look (task_source::poll's `wake`, poll_role.hpp's invariant 1): a token set before then is seen.
//
// The parker is also a continuation, so a worker waiting for a future inside help_until() is
// woken by the future's completion through the same token. Written against the atomics policy
// (taskport/sched/atomics.hpp) and the source type, so that tests/model/park_model.cpp checks
// this very code with Relacy.
#pragma once

#include <taskport/sched/atomics.hpp>
#include <taskport/sched/executor.hpp>

#include <taskport/sched/task_node.hpp>

#include <chrono>
#include <cstdint>

namespace taskport::detail {

template <class A, class Source>
class basic_parker final : public continuation {
public:
    using source_type = Source;

    basic_parker() noexcept : continuation(&basic_parker::on_notify) {}

    // Any thread.
    void unpark() noexcept {
        // seq_cst (not only release: what the unparker wrote must be visible to the woken
        // worker): a Dekker pair with park_polling() over token_ and polling_.
        if (token_.exchange(1, A::seq_cst) == 0) {
            if (source_type* s = polling_.load(A::seq_cst))
                s->interrupt();  // asleep in the source's poller, not on the futex
            else
                A::futex_wake_one(token_);
        }
    }

    // Owner only.
    void park() noexcept {
        if (timeout_.count() != 0) {  // one timed sleep (park_for_next); a return is a re-check
            const std::chrono::nanoseconds d = timeout_;
            timeout_ = {};
            if (token_.exchange(0, A::acquire) == 0) {
                A::futex_wait_for(token_, 0, d);
                token_.exchange(0, A::acquire);  // a wake-up meanwhile: the caller re-checks anyway
            }
            return;
        }
        while (token_.exchange(0, A::acquire) == 0) A::futex_wait(token_, 0);
    }

    // Owner only: the next park() returns after about d even if nobody unparks (once; zero
    // disarms). work_stealing.cpp's worker watching another worker's LIFO slot (lifo_watch.hpp).
    void park_for_next(std::chrono::nanoseconds d) noexcept { timeout_ = d; }

    // Owner only. Sleeps inside s->poll(true) instead of on the futex, so that an I/O event
    // wakes this worker directly; unpark() interrupts the poll. Returns false without sleeping
    // when s will not let this thread poll (another does): the caller then park()s. Like
    // park(), a return may be spurious (the poll found events, or a stale interruption).
    // may_spin: the poll may look without blocking for a while first (task_source::poll).
    bool park_polling(source_type* s, bool may_spin) noexcept {
        polling_.store(s, A::seq_cst);
        if (token_.exchange(0, A::seq_cst) != 0) {  // woken already
            polling_.store(nullptr, A::relaxed);
            return true;
        }
        const bool polled = s->poll(true, &token_, may_spin);
        polling_.store(nullptr, A::seq_cst);
        if (polled) token_.exchange(0, A::acquire);  // the interruption, if any
        return polled;
    }

private:
    static void on_notify(continuation* c) noexcept { static_cast<basic_parker*>(c)->unpark(); }

    // 1 = a wake-up is pending. Set by unpark() (any thread), cleared by the owner.
    typename A::futex_word token_{0};
    // The source the owner may sleep in, if any. Written by the owner, read by unpark().
    typename A::template atomic<source_type*> polling_{nullptr};
    // The next park()'s timeout (zero: none). Owner only.
    std::chrono::nanoseconds timeout_{0};
};

using parker = basic_parker<std_atomics, task_source>;

}  // namespace taskport::detail
