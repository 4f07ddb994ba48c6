// test_deque.cpp — the Chase–Lev deque (sched/src/deque.hpp, a private header): owner push/pop
// racing thieves that steal() and steal_half(), every item delivered exactly once, growth past
// the initial ring.
#include "test_util.hpp"

#include "deque.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

using taskport::detail::task_node;
using taskport::detail::ws_deque;

namespace {

// The owner's handle and the thieves' handle (Tokio's Local/Steal): misuse does not compile.
template <class S>
concept can_push = requires(S s, task_node* t) { s.push(t); };
template <class S>
concept can_pop = requires(S s) { s.pop(); };
template <class S>
concept can_steal = requires(S s) { s.steal(); };
static_assert(!can_push<ws_deque::stealer> && !can_pop<ws_deque::stealer>,
              "a thief cannot push or pop");
static_assert(!can_steal<ws_deque&>, "the owner takes its oldest with pop_oldest(), not steal()");
static_assert(can_push<ws_deque&> && can_pop<ws_deque&> && can_steal<ws_deque::stealer>);
static_assert(!std::is_copy_constructible_v<ws_deque> && !std::is_move_constructible_v<ws_deque>,
              "one owner handle per deque");
static_assert(std::is_copy_constructible_v<ws_deque::stealer>, "thieves share stealers");

void noop(task_node*) noexcept {}

struct items {
    explicit items(std::size_t n) : nodes(static_cast<task_node*>(::operator new(n * sizeof(task_node)))), n(n),
                                    seen(new std::atomic<int>[n]) {
        for (std::size_t i = 0; i < n; ++i) {
            ::new (&nodes[i]) task_node(&noop);
            seen[i].store(0, std::memory_order_relaxed);
        }
    }
    ~items() { ::operator delete(nodes); }
    std::size_t index(task_node* t) const { return static_cast<std::size_t>(t - nodes); }
    // From any thread (Catch2 assertions are main-thread only: record, check later).
    void take(task_node* t) {
        if (t < nodes || t >= nodes + n) {
            foreign.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        seen[index(t)].fetch_add(1, std::memory_order_relaxed);
    }
    // Every item taken exactly once: returns the number of items whose count is not 1.
    std::size_t wrong() const {
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (seen[i].load(std::memory_order_relaxed) != 1) ++bad;
        return bad;
    }
    std::size_t duplicates() const {
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i)
            if (seen[i].load(std::memory_order_relaxed) > 1) ++bad;
        return bad;
    }
    task_node* nodes;
    std::size_t n;
    std::unique_ptr<std::atomic<int>[]> seen;
    std::atomic<std::size_t> foreign{0};  // pointers that were never pushed
};

}  // namespace

TEST_CASE("deque: owner alone is LIFO, a thief alone is FIFO") {
    items it(10);
    ws_deque d;
    REQUIRE(d.empty());
    REQUIRE(d.pop() == nullptr);
    REQUIRE(d.thief().steal() == nullptr);
    for (int i = 0; i < 10; ++i) d.push(&it.nodes[i]);
    REQUIRE(d.size() == 10);
    REQUIRE(d.pop() == &it.nodes[9]);
    REQUIRE(d.thief().steal() == &it.nodes[0]);
    REQUIRE(d.pop() == &it.nodes[8]);
    REQUIRE(d.thief().steal() == &it.nodes[1]);
    REQUIRE(d.size() == 6);

    ws_deque into;
    std::size_t moved = 0;
    // 6 left (2..7): steal_half takes ceil(6/2) = 3, returns the oldest, queues the other two.
    REQUIRE(d.thief().steal_half(into, moved) == &it.nodes[2]);
    REQUIRE(moved == 3);
    REQUIRE(d.size() == 3);
    REQUIRE(into.size() == 2);
    REQUIRE(into.thief().steal() == &it.nodes[3]);
    REQUIRE(into.thief().steal() == &it.nodes[4]);
    REQUIRE(d.pop() == &it.nodes[7]);
    REQUIRE(d.pop() == &it.nodes[6]);
    REQUIRE(d.thief().steal_half(into, moved) == &it.nodes[5]);
    REQUIRE(moved == 1);
    REQUIRE(d.empty());
    REQUIRE(d.thief().steal_half(into, moved) == nullptr);
    REQUIRE(moved == 0);
}

TEST_CASE("deque: grows past its initial capacity and keeps order") {
    const std::size_t n = 10 * ws_deque::initial_capacity + 3;
    items it(n);
    ws_deque d;
    for (std::size_t i = 0; i < n; ++i) d.push(&it.nodes[i]);
    REQUIRE(d.size() == n);
    // Take from both ends across the grown ring.
    for (std::size_t i = 0; i < n / 2; ++i) REQUIRE(d.thief().steal() == &it.nodes[i]);
    for (std::size_t i = n; i-- > n / 2;) REQUIRE(d.pop() == &it.nodes[i]);
    REQUIRE(d.empty());
    // Wrap around the grown ring many times with a small live window.
    for (std::size_t round = 0; round < 50; ++round) {
        for (std::size_t i = 0; i < 100; ++i) d.push(&it.nodes[i]);
        for (std::size_t i = 0; i < 100; ++i) REQUIRE(d.thief().steal() == &it.nodes[i]);
    }
    REQUIRE(d.empty());
}

TEST_CASE("deque: steal_half caps a batch at max_steal_batch") {
    const std::size_t n = 1000;
    items it(n);
    ws_deque d, into;
    for (std::size_t i = 0; i < n; ++i) d.push(&it.nodes[i]);
    std::size_t moved = 0;
    REQUIRE(d.thief().steal_half(into, moved) == &it.nodes[0]);
    REQUIRE(moved == static_cast<std::size_t>(ws_deque::max_steal_batch));
    REQUIRE(into.size() == moved - 1);
    REQUIRE(d.size() == n - moved);
}

namespace {

// One owner pushing and popping in bursts of varied size (small bursts make the owner race the
// thieves for the last few items; big ones make the ring grow under the thieves), `thieves`
// threads stealing with steal() and steal_half() from the owner and from each other.
void race(int thieves, std::size_t n_items, unsigned seed) {
    items it(n_items);
    ws_deque owner_q;
    std::vector<std::unique_ptr<ws_deque>> thief_q;
    for (int i = 0; i < thieves; ++i) thief_q.push_back(std::make_unique<ws_deque>());
    std::atomic<bool> done{false};
    std::atomic<std::size_t> taken{0};
    std::atomic<std::size_t> bad_moved{0};

    std::vector<std::thread> ts;
    for (int k = 0; k < thieves; ++k) {
        ts.emplace_back([&, k] {
            std::minstd_rand rng(seed * 31 + static_cast<unsigned>(k));
            ws_deque& mine = *thief_q[static_cast<std::size_t>(k)];
            std::size_t local = 0;
            auto drain_mine = [&] {
                while (task_node* t = mine.pop()) {
                    it.take(t);
                    ++local;
                }
            };
            for (;;) {
                const bool finished = done.load(std::memory_order_acquire);
                // Victim: mostly the owner, sometimes another thief.
                ws_deque* victim = &owner_q;
                if (thieves > 1 && rng() % 4 == 0) {
                    auto v = static_cast<std::size_t>(rng() % static_cast<unsigned>(thieves));
                    if (v != static_cast<std::size_t>(k)) victim = thief_q[v].get();
                }
                task_node* t = nullptr;
                if (rng() % 2) {
                    t = victim->thief().steal();
                } else {
                    std::size_t moved = 0;
                    t = victim->thief().steal_half(mine, moved);
                    if (t && moved == 0) bad_moved.fetch_add(1, std::memory_order_relaxed);
                }
                if (t) {
                    it.take(t);
                    ++local;
                }
                // Keep some of the stolen batch around for a while, so other thieves can steal
                // from this one; drain it fully every few rounds and at the end.
                if (rng() % 8 == 0) drain_mine();
                if (finished && owner_q.empty()) {
                    drain_mine();
                    break;
                }
            }
            taken.fetch_add(local, std::memory_order_relaxed);
        });
    }

    std::minstd_rand rng(seed);
    std::size_t next = 0, owner_local = 0;
    while (next < n_items) {
        std::size_t burst;
        switch (rng() % 4) {
            case 0: burst = 1 + rng() % 3; break;                   // fight over the last items
            case 1: burst = 1 + rng() % 16; break;
            case 2: burst = 1 + rng() % 200; break;
            default: burst = 300 + rng() % 3000; break;             // grow past 256
        }
        for (std::size_t i = 0; i < burst && next < n_items; ++i) owner_q.push(&it.nodes[next++]);
        std::size_t pops = rng() % (burst + 2);
        for (std::size_t i = 0; i < pops; ++i) {
            if (task_node* t = owner_q.pop()) {
                it.take(t);
                ++owner_local;
            }
        }
    }
    while (task_node* t = owner_q.pop()) {
        it.take(t);
        ++owner_local;
    }
    done.store(true, std::memory_order_release);
    for (auto& t : ts) t.join();
    // Thieves may have left nothing behind in their own queues (each drains before leaving),
    // except what another thief stole from them: all queues must be empty now.
    for (auto& q : thief_q) REQUIRE(q->empty());

    CAPTURE(thieves, n_items, seed, owner_local, taken.load());
    REQUIRE(it.foreign.load() == 0);
    REQUIRE(bad_moved.load() == 0);
    REQUIRE(it.duplicates() == 0);
    REQUIRE(it.wrong() == 0);
    REQUIRE(owner_local + taken.load() == n_items);
}

}  // namespace

TEST_CASE("deque: owner and thieves race, every item exactly once") {
    const std::size_t n = static_cast<std::size_t>(tp_test::scaled(400000));
    const int rounds = static_cast<int>(tp_test::scaled(12) < 3 ? 3 : tp_test::scaled(12));
    for (int thieves : {1, 2, 3}) {
        for (int r = 0; r < rounds; ++r) {
            race(thieves, n, static_cast<unsigned>(r * 7 + thieves));
        }
    }
}

TEST_CASE("deque: pop_if_newest takes back only the newest item") {
    items it(4);
    ws_deque d;
    REQUIRE_FALSE(d.pop_if_newest(&it.nodes[0]));  // empty
    d.push(&it.nodes[0]);
    d.push(&it.nodes[1]);
    d.push(&it.nodes[2]);
    REQUIRE_FALSE(d.pop_if_newest(&it.nodes[1]));  // not the newest: left where it is
    REQUIRE_FALSE(d.pop_if_newest(&it.nodes[3]));  // never pushed
    REQUIRE(d.size() == 3);
    REQUIRE(d.pop_if_newest(&it.nodes[2]));
    REQUIRE(d.size() == 2);
    REQUIRE(d.thief().steal() == &it.nodes[0]);
    REQUIRE(d.pop_if_newest(&it.nodes[1]));
    REQUIRE(d.empty());
    // Stolen: a stale slot still holds the item, and it is not taken twice.
    d.push(&it.nodes[3]);
    REQUIRE(d.thief().steal() == &it.nodes[3]);
    REQUIRE_FALSE(d.pop_if_newest(&it.nodes[3]));
    REQUIRE(d.empty());
    REQUIRE(d.pop() == nullptr);
}

TEST_CASE("deque: pop_if_newest races thieves, every item exactly once") {
    // The owner pushes each item and at once tries to take it back (an awaiter taking back the
    // child it just spawned) while thieves steal; each item goes to exactly one of them.
    const std::size_t n = static_cast<std::size_t>(tp_test::scaled(200000));
    items it(n);
    ws_deque d;
    std::atomic<bool> done{false};
    std::vector<std::thread> thieves;
    for (int k = 0; k < 2; ++k)
        thieves.emplace_back([&] {
            for (;;) {
                const bool last = done.load(std::memory_order_acquire);
                while (task_node* t = d.thief().steal()) it.take(t);
                if (last) return;
            }
        });
    std::size_t back = 0;
    std::size_t refused = 0, pairs = 0;
    for (std::size_t i = 0; i < n; ++i) {
        d.push(&it.nodes[i]);
        if (i % 3 == 0 && i + 1 < n) {  // another item on top: i is not the newest
            d.push(&it.nodes[i + 1]);
            if (d.pop_if_newest(&it.nodes[i])) it.take(&it.nodes[i]);  // must not happen
            else ++refused;
            ++pairs;
            ++i;
        }
        if (d.pop_if_newest(&it.nodes[i])) {
            it.take(&it.nodes[i]);
            ++back;
        }
    }
    done.store(true, std::memory_order_release);
    for (auto& t : thieves) t.join();
    while (task_node* t = d.pop()) it.take(t);
    REQUIRE(it.foreign.load() == 0);
    REQUIRE(it.duplicates() == 0);
    REQUIRE(it.wrong() == 0);
    REQUIRE(back > 0);
    REQUIRE(refused == pairs);
}
