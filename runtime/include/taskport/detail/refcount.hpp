// taskport/detail/refcount.hpp — the reference count of a future's shared state (future.hpp:
// state_base): futures, producers (the spawned task, a promise) and continuations each hold one.
//
// Invariant: only a holder adds a reference (add_ref: a copy of a reference it holds), so a
// holder that reads 1 holds the last one: nobody else can raise the count or reach the state,
// and it destroys without the read-modify-write (the usual case for a future's get() or a
// co_await: the producer let go first). Every other release is an acq_rel decrement; whoever
// takes the count to zero (or reads 1) destroys, exactly once, after every other holder's
// accesses (each of their decrements releases; the destroyer's load or decrement acquires).
//
// Parameterised on the atomics policy P (taskport/sched/atomics.hpp: std_atomics in the runtime,
// tests/model/relacy_atomics.hpp's rl_atomics in tests/model/future_refcount_model.cpp, which
// checks this very code). Planted bugs for the model (never defined in a build):
// TASKPORT_PLANT_REFS_RELAXED (the fast path's load relaxed), TASKPORT_PLANT_REFS_FAST_ON_TWO
// (the fast path taken on a count of 2: one holder too many).
#pragma once

#include <taskport/sched/atomics.hpp>

#include <cstdint>

namespace taskport::detail {

template <class P>
class basic_refcount {
public:
    explicit basic_refcount(std::uint32_t n) noexcept : refs_(n) {}
    basic_refcount(const basic_refcount&) = delete;
    basic_refcount& operator=(const basic_refcount&) = delete;

    // relaxed: the caller holds a reference, so the count cannot reach zero meanwhile, and the
    // new holder reaches the state only through whatever hands it the copy (which orders it).
    void add_ref() noexcept { refs_.fetch_add(1, P::relaxed); }

    // Drops one reference; true when the caller held the last one and must destroy the object.
    bool release() noexcept {
#if defined(TASKPORT_PLANT_REFS_RELAXED)
        constexpr auto fast_order = P::relaxed;
#else
        // acquire: pairs with the other holders' acq_rel decrements (a release sequence ends
        // in the 1 read here), as the fetch_sub's acquire would: their accesses to the object
        // happen before the destruction.
        constexpr auto fast_order = P::acquire;
#endif
#if defined(TASKPORT_PLANT_REFS_FAST_ON_TWO)
        constexpr std::uint32_t fast_max = 2;
#else
        constexpr std::uint32_t fast_max = 1;  // the caller's own reference only
#endif
        // acq_rel: release publishes this holder's accesses to the destroyer; acquire (when
        // this is the last) orders every other holder's accesses before the destruction.
        return refs_.load(fast_order) == fast_max || refs_.fetch_sub(1, P::acq_rel) == 1;
    }

    // The count as last seen by this thread. relaxed: a holder that reads n knows that at most
    // n - 1 others hold (only holders add), which is all future.hpp's private take-back asks.
    std::uint32_t count() const noexcept { return refs_.load(P::relaxed); }

    // Sets the count while no other thread can hold a reference (future.hpp's private take-back:
    // the producer's reference handed to the awaiter, which then holds them all).
    void set_private(std::uint32_t n) noexcept { refs_.store(n, P::relaxed); }

private:
    // Written by add_ref (increment) and release (decrement), by every holder, any thread.
    typename P::template atomic<std::uint32_t> refs_;
};

}  // namespace taskport::detail
