// block_depot_model.cpp — Relacy model of the task-block depot (sched/src/block_depot.hpp, the
// real header, instantiated with rl_atomics): two freeing threads each hand over a chain of two
// blocks (and one of them a third, single block, which a full depot refuses) while an
// allocating thread takes every chain, twice. Checked: every block handed over is taken exactly
// once (a refused one stays with its giver and is never taken); take_all's count and tail match the list it returns; each
// block's contents (an rl::var written before put) and the chain fields are read after a
// happens-before edge, so a missing release/acquire shows as a data race.
//
// planted: DEPOT_RELAXED_PUT
//   DEPOT_RELAXED_PUT  put() publishes its chain with a relaxed CAS: the taker reads the chain's
//                      fields and the blocks' contents without a happens-before edge.
#include "relacy_atomics.hpp"

#include "block_depot.hpp"

namespace {

using taskport::model::rl_atomics;
using depot = taskport::detail::basic_block_depot<rl_atomics>;
using block = depot::block;

constexpr int n_items = 5;  // freer 0: items 0, 1 (+ 4 alone); freer 1: items 2, 3

struct item {
    block b;  // first: a block's address is its item's
    rl_atomics::var<int> payload;
    int id = 0;
};

struct depot_test : rl::test_suite<depot_test, 3> {
    item items[n_items];
    int taken[n_items] = {};
    int refused = 0;  // puts refused (at most one: any two of the three fit)
    depot* d = nullptr;

    void before() {
        d = new depot(4);  // room for the two chains, not for a fifth block
        for (int i = 0; i < n_items; ++i) items[i].id = i;
    }
    void after() {
        std::uint32_t n = 0;
        block* tail = nullptr;
        block* got = d->take_all(n, tail);
        take_list(got, n, tail);
        for (int i = 0; i < n_items; ++i) RL_ASSERT(taken[i] == 1);
        RL_ASSERT(refused <= 1);
        delete d;
    }

    void take_list(block* b, std::uint32_t n, block* tail) {
        std::uint32_t seen = 0;
        block* last = nullptr;
        for (; b; b = b->next.load()) {
            auto* it = reinterpret_cast<item*>(b);
            RL_ASSERT(it >= items && it < items + n_items);
            RL_ASSERT(it->payload.load() == 100 + it->id);  // a race here: Relacy reports it
            RL_ASSERT(taken[it->id] == 0);                  // taken twice
            ++taken[it->id];
            ++seen;
            last = b;
        }
        RL_ASSERT(seen == n);
        RL_ASSERT(last == tail);
    }

    void give(int first, int count) {
        for (int i = first; i < first + count; ++i) {
            items[i].payload.store(100 + i);  // the block's contents, written while owned
            items[i].b.next.store(i + 1 < first + count ? &items[i + 1].b : nullptr);
        }
        // Refused (a full depot: 5 blocks offered, room for 4): still the giver's, who keeps it
        // (frees it to the backend); counted as taken by its owner, and the taker must never
        // see it (it would count it twice).
        if (!d->put(&items[first].b, &items[first + count - 1].b, static_cast<std::uint32_t>(count))) {
            ++refused;
            for (int i = first; i < first + count; ++i) ++taken[i];
        }
    }

    void thread(unsigned idx) {
        if (idx == 0) {
            give(0, 2);
            give(4, 1);
        } else if (idx == 1) {
            give(2, 2);
        } else {
            for (int k = 0; k < 2; ++k) {
                std::uint32_t n = 0;
                block* tail = nullptr;
                block* got = d->take_all(n, tail);
                take_list(got, n, tail);
            }
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    unsigned iterations = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 200000;
    bool ok = taskport::model::run_suite<depot_test>(
        "block depot: two freeing threads hand over chains, one takes them all", iterations);
    return ok ? 0 : 1;
}
