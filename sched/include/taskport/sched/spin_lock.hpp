// taskport/sched/spin_lock.hpp — the one small spin lock the shared queues use (the injector's
// lanes, io's completion queue): test-and-test-and-set, for critical sections of a few pointer
// moves. Invariant: whoever returns from lock() holds it until its unlock(); the release store
// of unlock() and the acquire exchange of lock() order one critical section before the next.
// Parameterised on the atomics policy (taskport/sched/atomics.hpp) so the Relacy models of the
// queues check it too.
#pragma once

#include <taskport/sched/atomics.hpp>

namespace taskport::detail {

template <class A = std_atomics>
class basic_spin_lock {
public:
    void lock() noexcept {
        for (;;) {
            // acquire: pairs with unlock()'s release; the previous holder's writes are visible.
            if (!flag_.exchange(true, A::acquire)) return;
            int spins = 0;
            while (flag_.load(A::relaxed)) {  // relaxed: only a hint to retry the exchange
                if (++spins < 64) {
                    A::pause();
                } else {
                    A::yield();
                    spins = 0;
                }
            }
        }
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
    // Written by lock() (exchange) and unlock() (store) of the holder; read by waiters.
    typename A::template atomic<bool> flag_{false};
};

using spin_lock = basic_spin_lock<>;

}  // namespace taskport::detail
