// taskport/detail/take_back.hpp — when a take-back may complete a future's state privately.
//
// A waiter on a worker that owns the only future of a state and consumes it (get(), co_await of
// an rvalue) takes the state's unstarted task back and runs it nested (future.hpp:
// state_base::take_back). If the task is the only other holder (count 2: the caller's future and
// the task) and nobody is registered, no other thread can reach the state while the task runs
// there: only holders add references or register, the caller is busy, and the task is running
// here. Its completion on this thread (the usual case) is then a plain store of `ready`
// (waiter_list::private_complete) and the task's reference passes to the caller without a
// decrement (basic_refcount::set_private). A task that suspends meanwhile and completes later,
// here or on another thread, completes the usual way.
//
// Both reads are relaxed: a reference or a registration that another thread added reached this
// thread with the future (the caller holds it), so it is visible here; any added later can only
// come from the caller or the task, neither of which does so meanwhile.
// Checked by tests/model/future_refcount_model.cpp (the private take-back suites), with the real
// refcount.hpp and waiter_list.hpp. Planted bug for the model (never defined in a build):
// TASKPORT_PLANT_PRIVATE_NOT_SOLE (the count not checked: a third holder's registration is
// overwritten by the private store and never notified).
#pragma once

#include <taskport/detail/refcount.hpp>
#include <taskport/detail/waiter_list.hpp>

namespace taskport::detail {

template <class P>
bool private_take_back_allowed(const basic_refcount<P>& refs,
                               const waiter_list<P>& waiters) noexcept {
#if defined(TASKPORT_PLANT_PRIVATE_NOT_SOLE)
    (void)refs;
    return waiters.idle();
#else
    return refs.count() == 2 && waiters.idle();
#endif
}

}  // namespace taskport::detail
