// future_waiters_model.cpp — Relacy model of a future's waiter registration and completion: the
// real runtime/include/taskport/detail/waiter_list.hpp, instantiated on Relacy's atomics.
//
// planted: TWO_WAITER EARLY_RELEASE
//
// What it checks, over every interleaving and relaxed-memory outcome Relacy explores:
// - every waiter registered before completion is notified exactly once, and sees the result
//   (a plain rl::var written before complete(): Relacy reports any read not ordered after it);
// - no lost wake-up: an outside thread blocked in wait_released() and a worker parked on its
//   parker both wake (a lost one leaves a thread blocked for ever: Relacy reports a deadlock);
// - a worker that saw `ready` on its own and left frees its node only after the completer is done
//   with it (the node's link is overwritten after the wait, as a reused stack frame would be:
//   Relacy reports a data race if the completer could still read it).
// Suites: (1) two outside threads + two continuations (co_await/then/when_all nodes) + the
// completer;
// (2) two workers waiting (each with its own parker, one of them also woken spuriously, as for
// other work, so it re-arms) + one outside thread + the completer.
// TASKPORT_PLANT_TWO_WAITER restores the old single-slot registration (a new waiter replaces the
// registered one): Relacy must report the lost waiter. TASKPORT_PLANT_EARLY_RELEASE releases
// the waiters before the completer has walked their nodes: Relacy must report the race on a node
// whose owner already left.
//
// Build: g++ -std=c++20 -O1 -Iruntime/include -Isched/include tests/model/future_waiters_model.cpp
// Exit status: 0 when Relacy found nothing, 1 when it found a failure (its report is printed).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <source_location>

#include <relacy/relacy.hpp>

// relacy.hpp's macros for its own test programs would rewrite the header below.
#undef new
#undef delete
#undef malloc
#undef calloc
#undef realloc
#undef free
#undef assert
#undef memory_order_relaxed
#undef memory_order_consume
#undef memory_order_acquire
#undef memory_order_release
#undef memory_order_acq_rel
#undef memory_order_seq_cst

#include <taskport/detail/waiter_list.hpp>

namespace {

inline rl::debug_info info_of(const std::source_location& l) {
    return rl::debug_info(l.function_name(), l.file_name(), l.line());
}
using loc = std::source_location;

template <class T>
class rl_atomic {
public:
    rl_atomic() = default;
    rl_atomic(T v) : a_(v) {}  // NOLINT: as std::atomic's constructor
    T load(rl::memory_order mo, loc l = loc::current()) const { return a_.load(mo, info_of(l)); }
    void store(T v, rl::memory_order mo, loc l = loc::current()) { a_.store(v, mo, info_of(l)); }
    T exchange(T v, rl::memory_order mo, loc l = loc::current()) {
        return a_.rmw(rl::rmw_type_t<rl::rmw_type_swap>(), v, mo, info_of(l));
    }
    bool compare_exchange_weak(T& e, T d, rl::memory_order mo, rl::memory_order f,
                               loc l = loc::current()) {
        return a_.compare_exchange(rl::bool_t<true>(), e, d, mo, f, info_of(l));
    }
    bool compare_exchange_strong(T& e, T d, rl::memory_order mo, rl::memory_order f,
                                 loc l = loc::current()) {
        return a_.compare_exchange(rl::bool_t<false>(), e, d, mo, f, info_of(l));
    }
    rl::atomic<T>& raw() const { return a_; }

private:
    mutable rl::atomic<T> a_;
};

// The atomics policy waiter_list is written against, on Relacy.
struct rl_policy {
    template <class T>
    using atomic = rl_atomic<T>;
    template <class T>
    class var {
    public:
        var() : v_(T{}) {}
        var(T v) : v_(v) {}  // NOLINT: as T
        T load(loc l = loc::current()) const { return v_(info_of(l)).load(); }
        void store(T x, loc l = loc::current()) { v_(info_of(l)).store(x); }

    private:
        rl::var<T> v_;
    };
    using memory_order = rl::memory_order;
    static constexpr memory_order relaxed = rl::mo_relaxed;
    static constexpr memory_order acquire = rl::mo_acquire;
    static constexpr memory_order release = rl::mo_release;
    static constexpr memory_order acq_rel = rl::mo_acq_rel;

    // A futex, as relacy/stdlib/pthread.hpp models one: blocks while the word holds old.
    static void wait(rl_atomic<std::uint32_t>& w, std::uint32_t old, loc l = loc::current()) {
        rl::context& c = rl::ctx();
        c.sched();
        c.atomic_thread_fence_seq_cst();
        std::uint32_t v;
        {
            rl::preemption_disabler pd(c);
            v = w.raw().load(rl::mo_acquire, info_of(l));
        }
        if (v != old) return;
        w.raw().wait(c, false, true, info_of(l));
    }
    static void wake_all(rl_atomic<std::uint32_t>& w, loc l = loc::current()) {
        rl::context& c = rl::ctx();
        c.sched();
        c.atomic_thread_fence_seq_cst();
        w.raw().wake(c, 64, info_of(l));
    }
};

using list_t = taskport::detail::waiter_list<rl_policy>;
using link_t = taskport::detail::basic_wait_node<rl_policy>;
using taskport::detail::wait_kind;

// A worker's parker: one wake-up token on a futex word, as sched/src/parker.hpp's park() and
// unpark() (an exchange, so that two unparks both reach the parked worker: a release sequence).
struct model_parker {
    rl_atomic<std::uint32_t> token{0};
    void park() {
        while (token.exchange(0, rl::mo_acquire) == 0) rl_policy::wait(token, 0);
    }
    void unpark() {
        if (token.exchange(1, rl::mo_seq_cst) == 0) rl_policy::wake_all(token);
    }
};

struct model_node : link_t {
    explicit model_node(wait_kind k) : kind(k) {}
    const wait_kind kind;
    rl_policy::var<model_parker*> parker;  // waiter nodes: what the notification wakes
    rl_atomic<int> notified{0};            // times notified (must end at 0 or 1)
};

void notify_node(link_t* l) {
    auto* n = static_cast<model_node*>(l);
    RL_ASSERT(n->notified.exchange(1, rl::mo_relaxed) == 0);  // exactly once
    if (n->kind == wait_kind::waiter) n->parker.load()->unpark();
}

constexpr int result_value = 42;

// An outside thread in wait(): mark the sleepers bit, block until released.
void outside_wait(list_t& list, rl::var<int>& result) {
    if (!list.ready() && list.add_sleeper()) list.wait_released();
    RL_ASSERT(list.ready());
    RL_ASSERT(result($) == result_value);
}

// A worker in wait() (help_until with state_base::worker_wait): arm lazily, stay registered,
// park; on leaving, wait until released if it registered, then the frame (node) is reused.
void worker_wait(list_t& list, rl::var<int>& result, model_node& node, model_parker& parker) {
    bool registered = false;
    while (!list.ready()) {
        if (!registered) {
            node.parker.store(&parker);
            registered = list.push(&node, wait_kind::waiter);
            if (!registered) continue;  // ready meanwhile
        }
        parker.park();  // a wake-up may be for other work: loop, re-check, park again
    }
    if (registered) list.wait_released();
    RL_ASSERT(result($) == result_value);
    node.link.store(0);  // the frame is reused: a race if the completer could still read it
}

// Suite 1: two outside threads, two continuations registered by one thread, the completer.
struct outside_and_continuation : rl::test_suite<outside_and_continuation, 4> {
    list_t list;
    rl::var<int> result;
    model_node cont{wait_kind::once};
    model_node cont2{wait_kind::once};
    rl_atomic<int> ran_inline{0};   // the continuation found the result ready and went on itself
    rl_atomic<int> ran_inline2{0};

    void before() { result($) = 0; }
    void thread(unsigned index) {
        switch (index) {
        case 0:
            result($) = result_value;
            list.complete(&notify_node);
            break;
        case 1:
        case 2:
            outside_wait(list, result);
            break;
        case 3:
            if (!list.push(&cont, wait_kind::once)) {
                RL_ASSERT(result($) == result_value);
                ran_inline.store(1, rl::mo_relaxed);
            }
            if (!list.push(&cont2, wait_kind::once)) {  // a second continuation (a when_all slot)
                RL_ASSERT(result($) == result_value);
                ran_inline2.store(1, rl::mo_relaxed);
            }
            break;
        }
    }
    void after() {
        // Notified exactly once, or not registered and ran inline: never both, never neither.
        RL_ASSERT(cont.notified.load(rl::mo_relaxed) + ran_inline.load(rl::mo_relaxed) == 1);
        RL_ASSERT(cont2.notified.load(rl::mo_relaxed) + ran_inline2.load(rl::mo_relaxed) == 1);
    }
};

// Suite 2: two workers (each its own parker; the first also woken once for other work), one
// outside thread, the completer.
struct workers_and_outside : rl::test_suite<workers_and_outside, 5> {
    list_t list;
    rl::var<int> result;
    model_node w0{wait_kind::waiter};
    model_node w1{wait_kind::waiter};
    model_parker p0;
    model_parker p1;

    void before() { result($) = 0; }
    void thread(unsigned index) {
        switch (index) {
        case 0:
            result($) = result_value;
            list.complete(&notify_node);
            break;
        case 1:
            worker_wait(list, result, w0, p0);
            break;
        case 2:
            worker_wait(list, result, w1, p1);
            break;
        case 3:
            outside_wait(list, result);
            break;
        case 4:
            p0.unpark();  // new work for worker 0: a wake-up that is not the completion
            break;
        }
    }
};

template <class Suite>
bool run_suite(const char* name, unsigned iterations) {
    rl::test_params p;
    p.iteration_count = iterations;
    p.search_type = rl::random_scheduler_type;
    p.execution_depth_limit = 20000;
    std::printf("model: %s: %u iterations (random scheduler)\n", name, iterations);
    std::fflush(stdout);
    const bool ok = rl::simulate<Suite>(p);
    std::printf("model: %s: %s\n", name, ok ? "ok" : "FAILED");
    std::fflush(stdout);
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    unsigned iterations = 1000000;
    if (argc > 1) iterations = static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10));
    bool ok = run_suite<outside_and_continuation>("future waiters: 2 outside + 2 continuations",
                                                  iterations);
    ok = run_suite<workers_and_outside>("future waiters: 2 workers + outside + spurious wake",
                                        iterations) && ok;
    return ok ? 0 : 1;
}
