// timer_queue.hpp — the one timer queue of every backend: the reactor's (epoll, kqueue and
// io_uring runtimes) and the IOCP backend's. A timer_heap (timer_heap.hpp) under its own lock,
// with the park/cancel protocol of operation.hpp and the backend's wake-up.
//
// Invariant (operation.hpp's, with mu_ as the place's lock and `this` as the place): a timer is
// parked iff op->place == this, and it leaves the heap exactly once — expired by the backend's
// thread (expire), removed by a canceller (cancel), or aborted by shutdown (abort_all) — each of
// which checks and clears place under mu_ before it hands the op to the completion queue. A
// cancel that comes before the timer parks is caught by the Dekker pair in add (store place,
// load cancelled) against detail::cancel (store cancelled, load place). After abort_all, add
// refuses (operation_aborted): the check and the drain are both under mu_.
//
// The owner's thread waits until next_timeout(); add() calls the owner's wake function when the
// new timer became the earliest, so that wait is cut short.
#pragma once

#include "completion_queue.hpp"
#include "timer_heap.hpp"

#include <taskport/io/detail/operation.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>

namespace taskport::io::detail {

class timer_queue {
public:
    using wake_fn = void (*)(void* owner) noexcept;

    timer_queue(completion_queue& cq, wake_fn wake, void* owner) noexcept
        : cq_(cq), wake_(wake), owner_(owner) {}
    timer_queue(const timer_queue&) = delete;
    timer_queue& operator=(const timer_queue&) = delete;

    // Parks op until `when`; it completes (through the completion queue) with an empty ec when
    // due, operation_aborted when cancelled or shut down, not_enough_memory if the heap cannot
    // grow. Any thread.
    void add(operation* op, std::chrono::steady_clock::time_point when) noexcept {
        op->kind = place_kind::timer;
        op->deadline = when;
        bool earliest;
        {
            std::lock_guard<std::mutex> g(mu_);
            if (stopped_ || op->cancelled.load(std::memory_order_seq_cst)) {
                op->ec = operation_aborted();
                cq_.push(op);
                return;
            }
            if (!heap_.push(op)) {  // out of memory: fail this timer rather than lose it
                op->ec = std::make_error_code(std::errc::not_enough_memory);
                cq_.push(op);
                return;
            }
            size_.store(heap_.size(), std::memory_order_relaxed);
            earliest = heap_.top() == op;
            op->place.store(this, std::memory_order_seq_cst);
            if (op->cancelled.load(std::memory_order_seq_cst)) {  // Dekker pair with cancel()
                heap_.remove(op);
                size_.store(heap_.size(), std::memory_order_relaxed);
                op->place.store(nullptr, std::memory_order_seq_cst);
                op->ec = operation_aborted();
                cq_.push(op);
                return;
            }
        }
        if (earliest) wake_(owner_);
    }

    // Canceller side (any thread): completes op with operation_aborted if it is still parked.
    void cancel(operation* op) noexcept {
        {
            std::lock_guard<std::mutex> g(mu_);
            if (op->place.load(std::memory_order_seq_cst) != this) return;  // expired meanwhile
            heap_.remove(op);
            size_.store(heap_.size(), std::memory_order_relaxed);
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
        }
        cq_.push(op);
    }

    // The owner's thread: how long until the earliest deadline, in milliseconds rounded up,
    // capped at 60 s; -1 when there is no timer.
    long next_timeout_ms() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        operation* first = heap_.top();
        if (!first) return -1;
        auto now = std::chrono::steady_clock::now();
        if (first->deadline <= now) return 0;
        auto ms = std::chrono::ceil<std::chrono::milliseconds>(first->deadline - now).count();
        return ms > 60'000 ? 60'000 : static_cast<long>(ms);
    }

    // The owner's thread: moves every due timer into b (ec cleared).
    void expire(op_batch& b) noexcept {
        // relaxed: a hint only (a timer added meanwhile is seen next cycle: its add() woke us).
        if (size_.load(std::memory_order_relaxed) == 0) return;
        auto now = std::chrono::steady_clock::now();
        std::lock_guard<std::mutex> g(mu_);
        while (operation* op = heap_.top()) {
            if (op->deadline > now) break;
            heap_.pop();
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec.clear();
            b.push(op);
        }
        size_.store(heap_.size(), std::memory_order_relaxed);
    }

    // Timers parked now (any thread; relaxed: a hint, reactor::needs_poller).
    std::size_t pending() const noexcept { return size_.load(std::memory_order_relaxed); }

    // Shutdown: every parked timer into b with operation_aborted; add() refuses from now on.
    void abort_all(op_batch& b) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        stopped_ = true;
        while (operation* op = heap_.pop()) {
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            b.push(op);
        }
        size_.store(0, std::memory_order_relaxed);
    }

private:
    completion_queue& cq_;
    const wake_fn wake_;
    void* const owner_;
    std::mutex mu_;    // guards heap_ and stopped_
    timer_heap heap_;
    bool stopped_ = false;
    // heap_.size(): written under mu_, read without it by expire()'s early out (relaxed: a hint).
    std::atomic<std::size_t> size_{0};
};

}  // namespace taskport::io::detail
