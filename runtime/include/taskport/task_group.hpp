// taskport/task_group.hpp — task_group (run / wait, like tbb::task_group) and parallel_for.
//
// A group counts its unfinished tasks. The task that brings the count to zero never touches the
// group again: it wakes waiters by the group's address through the wait table
// (taskport/sched/wait_table.hpp), because the waiter may destroy the group the moment it sees
// zero. wait() on a worker runs other tasks meanwhile, so groups nest inside tasks freely.
#pragma once

#include <taskport/runtime.hpp>
#include <taskport/sched/futex.hpp>
#include <taskport/sched/wait_table.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>

namespace taskport {

namespace detail {

// A continuation that blocks an outside thread. Only for waitables whose disarm() is
// synchronous (wait-table based), so nothing touches it after the waiter returns.
struct thread_waiter final : continuation {
    thread_waiter() noexcept : continuation(&thread_waiter::on_notify) {}
    static void on_notify(continuation* c) noexcept {
        auto* self = static_cast<thread_waiter*>(c);
        self->flag.store(1, std::memory_order_release);
        futex_wake_one(self->flag);
    }
    void wait() noexcept {
        while (flag.load(std::memory_order_acquire) == 0) futex_wait(flag, 0);
        flag.store(0, std::memory_order_relaxed);
    }
    std::atomic<std::uint32_t> flag{0};
};

// Counts outstanding work; waited for until it reaches zero, by any number of threads at once
// (outside threads blocking, worker tasks helping: each brings its own registration).
class counter_waitable final {
public:
    void add(std::size_t n = 1) noexcept { pending_.fetch_add(n, std::memory_order_relaxed); }
    // The last touch of *this by a finishing task.
    void done() noexcept {
        const void* addr = this;
        if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1) wait_table_notify_all(addr);
    }
    bool ready() const noexcept { return pending_.load(std::memory_order_acquire) == 0; }

    // From any thread: helps on a worker, blocks elsewhere.
    void wait(executor& ex) {
        if (ready()) return;
        registration r(*this);
        if (ex.in_worker()) {
            ex.help_until(r);
            return;
        }
        // Each arming is notified at most once, and the notification may be stale (an earlier
        // group at this address finishing late, see wait_table.hpp): it unlinks the entry, so
        // re-arm after every wake-up that did not find the count at zero.
        thread_waiter tw;
        while (!ready()) {
            if (!r.arm(&tw)) return;
            tw.wait();  // notified, and unlinked by the notifier
            // The notifier calls tw's notify() under the bucket lock and may still be inside it
            // after tw.wait() saw the flag: taking that lock (a no-op removal) waits it out, so
            // tw is not destroyed under it.
            r.disarm(&tw);
        }
    }

private:
    // One waiter's entry in the wait table, in the waiter's frame: the table keeps any number
    // of entries per address, so any number of threads wait at once. (One entry in the group,
    // re-armed by each waiter, was the bug: a second waiter re-linked it and the first was
    // never woken.) disarm() is synchronous (the bucket lock), so nothing touches the entry
    // once it returns.
    struct registration final : waitable {
        explicit registration(const counter_waitable& c) noexcept : cw(c) {}
        bool ready() const noexcept override { return cw.ready(); }
        bool arm(continuation* c) noexcept override {
            entry.addr = &cw;
            entry.cont = c;
            wait_table_add(entry);
            // seq_cst: the Dekker pair with done()'s decrement (wait_table.hpp).
            if (cw.pending_.load(std::memory_order_seq_cst) == 0 && wait_table_remove(entry))
                return false;
            note_wait_registered(&cw);
            return true;
        }
        void disarm(continuation*) noexcept override { wait_table_remove(entry); }
        const counter_waitable& cw;
        wait_entry entry;
    };

    std::atomic<std::size_t> pending_{0};
};

}  // namespace detail

/// Runs tasks and waits for all of them, like tbb::task_group. run() may be called from any
/// thread, also from tasks of the group; wait() from one thread at a time.
class task_group {
public:
    /// A group whose tasks run on rt.
    explicit task_group(runtime& rt) noexcept : rt_(rt) {}
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    // Waits for tasks still running; their exceptions are discarded (call wait() to see them).
    ~task_group() { count_.wait(rt_.executor()); }

    // Runs f as a task of this group. From a task of this group too.
    template <class F>
    void run(F&& f) {
        using Fn = std::decay_t<F>;
        struct node final : detail::task_node, detail::task_allocated {
            node(task_group* g, Fn&& fn) : task_node(&on_run), grp(g), f(std::move(fn)) {}
            static void on_run(detail::task_node* t) noexcept {
                auto* self = static_cast<node*>(t);
                task_group* g = self->grp;
                if (!g->cancelled_.load(std::memory_order_relaxed)) {
                    try {
                        self->f();
                    } catch (...) {
                        g->record(std::current_exception());
                    }
                }
                delete self;
                g->count_.done();  // last touch of the group
            }
            task_group* grp;
            Fn f;
        };
        auto* n = new node(this, Fn(std::forward<F>(f)));
        count_.add();
        try {
            rt_.executor().schedule(n);
        } catch (...) {
            delete n;
            count_.done();
            throw;
        }
    }

    // Waits for every task run so far (and those they run in this group); rethrows the first
    // exception any of them threw. The group can be reused afterwards.
    void wait() {
        count_.wait(rt_.executor());
        cancelled_.store(false, std::memory_order_relaxed);
        if (has_error_.load(std::memory_order_acquire)) {
            std::exception_ptr e = std::move(error_);
            error_ = nullptr;
            has_error_.store(false, std::memory_order_relaxed);
            std::rethrow_exception(e);
        }
    }

    // Tasks of this group that have not started yet will not run.
    void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
    /// True after cancel() (or a task's exception) until wait() returns.
    bool is_cancelling() const noexcept { return cancelled_.load(std::memory_order_relaxed); }

private:
    // error_ is read by wait() only after the count reached zero, which every recorder's
    // done() precedes.
    void record(std::exception_ptr e) noexcept {
        if (!has_error_.exchange(true, std::memory_order_acq_rel)) error_ = std::move(e);
        cancel();
    }

    runtime& rt_;
    detail::counter_waitable count_;
    std::atomic<bool> cancelled_{false};
    std::atomic<bool> has_error_{false};
    std::exception_ptr error_;
};

// Calls f(i) for every i in [first, last), in parallel, and returns when all are done
// (rethrowing the first exception; after one, unstarted chunks are skipped).
// Splitting is adaptive (lazy binary splitting, Tzannes et al., PPoPP'10): a worker splits its
// range in half only while its own queue is empty, i.e. while a thief could use the other half.
template <class Index, class F>
    requires std::is_integral_v<Index>
void parallel_for(runtime& rt, Index first, Index last, F&& f, std::size_t grain = 0) {
    if (!(first < last)) return;
    using U = std::make_unsigned_t<Index>;
    const U n = static_cast<U>(static_cast<U>(last) - static_cast<U>(first));
    if (grain == 0) grain = std::max<std::size_t>(1, static_cast<std::size_t>(n) / (rt.workers() * 64));

    struct ctx {
        runtime& rt;
        F& f;
        std::size_t grain;
        task_group g;
        void body(Index a, Index b) {
            detail::executor& ex = rt.executor();
            while (a < b) {
                if (g.is_cancelling()) return;
                // Index arithmetic in U, cast back each time: for types narrower than int the
                // difference is computed in (signed) int after promotion, and a range crossing
                // zero came out negative, i.e. a huge size_t (short [-300, 300) ran past its end).
                const std::size_t left =
                    static_cast<std::size_t>(static_cast<U>(static_cast<U>(b) - static_cast<U>(a)));
                if (left > grain && ex.local_queue_empty()) {
                    Index mid = static_cast<Index>(static_cast<U>(a) + static_cast<U>(left / 2));
                    g.run([this, mid, b] { body(mid, b); });
                    b = mid;
                    continue;
                }
                Index e = static_cast<Index>(static_cast<U>(a) +
                                             static_cast<U>(std::min(grain, left)));
                for (; a < e; ++a) f(a);
            }
        }
    } c{rt, f, grain, task_group(rt)};

    if (rt.executor().in_worker()) {
        try {
            c.body(first, last);
        } catch (...) {
            c.g.cancel();
            try {
                c.g.wait();  // let the others finish before the context goes away
            } catch (...) {
            }
            throw;
        }
    } else {
        c.g.run([&c, first, last] { c.body(first, last); });
    }
    c.g.wait();
}

}  // namespace taskport
