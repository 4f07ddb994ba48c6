// futex_atomic.cpp — futex.hpp on C++20 atomic wait/notify (every system but Windows).
#include <taskport/sched/futex.hpp>

#include <thread>

namespace taskport::detail {

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t old) noexcept {
    w.wait(old, std::memory_order_acquire);
}

// std::atomic::wait has no timeout: give the core away once and let the caller re-check (a
// watching worker then behaves as one that keeps searching, work_stealing.cpp).
void futex_wait_for(std::atomic<std::uint32_t>& w, std::uint32_t old,
                    std::chrono::nanoseconds) noexcept {
    if (w.load(std::memory_order_acquire) == old) std::this_thread::yield();
}

void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept { w.notify_one(); }

void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept { w.notify_all(); }

}  // namespace taskport::detail
