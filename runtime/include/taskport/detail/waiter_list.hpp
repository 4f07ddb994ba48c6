// taskport/detail/waiter_list.hpp — everyone waiting for one one-shot event (a future's result).
//
// One word is the whole registry: `ready` (1) once the event happened; before that a lock-free
// (Treiber) stack of registered nodes, the top node's address, plus a `sleepers` bit (2) saying
// that threads outside the scheduler block on the released_ word. Nodes live in the waiting
// frames (a coroutine's awaiter, a then() node, a when_all slot, a worker's wait() frame), so
// registering allocates nothing: one CAS pushes. complete() takes the whole stack with one
// exchange, so each node registered before it is notified exactly once and none after it (a push
// that sees `ready` fails; its caller reads the result instead). Nodes never leave before
// completion, so the stack is only pushed and taken whole: no ABA, no removal.
//
// Two kinds of node (a timed wait's heap node, detail/timed_waiter.hpp, is a waiter node whose
// notification may outlive its owner's wait):
// - once: notified exactly once, at completion (then(), co_await, when_all). Its owner learns of
//   the completion only through that notification, which may free the node.
// - waiter: a worker helping in wait(). Its owner may see `ready` itself before it is notified,
//   and must not free the node until released() (wait_released()): the completer is done with
//   every waiter node by then.
// complete() first walks the stack: it notifies each waiter node (its notification only wakes a
// thread) and re-links the once nodes in registration order; then it releases (and wakes the
// sleepers), and only then notifies the once nodes, whose notifications may run user code inline
// and so never delay a waiter's release.
//
// Parameterised on the atomics policy P (taskport/sched/atomics.hpp: std_atomics in the runtime,
// tests/model/relacy_atomics.hpp's rl_atomics in the model), so tests/model/future_waiters_model.cpp
// checks this very code.
#pragma once

#include <taskport/sched/atomics.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace taskport::detail {

enum class wait_kind : std::uintptr_t { once = 0, waiter = 1 };

template <class P>
struct basic_wait_node {
    basic_wait_node() noexcept = default;
    basic_wait_node(const basic_wait_node&) = delete;
    basic_wait_node& operator=(const basic_wait_node&) = delete;

    // The next node's address with this node's kind in bit 0 (nodes are 4-aligned; one word
    // keeps a node, and so every awaiter, small). Written by the registering thread before its
    // push (published by the push's release), then read and re-linked only by the completer
    // (after its acquiring exchange).
    typename P::template var<std::uintptr_t> link;
};

template <class P>
class waiter_list {
public:
    using node = basic_wait_node<P>;

    static constexpr std::uintptr_t ready_word = 1;
    static constexpr std::uintptr_t sleepers_bit = 2;
    static constexpr std::uintptr_t node_mask = ~std::uintptr_t{3};  // nodes are 4-aligned

    // acquire: whoever sees ready reads the result written before complete().
    bool ready() const noexcept { return word_.load(P::acquire) == ready_word; }

    // True when nothing is registered and the event has not happened. relaxed: a hint for
    // private_complete()'s caller, which knows by other means that no one else can register.
    bool idle() const noexcept { return word_.load(P::relaxed) == 0; }

    // complete() for an event whose list only this thread can reach and that nobody has joined
    // (idle() was true and no other thread holds a way to register: future.hpp's private
    // take-back): a plain store, no read-modify-write, nobody to notify. release: as
    // complete()'s, for a reader that comes later through a synchronised hand-over.
    void private_complete() noexcept { word_.store(ready_word, P::release); }

    // Registers n as a k node. False (and nothing registered, nothing will be notified) when
    // complete.
    bool push(node* n, wait_kind k) noexcept {
        std::uintptr_t cur = word_.load(P::acquire);
        for (;;) {
            if (cur == ready_word) return false;
#ifdef TASKPORT_PLANT_TWO_WAITER
            // The old single-slot registration: a new waiter replaces whoever was registered.
            n->link.store(static_cast<std::uintptr_t>(k));
            const std::uintptr_t want = reinterpret_cast<std::uintptr_t>(n);
#else
            n->link.store((cur & node_mask) | static_cast<std::uintptr_t>(k));
            const std::uintptr_t want = reinterpret_cast<std::uintptr_t>(n) | (cur & sleepers_bit);
#endif
            // release: publishes n's fields (and, by the release sequence of this RMW chain, those
            // of every node below) to the completer's acquiring exchange. acquire on failure: a
            // `ready` seen here carries the result. (acq_rel rather than release on success: the
            // failure order may not be stronger than the success order before C++17, and Relacy
            // enforces that rule; on x86 both are the same instruction.)
            if (word_.compare_exchange_weak(cur, want, P::acq_rel, P::acquire)) return true;
        }
    }

    // An outside thread about to block: marks the sleepers bit so that complete() releases and
    // wakes. False when already complete (nothing to wait for).
    bool add_sleeper() noexcept {
        std::uintptr_t cur = word_.load(P::acquire);
        for (;;) {
            if (cur == ready_word) return false;
            if (cur & sleepers_bit) return true;
            // The bit publishes nothing (the completer's exchange reads it: it is the latest
            // value in the word's modification order); acquire only because a failure may read
            // `ready` and the failure order may not be stronger than the success order.
            if (word_.compare_exchange_weak(cur, cur | sleepers_bit, P::acquire, P::acquire))
                return true;
        }
    }

    // Blocks until complete() has released: for a thread that add_sleeper()ed, and for the owner
    // of a waiter node registered here (who may leave, and free the node, only after this).
    void wait_released() noexcept {
        for (;;) {
            // acquire: pairs with the completer's release below (the result, and its last
            // touch of every waiter node, happen before this returns).
            std::uint32_t r = released_.load(P::acquire);
            if (r == 1) return;
            // 0 -> 2: "someone sleeps": the completer's exchange then sees 2 and wakes.
            if (r == 0 && !released_.compare_exchange_strong(r, 2, P::acquire, P::acquire)) continue;
            P::futex_wait(released_, 2);
        }
    }

    // One timed round of wait_released(), for an outside thread that add_sleeper()ed and waits
    // with a deadline (future::wait_for): true once released; false after about d or spuriously
    // (the caller re-checks its deadline). Leaving on false is safe: a sleeper has no node, and
    // the `2` it may leave in released_ only makes the completer's exchange wake nobody.
    bool wait_released_for(std::chrono::nanoseconds d) noexcept {
        // acquire: as wait_released().
        std::uint32_t r = released_.load(P::acquire);
        if (r == 1) return true;
        if (r == 0 && !released_.compare_exchange_strong(r, 2, P::acquire, P::acquire))
            return r == 1;
        P::futex_wait_for(released_, 2, d);
        return released_.load(P::acquire) == 1;
    }

    // Exactly once, after the result is stored. notify(node*) is called once per node registered
    // before this call: waiter nodes first (notify must not block), then once nodes in the order
    // they registered. Touches nothing of a node after its notify() returns.
    template <class Notify>
    void complete(Notify&& notify) noexcept {
        // acq_rel: release publishes the result to whoever sees ready; acquire makes every
        // pushed node's fields visible here.
        const std::uintptr_t prev = word_.exchange(ready_word, P::acq_rel);
        if (prev == 0) return;  // nobody waits (a wait() that found its task and ran it)
        node* const top = reinterpret_cast<node*>(prev & node_mask);
        // One continuation alone (a then(), a co_await): as cheap as a single-slot word.
        if (prev == reinterpret_cast<std::uintptr_t>(top) && top->link.load() == 0) {  // once, last
            notify(top);  // may free top
            return;
        }
        bool release = (prev & sleepers_bit) != 0;
#ifdef TASKPORT_PLANT_EARLY_RELEASE
        // Releases before the walk: a waiter that saw ready leaves while its node is still read.
        if (prev != 0 && released_.exchange(1, P::release) == 2) P::futex_wake_all(released_);
        release = false;
#endif
        node* once = nullptr;  // re-linked in registration order (the stack is newest first)
        for (node* n = top; n;) {
            const std::uintptr_t l = n->link.load();
            if (l & static_cast<std::uintptr_t>(wait_kind::waiter)) {
                release = true;
                notify(n);
            } else {
                n->link.store(reinterpret_cast<std::uintptr_t>(once));  // still a once node
                once = n;
            }
            n = reinterpret_cast<node*>(l & node_mask);
        }
        // release: orders this thread's last reads of the waiter nodes (and the result) before
        // their owners' acquire in wait_released(). Only when someone can be waiting for it.
        if (release && released_.exchange(1, P::release) == 2) P::futex_wake_all(released_);
        while (once) {
            node* const next = reinterpret_cast<node*>(once->link.load());
            notify(once);  // may free `once`
            once = next;
        }
    }

private:
    // Written by push/add_sleeper (CAS) and complete() (exchange); read by everyone.
    typename P::template atomic<std::uintptr_t> word_{0};
    // 0: not released; 2: not released and someone sleeps on it; 1: released. Written by the
    // completer (exchange to 1) and by sleepers (CAS 0 -> 2); read by sleepers and node owners.
    typename P::futex_word released_{0};
};

}  // namespace taskport::detail
