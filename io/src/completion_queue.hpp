// completion_queue.hpp — the runtime's central completion queue.
//
// Every backend (the epoll/kqueue readiness thread, the io_uring and IOCP completion threads,
// the timer heap, the blocking pool) pushes finished operations here, a whole batch at a time:
// one lock, one splice, at most one wake-up, whatever the batch size — so delivering a
// completion costs O(1) however many operations are parked. Workers drain it through the
// scheduler's task_source hook, a batch at a time, and the operations run as ordinary
// (stealable) tasks.
//
// Invariant: size_ equals the list length whenever lock_ is free; it is read without the lock
// (seq_cst) by parking workers.
#pragma once

#include <taskport/sched/executor.hpp>

#include <atomic>
#include <cstddef>
#include <thread>

namespace taskport::io::detail {

using taskport::detail::task_node;

// A batch being collected by one thread before it is handed over.
struct op_batch {
    task_node* first = nullptr;
    task_node* last = nullptr;
    std::size_t n = 0;
    void push(task_node* t) noexcept {
        t->next = nullptr;
        if (last)
            last->next = t;
        else
            first = t;
        last = t;
        ++n;
    }
    bool empty() const noexcept { return n == 0; }
};

// What a worker polls through the queue (the reactor): see task_source::poll.
struct poll_target {
    virtual bool worker_poll(bool block, const std::atomic<std::uint32_t>* wake) noexcept = 0;
    virtual void interrupt_poll() noexcept = 0;

protected:
    ~poll_target() = default;
};

class completion_queue final : public taskport::detail::task_source {
public:
    explicit completion_queue(taskport::detail::executor& ex) : ex_(ex) {}

    // Any thread; never blocks for long, never allocates. notify = false: the caller is a
    // worker that takes the batch itself next (a worker's own poll), so nobody is woken.
    void push(op_batch& b, bool notify = true) noexcept {
        if (b.empty()) return;
        // No workers any more (the runtime is gone), or none to count on: after the executor
        // closed, only its own draining workers may queue (an outside thread's push could land
        // after the last worker left and never run — an async_* started from outside after
        // runtime::shutdown()). The I/O threads' final pushes come before it closes
        // (runtime::shutdown stops the extension first). Run here, as for an orphan.
        if (orphaned_.load(std::memory_order_acquire) || (ex_.closed() && !ex_.in_worker())) {
            for (task_node* t = b.first; t;) {
                task_node* next = t->next;
                t->next = nullptr;
                t->run();
                t = next;
            }
            b = op_batch{};
            return;
        }
        lock();
        if (tail_)
            tail_->next = b.first;
        else
            head_ = b.first;
        tail_ = b.last;
        size_.fetch_add(b.n, std::memory_order_seq_cst);
        unlock();
        pushed_.fetch_add(b.n, std::memory_order_relaxed);
        b = op_batch{};
        if (notify) ex_.notify_source();
    }
    void push(task_node* t) noexcept {
        op_batch b;
        b.push(t);
        push(b);
    }

    task_node* pop_batch(std::size_t max, std::size_t& n) noexcept override {
        n = 0;
        if (size_.load(std::memory_order_relaxed) == 0) return nullptr;
        lock();
        task_node* first = head_;
        task_node* last = nullptr;
        task_node* cur = first;
        while (cur && n < max) {
            last = cur;
            cur = cur->next;
            ++n;
        }
        if (n) {
            head_ = cur;
            if (!cur) tail_ = nullptr;
            last->next = nullptr;
            size_.fetch_sub(n, std::memory_order_seq_cst);
        }
        unlock();
        return n ? first : nullptr;
    }

    bool empty() const noexcept override { return size_.load(std::memory_order_seq_cst) == 0; }

    // The readiness core that workers may poll (task_source::poll), set once before the queue
    // is attached to the executor; null (IOCP, or an executor that does not poll): poll() says
    // no and workers sleep on their futex.
    void set_poller(poll_target* p) noexcept { poller_.store(p, std::memory_order_release); }
    bool poll(bool block, const std::atomic<std::uint32_t>* wake) noexcept override {
        poll_target* p = poller_.load(std::memory_order_acquire);
        return p && p->worker_poll(block, wake);
    }
    void interrupt() noexcept override {
        if (poll_target* p = poller_.load(std::memory_order_acquire)) p->interrupt_poll();
    }

    // The runtime is gone (its workers joined, the queue drained): later completions run on
    // the thread that delivers them.
    void orphan() noexcept { orphaned_.store(true, std::memory_order_release); }
    std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
    std::uint64_t pushed() const noexcept { return pushed_.load(std::memory_order_relaxed); }

private:
    void lock() noexcept {
        while (lock_.exchange(true, std::memory_order_acquire))
            while (lock_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
    void unlock() noexcept { lock_.store(false, std::memory_order_release); }

    taskport::detail::executor& ex_;
    std::atomic<bool> lock_{false};
    task_node* head_ = nullptr;  // guarded by lock_
    task_node* tail_ = nullptr;  // guarded by lock_
    std::atomic<std::size_t> size_{0};
    std::atomic<std::uint64_t> pushed_{0};
    std::atomic<bool> orphaned_{false};
    std::atomic<poll_target*> poller_{nullptr};
};

}  // namespace taskport::io::detail
