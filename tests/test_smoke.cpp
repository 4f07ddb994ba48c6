#include <catch2/catch.hpp>
#include <taskport/taskport.hpp>

#include <atomic>

using namespace taskport;

static task<int> add(int a, int b) { co_return a + b; }
static task<int> fib(runtime& rt, int n) {
    if (n < 2) co_return n;
    auto a = rt.spawn(fib(rt, n - 1));
    int b = co_await fib(rt, n - 2);
    co_return co_await std::move(a) + b;
}

TEST_CASE("smoke") {
    runtime rt{{.workers = 2}};
    auto f = rt.spawn([] { return 42; });
    REQUIRE(f.get() == 42);
    REQUIRE(rt.block_on(add(1, 2)) == 3);
    REQUIRE(rt.block_on(fib(rt, 15)) == 610);
    std::atomic<int> n{0};
    for (int i = 0; i < 1000; ++i) rt.post([&] { n++; });
    task_group g(rt);
    g.run([] {});
    g.wait();
    parallel_for(rt, 0, 10000, [&](int) { n++; });
    rt.shutdown();
    REQUIRE(n.load() == 11000);
}
