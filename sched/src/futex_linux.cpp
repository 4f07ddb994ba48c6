// futex_linux.cpp — futex.hpp on Linux: the futex system call itself (FUTEX_WAIT/WAKE_PRIVATE).
//
// Not std::atomic::wait: libstdc++ 12's wait first spins, calling sched_yield four times,
// before it sleeps. On a machine whose cores are busy with other processes each sched_yield
// can give the core away for a whole time slice of theirs (milliseconds), and every hand-off
// between a worker and a waiting thread paid that: test_task_group's 90,000 outside waits took
// 12-20 s instead of 0.3 s beside two busy processes (`yes > /dev/null`), up to 126 s while
// CI compiled. Sleeping at once costs a system call where the spin might have caught the
// change; the callers spin themselves where that pays (park_protocol's search, the poll spin).
#include <taskport/sched/futex.hpp>

#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace taskport::detail {

namespace {

long futex(std::atomic<std::uint32_t>& w, int op, std::uint32_t val,
           const timespec* timeout = nullptr) noexcept {
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), op, val, timeout, nullptr, 0);
}

}  // namespace

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t old) noexcept {
    // acquire: a return that sees the change sees what the waker wrote before it. The kernel
    // compares w with old under its own lock, so a wake after the change cannot be lost; EAGAIN
    // (w changed already), EINTR and spurious returns are all "re-check" to the caller.
    if (w.load(std::memory_order_acquire) != old) return;
    futex(w, FUTEX_WAIT_PRIVATE, old);
    (void)w.load(std::memory_order_acquire);
}

void futex_wait_for(std::atomic<std::uint32_t>& w, std::uint32_t old,
                    std::chrono::nanoseconds d) noexcept {
    if (w.load(std::memory_order_acquire) != old) return;
    // FUTEX_WAIT's timeout is relative (CLOCK_MONOTONIC); ETIMEDOUT is one more "re-check".
    const auto n = d.count() > 0 ? d.count() : 1;
    const timespec ts{static_cast<time_t>(n / 1'000'000'000), static_cast<long>(n % 1'000'000'000)};
    futex(w, FUTEX_WAIT_PRIVATE, old, &ts);
    (void)w.load(std::memory_order_acquire);
}

void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept { futex(w, FUTEX_WAKE_PRIVATE, 1); }

void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept {
    futex(w, FUTEX_WAKE_PRIVATE, INT_MAX);
}

}  // namespace taskport::detail
