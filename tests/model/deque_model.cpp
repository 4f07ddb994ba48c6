// deque_model.cpp — Relacy model of the Chase–Lev deque (sched/src/deque.hpp, the real header,
// instantiated with rl_atomics): one owner pushing and popping (LIFO) while two thieves steal
// single items and halves into their own deques, with a 2-slot initial ring so the owner grows it
// twice while thieves read. Checked: every item is taken exactly once, and its payload (an
// rl::var written before push) is read after a happens-before edge, so a missing release/acquire
// shows as a data race. Relacy explores the interleavings and the relaxed-memory outcomes.
//
// A third suite checks pop_if_newest() (the take-back of an awaited child: the owner takes
// back the task it pushed last while thieves steal): each item still taken exactly once, and
// pop_if_newest(x) true only for x itself.
//
// planted: DEQUE_POP_RELAXED DEQUE_STEAL_ONE_CAS DEQUE_GROW_SKIPS_TOP DEQUE_TAKE_BACK_NO_POP
//   DEQUE_POP_RELAXED    pop() without its seq_cst store/load (the paper's fence): owner and
//                        thief both take the last item.
//   DEQUE_STEAL_ONE_CAS  steal_half claims [t, t+k) with one CAS (the bug test_deque once caught).
//   DEQUE_GROW_SKIPS_TOP grow() does not copy the oldest item into the new ring.
//   DEQUE_TAKE_BACK_NO_POP pop_if_newest() takes its slot by moving bottom_ alone, without
//                        pop()'s fence and race for the last item: owner and thief both take it.
#include "relacy_atomics.hpp"

#include "deque.hpp"

namespace {

using taskport::detail::task_node;
using taskport::model::rl_atomics;
using deque = taskport::detail::basic_ws_deque<rl_atomics>;

constexpr int n_items = 6;
constexpr int n_thieves = 2;

void no_run(task_node*) noexcept {}

struct item : task_node {
    item() : task_node(&no_run) {}
    int id = 0;
    rl_atomics::var<int> payload;  // written by the owner before push, read by the taker
};

struct deque_test : rl::test_suite<deque_test, 1 + n_thieves> {
    item items[n_items];
    int taken[n_items] = {};  // the model's bookkeeping (Relacy runs fibers on one OS thread)
    deque* owner = nullptr;
    deque* mine[n_thieves] = {};

    void before() {
        owner = new deque(2);
        for (auto& m : mine) m = new deque(2);
        for (int i = 0; i < n_items; ++i) items[i].id = i;
    }
    void after() {
        // Single-threaded now: drain what is left and check every item was taken exactly once.
        while (task_node* t = owner->pop()) take(t);
        for (auto* m : mine)
            while (task_node* t = m->pop()) take(t);
        for (int i = 0; i < n_items; ++i) RL_ASSERT(taken[i] == 1);
        for (auto* m : mine) delete m;
        delete owner;
    }

    void take(task_node* t) {
        RL_ASSERT(t != nullptr);
        auto* it = static_cast<item*>(t);
        RL_ASSERT(it >= items && it < items + n_items);
        RL_ASSERT(it->payload.load() == 100 + it->id);  // a race here: Relacy reports it
        RL_ASSERT(taken[it->id] == 0);                  // taken twice
        ++taken[it->id];
    }
    void push(int i) {
        items[i].payload.store(100 + i);
        owner->push(&items[i]);
    }

    void thread(unsigned idx) {
        if (idx == 0) {  // the owner: pushes past the ring twice, pops in between
            push(0);
            push(1);
            push(2);  // grows 2 -> 4
            if (task_node* t = owner->pop()) take(t);
            push(3);
            push(4);
            push(5);  // grows 4 -> 8 (unless thieves took enough)
            for (int k = 0; k < 3; ++k)
                if (task_node* t = owner->pop()) take(t);
            return;
        }
        deque& own = *mine[idx - 1];
        deque::stealer victim = owner->thief();
        if (idx == 1) {
            std::size_t moved = 0;
            if (task_node* t = victim.steal_half(own, moved)) take(t);
            if (task_node* t = victim.steal_half(own, moved)) take(t);
            if (task_node* t = own.pop()) take(t);
        } else {
            if (task_node* t = victim.steal()) take(t);
            std::size_t moved = 0;
            if (task_node* t = victim.steal_half(own, moved)) take(t);
            // and steal back from the other thief's deque, as workers do
            if (task_node* t = mine[0]->thief().steal()) take(t);
        }
    }
};

// The owner empties its deque from the bottom while one thief takes half from the top: the
// window in which a thief's bottom_ is stale (the historic steal_half bug lives there).
struct pop_vs_steal_half_test : rl::test_suite<pop_vs_steal_half_test, 2> {
    item items[4];
    int taken[4] = {};
    deque* owner = nullptr;
    deque* thief_own = nullptr;

    void before() {
        owner = new deque(4);
        thief_own = new deque(4);
        for (int i = 0; i < 4; ++i) {
            items[i].id = i;
            items[i].payload.store(100 + i);
            owner->push(&items[i]);
        }
    }
    void after() {
        while (task_node* t = thief_own->pop()) take(t);
        while (task_node* t = owner->pop()) take(t);
        for (int i = 0; i < 4; ++i) RL_ASSERT(taken[i] == 1);
        delete thief_own;
        delete owner;
    }
    void take(task_node* t) {
        auto* it = static_cast<item*>(t);
        RL_ASSERT(it >= items && it < items + 4);
        RL_ASSERT(it->payload.load() == 100 + it->id);
        RL_ASSERT(taken[it->id] == 0);  // taken twice
        ++taken[it->id];
    }
    void thread(unsigned idx) {
        if (idx == 0) {
            for (int k = 0; k < 4; ++k)
                if (task_node* t = owner->pop()) take(t);
        } else {
            std::size_t moved = 0;
            if (task_node* t = owner->thief().steal_half(*thief_own, moved)) take(t);
        }
    }
};

// The owner pushes two items and takes back the newer (as an awaiter does for the child it
// just spawned), then the older, while two thieves steal one item each.
struct take_back_test : rl::test_suite<take_back_test, 3> {
    item items[2];
    int taken[2] = {};
    deque* owner = nullptr;

    void before() {
        owner = new deque(4);
        for (int i = 0; i < 2; ++i) items[i].id = i;
    }
    void after() {
        while (task_node* t = owner->pop()) take(t);
        for (int i = 0; i < 2; ++i) RL_ASSERT(taken[i] == 1);
        delete owner;
    }
    void take(task_node* t) {
        auto* it = static_cast<item*>(t);
        RL_ASSERT(it >= items && it < items + 2);
        RL_ASSERT(it->payload.load() == 100 + it->id);
        RL_ASSERT(taken[it->id] == 0);  // taken twice
        ++taken[it->id];
    }
    void thread(unsigned idx) {
        if (idx == 0) {
            for (int i = 0; i < 2; ++i) {
                items[i].payload.store(100 + i);
                owner->push(&items[i]);
            }
            if (owner->pop_if_newest(&items[1])) take(&items[1]);
            // items[0] is now the newest (or stolen): never true for an item that is not.
            if (owner->pop_if_newest(&items[0])) take(&items[0]);
        } else {
            if (task_node* t = owner->thief().steal()) take(t);
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    // Iterations: argv[1] scales both suites (the default keeps the file near 15 s on one core).
    unsigned iterations = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 250000;
    bool ok = taskport::model::run_suite<pop_vs_steal_half_test>(
        "deque: owner pops all vs a thief's steal_half", iterations / 5);
    ok = ok && taskport::model::run_suite<take_back_test>(
                   "deque: owner takes back its newest items vs 2 thieves", iterations / 5);
    ok = ok && taskport::model::run_suite<deque_test>(
                   "deque: owner push/pop vs 2 thieves, growing", iterations);
    return ok ? 0 : 1;
}
