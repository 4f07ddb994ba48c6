// futex_atomic.cpp — futex.hpp on C++20 atomic wait/notify (every system but Windows).
#include <taskport/sched/futex.hpp>

namespace taskport::detail {

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t old) noexcept {
    w.wait(old, std::memory_order_acquire);
}

void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept { w.notify_one(); }

void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept { w.notify_all(); }

}  // namespace taskport::detail
