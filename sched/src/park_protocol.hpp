// park_protocol.hpp — the whole park protocol of the work-stealing scheduler in one place: how a
// worker goes to sleep and is woken (idle.hpp, parker.hpp), when the pool ends, and who wakes
// whom. work_stealing.cpp owns the queues and calls these steps; tests/model/park_model.cpp runs
// the same steps under Relacy against a model pool. The I/O side's part, the poll role and the
// wake-up token's re-reads, is taskport/sched/poll_role.hpp (io's reactor calls it; the model
// runs it too); parker.hpp's park_polling() is where the two halves meet.
//
// A worker's two-phase wait, park():
//   prepare: list itself as a sleeper, end its search, count itself idle (top level only);
//   fence (seq_cst), re-check: terminate_, its wait target, every queue (pool.work_visible());
//   the last worker idle at top level, with closed_ set, nothing in flight and nothing queued,
//   sets terminate_ and wakes everyone;
//   commit: sleep in the source's poller when it may (park_polling), else on its futex; or
//   cancel when the re-check found something.
//
// Invariants (each is what one lost wake-up of this project's history broke):
//   1. Work published, then notify_one(): either the producer sees the sleeper or the sleeper's
//      re-check sees the work (idle.hpp). A producer skips its wake-up while someone searches,
//      so a searcher stays on its core until it finds work or parks: it pauses between its
//      rounds and never yields the core (a CPU-bound thread elsewhere on the machine would keep
//      it for a scheduler tick, 4 ms, while the skipped work and any I/O event wait; 033a4b9's
//      search yielded: test_io_tcp's get()-read case at 3.7-7.2 s beside two busy processes).
//   2. Whoever ends a search owns what such a skipped producer published: leave_search() wakes a
//      successor when it was the last searcher; park() ends the search before its re-check; and
//      a worker leaving help_until() to return to its task — which may run for long — wakes
//      another when work is visible (leave_wait()), since its re-check or poll may have seen work
//      it now leaves behind. (Broken: ddbed8c for work its poll found; the io_tcp
//      TASKPORT_WORKER_POLL=0 hang for work its futex park's re-check saw.)
//   3. The termination condition (closed_, inflight_ == 0, all n workers idle at top level, no
//      work) is re-evaluated by a worker after every change that can make it true: the worker
//      that becomes idle checks it itself; close() wakes all; the last outside submission in
//      flight after close wakes all (leave_submit(); broken before: a refused submission left
//      without a wake-up, and shutdown() joined sleeping workers for ever); the worker that
//      takes the last task parks again afterwards.
//   4. A worker asleep in the source's poller is woken through the source (parker.hpp).
//   5. While operations wait for I/O events and a worker is idle, a worker sleeps in the poller.
//      A worker that was idle inside help_until() (it parked) and goes back to its task, which
//      may run, or block waiting for that very I/O, for long, wakes a sleeper when the source
//      has operations pending and nobody sleeps in the poller (needs_poller()), as Go's threads
//      leaving netpoll call wakep(): the others may sleep on their futex, where no event reaches
//      them (one parked while this worker held the poller, or found a momentary holder), and
//      only the reactor's backstop (1-10 ms) would have polled. (Broken: test_io_tcp's "a read
//      found by a worker waiting in get()" at 21.8 s under load, its rounds each waiting for the
//      backstop; the [handoff] test makes it certain with the backstop paused.) At top level the
//      leaver runs tasks and polls between them, then parks in the poller again.
//
// Spinning (a heuristic, no invariant rests on it): a worker sleeping in the poller may first
// look for events without blocking (the reactor's adaptive_spin) only while every other worker
// sleeps too, or when outside threads feed it (slot::outside_fed: the spin catches their next
// post's wake-up token). While another runs tasks, the spin would take a core from it and from
// whoever produces the events (the peers of a server), and the running worker's own polls see
// events anyway: Tokio's driver never spins, and a worker that sleeps leaves its core to the peer.
#pragma once

#include "idle.hpp"
#include "test_hooks.hpp"

#include <cstddef>
#include <cstdint>

namespace taskport::detail {

template <class A, class Source>
class park_protocol {
public:
    using idle_type = basic_idle_set<A, Source>;
    using parker_type = basic_parker<A, Source>;
    using source_type = Source;

    // One worker's part, touched by that worker only.
    struct slot {
        std::size_t index = 0;
        bool searching = false;  // mirrored in idle_type's num_searching_
        // Its last batch came from outside threads (the injector): it keeps lingering (the
        // search's rounds, the spin) for their next post, which would else cost them a wake-up.
        bool outside_fed = false;
    };

    explicit park_protocol(std::size_t workers) : n_(workers), idle_(workers) {}

    idle_type& idle() noexcept { return idle_; }
    std::uint64_t wakeups() const noexcept { return idle_.wakeups(); }
    parker_type& parker_of(std::size_t w) noexcept { return idle_.parker_of(w); }

    // ---- producers ----

    // After publishing work (seq_cst): wake one sleeper unless someone searches (invariant 1).
    void notify() noexcept { idle_.notify_one(); }

    // An outside submission: counts itself in flight, then reads closed_ (seq_cst both: a
    // worker that reads closed_ set and inflight_ == 0 knows no submission can still land).
    // Returns false when the pool is closed. Either way the caller calls leave_submit() after
    // it has published its work (or refused it).
    bool enter_submit() noexcept {
        inflight_.fetch_add(1, A::seq_cst);
        call_test_hook(test_hooks().submit_in_flight);
        return !closed_.load(A::seq_cst);
    }
    // Invariant 3: the last submission in flight after close wakes every worker, one of which
    // may have gone to sleep unable to end the pool because of it.
    void leave_submit() noexcept {
        if (inflight_.fetch_sub(1, A::seq_cst) == 1 &&
            closed_.load(A::seq_cst)) {
#ifndef TASKPORT_PLANT_REFUSED_NO_WAKE
            idle_.notify_all();
#endif
        }
    }

    // Stop outside submissions; the pool ends once idle (invariant 3: wake all to re-check).
    void close() noexcept {
        closed_.store(true, A::seq_cst);
        idle_.notify_all();
    }
    // The pool could not start all its workers: those running exit at once (they would wait
    // for n idle workers that do not exist). Nothing was submitted yet.
    void abandon() noexcept {
        closed_.store(true, A::seq_cst);
        terminate_.store(true, A::seq_cst);
        idle_.notify_all();
    }
    // seq_cst: io's completion_queue::push() pairs this read with its seq_cst announcement
    // (pushers_) against the last worker's reads, Dekker-style; acquire would not order them.
    bool closed() const noexcept { return closed_.load(A::seq_cst); }

    // ---- workers ----

    void begin_search(slot& w) noexcept {
        if (w.searching) return;
        w.searching = true;
        idle_.begin_search();
    }
    // Invariant 2: the last searcher to stop (it found work, or gives up) wakes a successor.
    void leave_search(slot& w) noexcept {
        if (!w.searching) return;
        w.searching = false;
        if (idle_.end_search()) idle_.notify_one();
    }
    // Whether every other worker is listed as a sleeper, for a worker that is not listed itself
    // (searching): then new work comes only with a wake-up (a notify, or an event in the poller
    // one of them sleeps in), so more search rounds would find nothing. A hint (relaxed).
    bool others_asleep() const noexcept { return idle_.sleepers() + 1 >= n_; }

    // help_until() ends (its target is ready): `parked` says whether it went through park().
    template <class Pool>
    void leave_wait(slot& w, bool parked, Pool& pool) noexcept {
        leave_search(w);
#if !defined(TASKPORT_PLANT_HANDOFF_POLLED_ONLY) && !defined(TASKPORT_PLANT_HANDOFF_NONE)
        bool wake = parked && pool.work_visible();  // invariant 2
#else
        bool wake = false;
#endif
#ifndef TASKPORT_PLANT_POLLER_NOT_HANDED_ON
        // Invariant 5: operations wait for events and nobody sleeps in the poller.
        if (!wake && parked) {
            source_type* src = pool.pollable_source();
            wake = src && src->needs_poller();
        }
#endif
        if (wake) idle_.notify_one();
    }

    // The two-phase wait. wt: the target of help_until (ready() says the wait is over), or null
    // at top level. Pool: work_visible() (a seq_cst look at every queue), pollable_source()
    // (the source to sleep in, or null), count_park(). Returns false when the worker must exit.
    template <class Pool, class Target>
    bool park(slot& w, const Target* wt, Pool& pool) {
        const bool top = wt == nullptr;
        call_test_hook(test_hooks().park_enter, w.index, top, w.searching);
        idle_.prepare(w.index);
        if (w.searching) {  // ended before the re-check, so the re-check covers its work
            w.searching = false;
            idle_.end_search();
        }
        if (top) idle_count_.fetch_add(1, A::seq_cst);
        A::fence(A::seq_cst);

        bool cancel = terminate_.load(A::seq_cst) || (wt && wt->ready()) ||
                      pool.work_visible();
        if (!cancel && top && closed_.load(A::seq_cst) &&
            idle_count_.load(A::seq_cst) == n_ &&
            inflight_.load(A::seq_cst) == 0 && !pool.work_visible()) {
            terminate_.store(true, A::seq_cst);
            idle_.notify_all();
            cancel = true;
        }
        [[maybe_unused]] source_type* polled = nullptr;
        if (!cancel) {
            pool.count_park();
            // With a pollable source and nobody polling it yet, sleep in its poller: an I/O
            // event then wakes this worker, which runs the completion itself. Else the futex.
            parker_type& p = idle_.parker_of(w.index);
            source_type* src = pool.pollable_source();
            call_test_hook(test_hooks().before_sleep, w.index, top);
            // Listed itself: all asleep when every worker is (see "Spinning" above).
            const bool may_spin = w.outside_fed || idle_.sleepers() >= n_;
            if (src && p.park_polling(src, may_spin)) {
                polled = src;
            } else {
                call_test_hook(test_hooks().before_futex_sleep, w.index, top);
                p.park();
            }
        }
        if (idle_.finish(w.index)) w.searching = true;
#if defined(TASKPORT_PLANT_HANDOFF_POLLED_ONLY)
        // The rule before leave_wait(): only what this worker's own poll found was handed on.
        if (polled && !top && !polled->empty()) idle_.notify_one();
#endif
        // What a poll found was queued without a wake-up, for this worker to take: at top level
        // it does next; help_until hands it on if it returns to its task instead (leave_wait).
        if (top) idle_count_.fetch_sub(1, A::seq_cst);
        return !(top && terminate_.load(A::seq_cst));
    }

private:
    const std::size_t n_;
    idle_type idle_;
    // Set once by close()/abandon(); read by producers (enter_submit) and parking workers.
    alignas(64) typename A::template atomic<bool> closed_{false};
    // Set once by the last idle worker (or abandon()); read by parking workers.
    typename A::template atomic<bool> terminate_{false};
    // Outside submissions under way (enter_submit .. leave_submit); read by parking workers.
    alignas(64) typename A::template atomic<std::size_t> inflight_{0};
    // Workers idle at top level (inside park(w, nullptr)); each reads it after its own +1.
    alignas(64) typename A::template atomic<std::size_t> idle_count_{0};
};

}  // namespace taskport::detail
