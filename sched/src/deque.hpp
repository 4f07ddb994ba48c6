// deque.hpp — a worker's own run queue: a growable Chase–Lev work-stealing deque.
//
// Source: Chase & Lev, "Dynamic Circular Work-Stealing Deque" (SPAA'05), with the C11 memory
// orderings of Lê, Pop, Cohen, Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak
// Memory Models" (PPoPP'13). Here the paper's two standalone seq_cst fences are folded into
// seq_cst accesses on top_/bottom_ (same total-order argument, and ThreadSanitizer understands it).
//
// Who may touch what — in the types, as Tokio's queue splits Local and Steal:
//   basic_ws_deque (the owner's handle; one per deque, neither copied nor moved, kept by the
//     worker that owns it): push(), pop() newest first, pop_oldest(), size()
//   basic_ws_deque::stealer (a thief's handle, copyable, from stealer()): steal(),
//     steal_half(into) into the thief's OWN deque, size(), empty(). No push or pop: a thief
//     cannot call them.
//
// steal_half() takes ceil(n/2) items (at most max_steal_batch), claiming them one CAS of top_
// each, exactly as steal() claims one. Claiming [t, t+k) with a single CAS is NOT safe here:
// the thief's bottom_ may be stale, and between its read and its CAS the owner can pop down past
// t+k (each pop takes index j without a CAS once it saw top_ == t < j), so an item would be
// delivered twice (tests/test_deque.cpp caught exactly that; tests/model/deque_model.cpp plants
// it back as DEQUE_STEAL_ONE_CAS). crossbeam-deque steals batches from its LIFO-flavoured (owner
// pops the bottom) deque one CAS per item for the same reason; one CAS per batch needs an owner
// that also takes from the top_ end with a CAS (Go's, Tokio's FIFO run queues).
//
// Rings only grow. A retired ring is kept until the deque dies, because a thief may still be
// reading it; every item a successful CAS hands out is present in whichever ring the thief read.
//
// The atomics policy A (taskport/sched/atomics.hpp) is std_atomics in the library; the Relacy
// model (tests/model/deque_model.cpp) instantiates the same code with rl_atomics.
// TASKPORT_PLANT_* macros re-introduce known bugs for that model only; never define them in a
// build of the library.
#pragma once

#include <taskport/sched/atomics.hpp>
#include <taskport/sched/task_node.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace taskport::detail {

template <class A = std_atomics>
class basic_ws_deque {
    template <class T>
    using atomic = typename A::template atomic<T>;

    struct ring {
        explicit ring(std::int64_t cap) : mask(cap - 1), slots(new atomic<task_node*>[cap]) {}
        std::int64_t capacity() const noexcept { return mask + 1; }
        // Relaxed: a slot is published by the release store of bottom_ (push) or of ring_ (grow)
        // and read after the matching acquire; the CAS on top_ decides who owns what was read.
        task_node* get(std::int64_t i) const noexcept { return slots[i & mask].load(A::relaxed); }
        void put(std::int64_t i, task_node* t) noexcept { slots[i & mask].store(t, A::relaxed); }
        std::int64_t mask;
        std::unique_ptr<atomic<task_node*>[]> slots;
    };

public:
    static constexpr std::int64_t initial_capacity = 256;
    static constexpr std::int64_t max_steal_batch = 64;

    // A thief's handle: what other threads may do with this deque. Valid while the deque lives.
    class stealer {
    public:
        // Oldest first. Returns null when empty or when it lost a race (caller may retry).
        task_node* steal() const noexcept { return q_->steal_one(); }
        // Moves up to ceil(n/2) (at most max_steal_batch) of the oldest items, fewer if it loses
        // a race part-way: returns the oldest (null if it got none), pushes the rest onto `into`,
        // the calling thread's own deque (not this one). `moved` receives the number taken.
        task_node* steal_half(basic_ws_deque& into, std::size_t& moved) const {
            return q_->steal_half_into(into, moved);
        }
        std::size_t size() const noexcept { return q_->size(); }  // a snapshot
        bool empty() const noexcept { return q_->size() == 0; }

    private:
        friend class basic_ws_deque;
        explicit stealer(basic_ws_deque* q) noexcept : q_(q) {}
        basic_ws_deque* q_;
    };

    explicit basic_ws_deque(std::int64_t capacity = initial_capacity) {
        rings_.push_back(std::make_unique<ring>(capacity));
        ring_.store(rings_.back().get(), A::relaxed);
    }
    basic_ws_deque(const basic_ws_deque&) = delete;
    basic_ws_deque& operator=(const basic_ws_deque&) = delete;

    stealer thief() noexcept { return stealer(this); }

    // Owner only.
    void push(task_node* t) {
        std::int64_t b = bottom_.load(A::relaxed);
        std::int64_t tp = top_.load(A::acquire);
        ring* r = ring_.load(A::relaxed);
        if (b - tp > r->capacity() - 1) r = grow(r, b, tp);
        r->put(b, t);
        // release: a thief that reads the new bottom_ sees the slot and the task's contents.
        bottom_.store(b + 1, A::release);
    }

    // Owner only. Newest first.
    task_node* pop() noexcept {
        std::int64_t b = bottom_.load(A::relaxed) - 1;
        ring* r = ring_.load(A::relaxed);
        // seq_cst store, then seq_cst load of top_ (the paper's fence): a thief that reads the
        // old bottom_ must have its CAS of top_ ordered before our read of top_, so one of us
        // sees the other; relaxed here, both would take the last item.
#ifdef TASKPORT_PLANT_DEQUE_POP_RELAXED
        bottom_.store(b, A::relaxed);
        std::int64_t t = top_.load(A::relaxed);
#else
        bottom_.store(b, A::seq_cst);
        std::int64_t t = top_.load(A::seq_cst);
#endif
        if (t > b) {  // empty
            bottom_.store(b + 1, A::relaxed);
            return nullptr;
        }
        task_node* x = r->get(b);
        if (t == b) {  // last item: race the thieves for it
            if (!top_.compare_exchange_strong(t, t + 1, A::seq_cst, A::relaxed)) x = nullptr;
            bottom_.store(b + 1, A::relaxed);
        }
        return x;
    }

    // Owner only: pops the newest item if it is x (a task this owner pushed and now wants to run
    // itself at once: an awaited child not yet started). False, and the deque unchanged, when x
    // is not the newest item or a thief has taken it. The peek at the slot is the owner's own
    // write (only the owner writes slots); pop() then decides against the thieves as always, so
    // a stale x (stolen meanwhile) comes back as "empty" and nothing is lost or taken twice.
    bool pop_if_newest(task_node* x) noexcept {
        const std::int64_t b = bottom_.load(A::relaxed);
#ifndef TASKPORT_PLANT_DEQUE_TAKE_BACK_NO_POP
        if (ring_.load(A::relaxed)->get(b - 1) != x) return false;
        return pop() == x;  // null: a thief took it (then it was the last item, and the deque is empty)
#else
        // Planted: takes x by its slot without racing the thieves for it (a thief may take it too).
        if (b <= top_.load(A::relaxed) || ring_.load(A::relaxed)->get(b - 1) != x) return false;
        bottom_.store(b - 1, A::relaxed);
        return true;
#endif
    }

    // Owner only: the oldest item (the thieves' end), for an owner that must not starve it.
    task_node* pop_oldest() noexcept { return steal_one(); }

    // Owner; a snapshot.
    std::size_t size() const noexcept {
        std::int64_t b = bottom_.load(A::seq_cst);
        std::int64_t t = top_.load(A::seq_cst);
        return b > t ? static_cast<std::size_t>(b - t) : 0;
    }
    bool empty() const noexcept { return size() == 0; }

private:
    task_node* steal_one() noexcept {
        std::int64_t t = top_.load(A::seq_cst);
        std::int64_t b = bottom_.load(A::seq_cst);
        if (t >= b) return nullptr;
        ring* r = ring_.load(A::acquire);
        task_node* x = r->get(t);
        if (!top_.compare_exchange_strong(t, t + 1, A::seq_cst, A::relaxed)) return nullptr;
        return x;
    }

    task_node* steal_half_into(basic_ws_deque& into, std::size_t& moved) {
        moved = 0;
        std::int64_t t = top_.load(A::seq_cst);
        std::int64_t b = bottom_.load(A::seq_cst);
        std::int64_t n = b - t;
        if (n <= 0) return nullptr;
        std::int64_t k = (n + 1) / 2;
        if (k > max_steal_batch) k = max_steal_batch;
#ifdef TASKPORT_PLANT_DEQUE_STEAL_ONE_CAS
        // The historic bug: claim [t, t+k) with one CAS, trusting the (possibly stale) bottom_.
        task_node* batch[max_steal_batch];
        ring* r0 = ring_.load(A::acquire);
        for (std::int64_t i = 0; i < k; ++i) batch[i] = r0->get(t + i);
        if (!top_.compare_exchange_strong(t, t + k, A::seq_cst, A::relaxed)) return nullptr;
        moved = static_cast<std::size_t>(k);
        for (std::int64_t i = 1; i < k; ++i) into.push(batch[i]);
        return batch[0];
#else
        task_node* first = nullptr;
        for (std::int64_t i = 0; i < k; ++i) {
            // Each item is a steal_one() of its own: after our CAS set top_ to t, re-read bottom_
            // (seq_cst, after the CAS in the total order) before touching index t.
            if (i > 0 && bottom_.load(A::seq_cst) <= t) break;
            ring* r = ring_.load(A::acquire);
            task_node* x = r->get(t);
            if (!top_.compare_exchange_strong(t, t + 1, A::seq_cst, A::relaxed))
                break;  // another thief, or the owner taking the last item: keep what we have
            ++t;
            ++moved;
            if (first)
                into.push(x);
            else
                first = x;
        }
        return first;
#endif
    }

    ring* grow(ring* old, std::int64_t b, std::int64_t t) {
        auto bigger = std::make_unique<ring>(old->capacity() * 2);
#ifdef TASKPORT_PLANT_DEQUE_GROW_SKIPS_TOP
        // A resize bug: the oldest item (index t, the one thieves take next) is not copied.
        for (std::int64_t i = t + 1; i < b; ++i) bigger->put(i, old->get(i));
#else
        for (std::int64_t i = t; i < b; ++i) bigger->put(i, old->get(i));
#endif
        ring* r = bigger.get();
        rings_.push_back(std::move(bigger));  // the old ring stays alive for thieves
        // release: a thief that reads the new ring_ (acquire) sees the copied slots.
        ring_.store(r, A::release);
        return r;
    }

    // top_: CAS by thieves (steal_one, steal_half_into) and by the owner for the last item;
    // read by both. seq_cst with bottom_: see pop().
    alignas(64) atomic<std::int64_t> top_{0};
    // bottom_: written by the owner only (push: release, publishing the slot; pop: seq_cst);
    // read by thieves (seq_cst) to bound what they may claim.
    alignas(64) atomic<std::int64_t> bottom_{0};
    // ring_: written by the owner (grow, release), read by thieves with acquire after bottom_.
    alignas(64) atomic<ring*> ring_{nullptr};
    std::vector<std::unique_ptr<ring>> rings_;  // owner only (and the destructor)
};

using ws_deque = basic_ws_deque<>;

}  // namespace taskport::detail
