// park_model.cpp — Relacy model of the scheduler's park protocol: the real park_protocol.hpp,
// idle.hpp, parker.hpp and poll_role.hpp, instantiated on the one Relacy adapter of taskport's
// atomics policy (relacy_atomics.hpp: Relacy's atomics, mutex and a futex), driven by a model
// pool: an injector and a poll source as counters, and worker loops shaped like
// work_stealing.cpp's worker_main/search/help_until.
//
// The poll source is the reactor's worker_poll on the real poll role (taskport/sched/
// poll_role.hpp: the role word, the wake-up token's re-reads, the spin as one non-blocking look)
// over a modelled poller: an interrupt() is an eventfd that whoever polls next drains; epoll_wait
// sleeps on a futex word that every readiness change bumps; what a poll finds is queued as
// completions without a wake-up.
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
//   poll_handon    2 polling workers, a read pending, no backstop: the help_until waiter
//                  leaves the poller for its task, which waits for the read; the other worker
//                  sleeps on its futex and must be woken to poll (test_io_tcp's [handoff])
//   role_stop      a worker polling back to back and the reactor's shutdown stopping the
//                  poll role: stop() must end (test_io_tcp's shutdowns with echo13b's idle loop)
//
// planted: REFUSED_NO_WAKE HANDOFF_POLLED_ONLY HANDOFF_NONE TOKEN_NOT_REREAD SPIN_NO_REREAD STOP_RETRY_ONLY POLLER_NOT_HANDED_ON
//   REFUSED_NO_WAKE     park_protocol.hpp: a refused submission leaves without waking (the
//                       test_shutdown hang, fixed on branch sched)
//   HANDOFF_POLLED_ONLY park_protocol.hpp: only what the waiter's own poll found is handed on
//                       (the code before the io_tcp TASKPORT_WORKER_POLL=0 fix)
//   HANDOFF_NONE        park_protocol.hpp: nothing is handed on (before ddbed8c)
//   TOKEN_NOT_REREAD    poll_role.hpp: the token is not re-read once the role is held (before
//                       12b6df5; 1140466 is ddbed8c's regression test)
//   SPIN_NO_REREAD      poll_role.hpp: the token is not re-read after the spin's non-blocking
//                       look (the guard added with the spin in 1c67933)
//   STOP_RETRY_ONLY     poll_role.hpp: stop() retries a CAS from `free` between interrupts
//                       and the holder's release frees the role (before idle7's fix)
//   POLLER_NOT_HANDED_ON park_protocol.hpp: a worker going back to its task from help_until
//                       wakes nobody while reads are pending and nobody polls (before poll7)
//
// The search is exhaustive within a bound, so its verdict does not depend on time or load:
// every scenario runs Relacy's context-bound scheduler to the end of its space (every
// interleaving with at most SEARCH_BOUND preemptions, and every outcome of each step; each
// planted bug needs one preemption). Each runs in a child process that the parent waits for
// (pidfd + poll) with a deadline far above its usual time: a search that outgrows it is a
// failure (shrink the scenario), never a pass.
//
// Build and run (exit 0: Relacy explored every scenario's bounded space and found nothing; 1:
// it reported a failure, its report printed, or a search ran past its deadline):
//   g++ -std=c++20 -O1 -Isched/src -Isched/include -Iruntime/include -Iio/src -Iio/include \
//       tests/model/park_model.cpp -o park_model [-DTASKPORT_PLANT_<BUG>] && ./park_model
#include "relacy_atomics.hpp"  // first: the one Relacy adapter of taskport's atomics policy

#include <chrono>
#include <csignal>
#include <cstring>

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <taskport/sched/poll_role.hpp>

namespace model {
struct poll_source;
}

#include "park_protocol.hpp"

namespace taskport::detail {
scheduler_test_hooks& test_hooks() noexcept {
    static scheduler_test_hooks h;
    return h;
}
}  // namespace taskport::detail

namespace model {

using A = taskport::model::rl_atomics;
template <class T>
using rl_atomic = taskport::model::rl_atomic_ref<T>;
using protocol = taskport::detail::park_protocol<A, poll_source>;
using parker = taskport::detail::basic_parker<A, poll_source>;

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
    A::mutex mu;
    parker* waiter = nullptr;  // guarded by mu
    bool ready() const { return ready_.load(rl::mo_seq_cst); }
    bool arm(parker* p) {
        std::lock_guard<A::mutex> g(mu);
        if (ready_.load(rl::mo_relaxed)) return false;
        waiter = p;
        return true;
    }
    void disarm() {
        std::lock_guard<A::mutex> g(mu);
        waiter = nullptr;
    }
    void set() {
        parker* p;
        {
            std::lock_guard<A::mutex> g(mu);
            ready_.store(true, rl::mo_seq_cst);
            p = waiter;
            waiter = nullptr;
        }
        if (p) p->unpark();
    }
};

// The spin, as one non-blocking look (the reactor's timed_spin looks until its time is up).
struct one_look {
    bool on;
    bool begin() const { return on; }
    bool again() const { return false; }
};

// reactor::worker_poll and the completion queue, as counters (see the file comment).
struct poll_source {
    using role_type = taskport::detail::basic_poll_role<A>;
    role_type role{0};
    A::futex_word kernel{0};           // bumped by every readiness change (epoll_wait's wake-up)
    rl_atomic<int> eventfd{0};      // interrupts not yet drained
    rl_atomic<int> ready_io{0};     // I/O events the kernel holds, not yet harvested
    rl_atomic<int> cq{0};           // completions queued (completion_queue::size_)
    // Operations queued on descriptors, waiting for an event (reactor::parked_ops_): set by a
    // scenario, -n when a cycle harvests n events (each completes one). Relaxed, as there.
    rl_atomic<int> pending_ops{0};
    protocol* pp = nullptr;         // for the backstop's notifying push
    bool spin = true;               // TASKPORT_POLL_SPIN_US > 0: one non-blocking look first

    bool empty() const { return cq.load(rl::mo_seq_cst) == 0; }
    bool pop() {
        int v = cq.load(rl::mo_seq_cst);
        while (v > 0)
            if (cq.compare_exchange_strong(v, v - 1, rl::mo_seq_cst)) return true;
        return false;
    }
    void interrupt() {  // poller_->wake(): the eventfd
        eventfd.fetch_add(1, rl::mo_seq_cst);
        kernel.fetch_add(1, rl::mo_seq_cst);
        A::futex_wake_all(kernel);
    }
    void io_event() {  // the kernel: a descriptor became readable
        ready_io.fetch_add(1, rl::mo_seq_cst);
        kernel.fetch_add(1, rl::mo_seq_cst);
        A::futex_wake_all(kernel);
    }
    // epoll_wait (blocking: until an event or an interrupt) and the handling of what it found.
    int cycle(bool block) {
        if (block) {
            const std::uint32_t seen = kernel.load(rl::mo_seq_cst);
            if (eventfd.load(rl::mo_seq_cst) == 0 &&
                ready_io.load(rl::mo_seq_cst) == 0)
                A::futex_wait(kernel, seen);
        }
        eventfd.exchange(0, rl::mo_seq_cst);  // drained by whoever polls
        const int n = ready_io.exchange(0, rl::mo_seq_cst);
        if (n) {
            pending_ops.fetch_sub(n, rl::mo_relaxed);
            cq.fetch_add(n, rl::mo_seq_cst);  // queued without a wake-up
        }
        return n;
    }
    bool needs_poller() const {  // reactor::needs_poller
        return pending_ops.load(rl::mo_relaxed) != 0 && role.load() != role_type::role_blocking;
    }
    // task_source::poll: the reactor's worker_poll, on the real poll role (poll_role.hpp).
    // wait_out_tries 0: a worker finding a momentary holder sleeps on its futex at once, which
    // the reactor's worker does too after its 64 yields.
    // may_spin: park_protocol's choice (every other worker asleep); both outcomes are explored.
    bool poll(bool block, const A::futex_word* wake, bool may_spin) {
        return role.worker_poll(
            block, wake, [this](bool blk) { return cycle(blk); }, one_look{spin && may_spin}, [] {});
    }
    // The readiness thread's look: a non-blocking cycle whose push notifies.
    void backstop_look() {
        std::uint32_t f;
        if (!role.try_take(f)) return;
        const int n = cycle(false);
        role.release(role_type::role_held);
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
        return injector.load(rl::mo_seq_cst) != 0 ||
               waiter_queued.load(rl::mo_seq_cst) != 0 || !src.empty();
    }
    poll_source* pollable_source() { return polls ? &src : nullptr; }
    void count_park() {}

    static bool take(rl_atomic<int>& q) {
        int v = q.load(rl::mo_seq_cst);
        while (v > 0)
            if (q.compare_exchange_strong(v, v - 1, rl::mo_seq_cst)) return true;
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
        // search()'s round-0 poll (skipped there when every other worker sleeps; always made
        // here: one more thread that may drain an interrupt)
        if (polls) src.poll(false, nullptr, false);
        return find();
    }

    // An outside submission (work_stealing::schedule from a non-worker thread).
    void submit() {
        if (!pp.enter_submit()) {
            pp.leave_submit();
            return;  // refused: runtime_closed
        }
        accepted.fetch_add(1, rl::mo_relaxed);
        injector.fetch_add(1, rl::mo_seq_cst);
        pp.leave_submit();
        pp.notify();
    }

    void run(task_kind t, protocol::slot& w) {
        pp.leave_search(w);
        switch (t) {
            case posted:
                posted_ran.fetch_add(1, rl::mo_relaxed);
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
        RL_ASSERT(p.posted_ran.load(rl::mo_relaxed) ==
                  p.accepted.load(rl::mo_relaxed));
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
        p.waiter_queued.store(1, rl::mo_relaxed);
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

// Two polling workers and a read pending, no backstop: worker 0 starts in the waiter task,
// which waits in help_until (it sleeps in the poller, the role's blocking holder) and then spins
// until the read's completion has run; worker 1 idles (on its futex when worker 0 holds the
// poller). An outside thread completes fut, then the read's byte arrives. Only a poll finds it:
// worker 0, leaving the poller for its task, must wake worker 1 to take it (park_protocol.hpp,
// invariant 5). test_io_tcp's [handoff] test; the backstop's 1-10 ms looks hid it (21.8 s).
struct poll_handon : rl::test_suite<poll_handon, 3> {
    pool<2> p;
    void before() {
        p.polls = true;
        p.src.pending_ops.store(1, rl::mo_relaxed);
        p.waiter_then = [](pool<2>& q) { q.completion_done.wait(); };
    }
    void thread(unsigned i) {
        if (i == 0) {
            p.run(waiter, p.slots[0]);
            p.worker_main(0);
        } else if (i == 1) {
            p.worker_main(1);
        } else {
            p.fut.set();
            p.src.io_event();
            p.waiter_done.wait();
            p.pp.close();
        }
    }
};

// The reactor's shutdown against an idle worker: the worker polls back to back (blocking; its
// search ends in one round, as echo13b's does when every other worker sleeps, so it retakes the
// role as soon as it lets it go) until the role refuses it; the stopper calls the real stop()
// with the interrupt as its wake(). stop() must end (poll_role.hpp, invariant 4): a stop that
// only retries a CAS from `free` between interrupts loses every round of the schedule where
// the worker runs between its yield and its next look, and Relacy reports a LIVELOCK.
struct role_stop : rl::test_suite<role_stop, 2> {
    poll_source src;
    void thread(unsigned i) {
        if (i == 0) {
            while (src.poll(true, nullptr, true)) {
            }
        } else {
            src.role.stop(false, [this] { src.interrupt(); });
            RL_ASSERT(src.role.load() == poll_source::role_type::role_stopped);
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

// Runs fn() in a child process and waits for it (a pidfd, polled with a timeout: no wake-ups
// meanwhile). True when the child exited 0. A child still running at the deadline is killed and
// counts as a failure: the bounded search is meant to finish, so outgrowing the deadline says
// the scenario grew, and passing it silently would make the verdict depend on the load.
template <class Fn>
bool in_child(const char* name, unsigned deadline_s, Fn fn) {
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("park_model: fork");
        return false;
    }
    if (pid == 0) std::_Exit(fn() ? 0 : 1);
    const int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    bool timed_out = false;
    if (pfd >= 0) {
        pollfd p{pfd, POLLIN, 0};
        int r;
        do r = ::poll(&p, 1, static_cast<int>(deadline_s * 1000));
        while (r < 0 && errno == EINTR);
        timed_out = r == 0;
        ::close(pfd);
    }  // else no pidfd (Linux < 5.3): a plain blocking wait (tests/model/run.sh's timeout bounds it)
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (timed_out) {
        std::printf("   %s: FAILED: the search did not finish within %u s (the scenario outgrew its "
                    "deadline: shrink it, or raise the deadline if the machine is that slow)\n",
                    name, deadline_s);
        return false;
    }
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::printf("model: %s: %.1f s\nmodel: %s: %s\n", name, s, name, ok ? "ok" : "FAILED");
    return ok;
}

// Usage: park_model [scenario|all [random ITERATIONS | bound PREEMPTIONS]] [deadline seconds]
// Without arguments every scenario runs its exhaustive bounded search (SEARCH_BOUND below).
int main(int argc, char** argv) {
    using model::run_config;
    constexpr unsigned search_bound = 1;  // each planted bug needs one preemption
    const char* only = argc > 1 ? argv[1] : nullptr;
    run_config cfg{1, rl::sched_bound, search_bound};
    unsigned deadline = 120;  // per scenario; the slowest takes ~30 s on a loaded 2-core VM
    if (argc > 3 && std::strcmp(argv[2], "random") == 0) {
        cfg = {std::strtoul(argv[3], nullptr, 10), rl::sched_random, 0};
    } else if (argc > 3 && std::strcmp(argv[2], "bound") == 0) {
        cfg.bound = static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10));
    }
    if (argc > 4) deadline = static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10));
    auto want = [only](const char* n) {
        return !only || std::strcmp(only, "all") == 0 || std::strcmp(only, n) == 0;
    };
    bool ok = true;
    auto run = [&](const char* name, auto check) {
        if (want(name)) ok = in_child(name, deadline, [&] { return check(cfg); }) && ok;
    };
    run("shutdown_race", [](run_config c) { return model::check<model::shutdown_race>("shutdown_race", c); });
    run("wait_handoff", [](run_config c) {
        return model::check<model::wait_handoff<false>>("wait_handoff", c);
    });
    run("poll_interrupt", [](run_config c) { return model::check<model::poll_interrupt>("poll_interrupt", c); });
    run("poll_interrupt_nospin", [](run_config c) {
        return model::check<model::poll_interrupt_nospin>("poll_interrupt_nospin", c);
    });
    run("poll_handoff", [](run_config c) { return model::check<model::poll_handoff>("poll_handoff", c); });
    run("poll_handon", [](run_config c) { return model::check<model::poll_handon>("poll_handon", c); });
    run("role_stop", [](run_config c) { return model::check<model::role_stop>("role_stop", c); });
    std::printf("%s\n", ok ? "park_model: no failure found" : "park_model: FAILURE found");
    return ok ? 0 : 1;
}
