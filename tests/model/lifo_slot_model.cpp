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
// Suite 3 (handoff: who wakes whom, sched/src/lifo_watch.hpp with the real park_protocol.hpp,
// idle.hpp and parker.hpp): worker 0's task hands A to its slot (schedule_next: wake a worker only
// when lifo_watch::must_wake()), runs A itself, hands B to its slot and then blocks its thread
// until B has run; worker 1 runs work_stealing.cpp's idle loop: search (steal the slot once
// stale: unchanged since its previous look), park (the re-check watches when a slot is occupied
// or was refilled: a timed sleep, which the model lets expire at any moment), and after a watch
// counts itself searching, then ends the watch. Checked: B runs (a lost hand-off leaves both
// threads asleep: Relacy reports a DEADLOCK).
//
// planted: LIFO_STEAL_FRESH LIFO_STEAL_RELAXED LIFO_NAIVE_SKIP LIFO_NO_FENCE
//   LIFO_STEAL_FRESH    the former policy: a thief takes whatever the slot holds (exchange), even
//                       a task the owner put after the thief's sighting (suite 1's check).
//   LIFO_STEAL_RELAXED  the thief's compare-exchange is relaxed: it reads the task's payload
//                       without a happens-before edge from the owner's write (a data race).
//   LIFO_NAIVE_SKIP     lifo_watch.hpp: a hand-off into the slot never wakes anyone (chan10b's
//                       experiment; suite 3 deadlocks when worker 1 parked before the hand-off).
//   LIFO_NO_FENCE       lifo_watch.hpp: the owner reads the watcher count without its fence, so
//                       it may see a watch that has ended while the watcher missed its put.
#include "relacy_atomics.hpp"

#include "lifo_slot.hpp"
#include "lifo_watch.hpp"
#include "park_protocol.hpp"

namespace taskport::detail {
scheduler_test_hooks& test_hooks() noexcept {
    static scheduler_test_hooks h;
    return h;
}
}  // namespace taskport::detail

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


// The pool's I/O source, absent here (the model's pool never polls).
struct no_source {
    void interrupt() {}
    template <class... X>
    bool poll(X&&...) {
        return false;
    }
    bool empty() const { return true; }
};
struct no_target {
    bool ready() const { return false; }
};

struct handoff_test : rl::test_suite<handoff_test, 2> {
    using protocol = taskport::detail::park_protocol<rl_atomics, no_source>;
    using watch_type = taskport::detail::basic_lifo_watch<rl_atomics>;
    item a, b;
    slot_type* slot = nullptr;
    watch_type* watch = nullptr;
    protocol* pp = nullptr;
    protocol::slot ps[2];
    rl_atomics::futex_word* b_ran = nullptr;
    slot_type::sighting seen{};  // worker 1 only: its last look at worker 0's slot

    void before() {
        slot = new slot_type;
        watch = new watch_type;
        pp = new protocol(2);
        b_ran = new rl_atomics::futex_word(0);
        ps[0].index = 0;
        ps[1].index = 1;
        seen = {};
    }
    void after() {
        delete b_ran;
        delete pp;
        delete watch;
        delete slot;
    }

    // work_stealing::schedule_next with an empty slot (nothing displaced).
    void hand_off(item& t) {
        RL_ASSERT(slot->put(&t) == nullptr);
        if (watch->must_wake()) pp->notify();
    }
    void run(task_node* t) {
        if (t == &b) {
            b_ran->store(1, rl::mo_release);
            rl_atomics::futex_wake_all(*b_ran);
        }
    }

    // work_stealing::pool_view inside park(): the re-check's slot part (slots_to_watch).
    struct view {
        handoff_test& m;
        bool watching = false;
        bool work_visible() {
            if (watching) return false;
            const slot_type::sighting s = m.slot->look();
            bool w = s.task != nullptr;
            if (s.task != m.seen.task || s.puts != m.seen.puts) {
                w = true;
                m.seen = s;
            }
            if (w) {
                watching = true;
                m.watch->begin();
                m.pp->parker_of(1).park_for_next(std::chrono::microseconds(50));
            }
            return false;
        }
        no_source* pollable_source() const { return nullptr; }
        void count_park() const {}
    };

    void thread(unsigned idx) {
        if (idx == 0) {  // worker 0, inside a task
            hand_off(a);
            if (task_node* t = slot->take()) run(t);  // ... which returns: its find_local
            hand_off(b);
            // The next task blocks this thread until B has run (not through taskport).
            while (b_ran->load(rl::mo_acquire) == 0) rl_atomics::futex_wait(*b_ran, 0);
            return;
        }
        // worker 1: worker_main's loop (nothing local: the search, then the park)
        for (;;) {
            pp->begin_search(ps[1]);
            if (task_node* t = slot->steal_if_stale(seen)) {  // steal_lifo
                pp->leave_search(ps[1]);                       // run_task
                run(t);
                if (t == &b) return;
                continue;
            }
            seen = slot->look();
            view v{*this};
            pp->park(ps[1], static_cast<const no_target*>(nullptr), v);
            if (v.watching) {  // work_stealing::park after a watch
                pp->parker_of(1).park_for_next({});
                pp->begin_search(ps[1]);
                watch->end();
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
    ok = taskport::model::run_suite<handoff_test>(
             "lifo watch: a hand-off to a blocked owner's slot reaches the other worker", iterations) &&
         ok;
    return ok ? 0 : 1;
}
