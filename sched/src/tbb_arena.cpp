// tbb_arena.cpp — scheduler_kind::tbb_arena: taskport's tasks run on a oneTBB task_arena, so an
// application that already lives in TBB shares its threads instead of adding a second pool.
//
// Mapping: a schedule() on one of the arena's threads is a task_group::run (TBB's own local,
// stealable deque); from elsewhere it is task_arena::enqueue of a deferred task of the same group.
// A worker waiting on a future suspends its TBB task (tbb::task::suspend) and is resumed by the
// future's completion, so the thread goes on running other TBB tasks meanwhile. Shutdown waits
// for the group inside the arena: everything queued, and everything it spawns, runs.
#include <taskport/sched/executor.hpp>

#include <stdexcept>

#if TASKPORT_HAVE_TBB
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

namespace taskport::detail {
namespace {

class tbb_arena_executor final : public executor {
    class observer final : public tbb::task_scheduler_observer {
    public:
        observer(tbb::task_arena& a, executor* ex) : tbb::task_scheduler_observer(a), ex_(ex) {
            observe(true);
        }
        ~observer() override { observe(false); }
        void on_scheduler_entry(bool) override { set_current_executor(ex_); }
        void on_scheduler_exit(bool) override { set_current_executor(nullptr); }

    private:
        executor* ex_;
    };

    struct resumer final : continuation {
        explicit resumer(tbb::task::suspend_point p) noexcept
            : continuation(&resumer::on_notify), sp(p) {}
        static void on_notify(continuation* c) noexcept {
            tbb::task::resume(static_cast<resumer*>(c)->sp);
        }
        tbb::task::suspend_point sp;
    };

public:
    explicit tbb_arena_executor(const scheduler_config& cfg)
        : n_(cfg.workers ? cfg.workers : default_worker_count()),
          control_(tbb::global_control::max_allowed_parallelism, n_ + 1),
          arena_(static_cast<int>(n_), 0) {
        arena_.initialize();
        observer_.emplace(arena_, this);
    }

    ~tbb_arena_executor() noexcept override {
        shutdown();
        observer_.reset();
    }

    void schedule(task_node* t) override {
        if (in_worker()) {
            run_local(t);
            return;
        }
        inflight_.fetch_add(1, std::memory_order_seq_cst);
        if (closed_.load(std::memory_order_seq_cst)) {
            inflight_.fetch_sub(1, std::memory_order_seq_cst);
            throw runtime_closed();
        }
        enqueue(t);
        inflight_.fetch_sub(1, std::memory_order_seq_cst);
    }
    void schedule_accepted(task_node* t) noexcept override {
        if (in_worker())
            run_local(t);
        else
            enqueue(t);
    }
    void schedule_next(task_node* t) noexcept override { schedule_accepted(t); }
    void schedule_yield(task_node* t) noexcept override { enqueue(t); }
    void schedule_batch(task_node* first, task_node*, std::size_t) noexcept override {
        while (first) {
            task_node* next = first->next;
            enqueue(first);
            first = next;
        }
    }

    bool in_worker() const noexcept override { return current_executor() == this; }

    void attach_source(task_source* s) noexcept override {
        source_.store(s, std::memory_order_release);
    }
    // .NET's pattern: one drain task at a time empties the source, each completion spawned
    // into the group (stealable); after clearing the flag it re-checks, so nothing is stranded.
    void notify_source() noexcept override {
        if (draining_.exchange(true, std::memory_order_acq_rel)) return;
        spawned_.fetch_add(1, std::memory_order_relaxed);
        arena_.enqueue(group_.defer([this] { drain(); }));
    }
    bool local_queue_empty() const noexcept override { return true; }

    void help_until(waitable& w) override {
        // A notification may be spurious (task_node.hpp): after a resume, re-check and suspend
        // again with a fresh arming. Each resumer is notified at most once.
        while (!w.ready()) {
            // r lives on the suspended task's stack, which stays put until resume().
            std::optional<resumer> r;
            tbb::task::suspend([&](tbb::task::suspend_point sp) {
                r.emplace(sp);
                if (!w.arm(&*r)) tbb::task::resume(sp);
            });
        }
    }

    void shutdown() noexcept override {
        closed_.store(true, std::memory_order_seq_cst);
        if (in_worker()) return;
        std::lock_guard<std::mutex> g(mu_);
        if (joined_) return;
        // Outside submissions that passed the closed_ check finish enqueueing first.
        while (inflight_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
        arena_.execute([this] { group_.wait(); });
        joined_ = true;
    }

    // seq_cst: io's completion_queue::push() pairs this read with its seq_cst announcement
    // (pushers_) against the last worker's reads, Dekker-style; acquire would not order them.
    bool closed() const noexcept override { return closed_.load(std::memory_order_seq_cst); }
    std::size_t concurrency() const noexcept override { return n_; }

    scheduler_stats stats() const override {
        scheduler_stats s;
        s.workers = n_;
        s.tasks_spawned = spawned_.load(std::memory_order_relaxed);
        s.tasks_run = run_.load(std::memory_order_relaxed);
        s.worker_queue_depth.assign(n_, 0);  // TBB does not expose its deques
        return s;
    }

private:
    void drain() noexcept {
        task_source* src = source_.load(std::memory_order_acquire);
        for (;;) {
            std::size_t n = 0;
            while (task_node* batch = src->pop_batch(64, n)) {
                while (batch) {
                    task_node* next = batch->next;
                    batch->next = nullptr;
                    run_local(batch);
                    batch = next;
                }
            }
            draining_.store(false, std::memory_order_seq_cst);
            if (src->empty() || draining_.exchange(true, std::memory_order_acq_rel)) break;
        }
        run_.fetch_add(1, std::memory_order_relaxed);
    }

    void run_local(task_node* t) noexcept {
        spawned_.fetch_add(1, std::memory_order_relaxed);
        group_.run([this, t] {
            t->run();
            run_.fetch_add(1, std::memory_order_relaxed);
        });
    }
    void enqueue(task_node* t) noexcept {
        spawned_.fetch_add(1, std::memory_order_relaxed);
        arena_.enqueue(group_.defer([this, t] {
            t->run();
            run_.fetch_add(1, std::memory_order_relaxed);
        }));
    }

    std::size_t n_;
    tbb::global_control control_;
    tbb::task_arena arena_;
    tbb::task_group group_;
    std::optional<observer> observer_;
    std::atomic<bool> closed_{false};
    std::atomic<task_source*> source_{nullptr};
    std::atomic<bool> draining_{false};  // a drain task is queued or running
    std::atomic<std::size_t> inflight_{0};
    std::atomic<std::uint64_t> spawned_{0}, run_{0};
    std::mutex mu_;
    bool joined_ = false;
};

}  // namespace

std::unique_ptr<executor> make_tbb_arena_executor(const scheduler_config& cfg) {
    return std::make_unique<tbb_arena_executor>(cfg);
}

}  // namespace taskport::detail

#else

namespace taskport::detail {
std::unique_ptr<executor> make_tbb_arena_executor(const scheduler_config&) {
    throw std::invalid_argument(
        "taskport: scheduler_kind::tbb_arena needs oneTBB, and this build has none "
        "(configure with -Dtbb=enabled)");
}
}  // namespace taskport::detail

#endif
