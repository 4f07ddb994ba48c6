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

#include <taskport/sched/executor.hpp>
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
        // seq_cst (not only release: what the unparker wrote must be visible to the woken
        // worker): a Dekker pair with park_polling() over token_ and polling_.
        if (token_.exchange(1, std::memory_order_seq_cst) == 0) {
            if (task_source* s = polling_.load(std::memory_order_seq_cst))
                s->interrupt();  // asleep in the source's poller, not on the futex
            else
                futex_wake_one(token_);
        }
    }

    // Owner only.
    void park() noexcept {
        while (token_.exchange(0, std::memory_order_acquire) == 0)
            futex_wait(token_, 0);
    }

    // Owner only. Sleeps inside s->poll(true) instead of on the futex, so that an I/O event
    // wakes this worker directly; unpark() interrupts the poll. Returns false without sleeping
    // when s will not let this thread poll (another does): the caller then park()s. Like
    // park(), a return may be spurious (the poll found events, or a stale interruption).
    bool park_polling(task_source* s) noexcept {
        polling_.store(s, std::memory_order_seq_cst);
        if (token_.exchange(0, std::memory_order_seq_cst) != 0) {  // woken already
            polling_.store(nullptr, std::memory_order_relaxed);
            return true;
        }
        const bool polled = s->poll(true, &token_);
        polling_.store(nullptr, std::memory_order_seq_cst);
        if (polled) token_.exchange(0, std::memory_order_acquire);  // the interruption, if any
        return polled;
    }

private:
    static void on_notify(continuation* c) noexcept { static_cast<parker*>(c)->unpark(); }

    std::atomic<std::uint32_t> token_{0};  // 1 = a wake-up is pending; written by both sides
    std::atomic<task_source*> polling_{nullptr};  // the source the owner sleeps in, if any
};

}  // namespace taskport::detail
