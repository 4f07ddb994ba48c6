// A consumer of taskport: a few tasks, a coroutine, a task_group. Exits 0 when all agree.
#include <taskport/taskport.hpp>

#include <atomic>
#include <cstdio>
#include <vector>

static taskport::task<int> triple(int x) { co_return 3 * x; }

static taskport::task<int> sum_of_triples(taskport::runtime& rt, int n) {
    std::vector<taskport::future<int>> parts;
    for (int i = 1; i <= n; ++i) parts.push_back(rt.spawn(triple(i)));
    int sum = 0;
    for (int v : co_await taskport::when_all(std::move(parts))) sum += v;
    co_return sum;
}

int main() {
    taskport::runtime rt;
    const int sum = rt.block_on(sum_of_triples(rt, 100));  // 3 * 5050

    std::atomic<int> ran{0};
    taskport::task_group group(rt);
    for (int i = 0; i < 64; ++i) group.run([&] { ran++; });
    group.wait();

    const int answer = rt.spawn([] { return 42; }).get();
    std::printf("subproject consumer: sum %d, group %d, answer %d on %zu workers\n", sum,
                ran.load(), answer, rt.workers());
    return sum == 15150 && ran == 64 && answer == 42 ? 0 : 1;
}
