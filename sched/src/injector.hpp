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
//
// The atomics policy A (taskport/sched/atomics.hpp) is std_atomics in the library; the Relacy
// model (tests/model/injector_model.cpp) instantiates the same code with rl_atomics, the lanes'
// head/tail as checked variables. TASKPORT_PLANT_* macros re-introduce known bugs for that model
// only; never define them in a build of the library.
#pragma once

#include <taskport/sched/atomics.hpp>
#include <taskport/sched/spin_lock.hpp>
#include <taskport/sched/task_node.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace taskport::detail {

template <class A = std_atomics>
class basic_injector {
    struct alignas(64) lane {
        basic_spin_lock<A> lock;
        typename A::template var<task_node*> head{nullptr};  // guarded by lock
        typename A::template var<task_node*> tail{nullptr};  // guarded by lock
        // Written under lock by pushers and poppers (seq_cst: the parking protocol reads it after
        // its own seq_cst fence/accesses, Dekker-style, to see work published before it sleeps);
        // read without the lock by anyone: relaxed as a hint in pop_batch, seq_cst in size().
        typename A::template atomic<std::size_t> size{0};
        // Tasks ever pushed here (statistics): written under lock with a relaxed load and store
        // (no read-modify-write: the lock already orders the writers), read racily by pushed().
        typename A::template atomic<std::uint64_t> pushed{0};
    };

public:
    explicit basic_injector(std::size_t lanes) : n_(lanes ? lanes : 1), lanes_(new lane[n_]) {}

    // Any thread. `hint` picks the lane (a producer passes a stable per-thread value).
    void push(task_node* t, std::size_t hint) noexcept { push_batch(t, t, 1, hint); }

    void push_batch(task_node* first, task_node* last, std::size_t n, std::size_t hint) noexcept {
        last->next = nullptr;
        lane& l = lanes_[hint % n_];
        l.lock.lock();
        if (task_node* tl = l.tail.load())
            tl->next = first;
        else
            l.head.store(first);
        l.tail.store(last);
        l.size.fetch_add(n, A::seq_cst);
        l.pushed.store(l.pushed.load(A::relaxed) + n, A::relaxed);
        l.lock.unlock();
    }

    // Any thread. Takes up to `max` tasks from the first non-empty lane at or after `start`,
    // linked through next (null-terminated). Returns the first and the count in `n`.
    task_node* pop_batch(std::size_t start, std::size_t max, std::size_t& n) noexcept {
        n = 0;
        for (std::size_t i = 0; i < n_; ++i) {
            lane& l = lanes_[(start + i) % n_];
            if (l.size.load(A::relaxed) == 0) continue;
            l.lock.lock();
            task_node* first = l.head.load();
            task_node* last = nullptr;
            task_node* cur = first;
            while (cur && n < max) {
                last = cur;
                cur = cur->next;
                ++n;
            }
            if (n) {
                l.head.store(cur);
#ifndef TASKPORT_PLANT_INJECTOR_KEEPS_TAIL
                if (!cur) l.tail.store(nullptr);
#endif
                last->next = nullptr;
                l.size.fetch_sub(n, A::seq_cst);
            }
            l.lock.unlock();
            if (n) return first;
        }
        return nullptr;
    }

    // A snapshot, seq_cst: used by the parking protocol.
    std::size_t size() const noexcept {
        std::size_t s = 0;
        for (std::size_t i = 0; i < n_; ++i) s += lanes_[i].size.load(A::seq_cst);
        return s;
    }
    // Tasks pushed so far, all lanes (statistics; a relaxed snapshot, any thread).
    std::uint64_t pushed() const noexcept {
        std::uint64_t s = 0;
        for (std::size_t i = 0; i < n_; ++i) s += lanes_[i].pushed.load(A::relaxed);
        return s;
    }
    std::size_t lanes() const noexcept { return n_; }

private:
    std::size_t n_;
    std::unique_ptr<lane[]> lanes_;
};

using injector = basic_injector<>;

}  // namespace taskport::detail
