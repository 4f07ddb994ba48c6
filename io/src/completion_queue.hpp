// completion_queue.hpp — the runtime's central completion queue.
//
// Every backend (the epoll/kqueue readiness thread, the io_uring and IOCP completion threads,
// the timer heap, the blocking pool) pushes finished operations here, a whole batch at a time:
// one lock, one splice, at most one wake-up, whatever the batch size — so delivering a
// completion costs O(1) however many operations are parked. Workers drain it through the
// scheduler's task_source hook, a batch at a time, and the operations run as ordinary
// (stealable) tasks.
//
// Invariants:
//   - size_ equals the list length whenever lock_ is free; it is read without the lock
//     (seq_cst) by parking workers.
//   - Nothing pushed is stranded. A push from a thread that is not one of the runtime's workers
//     is announced in pushers_ before it looks at the executor, and empty() counts announced
//     pushes as work; the last worker decides to exit only after it saw closed() and then
//     empty() (both seq_cst). So either that worker sees the push and stays to run it, or the
//     push sees the executor closed and runs the batch itself (below). orphan() waits for the
//     announced pushes before the runtime frees the executor they read.
//   - A completion runs on a worker, except in one case: a push from outside the workers after
//     the executor has closed (runtime::shutdown() has begun) or after the runtime is gone
//     (orphan()). No worker may be left to run it then, so push() runs the batch on the calling
//     thread. That thread is never one of the runtime's I/O threads: runtime::shutdown() stops
//     and joins them (service::shutdown) before it closes the executor, so their last pushes
//     are queued and run by workers. It is a user's thread: one that cancels or closes an I/O
//     object, or starts an operation (refused with operation_aborted), after shutdown.
//     Apart from that case push() never blocks beyond the few pointer moves under lock_.
//
// The atomics policy A (taskport/sched/atomics.hpp) is std_atomics in the library; the Relacy
// model (tests/model/cq_model.cpp) instantiates the same code with rl_atomics. TASKPORT_PLANT_*
// macros re-introduce known bugs for that model only; never define them in a library build.
#pragma once

#include <taskport/sched/atomics.hpp>
#include <taskport/sched/executor.hpp>
#include <taskport/sched/spin_lock.hpp>

#include <atomic>
#include <cstddef>

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
    virtual bool worker_poll(bool block, const std::atomic<std::uint32_t>* wake, bool may_spin) noexcept = 0;
    virtual void interrupt_poll() noexcept = 0;
    // Operations or timers wait for an event and nobody sleeps in the poller
    // (task_source::needs_poller).
    virtual bool needs_poller() const noexcept = 0;

protected:
    ~poll_target() = default;
};

// Points where a test's atomics policy may hold a pushing thread (A::hook; empty in production).
enum class cq_hook {
    before_link,  // push() decided to queue the batch and is about to link it
};

template <class A = taskport::detail::std_atomics>
class basic_completion_queue final : public taskport::detail::task_source {
public:
    explicit basic_completion_queue(taskport::detail::executor& ex) : ex_(ex) {}

    // Any thread; never allocates; never runs a completion, except after shutdown on a thread
    // that is not a worker (see the top of this file). notify = false: the caller is a worker
    // that takes the batch itself next (a worker's own poll), so nobody is woken.
    void push(op_batch& b, bool notify = true) noexcept {
        if (b.empty()) return;
        // acquire: orphan() happens after the workers joined; a thread that sees it set must not
        // touch ex_ (the executor may be freed).
        if (orphaned_.load(A::acquire)) {
            run_here(b);
            return;
        }
        // One of this runtime's workers (compared by address, without calling into ex_): it is
        // busy, so the executor cannot finish before this worker looks for work again: queue.
        if (taskport::detail::current_executor() == &ex_) {
            link(b, notify);
            return;
        }
        // Anyone else: announce the push, then look at the executor, all seq_cst (executor::
        // closed() is a seq_cst load in both executors), against the last worker's seq_cst reads
        // of closed and then of pushers_ (empty()), and against orphan()'s seq_cst store then its
        // reads of pushers_: in the single total order one side sees the other.
#ifdef TASKPORT_PLANT_CQ_UNANNOUNCED_PUSH
        // The historic bug: decide from a snapshot, then queue (the window: the last worker
        // leaves between the check and the link, and the batch is never run).
        if (orphaned_.load(A::acquire) || (ex_.closed() && !ex_.in_worker())) {
            run_here(b);
            return;
        }
        A::hook(cq_hook::before_link);
        link(b, notify);
#else
        pushers_.fetch_add(1, A::seq_cst);
        if (orphaned_.load(A::seq_cst) || ex_.closed()) {
            // Closed (or gone): no worker may be left to take it. Not one of the I/O threads
            // (they are joined before the executor closes): a user's thread; run it here.
            pushers_.fetch_sub(1, A::release);
            run_here(b);
            return;
        }
        A::hook(cq_hook::before_link);
        link(b, notify);
        // seq_cst: after size_ grew (in link), so a worker that reads pushers_ == 0 and then
        // size_ sees the batch.
        pushers_.fetch_sub(1, A::seq_cst);
#endif
    }
    void push(task_node* t) noexcept {
        op_batch b;
        b.push(t);
        push(b);
    }

    task_node* pop_batch(std::size_t max, std::size_t& n) noexcept override {
        n = 0;
        if (size_.load(A::relaxed) == 0) return nullptr;  // a hint; the lock decides
        lock_.lock();
        task_node* first = head_.load();
        task_node* last = nullptr;
        task_node* cur = first;
        while (cur && n < max) {
            last = cur;
            cur = cur->next;
            ++n;
        }
        if (n) {
            head_.store(cur);
            if (!cur) tail_.store(nullptr);
            last->next = nullptr;
            size_.fetch_sub(n, A::seq_cst);
        }
        lock_.unlock();
        return n ? first : nullptr;
    }

    // seq_cst, pushers_ first: a push announced but not yet linked counts as work, so the last
    // worker does not leave under it (see push()). Reading size_ first would let the whole push
    // (announce, link, withdraw) fall between the two reads.
    bool empty() const noexcept override {
#ifdef TASKPORT_PLANT_CQ_EMPTY_READS_SIZE_FIRST
        if (size_.load(A::seq_cst) != 0) return false;
        return pushers_.load(A::seq_cst) == 0;
#else
        if (pushers_.load(A::seq_cst) != 0) return false;
        return size_.load(A::seq_cst) == 0;
#endif
    }

    // The readiness core that workers may poll (task_source::poll), set once before the queue
    // is attached to the executor; null (IOCP, or an executor that does not poll): poll() says
    // no and workers sleep on their futex.
    void set_poller(poll_target* p) noexcept { poller_.store(p, A::release); }
    bool poll(bool block, const std::atomic<std::uint32_t>* wake, bool may_spin) noexcept override {
        poll_target* p = poller_.load(A::acquire);
        return p && p->worker_poll(block, wake, may_spin);
    }
    void interrupt() noexcept override {
        if (poll_target* p = poller_.load(A::acquire)) p->interrupt_poll();
    }
    bool needs_poller() const noexcept override {
        poll_target* p = poller_.load(A::acquire);
        return p && p->needs_poller();
    }

    // The runtime is going away (its workers joined): later completions run on the thread
    // that delivers them. Runs what is still queued (pushed after the last worker looked), then
    // waits for announced pushes (a few instructions each) so that none reads the executor
    // after the runtime frees it. Called once, by the thread destroying the runtime.
    void orphan() noexcept {
        orphaned_.store(true, A::seq_cst);
        while (pushers_.load(A::seq_cst) != 0) A::yield();
        std::size_t n = 0;
        while (task_node* t = pop_batch(64, n)) {
            op_batch b;
            b.first = t;
            b.n = n;
            run_here(b);
        }
    }
    std::size_t size() const noexcept { return size_.load(A::relaxed); }
    std::uint64_t pushed() const noexcept { return pushed_.load(A::relaxed); }

private:
    void link(op_batch& b, bool notify) noexcept {
        const std::size_t n = b.n;
        lock_.lock();
        if (task_node* tl = tail_.load())
            tl->next = b.first;
        else
            head_.store(b.first);
        tail_.store(b.last);
        size_.fetch_add(n, A::seq_cst);  // seq_cst: read by parking workers after their fence
        lock_.unlock();
        pushed_.fetch_add(n, A::relaxed);  // statistics only
        b = op_batch{};
        if (notify) ex_.notify_source();
    }

    static void run_here(op_batch& b) noexcept {
        for (task_node* t = b.first; t;) {
            task_node* next = t->next;
            t->next = nullptr;
            t->run();
            t = next;
        }
        b = op_batch{};
    }

    taskport::detail::executor& ex_;
    taskport::detail::basic_spin_lock<A> lock_;
    typename A::template var<task_node*> head_{nullptr};  // guarded by lock_
    typename A::template var<task_node*> tail_{nullptr};  // guarded by lock_
    // Written under lock_ (push: +n, pop_batch: -n); read without it by anyone.
    typename A::template atomic<std::size_t> size_{0};
    // Pushes from outside the workers under way (announced, not yet linked or withdrawn): written
    // by those pushers, read by empty() (the last worker) and orphan(). See push().
    typename A::template atomic<std::size_t> pushers_{0};
    typename A::template atomic<std::uint64_t> pushed_{0};  // statistics
    // Set once by orphan(); read by every push.
    typename A::template atomic<bool> orphaned_{false};
    // Set once before the queue is attached; read by workers that poll.
    typename A::template atomic<poll_target*> poller_{nullptr};
};

using completion_queue = basic_completion_queue<>;

}  // namespace taskport::io::detail
