// bench_injector.cpp — the scheduler's shared injector (sched/src/injector.hpp: lanes of
// intrusive lists, each behind a small spin lock, batch pop) against boost::lockfree::queue
// (DESIGN.md: measure Boost.Lockfree against a lanes/batch splice before trusting it) and against
// a single std::mutex-protected intrusive list with the same batch pop.
//
// P producer threads each push their share of 1M task nodes one at a time; C consumer threads
// pop until every node has been seen (the injector and the mutex list hand out up to 32 per pop,
// as the workers do; Boost's queue pops one at a time, having no batch pop). Consumers yield when
// they find the queue empty. The figure is nanoseconds per item, from the first push to the last
// pop. Lanes: one per consumer, as the runtime has one per worker.
#include "common.hpp"

#include "injector.hpp"

#include <boost/lockfree/queue.hpp>

#include <memory>
#include <mutex>

using taskport::detail::task_node;

namespace {

constexpr std::size_t total = 1'000'000;
constexpr std::size_t batch = 32;

void noop(task_node*) noexcept {}

struct mutex_list {
    std::mutex mu;
    task_node* head = nullptr;
    task_node* tail = nullptr;
    void push(task_node* t) {
        t->next = nullptr;
        std::lock_guard<std::mutex> g(mu);
        if (tail)
            tail->next = t;
        else
            head = t;
        tail = t;
    }
    task_node* pop_batch(std::size_t max, std::size_t& n) {
        n = 0;
        std::lock_guard<std::mutex> g(mu);
        task_node* first = head;
        task_node* last = nullptr;
        task_node* cur = first;
        while (cur && n < max) {
            last = cur;
            cur = cur->next;
            ++n;
        }
        if (!n) return nullptr;
        head = cur;
        if (!cur) tail = nullptr;
        last->next = nullptr;
        return first;
    }
};

// Runs P producers and C consumers over `nodes`; push(i_producer, node), pop(i_consumer) returns
// how many it took. Returns ns per item.
template <class Push, class Pop>
double run(std::size_t P, std::size_t C, std::vector<task_node>& nodes, Push push, Pop pop) {
    std::atomic<std::size_t> seen{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ts;
    for (std::size_t p = 0; p < P; ++p)
        ts.emplace_back([&, p] {
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            for (std::size_t i = p; i < total; i += P) push(p, &nodes[i]);
        });
    for (std::size_t c = 0; c < C; ++c)
        ts.emplace_back([&, c] {
            while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
            while (seen.load(std::memory_order_relaxed) < total) {
                std::size_t k = pop(c);
                if (k)
                    seen.fetch_add(k, std::memory_order_relaxed);
                else
                    std::this_thread::yield();
            }
        });
    auto t0 = bench::clock::now();
    go.store(true, std::memory_order_release);
    for (auto& t : ts) t.join();
    return bench::ms_since(t0) * 1e6 / total;
}

}  // namespace

int main() {
    const int r = bench::reps(7);
    std::vector<task_node> nodes;
    nodes.reserve(total);
    for (std::size_t i = 0; i < total; ++i) nodes.emplace_back(&noop);

    for (auto [P, C] : {std::pair<std::size_t, std::size_t>{1, 1}, {1, 2}, {2, 2}}) {
        auto inj_side = [&] {
            taskport::detail::injector inj(C);
            return run(P, C, nodes, [&](std::size_t p, task_node* t) { inj.push(t, p); },
                       [&](std::size_t c) {
                           std::size_t n = 0;
                           task_node* t = inj.pop_batch(c, batch, n);
                           for (; t; t = t->next) bench::keep(t);
                           return n;
                       });
        };
        boost::lockfree::queue<task_node*> q(65536);  // node pool shared by the reps, as in a runtime
        auto boost_side = [&] {
            return run(P, C, nodes, [&](std::size_t, task_node* t) { while (!q.push(t)) {} },
                       [&](std::size_t) {
                           task_node* t;
                           if (!q.pop(t)) return std::size_t{0};
                           bench::keep(t);
                           return std::size_t{1};
                       });
        };
        auto mutex_side = [&] {
            mutex_list l;
            return run(P, C, nodes, [&](std::size_t, task_node* t) { l.push(t); },
                       [&](std::size_t) {
                           std::size_t n = 0;
                           task_node* t = l.pop_batch(batch, n);
                           for (; t; t = t->next) bench::keep(t);
                           return n;
                       });
        };
        char name[160];
        std::snprintf(name, sizeof name,
                      "injector, %zu producer(s) / %zu consumer(s), 1M items: lanes+spin lock vs boost::lockfree::queue",
                      P, C);
        bench::row_samples(name, bench::alternate(r, inj_side, boost_side), "ns/item");
        std::snprintf(name, sizeof name,
                      "injector, %zu producer(s) / %zu consumer(s), 1M items: lanes+spin lock vs one std::mutex list",
                      P, C);
        bench::row_samples(name, bench::alternate(r, inj_side, mutex_side), "ns/item");
    }
}
