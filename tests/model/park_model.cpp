// park_model.cpp — Relacy model of the scheduler's park protocol: the real park_protocol.hpp,
// idle.hpp and parker.hpp (instantiated on Relacy's atomics, mutexes and a futex emulation
// instead of std_sync), driven by a model pool: an injector and a poll source as counters, and
// worker loops shaped like work_stealing.cpp's worker_main/search/help_until.
//
// The poll source models reactor::worker_poll (io/src/reactor.cpp) and the completion queue:
// one poll role; an interrupt() is an eventfd that whoever polls next drains; a blocking poll
// first re-reads the caller's wake-up token once it holds the role, then looks once without
// blocking (the spin) and re-reads the token again, then sleeps until an I/O event or an
// interrupt. (That part is a copy of the reactor's protocol, which lives in io/: keep in step.)
//
// Scenarios (each a Relacy test suite; a lost wake-up shows as DEADLOCK: every thread blocked):
//   shutdown_race  2 workers; one outside submission racing close() (test_shutdown's hang)
//   wait_handoff   2 workers; a task waits in help_until while an outside thread posts a task
//                  and completes the awaited future; the task then needs the posted one to run
//                  (io_tcp's "a read found by a worker waiting in get()" with WORKER_POLL=0)
//   poll_interrupt 1 polling worker, a poster and a backstop poll: the wake-up of a worker
//                  asleep in the poller must survive another poller draining the interrupt
//   poll_interrupt_nospin  the same without the spin (TASKPORT_POLL_SPIN_US=0)
//   poll_handoff   2 polling workers; what the help_until waiter's poll found must reach the
//                  other worker when its wait ends (ddbed8c)
//
// planted: REFUSED_NO_WAKE HANDOFF_POLLED_ONLY HANDOFF_NONE TOKEN_NOT_REREAD SPIN_NO_REREAD
//   REFUSED_NO_WAKE     park_protocol.hpp: a refused submission leaves without waking (the
//                       test_shutdown hang, fixed on branch sched)
//   HANDOFF_POLLED_ONLY park_protocol.hpp: only what the waiter's own poll found is handed on
//                       (the code before the io_tcp TASKPORT_WORKER_POLL=0 fix)
//   HANDOFF_NONE        park_protocol.hpp: nothing is handed on (before ddbed8c)
//   TOKEN_NOT_REREAD    this model's poll source: the token is not re-read once the role is
//                       held (before 12b6df5; 1140466 is ddbed8c's regression test)
//   SPIN_NO_REREAD      this model's poll source: the token is not re-read after the spin's
//                       non-blocking look (the guard added with the spin in 1c67933)
//
// Build and run (exit 0: nothing found within each scenario's time budget, < 60 s in all; 1:
// Relacy reported a failure, its report printed):
//   g++ -std=c++20 -O1 -Isched/src -Isched/include -Iruntime/include -Iio/src -Iio/include \
//       tests/model/park_model.cpp -o park_model [-DTASKPORT_PLANT_<BUG>] && ./park_model
// Standard headers first: Relacy's macros break some of them when included after it.
#include <taskport/sched/executor.hpp>
#include <taskport/sched/futex.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <relacy/relacy.hpp>
// relacy.hpp turns the std::memory_order_* names into macros for its own std emulation; the real
// headers below use std::memory_order, which rl_atomic translates.
#undef memory_order_relaxed
#undef memory_order_consume
#undef memory_order_acquire
#undef memory_order_release
#undef memory_order_acq_rel
#undef memory_order_seq_cst
// And `new`/`delete` into its proxies, which do not pair with the aligned (alignas(64)) array
// new of idle.hpp; Relacy's replaced global operator new/delete still see every allocation.
#undef new
#undef delete
// Relacy replaces operator new/delete(void*) (inline) but not the sized deletes that C++14 and
// later call (std::vector's deallocation): route them to Relacy's, or glibc frees its blocks.
void operator delete(void* p, std::size_t) noexcept { ::operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { ::operator delete[](p); }

// ---- the Relacy sync policy --------------------------------------------------------------

namespace model {

inline rl::memory_order mo(std::memory_order m) {
    switch (m) {
        case std::memory_order_relaxed: return rl::mo_relaxed;
        case std::memory_order_consume:
        case std::memory_order_acquire: return rl::mo_acquire;
        case std::memory_order_release: return rl::mo_release;
        case std::memory_order_acq_rel: return rl::mo_acq_rel;
        default: return rl::mo_seq_cst;
    }
}

// std::atomic's interface over rl::atomic.
template <class T>
class rl_atomic {
public:
    rl_atomic(T v = T()) : a_(v) {}
    T load(std::memory_order m = std::memory_order_seq_cst) const { return a_($).load(mo(m)); }
    void store(T v, std::memory_order m = std::memory_order_seq_cst) { a_($).store(v, mo(m)); }
    T exchange(T v, std::memory_order m = std::memory_order_seq_cst) {
        return a_($).exchange(v, mo(m));
    }
    T fetch_add(T v, std::memory_order m = std::memory_order_seq_cst) {
        return a_($).fetch_add(v, mo(m));
    }
    T fetch_sub(T v, std::memory_order m = std::memory_order_seq_cst) {
        return a_($).fetch_sub(v, mo(m));
    }
    bool compare_exchange_strong(T& e, T d, std::memory_order m = std::memory_order_seq_cst) {
        return a_($).compare_exchange_strong(e, d, mo(m));
    }

private:
    mutable rl::atomic<T> a_;
};

// A futex: a word, and a mutex + condition variable to sleep on until it changes.
struct rl_futex_word : rl_atomic<std::uint32_t> {
    using rl_atomic<std::uint32_t>::rl_atomic;
    rl::mutex m;
    rl::condition_variable cv;
};

struct rl_mutex {
    rl::mutex m;
    void lock() { m.lock($); }
    void unlock() { m.unlock($); }
};

struct poll_source;

struct rl_sync {
    template <class T>
    using atomic = rl_atomic<T>;
    using futex_word = rl_futex_word;
    using mutex = rl_mutex;
    using source_type = poll_source;

    static void fence(std::memory_order m) { rl::atomic_thread_fence(mo(m), $); }
    // Returns once w may no longer hold old (the waker changes w, then takes the mutex).
    static void futex_wait(futex_word& w, std::uint32_t old) {
        w.m.lock($);
        while (w.load(std::memory_order_relaxed) == old) w.cv.wait(w.m, $);
        w.m.unlock($);
    }
    static void futex_wake_one(futex_word& w) { futex_wake_all(w); }
    static void futex_wake_all(futex_word& w) {
        w.m.lock($);
        w.m.unlock($);
        w.cv.notify_all($);
    }
};

}  // namespace model

#include "park_protocol.hpp"

namespace taskport::detail {
scheduler_test_hooks& test_hooks() noexcept {
    static scheduler_test_hooks h;
    return h;
}
}  // namespace taskport::detail

namespace model {

using protocol = taskport::detail::park_protocol<rl_sync>;
using parker = taskport::detail::basic_parker<rl_sync>;

// A one-shot flag a thread can block on (test-side waits: "the task ran").
struct event {
    rl::mutex m;
    rl::condition_variable cv;
    rl::var<bool> flag{false};
    void set() {
        m.lock($);
        flag($) = true;
        m.unlock($);
        cv.notify_all($);
    }
    void wait() {
        m.lock($);
        while (!flag($)) cv.wait(m, $);
        m.unlock($);
    }
};

// A future's waiter protocol, reduced: ready(), arm(parker) / disarm, set().
struct target {
    rl_atomic<bool> ready_{false};
    rl_mutex mu;
    parker* waiter = nullptr;  // guarded by mu
    bool ready() const { return ready_.load(std::memory_order_seq_cst); }
    bool arm(parker* p) {
        std::lock_guard<rl_mutex> g(mu);
        if (ready_.load(std::memory_order_relaxed)) return false;
        waiter = p;
        return true;
    }
    void disarm() {
        std::lock_guard<rl_mutex> g(mu);
        waiter = nullptr;
    }
    void set() {
        parker* p;
        {
            std::lock_guard<rl_mutex> g(mu);
            ready_.store(true, std::memory_order_seq_cst);
            p = waiter;
            waiter = nullptr;
        }
        if (p) p->unpark();
    }
};

// reactor::worker_poll and the completion queue, as counters (see the file comment).
struct poll_source {
    enum : std::uint32_t { role_free, role_held, role_blocking };
    rl_atomic<std::uint32_t> role{role_free};
    rl_futex_word kernel{0};        // bumped by every readiness change (epoll_wait's wake-up)
    rl_atomic<int> eventfd{0};      // interrupts not yet drained
    rl_atomic<int> ready_io{0};     // I/O events the kernel holds, not yet harvested
    rl_atomic<int> cq{0};           // completions queued (completion_queue::size_)
    protocol* pp = nullptr;         // for the backstop's notifying push
    bool spin = true;               // TASKPORT_POLL_SPIN_US > 0: one non-blocking look first

    bool empty() const { return cq.load(std::memory_order_seq_cst) == 0; }
    bool pop() {
        int v = cq.load(std::memory_order_seq_cst);
        while (v > 0)
            if (cq.compare_exchange_strong(v, v - 1, std::memory_order_seq_cst)) return true;
        return false;
    }
    void interrupt() {  // poller_->wake(): the eventfd
        eventfd.fetch_add(1, std::memory_order_seq_cst);
        kernel.fetch_add(1, std::memory_order_seq_cst);
        rl_sync::futex_wake_all(kernel);
    }
    void io_event() {  // the kernel: a descriptor became readable
        ready_io.fetch_add(1, std::memory_order_seq_cst);
        kernel.fetch_add(1, std::memory_order_seq_cst);
        rl_sync::futex_wake_all(kernel);
    }
    // epoll_wait (blocking: until an event or an interrupt) and the handling of what it found.
    int cycle(bool block) {
        if (block) {
            const std::uint32_t seen = kernel.load(std::memory_order_seq_cst);
            if (eventfd.load(std::memory_order_seq_cst) == 0 &&
                ready_io.load(std::memory_order_seq_cst) == 0)
                rl_sync::futex_wait(kernel, seen);
        }
        eventfd.exchange(0, std::memory_order_seq_cst);  // drained by whoever polls
        const int n = ready_io.exchange(0, std::memory_order_seq_cst);
        if (n) cq.fetch_add(n, std::memory_order_seq_cst);  // queued without a wake-up
        return n;
    }
    // task_source::poll. (The reactor also waits out a momentary holder; here the worker then
    // sleeps on its futex, which the reactor does too after 64 tries.)
    bool poll(bool block, const rl_futex_word* wake) {
        std::uint32_t f = role_free;
        if (!role.compare_exchange_strong(f, block ? role_blocking : role_held,
                                          std::memory_order_seq_cst))
            return false;
        auto woken = [wake] { return wake && wake->load(std::memory_order_seq_cst) != 0; };
#ifndef TASKPORT_PLANT_TOKEN_NOT_REREAD
        if (block && woken()) block = false;
#endif
        bool done = false;
        if (block && spin) {  // the spin: one look without blocking
            done = cycle(false) != 0;
#ifndef TASKPORT_PLANT_SPIN_NO_REREAD
            done = done || woken();
#endif
        }
        if (!done) cycle(block);
        role.store(role_free, std::memory_order_seq_cst);
        return true;
    }
    // The readiness thread's look: a non-blocking cycle whose push notifies.
    void backstop_look() {
        std::uint32_t f = role_free;
        if (!role.compare_exchange_strong(f, role_held, std::memory_order_seq_cst)) return;
        const int n = cycle(false);
        role.store(role_free, std::memory_order_seq_cst);
        if (n) pp->notify();
    }
};

// ---- the model pool ------------------------------------------------------------------------

enum task_kind { none, posted, waiter, completion };

template <std::size_t N>
struct pool {
    protocol pp{N};
    protocol::slot slots[N];
    rl_atomic<int> injector{0};      // posted tasks queued
    rl_atomic<int> waiter_queued{0};  // the task that waits in help_until, queued
    poll_source src;
    bool polls = false;              // scheduler_config::worker_poll
    rl_atomic<int> accepted{0}, posted_ran{0};
    event posted_done, completion_done, waiter_done, waiter_waits;
    target fut;                      // what the waiter task waits for
    void (*waiter_then)(pool&) = nullptr;  // the waiter task's body after its wait

    pool() {
        for (std::size_t i = 0; i < N; ++i) slots[i].index = i;
        src.pp = &pp;
    }

    // park_protocol's Pool interface.
    bool work_visible() const {
        return injector.load(std::memory_order_seq_cst) != 0 ||
               waiter_queued.load(std::memory_order_seq_cst) != 0 || !src.empty();
    }
    poll_source* pollable_source() { return polls ? &src : nullptr; }
    void count_park() {}

    static bool take(rl_atomic<int>& q) {
        int v = q.load(std::memory_order_seq_cst);
        while (v > 0)
            if (q.compare_exchange_strong(v, v - 1, std::memory_order_seq_cst)) return true;
        return false;
    }
    task_kind find() {
        if (src.pop()) return completion;
        if (take(injector)) return posted;
        if (take(waiter_queued)) return waiter;
        return none;
    }
    task_kind search(protocol::slot& w) {
        pp.begin_search(w);
        if (polls) src.poll(false, nullptr);  // search()'s round-0 poll
        return find();
    }

    // An outside submission (work_stealing::schedule from a non-worker thread).
    void submit() {
        if (!pp.enter_submit()) {
            pp.leave_submit();
            return;  // refused: runtime_closed
        }
        accepted.fetch_add(1, std::memory_order_relaxed);
        injector.fetch_add(1, std::memory_order_seq_cst);
        pp.leave_submit();
        pp.notify();
    }

    void run(task_kind t, protocol::slot& w) {
        pp.leave_search(w);
        switch (t) {
            case posted:
                posted_ran.fetch_add(1, std::memory_order_relaxed);
                posted_done.set();
                break;
            case completion: completion_done.set(); break;
            case waiter:
                help_until(w);
                waiter_then(*this);
                waiter_done.set();
                break;
            case none: break;
        }
    }

    // work_stealing::help_until, for the waiter task.
    void help_until(protocol::slot& w) {
        parker& p = pp.parker_of(w.index);
        bool parked = false, armed = false;
        while (!fut.ready()) {
            task_kind t = find();
            if (t == none) t = search(w);
            if (t != none) {
                run(t, w);
                continue;
            }
            if (armed) fut.disarm();
            armed = fut.arm(&p);
            if (!armed) continue;
            pp.park(w, &fut, *this);
            parked = true;
        }
        if (armed) fut.disarm();
        pp.leave_wait(w, parked, *this);
    }

    // work_stealing::worker_main.
    void worker_main(std::size_t i) {
        protocol::slot& w = slots[i];
        for (;;) {
            task_kind t = find();
            if (t == none) t = search(w);
            if (t != none) {
                run(t, w);
                continue;
            }
            if (!pp.park(w, static_cast<const target*>(nullptr), *this)) break;
        }
        pp.leave_search(w);
    }
};

// ---- scenarios -----------------------------------------------------------------------------

// 2 workers, 1 outside submission, and close(): every accepted task runs and the pool ends.
struct shutdown_race : rl::test_suite<shutdown_race, 4> {
    pool<2> p;
    void thread(unsigned i) {
        if (i < 2)
            p.worker_main(i);
        else if (i == 2)
            p.submit();
        else
            p.pp.close();
    }
    void after() {
        RL_ASSERT(p.posted_ran.load(std::memory_order_relaxed) ==
                  p.accepted.load(std::memory_order_relaxed));
    }
};

// Worker 1 starts in the waiter task (it has just taken it), which waits in help_until for fut;
// one outside thread posts a task, another completes fut; the waiter task then waits for the
// posted task to have run (the io_tcp test's t2 spins for the read). Closed once the waiter
// task is done. (Starting worker 1 in the task, not queueing it, keeps the failing schedule one
// preemption deep: worker 0 goes to sleep first without any.)
template <bool Polls>
struct wait_handoff : rl::test_suite<wait_handoff<Polls>, 4> {
    pool<2> p;
    void before() {
        p.polls = Polls;
        p.waiter_then = [](pool<2>& q) { q.posted_done.wait(); };
    }
    void thread(unsigned i) {
        if (i == 0) {
            p.worker_main(0);
        } else if (i == 1) {
            p.run(waiter, p.slots[1]);
            p.worker_main(1);
        } else if (i == 2) {
            p.submit();
        } else {
            p.fut.set();
            p.waiter_done.wait();
            p.pp.close();
        }
    }
};

// One polling worker; an outside post (its wake-up interrupts the worker's poll) and a
// backstop look that may drain that interrupt. Closed once the posted task ran.
struct poll_interrupt : rl::test_suite<poll_interrupt, 3> {
    pool<1> p;
    void before() { p.polls = true; }
    void thread(unsigned i) {
        if (i == 0) {
            p.worker_main(0);
        } else if (i == 1) {
            p.submit();
            p.posted_done.wait();
            p.pp.close();
        } else {
            p.src.backstop_look();
        }
    }
};

// The same with TASKPORT_POLL_SPIN_US=0: no spin, so only the re-read once the role is held
// protects the wake-up (with the spin, the re-read after its look also catches it).
struct poll_interrupt_nospin : poll_interrupt {
    void before() {
        poll_interrupt::before();
        p.src.spin = false;
    }
};

// Two polling workers; the waiter task waits in help_until; a readiness event arrives and fut
// is completed; the waiter task then needs the completion to have run. The readiness thread's
// look after the waiter task blocks stands for the backstop, which in the runtime looks every
// 1-10 ms while nobody holds the poll role (one thread does the event, the completion and the
// look, so the look always comes after the event, as the backstop's next one would).
struct poll_handoff : rl::test_suite<poll_handoff, 3> {
    pool<2> p;
    void before() {
        p.polls = true;
        p.waiter_queued.store(1, std::memory_order_relaxed);
        p.waiter_then = [](pool<2>& q) {
            q.waiter_waits.set();
            q.completion_done.wait();
        };
    }
    void thread(unsigned i) {
        if (i < 2) {
            p.worker_main(i);
        } else {
            p.src.io_event();
            p.fut.set();
            p.waiter_waits.wait();
            p.src.backstop_look();
            p.waiter_done.wait();
            p.pp.close();
        }
    }
};

}  // namespace model

namespace model {

struct run_config {
    unsigned long iterations = 0;
    rl::scheduler_type_e search = rl::sched_random;
    unsigned bound = 0;
};

template <class Suite>
bool check(const char* name, const run_config& c) {
    rl::test_params params;
    params.iteration_count = c.iterations;
    params.search_type = c.search;
    params.context_bound = c.bound;
    params.execution_depth_limit = 20000;
    if (c.search == rl::sched_bound)
        std::printf("== %s (context-bound scheduler, at most %u preemptions)\n", name, c.bound);
    else
        std::printf("== %s (random scheduler, %lu iterations)\n", name, c.iterations);
    std::fflush(stdout);
    return rl::simulate<Suite>(params);
}

}  // namespace model

// Relacy's context-bound search ignores iteration_count and the whole space of a scenario
// takes minutes, so each scenario runs in a child process with a time budget: exit 1 when Relacy
// found a failure, 0 when the budget ran out (or the space was exhausted) without one.
template <class Fn>
bool within_budget(const char* name, unsigned seconds, Fn fn) {
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0) return fn();
    if (pid == 0) std::_Exit(fn() ? 0 : 1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    int status = 0;
    for (;;) {
        if (::waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (std::chrono::steady_clock::now() > until) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            std::printf("   %s: budget of %u s spent, no failure found\n", name, seconds);
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // supervising, not a test
    }
}

// Usage: park_model [scenario|all [random ITERATIONS | bound PREEMPTIONS]] [budget seconds]
// Without arguments every scenario runs its default search within its budget: < 60 s in all.
int main(int argc, char** argv) {
    using model::run_config;
    const char* only = argc > 1 ? argv[1] : nullptr;
    run_config override_cfg;
    unsigned budget_override = 0;
    if (argc > 3 && std::strcmp(argv[2], "random") == 0) {
        override_cfg.iterations = std::strtoul(argv[3], nullptr, 10);
        if (argc > 4) budget_override = static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10));
    } else if (argc > 3 && std::strcmp(argv[2], "bound") == 0) {
        override_cfg.search = rl::sched_bound;
        override_cfg.bound = static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10));
        override_cfg.iterations = 1;
        if (argc > 4) budget_override = static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10));
    }
    auto cfg = [&](run_config dflt) { return override_cfg.iterations ? override_cfg : dflt; };
    auto want = [only](const char* n) {
        return !only || std::strcmp(only, "all") == 0 || std::strcmp(only, n) == 0;
    };
    // Default: context-bound searches: every interleaving with at most 1 preemption (each planted
    // bug needs one), then as many with 2 as the budget allows. Relacy's random scheduler missed
    // every planted bug in 100,000 iterations per scenario: each needs one thread held in a
    // window of one step while the others run long.
    const run_config bound1{1, rl::sched_bound, 1}, bound2{1, rl::sched_bound, 2};
    bool ok = true;
    unsigned budget1 = 0;  // seconds for the 1-preemption search, set per scenario below
    auto run = [&](const char* name, auto check) {
        if (!want(name)) return;
        if (budget_override || override_cfg.iterations) {
            ok = within_budget(name, budget_override ? budget_override : 60,
                               [&] { return check(cfg(bound1)); }) && ok;
            return;
        }
        ok = within_budget(name, budget1, [&] { return check(bound1); }) && ok;
        ok = within_budget(name, 3, [&] { return check(bound2); }) && ok;
    };
    budget1 = 8;
    run("shutdown_race", [](run_config c) { return model::check<model::shutdown_race>("shutdown_race", c); });
    budget1 = 20;
    run("wait_handoff", [](run_config c) {
        return model::check<model::wait_handoff<false>>("wait_handoff", c);
    });
    budget1 = 4;
    run("poll_interrupt", [](run_config c) { return model::check<model::poll_interrupt>("poll_interrupt", c); });
    budget1 = 4;
    run("poll_interrupt_nospin", [](run_config c) {
        return model::check<model::poll_interrupt_nospin>("poll_interrupt_nospin", c);
    });
    budget1 = 6;
    run("poll_handoff", [](run_config c) { return model::check<model::poll_handoff>("poll_handoff", c); });
    std::printf("%s\n", ok ? "park_model: no failure found" : "park_model: FAILURE found");
    return ok ? 0 : 1;
}
