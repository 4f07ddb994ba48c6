// registrations.hpp — counts the waiters that register with one future's state, through the
// library's test hook (detail::wait_registered_hook), so that a test completes the future only
// once every waiter it started is really waiting (test_future, test_future_wait).
#pragma once

#include "test_util.hpp"

#include <taskport/future.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace tp_test {

// Counts registrations with one state (the library's wait_registered_hook); optionally holds the
// registering thread until a deadline has passed, so that its timed wait times out with its
// registration still in place.
class registrations {
public:
    explicit registrations(const void* state,
                           std::chrono::steady_clock::time_point hold_until = {}) {
        count_.store(0);
        hold_until_ = hold_until;
        watched_.store(state);
        taskport::detail::wait_registered_hook.store(&registrations::on_registered);
    }
    ~registrations() {
        taskport::detail::wait_registered_hook.store(nullptr);
        watched_.store(nullptr);
    }
    registrations(const registrations&) = delete;
    registrations& operator=(const registrations&) = delete;
    bool wait_for(int n) const {
        return tp_test::eventually([n] { return count_.load() >= n; });
    }
    int count() const { return count_.load(); }

private:
    static void on_registered(const void* state) noexcept {
        if (state != watched_.load()) return;
        count_.fetch_add(1);
        // The registering thread waits out its deadline here (the deadline is the event).
        if (hold_until_ != std::chrono::steady_clock::time_point{})
            std::this_thread::sleep_until(hold_until_);
    }
    static inline std::atomic<const void*> watched_{nullptr};
    static inline std::atomic<int> count_{0};
    static inline std::chrono::steady_clock::time_point hold_until_{};
};

}  // namespace tp_test
