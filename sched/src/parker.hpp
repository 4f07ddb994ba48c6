// parker.hpp — how one worker sleeps: a single wake-up token on a futex word.
//
// unpark() leaves a token and wakes the sleeper; park() consumes a token, sleeping until one is
// there. A token left while the worker was awake makes its next park() return at once (a
// spurious wake-up, which every caller tolerates by re-checking its queues). No timeouts, no
// polling: a parked worker uses no CPU until someone unparks it.
//
// The parker is also a continuation, so a worker waiting for a future inside help_until() is
// woken by the future's completion through the same token.
#pragma once

#include <taskport/sched/futex.hpp>
#include <taskport/sched/task_node.hpp>

#include <atomic>
#include <cstdint>

namespace taskport::detail {

class parker final : public continuation {
public:
    parker() noexcept : continuation(&parker::on_notify) {}

    // Any thread.
    void unpark() noexcept {
        // release: what the unparker wrote before is visible to the woken worker.
        if (token_.exchange(1, std::memory_order_release) == 0) futex_wake_one(token_);
    }

    // Owner only.
    void park() noexcept {
        while (token_.exchange(0, std::memory_order_acquire) == 0)
            futex_wait(token_, 0);
    }

private:
    static void on_notify(continuation* c) noexcept { static_cast<parker*>(c)->unpark(); }

    std::atomic<std::uint32_t> token_{0};  // 1 = a wake-up is pending; written by both sides
};

}  // namespace taskport::detail
