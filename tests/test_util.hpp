// test_util.hpp — what the Catch2 tests share: iteration scaling under sanitizers, waiting for an
// event with a deadline that only fails a hung test, and a watchdog for calls that cannot time out.
//
// No test sleeps to let something happen, and no test asserts on timing: a test waits for the
// event itself (a counter reaching its target, a flag, a future), and the deadline below is there
// only so that a lost wake-up fails the test with a message instead of hanging CI.
#pragma once

#include <catch2/catch.hpp>

#include <taskport/taskport.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>

// For a test that cannot apply on this system: says why on stdout (meson's test log) and
// returns from the test case (Catch2 v2 has no skip of its own).
#define TP_SKIP(reason)                                                                         \
    do {                                                                                        \
        std::printf("SKIP \"%s\": %s\n", Catch::getResultCapture().getCurrentTestName().c_str(), \
                    reason);                                                                    \
        return;                                                                                 \
    } while (0)

namespace tp_test {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool tsan = true;
#else
inline constexpr bool tsan = false;
#endif
#else
inline constexpr bool tsan = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool asan = true;
#else
inline constexpr bool asan = false;
#endif
#else
inline constexpr bool asan = false;
#endif

// Iteration counts: full size in a plain build, scaled down under sanitizers (ThreadSanitizer is
// 5-15x slower and the suite must run on 2 cores in minutes). TASKPORT_TEST_SCALE (a positive
// number) multiplies on top, e.g. TASKPORT_TEST_SCALE=10 for a long soak.
inline double env_scale() {
    if (const char* e = std::getenv("TASKPORT_TEST_SCALE"); e && *e) {
        double v = std::atof(e);
        if (v > 0) return v;
    }
    return 1.0;
}
inline long scaled(long n) {
    double f = env_scale();
    if (tsan)
        f /= 10;
    else if (asan)
        f /= 4;
    long v = static_cast<long>(static_cast<double>(n) * f);
    return v < 1 ? 1 : v;
}

// The deadline that fails a hung test. Generous: it never decides a passing run.
inline constexpr std::chrono::seconds hang_deadline{120};

// Polls pred (yielding) until it is true or the hang deadline passes. For conditions that have no
// notification of their own (a stats counter); returns pred's final value.
template <class Pred>
bool eventually(Pred pred) {
    const auto until = std::chrono::steady_clock::now() + hang_deadline;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return pred();
        std::this_thread::yield();
    }
    return true;
}

// Requires (Catch2's REQUIRE) that pred becomes true before the hang deadline: for a test waiting
// for a state that has no notification of its own (a primitive's waiter count).
template <class Pred>
void wait_until(Pred pred) {
    REQUIRE(eventually(pred));
}

// co_await times_out(d, op) (or rt.spawn(times_out(d, op))): op under with_timeout(d, op); true
// when that threw timed_out, false when op completed first. Other errors propagate. op is a
// waiting operation (sem.acquire(), ch.receive(), ...), moved into the task before it starts.
template <class Op>
taskport::task<bool> times_out(std::chrono::milliseconds d, Op op) {
    bool timed_out = false;
    try {
        co_await taskport::with_timeout(d, std::move(op));
    } catch (const std::system_error& e) {
        timed_out = e.code() == std::errc::timed_out;
    }
    co_return timed_out;
}

// A counter tasks bump and a test thread waits on (blocking, no polling).
class counter_latch {
public:
    void arrive(long n = 1) {
        std::lock_guard<std::mutex> g(mu_);
        count_ += n;
        cv_.notify_all();
    }
    long count() const {
        std::lock_guard<std::mutex> g(mu_);
        return count_;
    }
    // True when count() >= target before the hang deadline.
    bool wait_for(long target) {
        std::unique_lock<std::mutex> g(mu_);
        return cv_.wait_for(g, hang_deadline, [&] { return count_ >= target; });
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    long count_ = 0;
};

// A one-shot gate: a task blocks its worker thread on it (deliberately *not* through taskport,
// so the worker cannot help with other tasks meanwhile) until the test opens it.
class gate {
public:
    void open() {
        std::lock_guard<std::mutex> g(mu_);
        open_ = true;
        cv_.notify_all();
    }
    bool wait() {
        std::unique_lock<std::mutex> g(mu_);
        return cv_.wait_for(g, hang_deadline, [&] { return open_; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
};

// A reusable barrier for the test's own threads, on a mutex and a condition variable. Not
// std::barrier: libstdc++ 12's atomic wait, which std::barrier uses, loses wake-ups where it has
// no futex (mingw-w64: it checks the value before taking the mutex that notify does not take,
// GCC PR libstdc++/106183), and a test thread then sleeps forever at the barrier.
class barrier {
public:
    explicit barrier(long n) : n_(n) {}
    void arrive_and_wait() {
        std::unique_lock<std::mutex> g(mu_);
        const unsigned long gen = gen_;
        if (++arrived_ >= n_) {
            next_phase();
            return;
        }
        cv_.wait(g, [&] { return gen_ != gen; });
    }
    // Arrives and leaves for good: later phases wait for one thread fewer.
    void arrive_and_drop() {
        std::lock_guard<std::mutex> g(mu_);
        --n_;
        if (arrived_ >= n_) next_phase();
    }

private:
    void next_phase() {
        arrived_ = 0;
        ++gen_;
        cv_.notify_all();
    }
    std::mutex mu_;
    std::condition_variable cv_;
    long n_;
    long arrived_ = 0;
    unsigned long gen_ = 0;
};

// For calls that have no timeout of their own (future::get, task_group::wait, block_on): if the
// scope is not left before the hang deadline, print what hung and exit with failure.
class watchdog {
public:
    explicit watchdog(const char* what) : what_(what), t_([this] { run(); }) {}
    ~watchdog() {
        {
            std::lock_guard<std::mutex> g(mu_);
            done_ = true;
        }
        cv_.notify_all();
        t_.join();
    }

private:
    void run() {
        std::unique_lock<std::mutex> g(mu_);
        if (!cv_.wait_for(g, hang_deadline, [&] { return done_; })) {
            std::fprintf(stderr, "HUNG: %s (no progress within the hang deadline)\n", what_);
            std::fflush(stderr);
            std::_Exit(3);
        }
    }
    const char* what_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread t_;
};

inline taskport::runtime_options workers(std::size_t n) {
    taskport::runtime_options o;
    o.workers = n;
    return o;
}

}  // namespace tp_test
