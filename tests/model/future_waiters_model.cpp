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
// (the relacy_atomics.hpp adapter, shared by every model, maps the policy onto Relacy)
// Exit status: 0 when Relacy found nothing, 1 when it found a failure (its report is printed).

#include "relacy_atomics.hpp"  // first: the one Relacy adapter of taskport's atomics policy

#include <taskport/detail/waiter_list.hpp>

namespace {

using rl_policy = taskport::model::rl_atomics;
template <class T>
using rl_atomic = taskport::model::rl_atomic_ref<T>;

using list_t = taskport::detail::waiter_list<rl_policy>;
using link_t = taskport::detail::basic_wait_node<rl_policy>;
using taskport::detail::wait_kind;

// A worker's parker: one wake-up token on a futex word, as sched/src/parker.hpp's park() and
// unpark() (an exchange, so that two unparks both reach the parked worker: a release sequence).
struct model_parker {
    rl_policy::futex_word token{0};
    void park() {
        while (token.exchange(0, rl::mo_acquire) == 0) rl_policy::futex_wait(token, 0);
    }
    void unpark() {
        if (token.exchange(1, rl::mo_seq_cst) == 0) rl_policy::futex_wake_all(token);
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

}  // namespace

int main(int argc, char** argv) {
    unsigned iterations = 1000000;
    if (argc > 1) iterations = static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10));
    using taskport::model::run_suite;
    bool ok = run_suite<outside_and_continuation>("future waiters: 2 outside + 2 continuations",
                                                  iterations);
    ok = run_suite<workers_and_outside>("future waiters: 2 workers + outside + spurious wake",
                                        iterations) && ok;
    return ok ? 0 : 1;
}
