// descriptor.hpp — the state of one open socket, shared by the user's object and every operation
// on it; the one descriptor type of both I/O models (the readiness core uses all of it, IOCP
// the lifetime part).
//
// Lifetime (Asio's per-descriptor state, Tokio's ScheduledIo): reference-counted. References:
// the user's socket object (socket_core), each operation object (socket_op::st, by value, from
// construction to destruction), and on the readiness core the reactor's registration (from
// attach until the role holder's first cycle after detach: no poller event can name it after
// that). So an operation never points into an object the user can move or destroy, and a
// canceller, a completion and close() all find the state alive in any order. The state holds
// a reference to its service, so the service (its reactor, completion queue, locks) outlives
// every state and every operation on one, even past its runtime.
//
// Closing (close() from any thread, once): under `mu` the state is marked closed, its queued
// operations aborted and the descriptor deregistered; no locked path (reactor::start's attempt,
// cycle's retries) uses fd after that. The unlocked fast path (an operation's first attempt on
// the calling thread) is guarded by `users` instead: the descriptor number is closed by close()
// when nobody is inside such an attempt, else by the last one to leave — so no system call ever
// runs on a number a later open() may have reused.
#pragma once

#include <taskport/io/detail/operation.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace taskport::io::detail {

struct op_queue {
    operation* head = nullptr;
    operation* tail = nullptr;
    void push(operation* op) noexcept {
        op->next = nullptr;
        if (tail)
            tail->next = op;
        else
            head = op;
        tail = op;
    }
    operation* pop() noexcept {
        operation* op = head;
        if (op) {
            head = static_cast<operation*>(op->next);
            if (!head) tail = nullptr;
            op->next = nullptr;
        }
        return op;
    }
    bool remove(operation* op) noexcept {
        operation* prev = nullptr;
        for (operation* c = head; c; prev = c, c = static_cast<operation*>(c->next)) {
            if (c != op) continue;
            if (prev)
                prev->next = c->next;
            else
                head = static_cast<operation*>(c->next);
            if (tail == c) tail = prev;
            c->next = nullptr;
            return true;
        }
        return false;
    }
    bool empty() const noexcept { return head == nullptr; }
};

struct descriptor_state {
    // svc: this state keeps a reference to it (taken here, dropped by the last release).
    descriptor_state(service* s, native_socket f) noexcept;

    // The references (see the file comment). add_ref: relaxed, the caller already holds one;
    // the last release is acq_rel so that it sees every other holder's writes before freeing.
    std::atomic<std::uint32_t> refs{1};
    service* const svc;
    const native_socket fd;

    std::mutex mu;
    // Written once under mu by close(); read under mu by the locked paths and without it by
    // is_open() and the fast path (acquire: who sees it set also sees the aborts before it).
    std::atomic<bool> closed{false};
    // Unlocked users of fd (the fast path), plus closing_bit once close() has run: the thread
    // that brings it to exactly closing_bit closes fd (see the file comment). acq_rel on both
    // sides: the closer's reads of fd happen after every user's system call.
    static constexpr std::uint32_t closing_bit = 1u << 31;
    std::atomic<std::uint32_t> users{0};

    // Readiness core only (reactor.cpp).
    op_queue q[2];                           // guarded by mu: 0 read side, 1 write side
    std::atomic<std::uint32_t> queued[2]{};  // lengths of q, for the lock-free fast-path check
    // Readiness events handled per side: bumped under mu by the role holder, read without the
    // lock by the fast path, so that start() can tell whether an event came in since the
    // caller's own failed attempt (see reactor::start).
    std::atomic<std::uint32_t> ready_seq[2]{};
    // Cached readiness per side (Tokio's ScheduledIo::clear_readiness, epoll(7) Q9): ready_seq[d]
    // + 1 as read (acquire) BEFORE a system call that proved side d drained: it would block, or
    // (stream sockets, short_drains) it moved fewer bytes than asked. 0: not known drained.
    // Written relaxed by whoever made that call (the fast path unlocked, or the role holder under
    // mu); read relaxed by the fast path (try_now: a hint to park without the call) and under mu
    // by reactor::start and handle_event, which decide. A stale value only costs a system call:
    // it is trusted only while it equals ready_seq[d] + 1, i.e. no event for side d was handled
    // since the call that proved the side drained, and every arrival after that call brings an
    // edge that is handled after (it bumps ready_seq[d] under mu, then finds the queued op).
    // A readiness count that wraps to ready_seq + 1 == 0 is never trusted (one call more).
    std::atomic<std::uint32_t> drained[2]{};
    // Set for good (under mu, by the role holder, before the ready_seq bump) once an event said
    // the socket is closed for reading, hung up, failed or has urgent data (epoll's RDHUP, HUP,
    // ERR, PRI; kqueue's EV_EOF): a short read no longer proves that the next read would block
    // (the FIN or the error is still to be read, and no new edge will come for it), so nothing
    // is skipped any more on this descriptor. Tokio keeps READ_CLOSED sticky the same way.
    std::atomic<bool> no_skip{false};
    // Stream socket on a poller whose edges follow every arrival (epoll, native kqueue; not
    // libkqueue, which reports a FIN behind unread data without EV_EOF): a short read or write
    // proves its side drained. Written once by reactor::attach before the state is shared.
    bool short_drains = false;
    // Pollers whose events carry the socket's error (poller::events_carry_errors(): kqueue).
    // event_error: an error an event took from the socket that no operation has reported yet
    // (stored under mu by the role holder; taken with exchange(0) by whichever operation
    // reports it, locked or not: exactly one does). hup_event: the role holder has handled an
    // event taken while the socket was hung up (poll_event::hup; set once, under mu, release,
    // after event_error): from then on no error of the socket can be in flight inside the
    // poller. See tcp.cpp's reads.
    std::atomic<int> event_error{0};
    std::atomic<bool> hup_event{false};
    // seq: ready_seq[d] read (acquire) before the call that found side d drained.
    void mark_drained(int d, std::uint32_t seq) noexcept { drained[d].store(seq + 1, std::memory_order_relaxed); }
    // Side d is known drained at readiness count seq (see `drained`): an attempt now would block.
    bool known_drained(int d, std::uint32_t seq) const noexcept {
        const std::uint32_t v = drained[d].load(std::memory_order_relaxed);
#ifdef TASKPORT_PLANT_NO_STICKY_CLOSE  // planted (test_io_tcp [ready]): a FIN already seen is waited for
        return v != 0 && v == seq + 1;
#else
        return v != 0 && v == seq + 1 && !no_skip.load(std::memory_order_relaxed);
#endif
    }

    descriptor_state* live_prev = nullptr;  // reactor's live list, guarded by reactor::mu_
    descriptor_state* live_next = nullptr;

    // The fast path's guard: false once close() has run (then nothing to undo). A CAS, not
    // an increment: a closed state must gain no user, or two threads could each close fd.
    bool enter() noexcept {
        std::uint32_t v = users.load(std::memory_order_relaxed);
        do {
            if (v & closing_bit) return false;
        } while (!users.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_relaxed));
        return true;
    }
    void leave() noexcept {
        if (users.fetch_sub(1, std::memory_order_acq_rel) == (closing_bit | 1)) close_fd();
    }
    // close(): after marking closed (and, on the readiness core, deregistering). Once only.
    void release_fd() noexcept {
        if (users.fetch_or(closing_bit, std::memory_order_acq_rel) == 0) close_fd();
    }

private:
    void close_fd() noexcept;  // the model's close(2) / closesocket
};

}  // namespace taskport::io::detail
