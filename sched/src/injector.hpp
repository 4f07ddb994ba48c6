// injector.hpp — the shared queue for work that comes from outside the workers.
//
// Lanes of intrusive FIFO lists, each behind its own small lock: a producer thread sticks to one
// lane (picked once per thread), consumers sweep lanes from a rotating start and take a batch.
// Intrusive nodes mean a push never allocates (Boost.Lockfree's queue allocates its own node
// per push unless bounded, and bounded caps us at 65,535 queued tasks); batches mean one lock per
// many tasks on both sides. Measured against boost::lockfree::queue in tests/bench/bench_injector.
//
// Invariant: a lane's size equals the length of its list whenever its lock is free; it is also
// read without the lock (seq_cst) by parking workers deciding whether there is work anywhere.
#pragma once

#include <taskport/sched/task_node.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>

namespace taskport::detail {

// Test-and-test-and-set: critical sections here are a few pointer moves.
class spin_lock {
public:
    void lock() noexcept {
        for (;;) {
            if (!flag_.exchange(true, std::memory_order_acquire)) return;
            int spins = 0;
            while (flag_.load(std::memory_order_relaxed)) {
                if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
                    __builtin_ia32_pause();
#endif
                } else {
                    std::this_thread::yield();
                    spins = 0;
                }
            }
        }
    }
    void unlock() noexcept { flag_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> flag_{false};
};

class injector {
    struct alignas(64) lane {
        spin_lock lock;
        task_node* head = nullptr;  // guarded by lock
        task_node* tail = nullptr;  // guarded by lock
        // Written under lock by pushers and poppers; read without it by anyone (a hint).
        std::atomic<std::size_t> size{0};
    };

public:
    explicit injector(std::size_t lanes) : n_(lanes ? lanes : 1), lanes_(new lane[n_]) {}

    // Any thread. `hint` picks the lane (a producer passes a stable per-thread value).
    void push(task_node* t, std::size_t hint) noexcept { push_batch(t, t, 1, hint); }

    void push_batch(task_node* first, task_node* last, std::size_t n, std::size_t hint) noexcept {
        last->next = nullptr;
        lane& l = lanes_[hint % n_];
        l.lock.lock();
        if (l.tail)
            l.tail->next = first;
        else
            l.head = first;
        l.tail = last;
        l.size.fetch_add(n, std::memory_order_seq_cst);
        l.lock.unlock();
    }

    // Any thread. Takes up to `max` tasks from the first non-empty lane at or after `start`,
    // linked through next (null-terminated). Returns the first and the count in `n`.
    task_node* pop_batch(std::size_t start, std::size_t max, std::size_t& n) noexcept {
        n = 0;
        for (std::size_t i = 0; i < n_; ++i) {
            lane& l = lanes_[(start + i) % n_];
            if (l.size.load(std::memory_order_relaxed) == 0) continue;
            l.lock.lock();
            task_node* first = l.head;
            task_node* last = nullptr;
            task_node* cur = first;
            while (cur && n < max) {
                last = cur;
                cur = cur->next;
                ++n;
            }
            if (n) {
                l.head = cur;
                if (!cur) l.tail = nullptr;
                last->next = nullptr;
                l.size.fetch_sub(n, std::memory_order_seq_cst);
            }
            l.lock.unlock();
            if (n) return first;
        }
        return nullptr;
    }

    // A snapshot, seq_cst: used by the parking protocol.
    std::size_t size() const noexcept {
        std::size_t s = 0;
        for (std::size_t i = 0; i < n_; ++i) s += lanes_[i].size.load(std::memory_order_seq_cst);
        return s;
    }
    std::size_t lanes() const noexcept { return n_; }

private:
    std::size_t n_;
    std::unique_ptr<lane[]> lanes_;
};

}  // namespace taskport::detail
