// test_shutdown.cpp — shutdown(): everything queued runs (and what it spawns), nothing submitted
// is lost, submissions from outside afterwards throw runtime_closed, it is idempotent, and a
// runtime destroyed with work queued runs that work first.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace taskport;

TEST_CASE("shutdown: runs everything queued, and what it spawns") {
    const long n = tp_test::scaled(200000);
    for (std::size_t w : {1u, 2u, 4u}) {
        std::atomic<long> ran{0}, children{0};
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("shutdown with work queued");
        for (long i = 0; i < n; ++i) {
            if (i % 10 == 0)
                rt.post([&] {
                    ran++;
                    // Spawned from inside during shutdown: accepted and run.
                    rt.post([&] { children++; });
                });
            else
                rt.post([&] { ran++; });
        }
        rt.shutdown();
        REQUIRE(ran.load() == n);
        REQUIRE(children.load() == (n + 9) / 10);
        REQUIRE(rt.closed());
        auto s = rt.stats();
        REQUIRE(s.tasks_run >= static_cast<std::uint64_t>(n + (n + 9) / 10));
        REQUIRE(s.injector_depth == 0);
        for (auto d : s.worker_queue_depth) REQUIRE(d == 0);
    }
}

TEST_CASE("shutdown: futures of queued tasks all become ready") {
    runtime rt(tp_test::workers(2));
    tp_test::gate go;
    rt.post([&] { go.wait(); });
    std::vector<future<int>> fs;
    for (int i = 0; i < 1000; ++i) fs.push_back(rt.spawn([i] { return i; }));
    std::thread closer([&] { rt.shutdown(); });
    go.open();
    closer.join();
    long sum = 0;
    for (auto& f : fs) {
        REQUIRE(f.is_ready());
        sum += f.get();
    }
    REQUIRE(sum == 999L * 1000 / 2);
}

TEST_CASE("shutdown: spawn and post from outside afterwards throw runtime_closed") {
    runtime rt(tp_test::workers(2));
    rt.shutdown();
    REQUIRE(rt.closed());
    std::atomic<int> ran{0};
    REQUIRE_THROWS_AS(rt.post([&] { ran++; }), runtime_closed);
    REQUIRE_THROWS_AS(rt.spawn([&] { ran++; }), runtime_closed);
    REQUIRE_THROWS_AS(rt.spawn([]() -> task<int> { co_return 1; }), runtime_closed);
    REQUIRE_THROWS_AS(rt.block_on([]() -> task<int> { co_return 1; }()), runtime_closed);
    task_group g(rt);
    REQUIRE_THROWS_AS(g.run([&] { ran++; }), runtime_closed);
    REQUIRE_NOTHROW(g.wait());  // the refused task is not pending
    REQUIRE(ran.load() == 0);
    // The message says what happened.
    try {
        rt.post([] {});
    } catch (const runtime_closed& e) {
        REQUIRE(std::string(e.what()).find("shut down") != std::string::npos);
    }
}

TEST_CASE("shutdown: idempotent, concurrent, and from inside a task") {
    {
        runtime rt(tp_test::workers(2));
        std::atomic<int> ran{0};
        for (int i = 0; i < 100; ++i) rt.post([&] { ran++; });
        rt.shutdown();
        rt.shutdown();
        REQUIRE(ran.load() == 100);
    }  // and the destructor's third call
    {
        runtime rt(tp_test::workers(2));
        std::atomic<int> ran{0};
        for (int i = 0; i < 1000; ++i) rt.post([&] { ran++; });
        std::vector<std::thread> ts;
        for (int i = 0; i < 3; ++i) ts.emplace_back([&] { rt.shutdown(); });
        for (auto& t : ts) t.join();
        REQUIRE(ran.load() == 1000);
    }
    {
        // shutdown() called from a task only closes the runtime; the destructor joins.
        std::atomic<int> ran{0};
        tp_test::counter_latch closed;
        {
            runtime rt(tp_test::workers(2));
            rt.post([&] {
                rt.shutdown();
                closed.arrive();
                rt.post([&] { ran++; });  // from inside: still accepted
            });
            REQUIRE(closed.wait_for(1));
            REQUIRE(rt.closed());
            REQUIRE_THROWS_AS(rt.post([] {}), runtime_closed);
        }
        REQUIRE(ran.load() == 1);
    }
}

TEST_CASE("shutdown: destroying a runtime with queued tasks runs them") {
    const long n = tp_test::scaled(100000);
    std::atomic<long> ran{0};
    {
        runtime rt(tp_test::workers(2));
        for (long i = 0; i < n; ++i) rt.post([&] { ran++; });
        // Some from inside as well, queued on workers' own deques.
        rt.post([&] {
            for (int i = 0; i < 1000; ++i) rt.post([&] { ran++; });
        });
    }
    REQUIRE(ran.load() == n + 1000);
}

TEST_CASE("shutdown: submissions racing shutdown are either refused or run") {
    const int rounds = static_cast<int>(tp_test::scaled(200));
    for (int r = 0; r < rounds; ++r) {
        std::atomic<long> accepted{0}, ran{0};
        {
            runtime rt(tp_test::workers(2));
            std::atomic<bool> stop{false};
            std::thread producer([&] {
                while (!stop.load()) {
                    try {
                        rt.post([&] { ran++; });
                        accepted++;
                    } catch (const runtime_closed&) {
                        break;
                    }
                }
            });
            // Let the producer get going (it submits at least a few) before closing.
            REQUIRE(tp_test::eventually([&] { return accepted.load() >= 10; }));
            rt.shutdown();
            stop = true;
            producer.join();
            // Everything accepted before shutdown() returned has run.
            REQUIRE(ran.load() == accepted.load());
        }
        REQUIRE(ran.load() == accepted.load());
    }
}

TEST_CASE("shutdown: posted tasks that throw do not stop shutdown or kill workers") {
    std::atomic<int> reported{0}, ran{0};
    {
        runtime_options o = tp_test::workers(2);
        o.on_unhandled_exception = [&](std::exception_ptr e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::runtime_error&) {
                reported++;
            }
        };
        runtime rt(std::move(o));
        for (int i = 0; i < 100; ++i) {
            rt.post([] { throw std::runtime_error("posted"); });
            rt.post([&] { ran++; });
        }
    }
    REQUIRE(reported.load() == 100);
    REQUIRE(ran.load() == 100);
}
