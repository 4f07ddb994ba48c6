// future_waiters_model.cpp — Relacy model of a future's waiter registration and completion: the
// real runtime/include/taskport/detail/waiter_list.hpp, instantiated on Relacy's atomics.
//
// planted: TWO_WAITER EARLY_RELEASE TIMED_NO_WAIT TIMED_EARLY_FREE
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
// other work, so it re-arms) + one outside thread + the completer;
// (3) timed waits (future::wait_for): a worker whose deadline may pass while its heap node is
// still registered (detail/timed_waiter.hpp, the real registration code), woken spuriously once;
// an outside thread in timed rounds of wait_released_for(); the completer. Each timed sleep may
// end at any moment (the adapter's futex_wait_for returns at once), so every order of deadline
// and completion is explored. Checked: the node is freed exactly once and never touched after
// (Relacy reports a leak, a double free or an access to freed memory), the worker's continuation
// (in its frame, reused after the wait) is never notified after the worker left (a data race),
// and a waiter that saw ready sees the result.
// TASKPORT_PLANT_TWO_WAITER restores the old single-slot registration (a new waiter replaces the
// registered one): Relacy must report the lost waiter. TASKPORT_PLANT_EARLY_RELEASE releases
// the waiters before the completer has walked their nodes: Relacy must report the race on a node
// whose owner already left. TASKPORT_PLANT_TIMED_NO_WAIT: a timed worker leaving does not wait
// for the release when the completer has claimed its node, so the notification may run on its
// reused frame. TASKPORT_PLANT_TIMED_EARLY_FREE: the timed worker frees its node on leaving, as
// a frame-held node would be, while the completer may still reach it.
//
// Build: g++ -std=c++20 -O1 -Iruntime/include -Isched/include tests/model/future_waiters_model.cpp
// (the relacy_atomics.hpp adapter, shared by every model, maps the policy onto Relacy)
// Exit status: 0 when Relacy found nothing, 1 when it found a failure (its report is printed).

#include "relacy_atomics.hpp"  // first: the one Relacy adapter of taskport's atomics policy

#include <taskport/detail/timed_waiter.hpp>
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

// ---- suite 3: timed waits ----

// The continuation a timed worker arms its node with: a parker plus a word of its frame, which
// the worker overwrites once it has left (a reused frame). A notification after that races.
struct frame_target {
    model_parker parker;
    rl_policy::var<int> frame;
    void notify() {
        (void)frame.load();
        parker.unpark();
    }
};

struct timed_node : link_t {
    taskport::detail::shared_waiter<rl_policy, frame_target> shared;
    // Frees n with its memory poisoned: g++ removes the destructor's stores to memory about to
    // be freed (-flifetime-dse), Relacy's "freed" mark among them, so a later access would go
    // unnoticed. Volatile stores stay: any access after this fails Relacy's signature check.
    static void destroy(timed_node* n) {
        n->~timed_node();
        auto* b = reinterpret_cast<volatile unsigned char*>(n);
        for (std::size_t i = 0; i < sizeof(timed_node); ++i) b[i] = 0xdd;
        ::operator delete(static_cast<void*>(n));
    }
};
using timed_registration = taskport::detail::basic_timed_registration<rl_policy, timed_node, frame_target>;

void notify_timed(link_t* l) {
    auto* n = static_cast<timed_node*>(l);
    if (n->shared.notify_and_drop()) timed_node::destroy(n);
}

// A timed sleep of the parker (parker.hpp's park() after park_for_next): ends when woken or at
// once (the deadline); either way the caller re-checks.
void park_timed(model_parker& p) {
    if (p.token.exchange(0, rl::mo_acquire) == 0) {
        rl_policy::futex_wait_for(p.token, 0, std::chrono::nanoseconds(1));
        p.token.exchange(0, rl::mo_acquire);
    }
}

// work_stealing.cpp's help_until_deadline() with a deadline that passes after two sleeps (or
// whenever the sleeps end early), then the registration's destructor, then the frame reused.
void timed_worker_wait(list_t& list, rl::var<int>& result, frame_target& t) {
    bool saw_ready = false;
    {
        timed_registration r(list, new timed_node);
        bool armed = false;
        for (int sleeps = 0; sleeps < 2 && !list.ready(); ++sleeps) {
            if (armed) r.disarm();
            armed = r.arm(&t);
            if (!armed) continue;  // ready meanwhile
            park_timed(t.parker);
        }
        if (armed) r.disarm();
        saw_ready = list.ready();
    }
    t.frame.store(1);  // the frame is reused: a race if a notification could still come
    if (saw_ready) RL_ASSERT(result($) == result_value);
}

// future.hpp's wait_blocking_until(): mark the sleepers bit, then timed rounds until released
// or the deadline (two rounds).
void timed_outside_wait(list_t& list, rl::var<int>& result) {
    if (list.ready() || !list.add_sleeper()) {
        RL_ASSERT(result($) == result_value);
        return;
    }
    for (int round = 0; round < 2; ++round) {
        if (list.wait_released_for(std::chrono::nanoseconds(1))) {
            RL_ASSERT(list.ready());
            RL_ASSERT(result($) == result_value);
            return;
        }
    }
}

struct timed_waits : rl::test_suite<timed_waits, 4> {
    list_t list;
    rl::var<int> result;
    frame_target target;

    void before() {
        result($) = 0;
        target.frame.store(0);
    }
    void thread(unsigned index) {
        switch (index) {
        case 0:
            result($) = result_value;
            list.complete(&notify_timed);
            break;
        case 1:
            timed_worker_wait(list, result, target);
            break;
        case 2:
            timed_outside_wait(list, result);
            break;
        case 3:
            target.parker.unpark();  // other work for the worker: a wake-up that is not the event
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
    ok = run_suite<timed_waits>("future waiters: timed worker + timed outside + spurious wake",
                                iterations) && ok;
    return ok ? 0 : 1;
}
