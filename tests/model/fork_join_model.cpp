// fork_join_model.cpp — Relacy model of fork_join's steal/take-back protocol (taskport/fork.hpp):
// the real join counter (runtime/include/taskport/detail/fork_counter.hpp) and the real
// Chase–Lev deque (sched/src/deque.hpp, whose pop_if_newest is the executor's take_if_newest),
// both on rl_atomics, driven by a small model of two workers and one parent coroutine.
//
// The parent forks two children and joins: at each fork the thread running the parent pushes the
// parent's continuation node onto its own deque and runs the child at once; the child writes its
// result slot (an rl var), then takes the continuation back from its thread's deque if it is the
// newest item (and resumes the parent), or else counts down the join counter (and resumes the
// parent only as the last one the join waits for). Either worker, when idle, pops its own deque
// or steals from the other's; running the continuation node counts a steal and resumes the
// parent. The parent's resume point (pc) is an rl var too, so two threads resuming the parent at
// once, or a resume not ordered after the previous suspension, is a data race; after the join the
// parent reads both slots (a race unless every child's write happens before). Checked at the end:
// the parent finished exactly once, with both values.
//
// Suite 2: both children suspend at once (as on an event) and are resumed by whichever worker
// picks them up; the parent's continuation is then run by a worker's loop, the parent forks the
// second child, and the first child, ending, may take back the continuation pushed for the
// second (the count stays exact: fork_counter.hpp's invariant).
//
// planted: FORK_RELAXED_DECREMENT FORK_RESUME_WHEN_STOLEN
//   FORK_RELAXED_DECREMENT  a child whose continuation was stolen decrements relaxed: its slot
//                           write is not ordered before the parent's read after the join.
//   FORK_RESUME_WHEN_STOLEN a child whose continuation was stolen resumes the parent anyway
//                           (two threads run the parent).
#include "relacy_atomics.hpp"

#include "deque.hpp"

#include <taskport/detail/fork_counter.hpp>

namespace {

using taskport::detail::task_node;
using taskport::model::rl_atomics;
using deque = taskport::detail::basic_ws_deque<rl_atomics>;
using counter = taskport::detail::basic_fork_counter<rl_atomics>;

void no_run(task_node*) noexcept {}

// How often each path ran, over all iterations (printed after each suite: the model must reach
// them all). Plain globals: Relacy runs its fibers on one OS thread.
struct path_counts {
    unsigned long steals = 0, take_backs = 0, late_take_backs = 0, join_waited = 0,
                  last_child_resumed = 0;
} paths;

template <bool Suspend>
struct fork_join_test : rl::test_suite<fork_join_test<Suspend>, 2> {
    deque* dq[2] = {};
    counter* cnt = nullptr;
    task_node node{&no_run};           // the parent's continuation
    task_node filler{&no_run};         // before(): fills the rings once
    rl_atomics::var<int> pc;           // where the parent resumes (its frame's state)
    rl_atomics::var<int> slot[2];      // the children's results, in the parent's frame
    rl_atomics::atomic<int> parked[2]; // suite 2: a child suspended, waiting to be resumed
    rl_atomics::atomic<int> done{0};   // the parent finished (read by the idle loops)
    int finished = 0;                  // the model's bookkeeping (Relacy runs fibers on one OS thread)
    int result = -1;

    void before() {
        parked[0].store(0, rl_atomics::relaxed);
        parked[1].store(0, rl_atomics::relaxed);
        dq[0] = new deque(4);
        dq[1] = new deque(4);
        // Write every ring slot once: pop_if_newest on an empty deque peeks at the slot below
        // bottom_, which std::atomic's C++20 constructor zeroes but an rl::atomic leaves
        // uninitialised (Relacy would report that, not a protocol error).
        for (deque* d : dq) {
            for (int i = 0; i < 4; ++i) d->push(&filler);
            for (int i = 0; i < 4; ++i) d->pop();
        }
        cnt = new counter();
    }
    void after() {
        RL_ASSERT(finished == 1);
        RL_ASSERT(result == 10 + 11);
        delete cnt;
        delete dq[1];
        delete dq[0];
    }

    // Runs the parent on thread `me` from its resume point until it suspends or ends.
    void resume_parent(unsigned me) {
        const int at = pc.load();
        if (at == 0) {
            pc.store(1);
            fork(me, 0);
        } else if (at == 1) {
            pc.store(2);
            fork(me, 1);
        } else if (at == 2) {
            pc.store(3);  // before the join's release: the last child resumes at 3
            if (cnt->all_taken_back() || !cnt->join_must_wait())
                resume_parent(me);
            else
                ++paths.join_waited;
        } else {
            RL_ASSERT(at == 3);
            pc.store(4);
            cnt->reset();
            result = slot[0].load() + slot[1].load();
            ++finished;
            done.store(1, rl_atomics::release);
        }
    }

    void fork(unsigned me, int child) {
        dq[me]->push(&node);
        if (Suspend) {  // the child suspends at once; a worker resumes it later
            parked[child].store(1, rl_atomics::release);
            return;
        }
        end_child(me, child);
    }

    void end_child(unsigned me, int child) {
        slot[child].store(10 + child);
        const bool taken = dq[me]->pop_if_newest(&node);
        if (taken) {
            ++paths.take_backs;
            if (child == 0 && pc.load() == 2) ++paths.late_take_backs;  // pushed by fork 2
        }
        if (cnt->child_done(taken)) {
            if (!taken) ++paths.last_child_resumed;
            resume_parent(me);
        }
    }

    // What a worker takes from the queues: a suspended child, its own deque, the other's.
    bool run_one(unsigned me) {
        if (Suspend) {
            for (int c = 0; c < 2; ++c) {
                if (parked[c].load(rl_atomics::relaxed) && parked[c].exchange(0, rl_atomics::acq_rel)) {
                    end_child(me, c);
                    return true;
                }
            }
        }
        task_node* t = dq[me]->pop();
        if (!t) t = dq[1 - me]->thief().steal();
        if (!t) return false;
        RL_ASSERT(t == &node);
        cnt->count_steal();
        ++paths.steals;
        resume_parent(me);
        return true;
    }

    void thread(unsigned me) {
        if (me == 0) resume_parent(0);
        while (!done.load(rl_atomics::acquire)) {
            if (!run_one(me)) rl_atomics::yield();
        }
    }
};

}  // namespace

void print_paths() {
    std::printf("model: paths: %lu steals, %lu take-backs (%lu of a later fork's continuation), "
                "%lu joins waited, %lu parents resumed by the last child\n",
                paths.steals, paths.take_backs, paths.late_take_backs, paths.join_waited,
                paths.last_child_resumed);
    paths = {};
}

int main(int argc, char** argv) {
    unsigned iterations = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 200000;
    bool ok = taskport::model::run_suite<fork_join_test<false>>(
        "fork_join: two forks and a join, a thief on the other worker", iterations);
    print_paths();
    ok = ok && taskport::model::run_suite<fork_join_test<true>>(
                   "fork_join: both children suspend; take-back of a later fork's continuation",
                   iterations);
    print_paths();
    return ok ? 0 : 1;
}
