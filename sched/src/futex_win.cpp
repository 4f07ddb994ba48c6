// futex_win.cpp — futex.hpp on Windows: WaitOnAddress / WakeByAddressSingle (Windows 8+,
// synchronization library). A std::atomic<std::uint32_t> is a plain 32-bit word there.
#include <taskport/sched/futex.hpp>

#include <windows.h>

namespace taskport::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t old) noexcept {
    ::WaitOnAddress(reinterpret_cast<volatile void*>(&w), &old, sizeof old, INFINITE);
}

void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept {
    ::WakeByAddressSingle(reinterpret_cast<void*>(&w));
}

void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept {
    ::WakeByAddressAll(reinterpret_cast<void*>(&w));
}

}  // namespace taskport::detail
