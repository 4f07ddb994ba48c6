// taskport/sched/futex.hpp — sleep on a 32-bit word until another thread changes it and wakes the sleeper.
//
// futex_wait(w, old) returns when w may no longer hold old (spurious returns allowed: callers
// re-check); futex_wait_for(w, old, d) likewise, or once about d has passed (a worker watching
// another's LIFO slot, work_stealing.cpp); futex_wake_one/all(w) wake sleepers of w after the
// caller has changed it. Use these,
// not std::atomic::wait/notify, anywhere in taskport.
// futex_linux.cpp calls the futex system call itself: libstdc++'s std::atomic::wait spins with
// sched_yield first, which under CPU contention gives the core away for whole time slices
// (see that file). futex_win.cpp uses WaitOnAddress, because libstdc++ 12's fallback for
// systems without a futex (mingw-w64) loses wake-ups: a two-thread ping-pong on it hangs.
// futex_atomic.cpp (macOS, BSD) uses std::atomic::wait/notify_one, and a condition variable table
// for the timed wait (std::atomic::wait has no timeout). meson picks the file.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace taskport::detail {

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t old) noexcept;
/// As futex_wait, but returns after about d at the latest (the system's timer granularity: the
/// timer slack on Linux, a millisecond or more on Windows; futex_atomic.cpp sleeps on a
/// condition variable that the wakes also notify). Spurious returns allowed; never fails.
void futex_wait_for(std::atomic<std::uint32_t>& w, std::uint32_t old,
                    std::chrono::nanoseconds d) noexcept;
void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept;
void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept;

}  // namespace taskport::detail
