// test_completion_queue.cpp — io's central completion queue (io/src/completion_queue.hpp, a private
// header) at the edges of a runtime's life: a completion pushed while the runtime shuts down, after
// its workers have left, or after the runtime is gone, is run exactly once — never stranded in a
// queue nobody drains. The race with shutdown is hit deterministically: the queue is instantiated
// with a test atomics policy whose hook holds the pushing thread at the point where it has decided
// to queue (cq_hook::before_link) until the executor has closed and, if it can, finished.
#include "test_util.hpp"

#include "completion_queue.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace {

using taskport::io::detail::basic_completion_queue;
using taskport::io::detail::cq_hook;
using taskport::detail::task_node;

// std_atomics plus a hook the test sets; only this test's queue type uses it.
struct held_atomics : taskport::detail::std_atomics {
    static inline std::function<void()> hold;
    static void hook(cq_hook p) {
        if (p == cq_hook::before_link && hold) hold();
    }
};

struct counted_node : task_node {
    counted_node() : task_node(&run_it) {}
    static void run_it(task_node* t) noexcept {
        auto* self = static_cast<counted_node*>(t);
        if (taskport::detail::current_executor()) self->on_worker.store(true);
        self->ran.fetch_add(1, std::memory_order_relaxed);
        self->done.arrive();
    }
    std::atomic<int> ran{0};
    std::atomic<bool> on_worker{false};
    tp_test::counter_latch done;
};

taskport::runtime_options two_workers() {
    taskport::runtime_options o;
    o.workers = 2;
    return o;
}

}  // namespace

TEST_CASE("completion_queue: a push racing shutdown is run, never stranded") {
    taskport::runtime rt(two_workers());
    auto& ex = rt.executor();
    basic_completion_queue<held_atomics> q(ex);
    ex.attach_source(&q);

    counted_node node;
    std::atomic<bool> in_hook{false}, shutdown_returned{false};
    held_atomics::hold = [&] {
        in_hook.store(true);
        // Hold the pusher (it saw the runtime open) until shutdown has closed the executor, then
        // for as long as shutdown can make progress without it: until shutdown returns, or 2 s
        // (with the fix, shutdown cannot finish while a push is in flight). The window only
        // widens the race; whether the node runs does not depend on how long it is.
        tp_test::eventually([&] { return ex.closed(); });
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!shutdown_returned.load() && std::chrono::steady_clock::now() < until)
            std::this_thread::yield();
    };
    std::thread pusher([&] { q.push(&node); });
    REQUIRE(tp_test::eventually([&] { return in_hook.load(); }));
    rt.shutdown();
    shutdown_returned.store(true);
    pusher.join();
    held_atomics::hold = nullptr;
    INFO("the completion was queued after the last worker left and never ran");
    REQUIRE(node.done.wait_for(1));
    REQUIRE(node.ran.load() == 1);
}

TEST_CASE("completion_queue: a push after the workers have left is run, not stranded") {
    taskport::runtime rt(two_workers());
    auto& ex = rt.executor();
    basic_completion_queue<> q(ex);
    ex.attach_source(&q);
    rt.shutdown();

    counted_node node;
    std::thread pusher([&] { q.push(&node); });
    pusher.join();
    REQUIRE(node.done.wait_for(1));
    REQUIRE(node.ran.load() == 1);
}

TEST_CASE("completion_queue: after orphan(), pushes from any thread are run") {
    counted_node a, b;
    {
        taskport::runtime rt(two_workers());
        basic_completion_queue<> q(rt.executor());
        rt.executor().attach_source(&q);
        rt.shutdown();
        q.orphan();
        q.push(&a);
        std::thread other([&] { q.push(&b); });
        other.join();
    }
    REQUIRE(a.ran.load() == 1);
    REQUIRE(b.ran.load() == 1);
}

TEST_CASE("completion_queue: pushes while the runtime runs are each run once, on a worker") {
    constexpr int n = 64;
    counted_node nodes[n];
    taskport::runtime rt(two_workers());
    auto& ex = rt.executor();
    basic_completion_queue<> q(ex);
    ex.attach_source(&q);
    std::thread pusher([&] {
        for (auto& nd : nodes) {
            taskport::io::detail::op_batch b;
            b.push(&nd);
            q.push(b);
        }
    });
    pusher.join();
    for (auto& nd : nodes) REQUIRE(nd.done.wait_for(1));
    rt.shutdown();
    for (auto& nd : nodes) {
        REQUIRE(nd.ran.load() == 1);
        REQUIRE(nd.on_worker.load());  // never on the pushing (I/O) thread while workers run
    }
}
