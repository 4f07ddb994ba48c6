// deque.hpp — a worker's own run queue: a growable Chase–Lev work-stealing deque.
//
// Source: Chase & Lev, "Dynamic Circular Work-Stealing Deque" (SPAA'05), with the C11 memory
// orderings of Lê, Pop, Cohen, Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak
// Memory Models" (PPoPP'13). Here the paper's two standalone seq_cst fences are folded into
// seq_cst accesses on top_/bottom_ (same total-order argument, and ThreadSanitizer understands it).
//
// Who may touch what:
//   owner (the worker thread): push(), pop()            — LIFO end (bottom_)
//   anyone (thieves):          steal(), steal_half()    — FIFO end (top_)
//
// steal_half() takes ceil(n/2) items (at most max_steal_batch), claiming them one CAS of top_
// each, exactly as steal() claims one. Claiming [t, t+k) with a single CAS is NOT safe here:
// the thief's bottom_ may be stale, and between its read and its CAS the owner can pop down past
// t+k (each pop takes index j without a CAS once it saw top_ == t < j), so an item would be
// delivered twice (tests/test_deque.cpp caught exactly that). crossbeam-deque steals batches
// from its LIFO-flavoured (owner pops the bottom) deque one CAS per item for the same reason;
// one CAS per batch needs an owner that also takes from the top_ end with a CAS (Go's, Tokio's
// FIFO run queues).
//
// Rings only grow. A retired ring is kept until the deque dies, because a thief may still be
// reading it; every item a successful CAS hands out is present in whichever ring the thief read.
#pragma once

#include <taskport/sched/task_node.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace taskport::detail {

class ws_deque {
    struct ring {
        explicit ring(std::int64_t cap) : mask(cap - 1), slots(new std::atomic<task_node*>[cap]) {}
        std::int64_t capacity() const noexcept { return mask + 1; }
        task_node* get(std::int64_t i) const noexcept {
            return slots[i & mask].load(std::memory_order_relaxed);
        }
        void put(std::int64_t i, task_node* t) noexcept {
            slots[i & mask].store(t, std::memory_order_relaxed);
        }
        std::int64_t mask;
        std::unique_ptr<std::atomic<task_node*>[]> slots;
    };

public:
    static constexpr std::int64_t initial_capacity = 256;
    static constexpr std::int64_t max_steal_batch = 64;

    ws_deque() {
        rings_.push_back(std::make_unique<ring>(initial_capacity));
        ring_.store(rings_.back().get(), std::memory_order_relaxed);
    }
    ws_deque(const ws_deque&) = delete;
    ws_deque& operator=(const ws_deque&) = delete;

    // Owner only.
    void push(task_node* t) {
        std::int64_t b = bottom_.load(std::memory_order_relaxed);
        std::int64_t tp = top_.load(std::memory_order_acquire);
        ring* r = ring_.load(std::memory_order_relaxed);
        if (b - tp > r->capacity() - 1) r = grow(r, b, tp);
        r->put(b, t);
        // release: a thief that reads the new bottom_ sees the slot and the task's contents.
        bottom_.store(b + 1, std::memory_order_release);
    }

    // Owner only. Newest first.
    task_node* pop() noexcept {
        std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
        ring* r = ring_.load(std::memory_order_relaxed);
        bottom_.store(b, std::memory_order_seq_cst);
        std::int64_t t = top_.load(std::memory_order_seq_cst);
        if (t > b) {  // empty
            bottom_.store(b + 1, std::memory_order_relaxed);
            return nullptr;
        }
        task_node* x = r->get(b);
        if (t == b) {  // last item: race the thieves for it
            if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                              std::memory_order_relaxed))
                x = nullptr;
            bottom_.store(b + 1, std::memory_order_relaxed);
        }
        return x;
    }

    // Anyone. Oldest first. Returns null when empty or when it lost a race (caller may retry).
    task_node* steal() noexcept {
        std::int64_t t = top_.load(std::memory_order_seq_cst);
        std::int64_t b = bottom_.load(std::memory_order_seq_cst);
        if (t >= b) return nullptr;
        ring* r = ring_.load(std::memory_order_acquire);
        task_node* x = r->get(t);
        if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                          std::memory_order_relaxed))
            return nullptr;
        return x;
    }

    // Anyone but `into`'s owner may call it on a deque it does not own; `into` must be owned by
    // the caller. Moves up to ceil(n/2) (at most max_steal_batch) of the oldest items, fewer if it
    // loses a race part-way: returns the oldest (null if it got none), pushes the rest onto
    // `into`. `moved` receives the number of tasks taken.
    task_node* steal_half(ws_deque& into, std::size_t& moved) {
        moved = 0;
        std::int64_t t = top_.load(std::memory_order_seq_cst);
        std::int64_t b = bottom_.load(std::memory_order_seq_cst);
        std::int64_t n = b - t;
        if (n <= 0) return nullptr;
        std::int64_t k = (n + 1) / 2;
        if (k > max_steal_batch) k = max_steal_batch;
        task_node* first = nullptr;
        for (std::int64_t i = 0; i < k; ++i) {
            // Each item is a steal() of its own: after our CAS set top_ to t, re-read bottom_
            // (seq_cst, after the CAS in the total order) before touching index t.
            if (i > 0 && bottom_.load(std::memory_order_seq_cst) <= t) break;
            ring* r = ring_.load(std::memory_order_acquire);
            task_node* x = r->get(t);
            if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                              std::memory_order_relaxed))
                break;  // another thief, or the owner taking the last item: keep what we have
            ++t;
            ++moved;
            if (first)
                into.push(x);
            else
                first = x;
        }
        return first;
    }

    // Anyone; a snapshot.
    std::size_t size() const noexcept {
        std::int64_t b = bottom_.load(std::memory_order_seq_cst);
        std::int64_t t = top_.load(std::memory_order_seq_cst);
        return b > t ? static_cast<std::size_t>(b - t) : 0;
    }
    bool empty() const noexcept { return size() == 0; }

private:
    ring* grow(ring* old, std::int64_t b, std::int64_t t) {
        auto bigger = std::make_unique<ring>(old->capacity() * 2);
        for (std::int64_t i = t; i < b; ++i) bigger->put(i, old->get(i));
        ring* r = bigger.get();
        rings_.push_back(std::move(bigger));  // the old ring stays alive for thieves
        ring_.store(r, std::memory_order_release);
        return r;
    }

    // top_: CAS by thieves and by the owner for the last item. bottom_: written by the owner only.
    alignas(64) std::atomic<std::int64_t> top_{0};
    alignas(64) std::atomic<std::int64_t> bottom_{0};
    // ring_: written by the owner (grow), read by thieves with acquire after reading bottom_.
    alignas(64) std::atomic<ring*> ring_{nullptr};
    std::vector<std::unique_ptr<ring>> rings_;  // owner only (and the destructor)
};

}  // namespace taskport::detail
