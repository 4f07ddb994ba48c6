// taskport/sched/atomics.hpp — THE atomics policy: the one type that every lock-free or
// hand-synchronised protocol of taskport is written against (the deque, the injector, the
// completion queue, the spin lock, the park protocol and the future's waiter list), so that one
// Relacy adapter (tests/model/relacy_atomics.hpp) runs every one of them in its model.
//
// A protocol takes the policy as a template parameter `A` and spells its shared state and
// orderings through it:
//
//   typename A::template atomic<T>   an atomic (std::atomic's member names: load, store,
//                                    exchange, compare_exchange_strong/weak, fetch_add/sub)
//   typename A::template var<T>      plain data that is shared under a protocol (a lock, a
//                                    release/acquire pair): .load() / .store(v)
//   A::relaxed ... A::seq_cst        memory orders; A::fence(mo) a thread fence
//   A::pause(), A::yield()           one round of a spin-wait loop (CPU hint / give the core)
//   typename A::futex_word           an atomic<std::uint32_t> a thread can sleep on, with
//   A::futex_wait(w, old)            ... sleep while w holds old (spurious returns allowed),
//   A::futex_wait_for(w, old, d)     ... the same, for about d at most (a timed sleep),
//   A::futex_wake_one(w) / _all(w)   ... wake sleepers of w after changing it (futex.hpp)
//   typename A::mutex                lock()/unlock() (the idle set's sleeper list)
//   A::hook(point)                   a test's hold point (empty here)
//
// std_atomics (here) is what production builds use: std::atomic itself, the std::memory_order
// constants, a plain T for var — the generated code is the same as writing std::atomic directly.
// tests/model/relacy_atomics.hpp supplies rl_atomics, which maps the same names onto Relacy's
// rl::atomic / rl::var (each access records its caller's file and line through
// std::source_location, so no `$` macro is needed in the real headers), so the model checker
// runs the real headers, not a copy. A test may derive its own policy from std_atomics to hook a
// point of a protocol (see the hook functions below: empty here, so they cost nothing).
#pragma once

#include <taskport/sched/futex.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>

namespace taskport::detail {

// Non-atomic data under a protocol; the same interface as the model checker's rl::var wrapper.
template <class T>
struct plain_var {
    T value{};
    plain_var() = default;
    constexpr plain_var(T v) noexcept : value(v) {}  // NOLINT: implicit, as T
    T load() const noexcept { return value; }
    void store(T v) noexcept { value = v; }
};

struct std_atomics {
    template <class T>
    using atomic = std::atomic<T>;
    template <class T>
    using var = plain_var<T>;

    using memory_order = std::memory_order;
    static constexpr memory_order relaxed = std::memory_order_relaxed;
    static constexpr memory_order acquire = std::memory_order_acquire;
    static constexpr memory_order release = std::memory_order_release;
    static constexpr memory_order acq_rel = std::memory_order_acq_rel;
    static constexpr memory_order seq_cst = std::memory_order_seq_cst;

    static void fence(memory_order mo) noexcept { std::atomic_thread_fence(mo); }

    // A short pause inside a spin-wait (the CPU's hint; the checker's yield).
    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    // Give the core away inside a longer wait.
    static void yield() noexcept { std::this_thread::yield(); }

    // A word a thread can sleep on (futex.hpp: futex(2), WaitOnAddress, or a fallback).
    using futex_word = std::atomic<std::uint32_t>;
    static void futex_wait(futex_word& w, std::uint32_t old) noexcept {
        taskport::detail::futex_wait(w, old);
    }
    static void futex_wait_for(futex_word& w, std::uint32_t old, std::chrono::nanoseconds d) noexcept {
        taskport::detail::futex_wait_for(w, old, d);
    }
    static void futex_wake_one(futex_word& w) noexcept { taskport::detail::futex_wake_one(w); }
    static void futex_wake_all(futex_word& w) noexcept { taskport::detail::futex_wake_all(w); }

    using mutex = std::mutex;

    // Test hooks: a protocol calls hook(point) at a named point where a test may need to hold
    // the calling thread (to widen a race window deterministically). Empty in production.
    template <class Point>
    static void hook(Point) noexcept {}
};

}  // namespace taskport::detail
