// relacy_atomics.hpp — rl_atomics: taskport's atomics policy (taskport/sched/atomics.hpp) mapped
// onto the Relacy race detector, so a model runs the real headers under every interleaving and
// relaxed-memory outcome Relacy explores.
//
// Include this FIRST in a model, before the headers under test: it includes the standard headers
// they need, then <relacy/relacy.hpp>, then undefines the macros relacy.hpp defines for its own
// test programs (new, delete, memory_order_*, assert, malloc...), which would otherwise rewrite
// the code that follows (std::memory_order_relaxed would become `std::mo_relaxed, $`). The real
// headers then allocate with the ordinary operator new, invisible to Relacy; what Relacy checks
// is every access to their rl atomics and rl vars.
//
// Each access records its caller's function, file and line through a defaulted
// std::source_location argument, so the headers under test need no `$` debug-info macro.
// (<relacy/relacy_std.hpp> clashes with libstdc++ 12's std::memory_order; this does not use it.)
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <source_location>
#include <thread>
#include <vector>

#include <cerrno>

#pragma push_macro("errno")  // relacy.hpp redefines errno for its own test programs
#include <relacy/relacy.hpp>

#undef new
#undef delete
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef assert
#undef errno
#pragma pop_macro("errno")  // the C library's errno again
#undef memory_order_relaxed
#undef memory_order_consume
#undef memory_order_acquire
#undef memory_order_release
#undef memory_order_acq_rel
#undef memory_order_seq_cst

// Relacy replaces the global operator new/delete (context.hpp) so that it can check what the
// test allocates, but not the sized forms C++14 code calls; without these, libstdc++'s sized
// delete would free() a block Relacy handed out. A model is one translation unit, so defining
// them here (not inline) is fine.
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete[](p); }

namespace taskport::model {

inline rl::debug_info info_of(const std::source_location& l) {
    return rl::debug_info(l.function_name(), l.file_name(), l.line());
}

template <class T>
class rl_atomic_ref {
public:
    rl_atomic_ref() = default;
    rl_atomic_ref(T v) : a_(v) {}  // NOLINT: as std::atomic's constructor
    rl_atomic_ref(const rl_atomic_ref&) = delete;
    rl_atomic_ref& operator=(const rl_atomic_ref&) = delete;

    using loc = std::source_location;

    T load(rl::memory_order mo = rl::mo_seq_cst, loc l = loc::current()) const {
        return a_.load(mo, info_of(l));
    }
    void store(T v, rl::memory_order mo = rl::mo_seq_cst, loc l = loc::current()) {
        a_.store(v, mo, info_of(l));
    }
    T exchange(T v, rl::memory_order mo = rl::mo_seq_cst, loc l = loc::current()) {
        return a_.rmw(rl::rmw_type_t<rl::rmw_type_swap>(), v, mo, info_of(l));
    }
    bool compare_exchange_strong(T& expected, T desired, rl::memory_order mo,
                                 rl::memory_order failure, loc l = loc::current()) {
        return a_.compare_exchange(rl::bool_t<false>(), expected, desired, mo, failure, info_of(l));
    }
    bool compare_exchange_strong(T& expected, T desired, rl::memory_order mo = rl::mo_seq_cst,
                                 loc l = loc::current()) {
        return a_.compare_exchange(rl::bool_t<false>(), expected, desired, mo, info_of(l));
    }
    bool compare_exchange_weak(T& expected, T desired, rl::memory_order mo,
                               rl::memory_order failure, loc l = loc::current()) {
        return a_.compare_exchange(rl::bool_t<true>(), expected, desired, mo, failure, info_of(l));
    }
    bool compare_exchange_weak(T& expected, T desired, rl::memory_order mo = rl::mo_seq_cst,
                               loc l = loc::current()) {
        return a_.compare_exchange(rl::bool_t<true>(), expected, desired, mo, info_of(l));
    }
    template <class D>
    T fetch_add(D d, rl::memory_order mo = rl::mo_seq_cst, loc l = loc::current()) {
        return a_.rmw(rl::rmw_type_t<rl::rmw_type_add>(), d, mo, info_of(l));
    }
    template <class D>
    T fetch_sub(D d, rl::memory_order mo = rl::mo_seq_cst, loc l = loc::current()) {
        return a_.rmw(rl::rmw_type_t<rl::rmw_type_sub>(), d, mo, info_of(l));
    }
    T fetch_or(T d, rl::memory_order mo = rl::mo_seq_cst, loc l = loc::current()) {
        return a_.rmw(rl::rmw_type_t<rl::rmw_type_or>(), d, mo, info_of(l));
    }
    T fetch_and(T d, rl::memory_order mo = rl::mo_seq_cst, loc l = loc::current()) {
        return a_.rmw(rl::rmw_type_t<rl::rmw_type_and>(), d, mo, info_of(l));
    }

    rl::atomic<T>& raw() const { return a_; }  // for the futex emulation below

private:
    mutable rl::atomic<T> a_;
};

template <class T>
class rl_var_ref {
public:
    rl_var_ref() : v_(T{}) {}
    rl_var_ref(T v) : v_(v) {}  // NOLINT: as T
    using loc = std::source_location;
    T load(loc l = loc::current()) const { return v_(info_of(l)).load(); }
    void store(T v, loc l = loc::current()) { v_(info_of(l)).store(v); }

private:
    rl::var<T> v_;
};

struct rl_atomics {
    template <class T>
    using atomic = rl_atomic_ref<T>;
    template <class T>
    using var = rl_var_ref<T>;

    using memory_order = rl::memory_order;
    static constexpr memory_order relaxed = rl::mo_relaxed;
    static constexpr memory_order acquire = rl::mo_acquire;
    static constexpr memory_order release = rl::mo_release;
    static constexpr memory_order acq_rel = rl::mo_acq_rel;
    static constexpr memory_order seq_cst = rl::mo_seq_cst;

    static void fence(memory_order mo, std::source_location l = std::source_location::current()) {
        rl::atomic_thread_fence(mo, info_of(l));
    }
    // A spin-wait round: let Relacy schedule another thread (else it reports a livelock).
    static void pause(std::source_location l = std::source_location::current()) {
        rl::yield(1, info_of(l));
    }
    static void yield(std::source_location l = std::source_location::current()) {
        rl::yield(1, info_of(l));
    }
    template <class Point>
    static void hook(Point) noexcept {}

    // A futex, as relacy/stdlib/pthread.hpp models one: futex_wait blocks on the word's wait
    // set while it holds old (Relacy reports DEADLOCK when every thread is blocked: a lost
    // wake-up); futex_wake_* wake the word's waiters. Spurious returns (which every caller
    // tolerates) only under the random scheduler, as Relacy's own condition variable does: in a
    // tree search (full or context-bound) each would be one more branch at every step.
    using futex_word = rl_atomic_ref<std::uint32_t>;
    static void futex_wait(futex_word& w, std::uint32_t old,
                           std::source_location l = std::source_location::current()) {
        rl::context& c = rl::ctx();
        c.sched();
        c.atomic_thread_fence_seq_cst();
        std::uint32_t v;
        {
            rl::preemption_disabler pd(c);
            v = w.raw().load(rl::mo_acquire, info_of(l));
        }
        if (v != old) return;
        w.raw().wait(c, false, c.is_random_sched(), info_of(l));
    }
    // A timed sleep: its timeout may expire at any moment, so the model returns at once (a
    // caller must re-check as after a spurious return; nothing may rely on being woken).
    static void futex_wait_for(futex_word&, std::uint32_t, std::chrono::nanoseconds,
                               std::source_location l = std::source_location::current()) {
        rl::context& c = rl::ctx();
        c.sched();
        (void)l;
    }
    static void futex_wake_one(futex_word& w,
                               std::source_location l = std::source_location::current()) {
        wake(w, 1, l);
    }
    static void futex_wake_all(futex_word& w,
                               std::source_location l = std::source_location::current()) {
        wake(w, 64, l);
    }
    static void wake(futex_word& w, unsigned count, const std::source_location& l) {
        rl::context& c = rl::ctx();
        c.sched();
        c.atomic_thread_fence_seq_cst();
        w.raw().wake(c, count, info_of(l));
    }

    // std::mutex's lock()/unlock() over rl::mutex (std::lock_guard works with it).
    class mutex {
    public:
        void lock(std::source_location l = std::source_location::current()) { m_.lock(info_of(l)); }
        void unlock(std::source_location l = std::source_location::current()) {
            m_.unlock(info_of(l));
        }

    private:
        rl::mutex m_;
    };
};

// Runs one Relacy test suite with the given iteration budget and prints a one-line summary
// (Relacy prints the full report, with the history of the failing iteration, on a failure).
template <class Suite>
bool run_suite(const char* name, unsigned iterations,
               rl::scheduler_type_e sched = rl::random_scheduler_type) {
    rl::test_params p;
    p.iteration_count = iterations;
    p.search_type = sched;
    p.execution_depth_limit = 20000;
    std::printf("model: %s: %u iterations (%s)\n", name, iterations,
                sched == rl::random_scheduler_type ? "random scheduler" : "full search");
    std::fflush(stdout);
    bool ok = rl::simulate<Suite>(p);
    std::printf("model: %s: %s\n", name, ok ? "ok" : "FAILED");
    std::fflush(stdout);
    return ok;
}

}  // namespace taskport::model
