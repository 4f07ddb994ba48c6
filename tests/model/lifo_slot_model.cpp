// lifo_slot_model.cpp — Relacy model of a worker's LIFO slot and its "steal only when stale" rule
// (sched/src/lifo_slot.hpp, the real header, instantiated with rl_atomics).
//
// Suite 1 (exactly once, stale only): the owner puts task A, then puts B (A is displaced, as
// schedule_next pushes it to the deque), then takes what is left; a thief looks twice and tries
// steal_if_stale with its first sighting after each look. Checked: every task ends with exactly
// one party (owner's take or put's return, or the thief); the thief gets a task only if the slot
// held that very task at its earlier look (never B when it saw A); the payload written before
// put() is read by whoever takes it after a happens-before edge.
// Suite 2 (a stuck owner loses its slot): the owner puts A and then waits (spinning) until A has
// run, as a worker whose task blocks on the task it just woke; the thief keeps looking and
// stealing with its previous sighting. Checked: the thief gets A (Relacy reports a livelock if
// the rule never lets it).
//
// planted: LIFO_STEAL_FRESH LIFO_STEAL_RELAXED
//   LIFO_STEAL_FRESH    the former policy: a thief takes whatever the slot holds (exchange), even
//                       a task the owner put after the thief's sighting (suite 1's check).
//   LIFO_STEAL_RELAXED  the thief's compare-exchange is relaxed: it reads the task's payload
//                       without a happens-before edge from the owner's write (a data race).
#include "relacy_atomics.hpp"

#include "lifo_slot.hpp"

namespace {

using taskport::detail::task_node;
using taskport::model::rl_atomics;
using slot_type = taskport::detail::basic_lifo_slot<rl_atomics>;

void no_run(task_node*) noexcept {}

struct item : task_node {
    item() : task_node(&no_run) {}
    int id = 0;
    rl_atomics::var<int> payload;
};

struct exactly_once_test : rl::test_suite<exactly_once_test, 2> {
    item items[2];
    int owner_got[2] = {};  // owner thread only
    int thief_got[2] = {};  // thief thread only
    slot_type* slot = nullptr;

    void before() {
        slot = new slot_type;
        for (int i = 0; i < 2; ++i) items[i].id = i;
    }
    void after() {
        for (int i = 0; i < 2; ++i) RL_ASSERT(owner_got[i] + thief_got[i] == 1);
        delete slot;
    }
    void owner_has(task_node* t) {
        if (!t) return;
        auto* it = static_cast<item*>(t);
        RL_ASSERT(it->payload.load() == 100 + it->id);
        ++owner_got[it->id];
    }
    void thread(unsigned idx) {
        if (idx == 0) {  // owner
            items[0].payload.store(100);
            owner_has(slot->put(&items[0]));
            items[1].payload.store(101);
            owner_has(slot->put(&items[1]));  // A displaced (queued elsewhere), or stolen
            owner_has(slot->take());
        } else {  // thief: two looks, a steal attempt with the earlier sighting after each
            slot_type::sighting seen = slot->look();
            for (int k = 0; k < 2; ++k) {
                const slot_type::sighting now = slot->look();
                if (task_node* t = slot->steal_if_stale(seen)) {
                    auto* it = static_cast<item*>(t);
                    // Stale only: the very task it saw at its earlier look, never one the owner
                    // put after that look (B, put after the thief saw A).
                    RL_ASSERT(t == seen.task);
                    RL_ASSERT(it->payload.load() == 100 + it->id);
                    ++thief_got[it->id];
                    return;
                }
                seen = now;
            }
        }
    }
};

struct stuck_owner_test : rl::test_suite<stuck_owner_test, 2> {
    item a;
    slot_type* slot = nullptr;
    rl_atomics::atomic<int> ran{0};

    void before() {
        slot = new slot_type;
        ran.store(0, rl::mo_relaxed);
    }
    void after() { delete slot; }
    void thread(unsigned idx) {
        if (idx == 0) {  // owner: wakes A, then its task waits for A without returning
            a.payload.store(7);
            slot->put(&a);
            while (ran.load(rl::mo_acquire) == 0) rl_atomics::pause();
        } else {  // thief: searches until it took A
            slot_type::sighting seen{};
            for (;;) {
                if (task_node* t = slot->steal_if_stale(seen)) {
                    RL_ASSERT(static_cast<item*>(t)->payload.load() == 7);
                    ran.store(1, rl::mo_release);
                    return;
                }
                seen = slot->look();
                rl_atomics::pause();
            }
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    unsigned iterations = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 200000;
    bool ok = taskport::model::run_suite<exactly_once_test>(
        "lifo slot: put, displace, take against a thief stealing only stale", iterations);
    ok = taskport::model::run_suite<stuck_owner_test>(
             "lifo slot: an owner stuck behind the task it woke loses it to the thief", iterations) &&
         ok;
    return ok ? 0 : 1;
}
