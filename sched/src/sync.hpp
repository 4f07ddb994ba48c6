// sync.hpp — the synchronisation primitives the park protocol (parker.hpp, idle.hpp,
// park_protocol.hpp) is written against, gathered in one policy type so that a model checker
// can run the same code: std_sync here; tests/model/park_model.cpp supplies Relacy's.
//
// A policy provides: atomic<T> (std::atomic's member functions taking std::memory_order),
// futex_word (an atomic<std::uint32_t> a thread can sleep on) with futex_wait/futex_wake_one,
// fence(order), mutex (lock/unlock), and source_type (what a parked worker may poll: sched's
// task_source).
#pragma once

#include <taskport/sched/executor.hpp>
#include <taskport/sched/futex.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace taskport::detail {

struct std_sync {
    template <class T>
    using atomic = std::atomic<T>;
    using futex_word = std::atomic<std::uint32_t>;
    using mutex = std::mutex;
    using source_type = task_source;

    static void fence(std::memory_order mo) noexcept { std::atomic_thread_fence(mo); }
    static void futex_wait(futex_word& w, std::uint32_t old) noexcept { detail::futex_wait(w, old); }
    static void futex_wake_one(futex_word& w) noexcept { detail::futex_wake_one(w); }
};

}  // namespace taskport::detail
