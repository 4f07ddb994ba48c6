// futex_atomic.cpp — futex.hpp on C++20 atomic wait/notify (every system but Linux and Windows:
// macOS, the BSDs).
//
// std::atomic::wait has no timeout, so futex_wait_for sleeps on a condition variable of a small
// table hashed by the word's address. Invariant (no lost wake-up): a timed sleeper counts itself
// in its bucket (seq_cst), then, under the bucket's lock, re-reads the word and sleeps on the
// condition variable (which releases the lock atomically); a waker, after its caller changed the
// word, issues a seq_cst fence and reads the count: either it sees the sleeper, and notifies
// under the lock (so after the sleeper's re-read or before it: the sleeper then sees the change),
// or the sleeper's re-read, ordered after the fence, sees the change. Wakers pay a fence and a
// load when no timed sleeper exists (the common case).
#include <taskport/sched/futex.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace taskport::detail {

namespace {

struct timed_bucket {
    std::mutex mu;
    std::condition_variable cv;
    // Timed sleepers of any word hashed here. Written by them (seq_cst), read by wakers.
    std::atomic<std::uint32_t> sleepers{0};
};

timed_bucket& bucket_of(const void* w) noexcept {
    static timed_bucket table[16];
    const auto a = reinterpret_cast<std::uintptr_t>(w);
    return table[(a >> 4 ^ a >> 9) % 16];
}

void wake_timed(std::atomic<std::uint32_t>& w) noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the caller's change, then the count
    timed_bucket& b = bucket_of(&w);
    if (b.sleepers.load(std::memory_order_seq_cst) == 0) return;
    std::lock_guard<std::mutex> g(b.mu);
    b.cv.notify_all();  // every sleeper of the bucket re-checks its own word
}

}  // namespace

void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t old) noexcept {
    w.wait(old, std::memory_order_acquire);
}

void futex_wait_for(std::atomic<std::uint32_t>& w, std::uint32_t old,
                    std::chrono::nanoseconds d) noexcept {
    if (w.load(std::memory_order_acquire) != old) return;
    timed_bucket& b = bucket_of(&w);
    b.sleepers.fetch_add(1, std::memory_order_seq_cst);
    {
        std::unique_lock<std::mutex> g(b.mu);
        // seq_cst: the Dekker pair with wake_timed()'s fence and count.
        if (w.load(std::memory_order_seq_cst) == old)
            // Capped (condition_variable adds d to its clock's now(): a huge d would wrap);
            // a return (woken, timed out, spurious) is a re-check for the caller anyway.
            b.cv.wait_for(g, d < std::chrono::hours(24) ? d : std::chrono::nanoseconds(std::chrono::hours(24)));
    }
    b.sleepers.fetch_sub(1, std::memory_order_relaxed);
    (void)w.load(std::memory_order_acquire);
}

void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept {
    w.notify_one();
    wake_timed(w);
}

void futex_wake_all(std::atomic<std::uint32_t>& w) noexcept {
    w.notify_all();
    wake_timed(w);
}

}  // namespace taskport::detail
