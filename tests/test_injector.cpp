// test_injector.cpp — the shared injector lanes (sched/src/injector.hpp, a private header): many
// producers push and push_batch, several consumers pop_batch, every task exactly once, FIFO per
// lane.
#include "test_util.hpp"

#include "injector.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

using taskport::detail::injector;
using taskport::detail::task_node;

namespace {

void noop(task_node*) noexcept {}

struct node : task_node {
    node() : task_node(&noop) {}
    std::uint32_t producer = 0;
    std::uint32_t seq = 0;  // per producer, increasing
};

}  // namespace

TEST_CASE("injector: single thread, FIFO within a lane, batches") {
    injector inj(4);
    REQUIRE(inj.lanes() == 4);
    std::vector<node> ns(10);
    std::size_t n = 7;
    REQUIRE(inj.pop_batch(0, 8, n) == nullptr);
    REQUIRE(n == 0);
    for (int i = 0; i < 5; ++i) inj.push(&ns[static_cast<std::size_t>(i)], 1);
    // A batch of 5 linked nodes in one push.
    for (int i = 5; i < 9; ++i) ns[static_cast<std::size_t>(i)].next = &ns[static_cast<std::size_t>(i) + 1];
    inj.push_batch(&ns[5], &ns[9], 5, 1);
    REQUIRE(inj.size() == 10);

    task_node* first = inj.pop_batch(3, 4, n);  // starts at lane 3, finds lane 1
    REQUIRE(n == 4);
    std::size_t i = 0;
    for (task_node* c = first; c; c = c->next, ++i) REQUIRE(c == &ns[i]);
    REQUIRE(i == 4);
    first = inj.pop_batch(0, 100, n);
    REQUIRE(n == 6);
    for (task_node* c = first; c; c = c->next, ++i) REQUIRE(c == &ns[i]);
    REQUIRE(i == 10);
    REQUIRE(inj.size() == 0);
    REQUIRE(inj.pop_batch(0, 100, n) == nullptr);

    injector one(0);  // zero lanes means one
    REQUIRE(one.lanes() == 1);
}

TEST_CASE("injector: many producers, several consumers, exactly once") {
    const int producers = 4, consumers = 3;
    const std::size_t per_producer = static_cast<std::size_t>(tp_test::scaled(200000));
    const std::size_t total = per_producer * producers;
    std::vector<std::unique_ptr<node[]>> nodes;
    for (int p = 0; p < producers; ++p) {
        nodes.emplace_back(new node[per_producer]);
        for (std::size_t i = 0; i < per_producer; ++i) {
            nodes.back()[i].producer = static_cast<std::uint32_t>(p);
            nodes.back()[i].seq = static_cast<std::uint32_t>(i);
        }
    }
    std::unique_ptr<std::atomic<int>[]> seen(new std::atomic<int>[total]);
    for (std::size_t i = 0; i < total; ++i) seen[i].store(0);

    // Two lanes for four producers: lanes are shared, so pushes contend for a lane's lock.
    injector inj(2);
    std::atomic<std::size_t> popped{0};
    std::atomic<std::size_t> out_of_order{0}, bad_count{0};

    std::vector<std::thread> cs;
    for (int c = 0; c < consumers; ++c) {
        cs.emplace_back([&, c] {
            // Per producer, the last sequence number this consumer saw: within one lane (and a
            // producer sticks to one lane), a single consumer sees a producer's tasks in order.
            std::vector<long> last(producers, -1);
            std::size_t start = static_cast<std::size_t>(c);
            while (popped.load(std::memory_order_relaxed) < total) {
                std::size_t n = 0;
                task_node* first = inj.pop_batch(start++, 1 + static_cast<std::size_t>(c) * 16, n);
                std::size_t k = 0;
                for (task_node* t = first; t; t = t->next, ++k) {
                    auto* nd = static_cast<node*>(t);
                    if (static_cast<long>(nd->seq) <= last[nd->producer])
                        out_of_order.fetch_add(1, std::memory_order_relaxed);
                    last[nd->producer] = nd->seq;
                    seen[nd->producer * per_producer + nd->seq].fetch_add(1, std::memory_order_relaxed);
                }
                if (k != n) bad_count.fetch_add(1, std::memory_order_relaxed);
                if (n)
                    popped.fetch_add(n, std::memory_order_relaxed);
                else
                    std::this_thread::yield();
            }
        });
    }
    std::vector<std::thread> ps;
    for (int p = 0; p < producers; ++p) {
        ps.emplace_back([&, p] {
            node* mine = nodes[static_cast<std::size_t>(p)].get();
            std::size_t i = 0;
            unsigned r = static_cast<unsigned>(p) + 1;
            while (i < per_producer) {
                r = r * 1103515245u + 12345u;
                std::size_t batch = 1 + (r >> 16) % 40;
                if (batch > per_producer - i) batch = per_producer - i;
                if (batch == 1 || (r >> 8) % 3 == 0) {
                    inj.push(&mine[i], static_cast<std::size_t>(p));
                    ++i;
                } else {
                    for (std::size_t k = i; k + 1 < i + batch; ++k) mine[k].next = &mine[k + 1];
                    inj.push_batch(&mine[i], &mine[i + batch - 1], batch, static_cast<std::size_t>(p));
                    i += batch;
                }
            }
        });
    }
    for (auto& t : ps) t.join();
    for (auto& t : cs) t.join();

    REQUIRE(popped.load() == total);
    REQUIRE(bad_count.load() == 0);
    REQUIRE(out_of_order.load() == 0);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < total; ++i)
        if (seen[i].load() != 1) ++wrong;
    REQUIRE(wrong == 0);
    REQUIRE(inj.size() == 0);
}
