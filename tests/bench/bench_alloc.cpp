// bench_alloc.cpp — task memory: oneTBB's scalable_malloc against operator new (glibc malloc),
// on the patterns task memory sees (sched/src/alloc.cpp picks scalable_malloc when built with
// oneTBB; this is the measurement behind that choice).
//
//   cross-thread: one thread allocates 1M blocks and hands them (64 at a time, through a
//                 lock-free SPSC ring) to another thread, which frees them — a task spawned from
//                 outside and run on a worker.
//   same-thread:  allocate and free on one thread, 1M times, a window of 64 live blocks — a worker
//                 spawning and running its own tasks.
// Sizes cycle through 48, 96, 160 and 256 bytes (a posted task, a spawned task with its future
// state, small and larger coroutine frames). The figure is ns per allocate+free pair.
// Three allocators: taskport's allocate_task (a per-thread cache of small blocks in front of
// scalable_malloc, what the runtime uses), scalable_malloc alone, operator new.
#include "common.hpp"

#include <taskport/sched/executor.hpp>

#include <oneapi/tbb/scalable_allocator.h>

#include <boost/lockfree/spsc_queue.hpp>

#include <new>

namespace {

constexpr std::size_t total = 1'000'000;
constexpr std::size_t sizes[] = {48, 96, 160, 256};

struct task_alloc {
    static void* alloc(std::size_t n) { return taskport::detail::allocate_task(n); }
    static void free(void* p, std::size_t n) { taskport::detail::deallocate_task(p, n); }
};
struct tbb_alloc {
    static void* alloc(std::size_t n) { return scalable_malloc(n); }
    static void free(void* p, std::size_t) { scalable_free(p); }
};
struct new_alloc {
    static void* alloc(std::size_t n) { return ::operator new(n); }
    static void free(void* p, std::size_t n) { ::operator delete(p, n); }
};

template <class A>
double cross_thread() {
    struct item {
        void* p;
        std::size_t n;
    };
    boost::lockfree::spsc_queue<item, boost::lockfree::capacity<4096>> q;
    auto t0 = bench::clock::now();
    std::thread consumer([&] {
        item buf[64];
        std::size_t got = 0;
        while (got < total) {
            std::size_t k = q.pop(buf, 64);
            if (!k) {
                std::this_thread::yield();
                continue;
            }
            for (std::size_t i = 0; i < k; ++i) A::free(buf[i].p, buf[i].n);
            got += k;
        }
    });
    item buf[64];
    for (std::size_t i = 0; i < total; i += 64) {
        for (std::size_t j = 0; j < 64; ++j) {
            std::size_t n = sizes[(i + j) % 4];
            buf[j] = {A::alloc(n), n};
            static_cast<char*>(buf[j].p)[0] = 1;  // touch it, as a constructor would
        }
        std::size_t pushed = 0;
        while (pushed < 64) {
            std::size_t k = q.push(buf + pushed, 64 - pushed);
            if (!k) std::this_thread::yield();
            pushed += k;
        }
    }
    consumer.join();
    return bench::ms_since(t0) * 1e6 / total;
}

template <class A>
double same_thread() {
    void* live[64] = {};
    std::size_t live_n[64] = {};
    auto t0 = bench::clock::now();
    for (std::size_t i = 0; i < total; ++i) {
        std::size_t s = i % 64;
        if (live[s]) A::free(live[s], live_n[s]);
        live_n[s] = sizes[i % 4];
        live[s] = A::alloc(live_n[s]);
        static_cast<char*>(live[s])[0] = 1;
    }
    for (std::size_t s = 0; s < 64; ++s)
        if (live[s]) A::free(live[s], live_n[s]);
    return bench::ms_since(t0) * 1e6 / total;
}

}  // namespace

int main() {
    const int r = bench::reps(9);
    bench::row_samples("task allocation, cross-thread alloc/free: allocate_task (cache + scalable_malloc) vs operator new",
                       bench::alternate(r, cross_thread<task_alloc>, cross_thread<new_alloc>), "ns/op");
    bench::row_samples("task allocation, cross-thread alloc/free: scalable_malloc vs operator new",
                       bench::alternate(r, cross_thread<tbb_alloc>, cross_thread<new_alloc>), "ns/op");
    bench::row_samples("task allocation, same-thread alloc/free: allocate_task (cache + scalable_malloc) vs operator new",
                       bench::alternate(r, same_thread<task_alloc>, same_thread<new_alloc>), "ns/op");
    bench::row_samples("task allocation, same-thread alloc/free: scalable_malloc vs operator new",
                       bench::alternate(r, same_thread<tbb_alloc>, same_thread<new_alloc>), "ns/op");
}
