// work_stealing.cpp — the default scheduler: one Chase–Lev deque per worker, a LIFO slot, a
// shared injector, and the park protocol of park_protocol.hpp (idle.hpp, parker.hpp).
//
// Where an idle worker looks for work, in order (cf. oneTBB's task_dispatcher, Tokio's worker):
//   1. every 61st tick, the injector first (outside work is never starved by local work);
//   2. its LIFO slot (the continuation just woken), at most 3 times in a row — then the slot goes
//      to the deque and the worker runs the *oldest* task of its own deque instead;
//   3. its own deque, newest first;
//   4. the injector (a batch: one task to run, the rest onto its deque);
//   5. searching: steal half of a random victim's deque, or a victim's LIFO slot when that
//      victim's deque is empty and the slot is stale (lifo_slot.hpp: the same task there for
//      lifo_stale_after, the owner still busy with another); a few rounds, then park (idle.hpp).
//      One round only when every other worker sleeps and this one's last batch was not outside
//      work: then new work comes only with a wake-up, and polling would only cost system calls.
//      Between rounds a searcher pauses on its core; it never yields it (search()).
//
// Shutdown (park_protocol.hpp): close() stops outside submissions (each counted in flight so none
// slips past); workers keep running whatever is queued; when every worker is idle at top level,
// no submission is in flight and every queue is empty, the last one to go idle ends the pool.
//
// Hand-off wake-ups (lifo_watch.hpp): a worker that parks while another's LIFO slot is occupied
// (or refilled since its last look) parks *watching*, for lifo_stale_after at most, and a
// hand-off into a slot wakes a worker only when nobody watches: a woken worker could not take a
// fresh slot, and would only search and park again.
#include "cpu_count.hpp"
#include "deque.hpp"
#include "injector.hpp"
#include "lifo_slot.hpp"
#include "lifo_watch.hpp"
#include "park_protocol.hpp"
#include "test_hooks.hpp"

#include <taskport/sched/executor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace taskport::detail {

// initial-exec: a plain %fs-relative load instead of a __tls_get_addr call per access (these
// are read on every schedule()); costs a few bytes of the static TLS block, which glibc reserves.
#define TASKPORT_TLS_IE __attribute__((tls_model("initial-exec")))

namespace {
TASKPORT_TLS_IE thread_local executor* tl_executor = nullptr;
}

scheduler_test_hooks& test_hooks() noexcept {
    static scheduler_test_hooks hooks;
    return hooks;
}

executor* current_executor() noexcept { return tl_executor; }
void set_current_executor(executor* e) noexcept { tl_executor = e; }

// The CPUs this process may use: online, affinity mask and cgroup CPU quota (cpu_count.hpp).
// runtime/ applies TASKPORT_WORKERS before it gets here; sched reads no environment variable:
// taskport/detail/environment.hpp is the one place that does.
std::size_t default_worker_count() { return available_cpus(); }

namespace {

// Owner-written counter: plain load+store (no locked instruction), read by stats() racily-but-
// atomically from any thread.
struct counter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n = 1) noexcept {
        v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

std::size_t thread_lane_hint() noexcept {
    static std::atomic<std::size_t> next{0};
    TASKPORT_TLS_IE thread_local std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
    return mine;
}

class work_stealing final : public executor {
    struct alignas(64) worker {
        ws_deque deque;  // the owner's handle: this worker's thread only
        // What other threads may do with deque (steal, steal_half, size): a view, no state.
        ws_deque::stealer thief() noexcept { return deque.thief(); }
        // The task the owner runs next (lifo_slot.hpp: thieves take it only once stale).
        alignas(64) lifo_slot lifo;
        counter run, spawned, steals, stolen, lifo_steals, parks, inj_pops;
        park_protocol<std_atomics, task_source>::slot ps;  // owner only: index, searching
        std::uint64_t rng = 0;          // owner only
        unsigned tick = 0;              // owner only
        unsigned lifo_streak = 0;       // owner only
        unsigned inline_depth = 0;      // owner only: run_if_newest() runs nested now
        // Owner only (as a thief): per victim, the LIFO slot as last seen and since when.
        struct lifo_watch {
            lifo_slot::sighting seen;
            std::chrono::steady_clock::time_point since;
        };
        std::vector<lifo_watch> watch;
        std::thread thread;
    };

    static constexpr unsigned injector_interval = 61;
    static constexpr unsigned lifo_cap = 3;
    // How long a thief leaves a LIFO slot alone while it holds the same task and its owner has
    // put nothing new (steal_lifo). Long enough that a worker finishing a burst of short work
    // (a channel sender filling 1024 slots: ~36 us here) runs the task it woke itself; short
    // enough that a woken task behind a long-running one waits at most this long while a
    // worker idles. (Go waits 3 us; with 3 us a 1-to-1 channel bounded at 1024 ran 88 ms per
    // 1M values against 37 ms with 50 us: its two tasks then share one worker's cache.)
    static constexpr std::chrono::microseconds lifo_stale_after{50};
    static constexpr int search_rounds = 4;
    static constexpr std::size_t injector_batch = 32;
    // run_if_newest() nesting: each level is a few stack frames (the awaiter, the task's run,
    // the coroutine's resume), well under a kilobyte; past this the awaiter suspends instead.
    static constexpr unsigned max_inline_depth = 64;

public:
    explicit work_stealing(const scheduler_config& cfg)
        : n_(cfg.workers ? cfg.workers : default_worker_count()),
          polls_(cfg.worker_poll),
          inj_(n_),
          pp_(n_) {
        workers_.reserve(n_);
        for (std::size_t i = 0; i < n_; ++i) {
            workers_.push_back(std::make_unique<worker>());
            workers_.back()->ps.index = i;
            workers_.back()->rng = 0x9E3779B97F4A7C15ull * (i + 1);
            workers_.back()->watch.resize(n_);
        }
        for (std::size_t i = 0; i < n_; ++i) {
            try {
                start_worker(i);
            } catch (...) {
                abandon_start();
                throw;
            }
        }
    }

    ~work_stealing() override { shutdown(); }

    void schedule(task_node* t) override {
        if (worker* w = local()) {
            push_local(*w, t);
            return;
        }
        if (!pp_.enter_submit()) {
            pp_.leave_submit();
            throw runtime_closed();
        }
        inj_.push(t, thread_lane_hint());  // counted there (tasks_spawned), under its lane lock
        pp_.leave_submit();
        pp_.notify();
    }

    void schedule_accepted(task_node* t) noexcept override {
        if (worker* w = local()) {
            push_local(*w, t);
            return;
        }
        inject(t, t, 1);
    }

    void schedule_next(task_node* t) noexcept override {
        worker* w = local();
        if (!w) {
            inject(t, t, 1);
            return;
        }
        w->spawned.add();
        if (task_node* old = w->lifo.put(t)) {
            w->deque.push(old);  // stealable at once: wake a sleeper (unless one searches)
            pp_.notify();
            return;
        }
        // Only the slot, which no thief may take before it is stale: a watching worker will
        // look again within lifo_stale_after; wake one only when nobody watches (lifo_watch.hpp).
        if (lifo_watch_.must_wake()) pp_.notify();
    }

    void schedule_yield(task_node* t) noexcept override { inject(t, t, 1); }

    void schedule_batch(task_node* first, task_node* last, std::size_t n) noexcept override {
        if (n) inject(first, last, n);
    }

    bool run_if_newest(task_node* t) noexcept override {
        worker* w = local();
        if (!w || w->inline_depth >= max_inline_depth || !w->deque.pop_if_newest(t)) return false;
        ++w->inline_depth;
        t->run();
        --w->inline_depth;
        w->run.add();
        return true;
    }

    bool take_if_newest(task_node* t) noexcept override {
        worker* w = local();
        if (!w || !w->deque.pop_if_newest(t)) return false;
        w->run.add();  // pushed counted it as spawned; taken back, it runs (nested) now
        return true;
    }

    bool in_worker() const noexcept override { return local() != nullptr; }

    void attach_source(task_source* s) noexcept override {
        source_.store(s, std::memory_order_release);
    }
    void notify_source() noexcept override { pp_.notify(); }

    bool local_queue_empty() const noexcept override {
        worker* w = local();
        return !w || w->deque.empty();
    }

    void help_until(waitable& wt) override {
        worker& w = *local();
        if (wt.ready()) return;
        parker& p = pp_.parker_of(w.ps.index);
        bool parked = false;
        // Armed lazily, only before parking: most waits end while this worker runs the very
        // task it waits for (the child it just pushed), and arming costs a wait-table lock
        // (task_group) or a CAS plus a notify (future) that would then be wasted.
        bool armed = false;
        while (!wt.ready()) {
            task_node* t = find_local(w);
            if (!t) t = search(w);
            if (t) {
                run_task(w, t);
                continue;
            }
            // An arming is notified at most once, and that notification may have been spent
            // already: on a stale wake-up (a wait_table address reused by a new task_group
            // while the old group's last task was still waking it), or while a nested
            // help_until ran. Arm afresh before sleeping, or the real wake-up is lost.
            if (armed) wt.disarm(&p);
            armed = wt.arm(&p);
            if (!armed) continue;  // ready meanwhile
            park(w, &wt);
            parked = true;
        }
        if (armed) wt.disarm(&p);
        // Back to the waiting task, which may run for long: hand on work this worker saw.
        pool_view v{*this, w};
        pp_.leave_wait(w.ps, parked, v);
    }

    // help_until() with a deadline (future::wait_for on a worker): the same loop, plus a look at
    // the clock before each task, and a timed park (the parker's park_for_next) that never sleeps
    // in the source's poller, whose blocking poll has no timeout. Off the hot path: help_until()
    // and the worker loop are untouched.
    bool help_until_deadline(waitable& wt, std::chrono::steady_clock::time_point deadline) override {
        worker& w = *local();
        parker& p = pp_.parker_of(w.ps.index);
        bool parked = false;
        bool armed = false;
        while (!wt.ready()) {
            if (std::chrono::steady_clock::now() >= deadline) break;
            task_node* t = find_local(w);
            if (!t) t = search(w);
            if (t) {
                run_task(w, t);
                continue;
            }
            if (armed) wt.disarm(&p);  // as help_until(): arm afresh before sleeping
            armed = wt.arm(&p);
            if (!armed) continue;  // ready meanwhile
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= left.zero()) break;
            park_until(w, &wt, left);
            parked = true;
        }
        if (armed) wt.disarm(&p);
        pool_view v{*this, w};
        pp_.leave_wait(w.ps, parked, v);
        return wt.ready();
    }

    void shutdown() noexcept override {
        pp_.close();
        if (local()) return;  // a worker cannot join itself; the destructor joins
        std::lock_guard<std::mutex> g(join_mu_);
        for (auto& w : workers_)
            if (w->thread.joinable()) w->thread.join();
    }

    bool closed() const noexcept override { return pp_.closed(); }
    bool polls_source() const noexcept override { return polls_; }
    std::size_t concurrency() const noexcept override { return n_; }

    scheduler_stats stats() const override {
        scheduler_stats s;
        s.workers = n_;
        s.tasks_spawned = inj_.pushed();
        for (auto& w : workers_) {
            s.tasks_spawned += w->spawned.get();
            s.tasks_run += w->run.get();
            s.steals += w->steals.get();
            s.tasks_stolen += w->stolen.get();
            s.lifo_steals += w->lifo_steals.get();
            s.parks += w->parks.get();
            s.injector_pops += w->inj_pops.get();
            s.worker_queue_depth.push_back(w->thief().size() + (w->lifo.occupied() ? 1 : 0));
        }
        s.wakeups = pp_.wakeups();
        s.injector_depth = inj_.size();
        return s;
    }

private:
    worker* local() const noexcept { return tl_executor == this ? tl_worker : nullptr; }

    void start_worker(std::size_t i) {
        if (auto fail = test_hooks().fail_thread_start.load(std::memory_order_relaxed); fail && fail(i))
            throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                    "taskport: cannot start worker thread " + std::to_string(i + 1) +
                                        " of " + std::to_string(n_) + " (test hook)");
        try {
            workers_[i]->thread = std::thread([this, i] { worker_main(*workers_[i]); });
        } catch (const std::system_error& e) {
            throw std::system_error(e.code(), "taskport: cannot start worker thread " +
                                                  std::to_string(i + 1) + " of " + std::to_string(n_));
        }
    }

    // The constructor failed to start a worker: the ones already running exit at once (they
    // would wait for n idle workers), and are joined before the exception leaves the constructor.
    void abandon_start() noexcept {
        pp_.abandon();
        for (auto& w : workers_)
            if (w->thread.joinable()) w->thread.join();
    }

    // What park_protocol asks of the pool while worker w parks (may_watch) or leaves a wait.
    struct pool_view {
        work_stealing& ws;
        worker& w;
        bool may_watch = false;  // inside park(): an occupied slot arms a watch, not a cancel
        bool watching = false;   // a watch is armed (lifo_watch.hpp): a timed futex park
        // The park's re-check (after its seq_cst fence). Queued work cancels the park; an
        // occupied or refilled LIFO slot, which this worker may not take yet, makes it watch.
        bool work_visible() noexcept {
            if (!may_watch) return ws.work_visible();
            if (ws.work_queued()) return true;
            if (!watching && ws.slots_to_watch(w)) {
                watching = true;
                ws.lifo_watch_.begin();
                ws.pp_.parker_of(w.ps.index).park_for_next(lifo_stale_after);
            }
            return false;
        }
        task_source* pollable_source() const noexcept {
            if (watching) return nullptr;  // the poller's sleep has no timeout: the futex's
            return ws.polls_ ? ws.source_.load(std::memory_order_acquire) : nullptr;
        }
        void count_park() const noexcept { w.parks.add(); }
    };

    // Two-phase wait (park_protocol.hpp). Returns false when the worker should exit.
    bool park(worker& w, waitable* wt) {
        pool_view v{*this, w, true};
        const bool go_on = pp_.park(w.ps, wt, v);
        if (v.watching) {
            pp_.parker_of(w.ps.index).park_for_next({});  // unused if the park was cancelled
            // Owners that skipped a wake-up because of this watch: from here this worker owns
            // them as a searcher (leave_search wakes a successor, its next park re-checks),
            // counted before the watch ends so that no owner sees neither (lifo_watch.hpp).
            pp_.begin_search(w.ps);
            lifo_watch_.end();
        }
        return go_on;
    }

    // park() for help_until_deadline(): a futex sleep of `left` at most. A watch of a LIFO slot
    // (pool_view) may shorten it to lifo_stale_after, never lengthen it.
    struct timed_pool_view : pool_view {
        task_source* pollable_source() const noexcept { return nullptr; }  // no timeout there
    };
    void park_until(worker& w, waitable* wt, std::chrono::nanoseconds left) {
        parker& p = pp_.parker_of(w.ps.index);
        p.park_for_next(left);
        timed_pool_view v{{*this, w, true}};
        pp_.park(w.ps, wt, v);
        p.park_for_next({});  // unused if the park was cancelled
        if (v.watching) {  // as park()
            pp_.begin_search(w.ps);
            lifo_watch_.end();
        }
    }

    void leave_search(worker& w) noexcept { pp_.leave_search(w.ps); }

    void push_local(worker& w, task_node* t) {
        w.spawned.add();
        w.deque.push(t);
        pp_.notify();
    }

    void inject(task_node* first, task_node* last, std::size_t n) noexcept {
        inj_.push_batch(first, last, n, thread_lane_hint());
        pp_.notify();
    }

    void worker_main(worker& w) {
        tl_executor = this;
        tl_worker = &w;
        for (;;) {
            task_node* t = find_local(w);
            if (!t) t = search(w);
            if (t) {
                run_task(w, t);
                continue;
            }
            if (!park(w, nullptr)) break;
        }
        leave_search(w);
        tl_worker = nullptr;
        tl_executor = nullptr;
    }

    void run_task(worker& w, task_node* t) noexcept {
        leave_search(w);
        t->run();
        w.run.add();
    }

    task_node* find_local(worker& w) noexcept {
        if (++w.tick % injector_interval == 0) {
            poll_source(false);  // a busy pool still sees I/O events between its tasks
            if (task_node* t = take_source(w)) return t;
            if (task_node* t = take_injector(w)) return t;
        }
        if (w.lifo.occupied()) {
            if (w.lifo_streak < lifo_cap) {
                if (task_node* t = w.lifo.take()) {
                    ++w.lifo_streak;
                    return t;
                }
            } else if (task_node* t = w.lifo.take()) {
                // Cap reached: queue the slot and run the oldest local task instead.
                w.deque.push(t);
                w.lifo_streak = 0;
                for (int i = 0; i < 4; ++i)
                    if (task_node* old = w.deque.pop_oldest()) return old;
            }
        }
        w.lifo_streak = 0;
        if (task_node* t = w.deque.pop()) return t;
        if (task_node* t = take_source(w)) return t;
        return take_injector(w);
    }

    // Events the source's poller has ready now, queued in the source (see task_source::poll).
    void poll_source(bool block) noexcept {
        if (!polls_) return;
        if (task_source* src = source_.load(std::memory_order_acquire)) src->poll(block, nullptr, false);
    }

    // The attached source (io's completion queue): a batch, first to run, rest onto the deque.
    task_node* take_source(worker& w) noexcept {
        task_source* src = source_.load(std::memory_order_acquire);
        if (!src || src->empty()) return nullptr;
        std::size_t n = 0;
        task_node* first = src->pop_batch(injector_batch, n);
        if (!first) return nullptr;
        w.ps.outside_fed = false;
        w.inj_pops.add(n);
        spread_batch(w, first, n);
        return first;
    }

    // Queue all but the first of a popped batch on w's deque, oldest on top.
    void spread_batch(worker& w, task_node* first, std::size_t n) noexcept {
        task_node* rest[injector_batch];
        std::size_t k = 0;
        for (task_node* c = first->next; c && k < injector_batch; c = c->next) rest[k++] = c;
        while (k) w.deque.push(rest[--k]);
        if (n > 1) pp_.notify();
        first->next = nullptr;
    }

    task_node* take_injector(worker& w) noexcept {
        if (inj_.size() == 0) return nullptr;
        std::size_t n = 0;
        task_node* first = inj_.pop_batch(w.ps.index, injector_batch, n);
        if (!first) return nullptr;
        w.ps.outside_fed = true;
        w.inj_pops.add(n);
        spread_batch(w, first, n);
        return first;
    }

    task_node* search(worker& w) {
        pp_.begin_search(w.ps);
        for (int round = 0; round < search_rounds; ++round) {
            if (task_node* t = steal_from_others(w)) return t;
            // Every other worker asleep, and no outside thread feeding this one: only a wake-up
            // brings work now (a notify, or an event for the poller that park() sleeps in or
            // another worker does), so park at once: no yield, and no poll that park()'s
            // own poll would repeat.
            const bool alone = !w.ps.outside_fed && pp_.others_asleep();
            if (round == 0 && !alone) poll_source(false);
            if (task_node* t = take_source(w)) return t;
            if (task_node* t = take_injector(w)) return t;
            if (alone) break;
            // Pause, never yield: this worker counts as searching, so producers skip their
            // wake-ups for it (park_protocol.hpp, invariant 1), and it must stay on its core
            // until it finds work or parks. A sched_yield hands the core to any runnable thread
            // of the machine; a CPU-bound one then keeps it until the kernel's next tick (4 ms at
            // HZ=250), while this worker, runnable, neither runs tasks nor sleeps in the poller.
            // (test_io_tcp's "a read found by a worker waiting in get()" took 3.7-7.2 s instead
            // of 0.1 s beside two CPU-bound processes with these yields.)
            if (round + 1 < search_rounds)
                for (int i = 0; i < 32; ++i) cpu_relax();
        }
        return nullptr;
    }

    task_node* steal_from_others(worker& w) {
        if (n_ == 1) return nullptr;
        w.rng ^= w.rng << 13;
        w.rng ^= w.rng >> 7;
        w.rng ^= w.rng << 17;
        std::size_t start = static_cast<std::size_t>(w.rng % n_);
        for (std::size_t i = 0; i < n_; ++i) {
            worker& v = *workers_[(start + i) % n_];
            if (&v == &w) continue;
            for (int attempt = 0; attempt < 3 && !v.thief().empty(); ++attempt) {
                std::size_t moved = 0;
                if (task_node* t = v.thief().steal_half(w.deque, moved)) {
                    w.steals.add();
                    w.stolen.add(moved);
                    if (moved > 1) pp_.notify();
                    return t;
                }
            }
            if (v.thief().empty() && v.lifo.occupied())
                if (task_node* t = steal_lifo(w, v)) return t;
        }
        return nullptr;
    }

    // v's LIFO slot, only once stale (lifo_slot.hpp): the same task there, nothing put since,
    // as w saw it at least lifo_stale_after ago. Until then v will most likely run it itself as
    // soon as its current task suspends (the usual hand-off: a channel's receiver woken by the
    // sender that goes on to fill the buffer, or suspends at once); taking it would move the
    // task and its data to another core for every hand-off. Go's runqgrab waits ~3 us likewise
    // before taking a running P's runnext.
    task_node* steal_lifo(worker& w, worker& v) noexcept {
        auto& watch = w.watch[v.ps.index];
        const auto now = std::chrono::steady_clock::now();
        if (now - watch.since >= lifo_stale_after) {
            if (task_node* t = v.lifo.steal_if_stale(watch.seen)) {
                watch.seen = {};
                w.steals.add();
                w.stolen.add();
                w.lifo_steals.add();
                return t;
            }
        }
        const lifo_slot::sighting s = v.lifo.look();
        if (s.task != watch.seen.task || s.puts != watch.seen.puts) {
            watch.seen = s;
            watch.since = now;
        }
        return nullptr;
    }

    bool work_visible() const noexcept {
        if (work_queued()) return true;
        for (auto& v : workers_)
            if (v->lifo.occupied_seq_cst()) return true;
        return false;
    }

    // Work a parking worker could take now: the injector, the source, every deque.
    bool work_queued() const noexcept {
        if (inj_.size() != 0) return true;
        if (task_source* src = source_.load(std::memory_order_acquire); src && !src->empty())
            return true;
        for (auto& v : workers_)
            if (!v->thief().empty()) return true;
        return false;
    }

    // A parking worker w, after its re-check fence: whether another worker's LIFO slot is
    // occupied or was put into since w's last look (the hand-offs go on: watching costs a timed
    // wake-up, not watching a futex wake per hand-off). Records each sighting, so that after a
    // timed sleep of lifo_stale_after a slot still unchanged is stale for steal_lifo at once.
    // relaxed looks: ordered after the owners' puts by the fences (lifo_watch.hpp).
    bool slots_to_watch(worker& w) noexcept {
        bool watch = false;
        std::chrono::steady_clock::time_point now{};
        for (auto& vp : workers_) {
            worker& v = *vp;
            if (&v == &w) continue;
            const lifo_slot::sighting s = v.lifo.look();
            auto& seen = w.watch[v.ps.index];
            if (s.task == seen.seen.task && s.puts == seen.seen.puts) {
                if (s.task) watch = true;
                continue;
            }
            watch = true;
            if (now == std::chrono::steady_clock::time_point{}) now = std::chrono::steady_clock::now();
            seen.seen = s;
            seen.since = now;
        }
        return watch;
    }

    TASKPORT_TLS_IE static thread_local worker* tl_worker;

    const std::size_t n_;
    const bool polls_;  // idle and searching workers poll the source (scheduler_config::worker_poll)
    std::vector<std::unique_ptr<worker>> workers_;
    injector inj_;
    park_protocol<std_atomics, task_source> pp_;
    lifo_watch lifo_watch_;  // workers parked watching the LIFO slots (lifo_watch.hpp)
    std::atomic<task_source*> source_{nullptr};  // set once by attach_source()
    std::mutex join_mu_;
};

TASKPORT_TLS_IE thread_local work_stealing::worker* work_stealing::tl_worker = nullptr;

}  // namespace

std::unique_ptr<executor> make_tbb_arena_executor(const scheduler_config& cfg);  // tbb_arena.cpp

std::unique_ptr<executor> make_executor(const scheduler_config& cfg) {
    if (cfg.kind == scheduler_kind::tbb_arena) return make_tbb_arena_executor(cfg);
    return std::make_unique<work_stealing>(cfg);
}

}  // namespace taskport::detail
