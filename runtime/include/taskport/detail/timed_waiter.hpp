// taskport/detail/timed_waiter.hpp — a worker's timed wait on a waiter_list (future::wait_for):
// a `waiter` node that its owner may leave registered when the deadline passes.
//
// An untimed wait() keeps its waiter node in its frame and leaves only after the completer has
// released it (waiter_list.hpp). A timed wait must return at its deadline while the node is
// still on the list's stack, and nodes never leave the stack before completion. So the node is
// on the heap and shared: two references, the owner's and the list's, each dropped once (the
// owner when it leaves, the completer after its notification); the last one frees it.
//
// The owner may also leave while the completer is notifying the node: the notification calls the
// continuation the owner armed it with (a worker's parker, or a continuation in the owner's
// frame), which must then stay alive until that call returns. The node's target word settles who
// gets there first: 0 (no target), the continuation's address (armed), or `claimed` (the
// completer took it, once, with an exchange). The owner swaps in a new target (arm) or 0
// (disarm) with an exchange too; seeing `claimed` there, it knows complete() is under way, and
// waits for the list's release (waiter_list::wait_released: complete() releases only after it
// has notified every waiter node), so its continuation outlives the call. Seeing a target, it
// knows the completer has not claimed yet and will find 0 (or the new target) instead: nothing
// in flight. tests/model/future_waiters_model.cpp checks this code (suite 3) under Relacy.
#pragma once

#include <taskport/detail/waiter_list.hpp>

#include <cstdint>

namespace taskport::detail {

// The part of a shared timed-wait node that the owner and the completer both touch. Target has
// notify() (a continuation). Embedded in the node type (see basic_timed_registration).
template <class P, class Target>
class shared_waiter {
public:
    static constexpr std::uintptr_t claimed = 1;  // continuations are at least 4-aligned

    // Owner, before the push (which publishes it with its release).
    void set_target(Target* t) noexcept {
        target_.store(reinterpret_cast<std::uintptr_t>(t), P::relaxed);
    }
    // Owner: redirects the notification to t. False when the completer has claimed it already.
    // acq_rel: acquire pairs with the claim's release (the owner then sees `ready`); release
    // publishes t to the claim.
    bool retarget(Target* t) noexcept {
        return target_.exchange(reinterpret_cast<std::uintptr_t>(t), P::acq_rel) != claimed;
    }
    // Owner: withdraws the target. False when the completer had claimed it (its notification
    // may be running: the owner waits for the release before its target may go).
    bool withdraw() noexcept { return target_.exchange(0, P::acq_rel) != claimed; }

    // Completer: the node's notification. Notifies the armed target, if any; then drops the
    // list's reference. True when the caller must free the node (it was the last holder).
    bool notify_and_drop() noexcept {
        // acq_rel: acquire sees the target the owner published; release pairs with the owner's
        // exchange that reads `claimed` (it then sees the state ready).
        const std::uintptr_t t = target_.exchange(claimed, P::acq_rel);
        if (t > claimed) reinterpret_cast<Target*>(t)->notify();
        return drop();
    }

    // Either side's last touch. acq_rel: the last holder sees every access of the other before
    // it frees the node.
    bool drop() noexcept { return refs_.fetch_sub(1, P::acq_rel) == 1; }

private:
    // 0, a Target's address, or `claimed`. Exchanged by the owner (arm, disarm) and, once, by
    // the completer (claim).
    typename P::template atomic<std::uintptr_t> target_{0};
    // Holders: the owner and the list (2 once pushed; the owner frees an unpushed node itself).
    typename P::template atomic<std::uint32_t> refs_{2};
};

// The owner's side of a timed wait (one wait: make one per wait). Node derives from
// basic_wait_node<P>, has a member `shared` (shared_waiter<P, Target>) and a static
// destroy(Node*). The waitable interface, as help_until() uses it: arm(t) registers (the first
// time) or redirects the notification to t; disarm() withdraws it synchronously (once it
// returns, t is not touched again); the destructor drops the owner's reference.
template <class P, class Node, class Target>
class basic_timed_registration {
public:
    // n: a fresh node, owned from here on (freed here or by the completer).
    basic_timed_registration(waiter_list<P>& list, Node* n) noexcept : list_(list), node_(n) {}
    basic_timed_registration(const basic_timed_registration&) = delete;
    basic_timed_registration& operator=(const basic_timed_registration&) = delete;
    ~basic_timed_registration() {
        if (!registered_) {
            Node::destroy(node_);
            return;
        }
        disarm();
#ifdef TASKPORT_PLANT_TIMED_EARLY_FREE
        Node::destroy(node_);  // as a frame-held node: freed while the completer may reach it
#else
        if (node_->shared.drop()) Node::destroy(node_);
#endif
    }

    // False when the event is complete (nothing will be notified): the caller goes on.
    bool arm(Target* t) noexcept {
        if (claimed_) return false;
        if (!registered_) {
            node_->shared.set_target(t);
            registered_ = list_.push(node_, wait_kind::waiter);
            return registered_;
        }
        if (node_->shared.retarget(t)) return true;
        saw_claim();
        return false;
    }
    void disarm() noexcept {
        if (!registered_ || claimed_) return;
#ifdef TASKPORT_PLANT_TIMED_NO_WAIT
        (void)node_->shared.withdraw();  // leaves while the completer may be notifying t
#else
        if (!node_->shared.withdraw()) saw_claim();
#endif
    }
    // True once the node was pushed (the caller's first successful arm()).
    bool registered() const noexcept { return registered_; }

private:
    // complete() is under way: it releases once it has notified every waiter node, this one's
    // target included.
    void saw_claim() noexcept {
        claimed_ = true;
        list_.wait_released();
    }

    waiter_list<P>& list_;
    Node* const node_;
    bool registered_ = false;
    bool claimed_ = false;
};

}  // namespace taskport::detail
