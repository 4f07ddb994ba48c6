// taskport/sched/spin_lock.hpp — the one small spin lock the shared queues use (the injector's
// lanes, io's completion queue): test-and-test-and-set, for critical sections of a few pointer
// moves. Invariant: whoever returns from lock() holds it until its unlock(); the release store
// of unlock() and the acquire exchange of lock() order one critical section before the next.
// A waiter backs off exponentially (1, 2, 4 ... 64 pauses between looks), then yields its core
// between looks. Parameterised on the atomics policy (taskport/sched/atomics.hpp) so the Relacy
// models of the queues check it too.
#pragma once

#include <taskport/sched/atomics.hpp>

namespace taskport::detail {

template <class A = std_atomics>
class basic_spin_lock {
public:
    void lock() noexcept {
        // acquire: pairs with unlock()'s release; the previous holder's writes are visible.
        if (!flag_.exchange(true, A::acquire)) return;
        lock_contended();
    }
    bool try_lock() noexcept { return !flag_.exchange(true, A::acquire); }
    void unlock() noexcept {
        // release: publishes the critical section's writes to the next lock().
#ifdef TASKPORT_PLANT_SPIN_LOCK_RELAXED_UNLOCK
        flag_.store(false, A::relaxed);
#else
        flag_.store(false, A::release);
#endif
    }

private:
    // Pauses between two looks at the flag, doubling from 1 up to this; after that a waiter
    // gives its core away (yield) between looks. Backing off keeps the waiter's loads and
    // exchanges from pulling the line away from the holder every few nanoseconds: the holder
    // finishes several short critical sections in its own cache instead of one per round trip.
    // (bench_channel, two workers both using one channel: 1M values in 55-112 ms instead of
    // 187-286 ms with the former fixed 64-pause spin between looks, 69,790 sched_yields in
    // the eight mixes instead of 111,513.)
    static constexpr unsigned max_backoff = 64;

    [[gnu::noinline]] void lock_contended() noexcept {
        unsigned backoff = 1;
        for (;;) {
            for (unsigned i = 0; i < backoff; ++i) A::pause();
            // relaxed: only a hint to retry the exchange (acquire, as in lock()).
#ifdef TASKPORT_PLANT_SPIN_LOCK_RELAXED_RETRY  // test only: a contended lock() acquires nothing
            if (!flag_.load(A::relaxed) && !flag_.exchange(true, A::relaxed)) return;
#else
            if (!flag_.load(A::relaxed) && !flag_.exchange(true, A::acquire)) return;
#endif
            if (backoff < max_backoff)
                backoff <<= 1;
            else
                A::yield();
        }
    }

    // Written by lock() (exchange) and unlock() (store) of the holder; read by waiters.
    typename A::template atomic<bool> flag_{false};
};

using spin_lock = basic_spin_lock<>;

}  // namespace taskport::detail
