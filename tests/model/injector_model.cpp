// injector_model.cpp — Relacy model of the injector (sched/src/injector.hpp, the real header,
// instantiated with rl_atomics: its lanes' spin lock, head/tail as checked variables, the size
// counters): two producers push single tasks and a batch into shared lanes while two consumers
// take batches. Checked: every task is taken exactly once, its payload (written before the push)
// is read after a happens-before edge, and each lane's size equals its list's length at the end.
//
// planted: INJECTOR_KEEPS_TAIL SPIN_LOCK_RELAXED_UNLOCK SPIN_LOCK_RELAXED_RETRY
//   INJECTOR_KEEPS_TAIL       pop_batch empties a lane but leaves its tail pointing at a taken
//                             task: the next push links behind it and is lost.
//   SPIN_LOCK_RELAXED_UNLOCK  the lanes' spin lock unlocks with a relaxed store: the next holder
//                             races on head/tail.
//   SPIN_LOCK_RELAXED_RETRY   a waiter that backed off (spin_lock.hpp's lock_contended) takes the
//                             lock with a relaxed exchange: it races on head/tail with the holder
//                             before it (shows the contended path is exercised).
#include "relacy_atomics.hpp"

#include "injector.hpp"

namespace {

using taskport::detail::task_node;
using taskport::model::rl_atomics;
using injector = taskport::detail::basic_injector<rl_atomics>;

constexpr int n_items = 6;  // producer 0: items 0..2, producer 1: items 3..5

void no_run(task_node*) noexcept {}

struct item : task_node {
    item() : task_node(&no_run) {}
    int id = 0;
    rl_atomics::var<int> payload;
};

struct injector_test : rl::test_suite<injector_test, 4> {
    item items[n_items];
    int taken[n_items] = {};
    injector* inj = nullptr;

    void before() {
        inj = new injector(2);
        for (int i = 0; i < n_items; ++i) items[i].id = i;
    }
    void after() {
        std::size_t n = 0;
        for (std::size_t lane = 0; lane < 2; ++lane)
            while (task_node* t = inj->pop_batch(lane, 8, n)) take_list(t);
        RL_ASSERT(inj->size() == 0);
        for (int i = 0; i < n_items; ++i) RL_ASSERT(taken[i] == 1);
        delete inj;
    }
    void take_list(task_node* t) {
        while (t) {
            task_node* next = t->next;
            auto* it = static_cast<item*>(t);
            RL_ASSERT(it >= items && it < items + n_items);
            RL_ASSERT(it->payload.load() == 100 + it->id);
            RL_ASSERT(taken[it->id] == 0);  // taken twice
            ++taken[it->id];
            t = next;
        }
    }
    void make(int i) { items[i].payload.store(100 + i); }

    void thread(unsigned idx) {
        std::size_t n = 0;
        switch (idx) {
            case 0:  // producer 0: two single pushes into lane 0
                make(0);
                inj->push(&items[0], 0);
                make(1);
                inj->push(&items[1], 0);
                make(2);
                inj->push(&items[2], 1);
                break;
            case 1:  // producer 1: a batch of two into lane 0 (hint 2 % 2), one into lane 1
                make(3);
                make(4);
                items[3].next = &items[4];
                inj->push_batch(&items[3], &items[4], 2, 2);
                make(5);
                inj->push(&items[5], 3);
                break;
            default:  // consumers: small batches from a rotating start
                for (int k = 0; k < 2; ++k)
                    if (task_node* t = inj->pop_batch(idx + k, 2, n)) take_list(t);
                break;
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    unsigned iterations = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 150000;
    bool ok = taskport::model::run_suite<injector_test>(
        "injector: 2 producers, 2 batch consumers, shared lanes", iterations);
    return ok ? 0 : 1;
}
