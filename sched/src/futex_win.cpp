// futex_win.cpp — futex.hpp on Windows: WaitOnAddress / WakeByAddressSingle (Windows 8+,
// synchronization library). A std::atomic<std::uint32_t> is a plain 32-bit word there.
#include <taskport/sched/futex.hpp>

#include <windows.h>

namespace taskport::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t old) noexcept {
    ::WaitOnAddress(reinterpret_cast<volatile void*>(&w), &old, sizeof old, INFINITE);
}

void futex_wait_for(std::atomic<std::uint32_t>& w, std::uint32_t old,
                    std::chrono::nanoseconds d) noexcept {
    // Milliseconds, rounded up (0 would not sleep at all); the system timer may stretch it.
    // Capped below INFINITE (0xFFFFFFFF): a longer d (a wait_for(hours::max()) round) must not
    // wrap into a short or an infinite sleep; about 49 days, then the caller re-checks.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
    const DWORD cap = 0xFFFFFFFE;
    const DWORD t = ms <= 0 ? 1 : ms >= static_cast<long long>(cap) ? cap : static_cast<DWORD>(ms);
    ::WaitOnAddress(reinterpret_cast<volatile void*>(&w), &old, sizeof old, t);
}

void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept {
    ::WakeByAddressSingle(reinterpret_cast<void*>(&w));
}

void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept {
    ::WakeByAddressAll(reinterpret_cast<void*>(&w));
}

}  // namespace taskport::detail
