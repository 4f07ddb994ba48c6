// test_hooks.hpp — points where a test can widen a race window in the scheduler, or make a
// worker thread fail to start. Null (the default) everywhere but in tests that set them.
//
// Each hook is a function pointer read with one relaxed load on a path that is either cold
// (starting threads, refusing work) or about to make a system call (a worker going to sleep),
// so an unset hook costs nothing measurable. Tests set a hook before the runtime that uses it
// exists and clear it after it is gone (relaxed suffices: thread creation orders it).
#pragma once

#include <atomic>
#include <cstddef>

namespace taskport::detail {

struct scheduler_test_hooks {
    // work_stealing::schedule() from outside the workers, between counting itself in flight
    // and reading closed_: the window a submission racing shutdown() sits in.
    std::atomic<void (*)()> submit_in_flight{nullptr};
    // A worker about to sleep (its re-check found nothing): worker index, top level or not.
    std::atomic<void (*)(std::size_t, bool)> before_sleep{nullptr};
    // A worker entering its two-phase wait, still searching or not, top level or not.
    std::atomic<void (*)(std::size_t, bool, bool)> park_enter{nullptr};
    // A worker about to sleep on its futex (not in the poller: the decision is made, nothing
    // but its wake-up token ends that sleep now): worker index, top level or not.
    std::atomic<void (*)(std::size_t, bool)> before_futex_sleep{nullptr};
    // Before starting worker thread i: returning true makes that start fail as if the system
    // refused a thread (std::system_error, resource_unavailable_try_again).
    std::atomic<bool (*)(std::size_t)> fail_thread_start{nullptr};
};

scheduler_test_hooks& test_hooks() noexcept;

template <class Hook, class... A>
inline void call_test_hook(const std::atomic<Hook>& h, A... a) noexcept {
    if (Hook f = h.load(std::memory_order_relaxed)) f(a...);
}

}  // namespace taskport::detail
