// block_depot.hpp — where threads hand each other whole chains of free task blocks of one size
// class (alloc.cpp): a thread whose cache of that class is full gives its cached blocks here as
// one chain instead of freeing them one by one to the backend, and a thread whose cache is
// empty takes every chain here instead of asking the backend. The common case it serves: tasks
// allocated on one thread (an outside thread posting) and freed on another (the worker that ran
// them); the blocks flow back to the allocating thread in chains of a cache's worth, with one
// atomic operation per chain on each side instead of a cross-thread free per block.
//
// A Treiber stack of chains: put() pushes a chain with a CAS; take_all() takes the whole stack
// with one exchange, so a chain is never popped alone and there is no ABA. Bounded: at most
// max_blocks blocks (a relaxed reservation counter; a put that would pass it is refused and the
// caller frees its blocks to the backend), so the depot never holds more than that however many
// tasks were live at the peak.
//
// Who touches what: a chain's blocks (their next/chain_next/len/tail fields) belong to the thread
// that builds it until put()'s release CAS publishes them, then to the thread whose take_all()
// acquire exchange takes them. Parameterised on the atomics policy A (taskport/sched/atomics.hpp)
// so that tests/model/block_depot_model.cpp runs this very code under Relacy.
#pragma once

#include <taskport/sched/atomics.hpp>

#include <cstdint>

namespace taskport::detail {

template <class A>
struct basic_depot_block {
    typename A::template var<basic_depot_block*> next;        // within a chain (and a cache list)
    // Only in a chain's first block:
    typename A::template var<basic_depot_block*> chain_next;  // the next chain in the depot
    typename A::template var<basic_depot_block*> tail;        // this chain's last block
    typename A::template var<std::uint32_t> len;              // this chain's blocks
};

template <class A>
class basic_block_depot {
public:
    using block = basic_depot_block<A>;

    explicit constexpr basic_block_depot(std::uint32_t max_blocks) noexcept : max_(max_blocks) {}

    // Offers the chain first..tail (linked through next, len blocks). True: the depot has it now.
    // False (nothing taken): the depot is full; the caller keeps or frees the blocks.
    bool put(block* first, block* tail, std::uint32_t len) noexcept {
        // relaxed: only a bound; take_all() gives the count back after its exchange. The plain
        // load first: a full depot (frees outpacing the allocating side) costs a read, not two
        // read-modify-writes of a shared line per free.
        if (count_.load(A::relaxed) + len > max_) return false;
        if (count_.fetch_add(len, A::relaxed) + len > max_) {
            count_.fetch_sub(len, A::relaxed);
            return false;
        }
        first->tail.store(tail);
        first->len.store(len);
        block* h = head_.load(A::relaxed);
        for (;;) {
            first->chain_next.store(h);
#ifndef TASKPORT_PLANT_DEPOT_RELAXED_PUT
            // release: publishes the chain's fields (and the blocks' contents) to take_all().
            if (head_.compare_exchange_weak(h, first, A::release, A::relaxed)) return true;
#else
            if (head_.compare_exchange_weak(h, first, A::relaxed, A::relaxed)) return true;
#endif
        }
    }

    // Takes every chain, linked into one list through next. Returns its first block (null when
    // the depot is empty), its length in n and its last block in tail.
    block* take_all(std::uint32_t& n, block*& tail) noexcept {
        n = 0;
        tail = nullptr;
        if (!head_.load(A::relaxed)) return nullptr;  // a hint: the exchange decides
        // acquire: pairs with put()'s release for every chain in the stack (a release sequence:
        // each later put's CAS is a read-modify-write on head_).
        block* c = head_.exchange(nullptr, A::acquire);
        block* first = c;
        block* prev_tail = nullptr;
        while (c) {
            block* const next_chain = c->chain_next.load();
            n += c->len.load();
            if (prev_tail) prev_tail->next.store(c);
            prev_tail = c->tail.load();
            c = next_chain;
        }
        tail = prev_tail;
        if (n) count_.fetch_sub(n, A::relaxed);
        return first;
    }

    // Hints for the callers' fast paths (relaxed reads; put() and take_all() decide): whether
    // take_all() may find a chain, whether put() of len blocks may fit.
    bool maybe_nonempty() const noexcept { return head_.load(A::relaxed) != nullptr; }
    bool may_fit(std::uint32_t len) const noexcept { return count_.load(A::relaxed) + len <= max_; }

private:
    // Chains here, newest first. CAS by put(), exchanged to null by take_all().
    typename A::template atomic<block*> head_{nullptr};
    // Blocks here or reserved by a put() under way (an upper bound on what the depot holds).
    typename A::template atomic<std::uint32_t> count_{0};
    const std::uint32_t max_;
};

}  // namespace taskport::detail
