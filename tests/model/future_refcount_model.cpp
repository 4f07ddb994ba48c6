// future_refcount_model.cpp — Relacy model of the release path of a future's shared state: the
// real runtime/include/taskport/detail/refcount.hpp (state_base's reference count, with the
// fast path where a holder that reads 1 destroys without a read-modify-write) together with the
// real detail/waiter_list.hpp (the completion the holders wait for), both instantiated on
// Relacy's atomics.
//
// planted: REFS_RELAXED REFS_FAST_ON_TWO PRIVATE_NOT_SOLE
//
// What it checks, over every interleaving and relaxed-memory outcome Relacy explores:
// - the state is destroyed exactly once (a counter asserted in after());
// - every holder's accesses to the state (the result, an rl::var) happen before its destruction
//   (destroy() writes the result, as a freed and reused block would be: Relacy reports a data
//   race when any holder's read is not ordered before it).
// Suites:
// (1) three holders (futures, a task) release at once;
// (2) a producer sets the result, completes and releases, while an outside thread waits (get():
//     add_sleeper, wait_released, take, release) and a continuation (a then() node or an awaiter:
//     a `once` node) registers; the continuation's notification, run inline by the completer
//     before the completer's own release, reads the result and drops its reference;
// (3) a holder copies its reference (add_ref, as async_scope does) and hands the copy to another
//     thread while a third holder releases;
// (4) private take-back (detail/take_back.hpp, future.hpp's state_base::take_back): the future's
//     sole owner decides whether a completion on its own thread may be private, then races a
//     thief for the task (the deque's pop against a steal, reduced to one exchange): run here,
//     the completion is private_complete() and the task's reference is handed over
//     (set_private(1)); stolen, the thief completes and releases the usual way while the owner
//     waits (add_sleeper, wait_released);
// (5) the same with a third holder (an async_scope's reference and its registered
//     continuation, added on another thread): the completion must stay shared, so that the
//     continuation is notified.
// TASKPORT_PLANT_REFS_RELAXED makes the fast path's load relaxed: the destroyer is no longer
// ordered after the other holders' accesses (Relacy must report the race).
// TASKPORT_PLANT_REFS_FAST_ON_TWO takes the fast path on a count of 2: a holder destroys while
// another still holds (Relacy must report the race or the double destruction).
// TASKPORT_PLANT_PRIVATE_NOT_SOLE lets the take-back complete privately without checking the
// count: suite 5's continuation, registered after the check, is overwritten and never notified
// (its reference leaks: the destruction count stays 0).
//
// Build: g++ -std=c++20 -O1 -Iruntime/include -Isched/include tests/model/future_refcount_model.cpp
// Exit status: 0 when Relacy found nothing, 1 when it found a failure (its report is printed).

#include "relacy_atomics.hpp"  // first: the one Relacy adapter of taskport's atomics policy

#include <taskport/detail/refcount.hpp>
#include <taskport/detail/take_back.hpp>
#include <taskport/detail/waiter_list.hpp>

namespace {

using rl_policy = taskport::model::rl_atomics;
template <class T>
using rl_atomic = taskport::model::rl_atomic_ref<T>;

using list_t = taskport::detail::waiter_list<rl_policy>;
using link_t = taskport::detail::basic_wait_node<rl_policy>;
using refs_t = taskport::detail::basic_refcount<rl_policy>;
using taskport::detail::wait_kind;

constexpr int result_value = 42;
constexpr int freed_value = -1;

// The parts of state_base the release path touches: the count, the waiter list, the result
// (shared_state's storage) and destroy().
struct model_state {
    explicit model_state(std::uint32_t n) : refs(n) {}
    list_t waiters;
    refs_t refs;
    rl::var<int> result;
    rl_atomic<int> destroyed{0};

    void destroy() {
        RL_ASSERT(destroyed.fetch_add(1, rl::mo_relaxed) == 0);  // exactly once
        result($) = freed_value;  // the block freed and reused: races any unordered access
    }
    void release() {  // state_base::release()
        if (refs.release()) destroy();
    }
    void read_result() { RL_ASSERT(result($) == result_value); }
    // A copy of this holder's reference (state_base::add_ref), handed to another thread through
    // w (release: the new holder's accesses come after the copy).
    void add_ref_and_hand(rl_policy::futex_word& w) {
        refs.add_ref();
        w.store(1, rl::mo_release);
        rl_policy::futex_wake_all(w);
    }
};

// Suite 1: three holders release at once.
struct three_holders : rl::test_suite<three_holders, 3> {
    model_state* s = nullptr;
    void before() {
        s = new model_state(3);
        s->result($) = result_value;
    }
    void thread(unsigned) {
        s->read_result();
        s->release();
    }
    void after() {
        RL_ASSERT(s->destroyed.load(rl::mo_relaxed) == 1);
        delete s;
    }
};

// Suite 2: producer (sets, completes, releases), an outside get(), a continuation.
struct continuation_node : link_t {
    model_state* s = nullptr;
};

void notify_continuation(link_t* l) {  // runs on the completer, inside complete()
    auto* c = static_cast<continuation_node*>(l);
    c->s->read_result();
    c->s->release();  // the continuation's reference (a then() node's source)
}

struct setter_waiter_continuation : rl::test_suite<setter_waiter_continuation, 3> {
    model_state* s = nullptr;
    continuation_node cont;
    void before() {
        s = new model_state(3);  // producer, the outside future, the continuation
        s->result($) = 0;
        cont.s = s;
    }
    void thread(unsigned index) {
        switch (index) {
        case 0:  // the producer: the completer holds its reference until complete() returns
            s->result($) = result_value;
            s->waiters.complete(&notify_continuation);
            s->release();
            break;
        case 1:  // an outside thread's get()
            if (!s->waiters.ready() && s->waiters.add_sleeper()) s->waiters.wait_released();
            s->read_result();
            s->release();
            break;
        case 2:  // a continuation registering; already ready: it goes on itself
            if (!s->waiters.push(&cont, wait_kind::once)) {
                s->read_result();
                s->release();
            }
            break;
        }
    }
    void after() {
        RL_ASSERT(s->destroyed.load(rl::mo_relaxed) == 1);
        delete s;
    }
};

// Suite 3: a copy (add_ref) handed to another thread while a third holder releases.
struct copy_while_release : rl::test_suite<copy_while_release, 3> {
    model_state* s = nullptr;
    rl_policy::futex_word handed{0};  // 1: thread 2 owns the copy
    void before() {
        s = new model_state(2);  // threads 0 and 1
        s->result($) = result_value;
    }
    void thread(unsigned index) {
        switch (index) {
        case 0:
            s->add_ref_and_hand(handed);
            s->read_result();
            s->release();
            break;
        case 1:
            s->read_result();
            s->release();
            break;
        case 2:
            while (handed.load(rl::mo_acquire) == 0) rl_policy::futex_wait(handed, 0);
            s->read_result();
            s->release();
            break;
        }
    }
    void after() {
        RL_ASSERT(s->destroyed.load(rl::mo_relaxed) == 1);
        delete s;
    }
};

// Suites 4 and 5: the producer's completion, on the thread that runs the task.
void complete_shared(model_state& s) {  // shared_state::set_value + the producer's release()
    s.result($) = result_value;
    s.waiters.complete(&notify_continuation);
    s.release();
}

// The future's sole owner taking the task back (state_base::take_back + the co_await / get()
// around it). claim: the task's deque slot (0: still queued; whoever exchanges it to 1 runs it).
void owner_take_back(model_state& s, rl_atomic<int>& claim) {
    const bool may_be_private = taskport::detail::private_take_back_allowed(s.refs, s.waiters);
    if (claim.exchange(1, rl::mo_acq_rel) == 0) {  // taken back: the task runs here, nested
        if (may_be_private) {
            s.result($) = result_value;       // the task's set_value
            s.waiters.private_complete();     // complete() with private_take_back_state() == s
            s.refs.set_private(1);            // release_producer() handed its reference over
        } else {
            complete_shared(s);
        }
    }
    // Not ready (stolen and still running): wait as an outside get() does (a co_await would
    // register a node instead; the waiter list's own model covers both).
    if (!s.waiters.ready() && s.waiters.add_sleeper()) s.waiters.wait_released();
    s.read_result();
    s.release();
}

void thief(model_state& s, rl_atomic<int>& claim) {
    if (claim.exchange(1, rl::mo_acq_rel) == 0) complete_shared(s);
}

// Suite 4: the owner and a thief race for the task; the future and the task hold the state.
struct private_take_back : rl::test_suite<private_take_back, 2> {
    model_state* s = nullptr;
    rl_atomic<int> claim{0};
    void before() {
        s = new model_state(2);
        s->result($) = 0;
    }
    void thread(unsigned index) {
        if (index == 0)
            owner_take_back(*s, claim);
        else
            thief(*s, claim);
    }
    void after() {
        RL_ASSERT(s->destroyed.load(rl::mo_relaxed) == 1);
        delete s;
    }
};

// Suite 5: as 4, with a third holder on another thread that registers a continuation (an
// async_scope tracking the task: its reference was added before the future reached the owner).
struct take_back_third_holder : rl::test_suite<take_back_third_holder, 3> {
    model_state* s = nullptr;
    rl_atomic<int> claim{0};
    continuation_node cont;
    void before() {
        s = new model_state(3);  // the owner's future, the task, the scope
        s->result($) = 0;
        cont.s = s;
    }
    void thread(unsigned index) {
        switch (index) {
        case 0:
            owner_take_back(*s, claim);
            break;
        case 1:
            thief(*s, claim);
            break;
        case 2:  // the scope registers its continuation; already ready: it goes on itself
            if (!s->waiters.push(&cont, wait_kind::once)) {
                s->read_result();
                s->release();
            }
            break;
        }
    }
    void after() {
        RL_ASSERT(s->destroyed.load(rl::mo_relaxed) == 1);  // 0: a reference leaked
        delete s;
    }
};

}  // namespace

int main(int argc, char** argv) {
    unsigned iterations = 300000;
    if (argc > 1) iterations = static_cast<unsigned>(std::strtoul(argv[1], nullptr, 10));
    using taskport::model::run_suite;
    bool ok = run_suite<three_holders>("future refcount: 3 holders release", iterations);
    ok = run_suite<setter_waiter_continuation>(
             "future refcount: setter + outside get() + continuation", iterations) &&
         ok;
    ok = run_suite<copy_while_release>("future refcount: copy handed over while another releases",
                                       iterations) &&
         ok;
    ok = run_suite<private_take_back>("future refcount: private take-back against a thief",
                                      iterations) &&
         ok;
    ok = run_suite<take_back_third_holder>(
             "future refcount: take-back with a third holder's continuation", iterations) &&
         ok;
    return ok ? 0 : 1;
}
