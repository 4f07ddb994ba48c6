// bench_memory.cpp — memory held by 1M spawned-but-unfinished tasks, and the peak resident set.
//
// Every worker first runs a "gate" task that blocks until the gate opens, so the 1M tasks
// submitted next all stay queued. Resident memory (VmRSS) is read with the gate closed before
// and after submitting; (after - before) / 1M is the cost of one queued task, and VmHWM the
// process's peak. Each measurement runs in a forked child of its own (a fresh heap, no threads
// left from the other side), so the two sides cannot lend each other freed memory.
//
//   post:  rt.post(f)                   vs  tbb::task_arena::enqueue(f)
//   spawn: rt.spawn(f), futures kept    vs  tbb::task_group::run(f) from the outside thread,
//                                           each task writing its value into its own slot
// The callable is the same on both sides (a pointer and an index). Both pools have 2 workers.
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

namespace {

constexpr std::uint32_t n = 1'000'000;
constexpr std::uint32_t workers = 2;

struct gate {
    std::atomic<std::uint32_t> open{0};
    std::atomic<std::uint32_t> blocked{0};
    void block() {
        blocked.fetch_add(1);
        blocked.notify_all();
        while (open.load() == 0) open.wait(0);
    }
    void wait_all_blocked() {
        for (std::uint32_t v = blocked.load(); v < workers; v = blocked.load()) blocked.wait(v);
    }
    void release() {
        open.store(1);
        open.notify_all();
    }
};

// The figures a child reports: bytes per queued task, peak RSS in MiB.
void measure(const bench::child_channel& ch, const std::function<void()>& submit,
             const std::function<void()>& finish, gate& g) {
    g.wait_all_blocked();
    const long before = bench::status_kb("VmRSS");
    submit();
    const long after = bench::status_kb("VmRSS");
    g.release();
    finish();
    ch.report(double(after - before) * 1024.0 / n);
    ch.report(double(bench::status_kb("VmHWM")) / 1024.0);
}

void tp_post(const bench::child_channel& ch) {
    taskport::runtime rt{{.workers = workers, .scheduler = {}, .on_unhandled_exception = {}}};
    gate g;
    std::atomic<std::uint32_t> done{0};
    for (std::uint32_t i = 0; i < workers; ++i) rt.post([&g] { g.block(); });
    measure(
        ch,
        [&] {
            for (std::uint32_t i = 0; i < n; ++i)
                rt.post([&done, i] {
                    bench::keep(i);
                    if (done.fetch_add(1) + 1 == n) done.notify_one();
                });
        },
        [&] { bench::wait_for(done, n); }, g);
}

void tbb_enqueue(const bench::child_channel& ch) {
    tbb::global_control gc(tbb::global_control::max_allowed_parallelism, workers + 1);
    tbb::task_arena arena(workers, 0);
    arena.initialize();
    gate g;
    std::atomic<std::uint32_t> done{0};
    for (std::uint32_t i = 0; i < workers; ++i) arena.enqueue([&g] { g.block(); });
    measure(
        ch,
        [&] {
            for (std::uint32_t i = 0; i < n; ++i)
                arena.enqueue([&done, i] {
                    bench::keep(i);
                    if (done.fetch_add(1) + 1 == n) done.notify_one();
                });
        },
        [&] { bench::wait_for(done, n); }, g);
}

void tp_spawn(const bench::child_channel& ch) {
    taskport::runtime rt{{.workers = workers, .scheduler = {}, .on_unhandled_exception = {}}};
    gate g;
    std::vector<taskport::future<std::uint32_t>> futs;
    futs.reserve(n);
    std::memset(static_cast<void*>(futs.data()), 0, n * sizeof(futs[0]));  // resident before
    for (std::uint32_t i = 0; i < workers; ++i) rt.post([&g] { g.block(); });
    measure(
        ch, [&] { for (std::uint32_t i = 0; i < n; ++i) futs.push_back(rt.spawn([i] { return i; })); },
        [&] {
            std::uint64_t s = 0;
            for (auto& f : futs) s += f.get();
            if (s != std::uint64_t(n) * (n - 1) / 2) std::abort();
        },
        g);
}

void tbb_group(const bench::child_channel& ch) {
    tbb::global_control gc(tbb::global_control::max_allowed_parallelism, workers + 1);
    tbb::task_arena arena(workers + 1, 1);  // the outside thread's slot plus 2 workers
    arena.initialize();
    gate g;
    std::vector<std::uint32_t> slots(n);
    tbb::task_group tg;
    for (std::uint32_t i = 0; i < workers; ++i) arena.enqueue([&g] { g.block(); });
    // Everything inside the arena: the tasks go to this thread's own slot, where TBB keeps them
    // until a thread takes them; wait() then runs them here and on the released workers.
    arena.execute([&] {
        measure(
            ch, [&] { for (std::uint32_t i = 0; i < n; ++i) tg.run([&slots, i] { slots[i] = i; }); },
            [&] {
                tg.wait();
                std::uint64_t s = 0;
                for (auto v : slots) s += v;
                if (s != std::uint64_t(n) * (n - 1) / 2) std::abort();
            },
            g);
    });
}

void compare(const char* name, void (*a)(const bench::child_channel&),
             void (*b)(const bench::child_channel&), int reps) {
    std::vector<double> ab, bb, ap, bp;
    for (int i = 0; i < reps; ++i) {
        auto x = bench::in_child(a);
        auto y = bench::in_child(b);
        if (x.size() != 2 || y.size() != 2) std::exit(1);
        ab.push_back(x[0]);
        ap.push_back(x[1]);
        bb.push_back(y[0]);
        bp.push_back(y[1]);
    }
    bench::row(std::string(name) + ": bytes per queued task", bench::median(ab), bench::median(bb), "B");
    bench::row(std::string(name) + ": peak RSS of the process", bench::median(ap), bench::median(bp), "MiB");
}

}  // namespace

int main() {
    const int r = bench::reps(3);
    compare("1M queued tasks, post vs task_arena::enqueue", tp_post, tbb_enqueue, r);
    compare("1M queued tasks, spawn (futures kept) vs task_group::run", tp_spawn, tbb_group, r);
}
