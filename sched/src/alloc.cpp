// alloc.cpp — where task memory comes from.
//
// Spawned tasks and future states are allocated on one thread and very often freed on another
// (a task spawned from outside runs on a worker). oneTBB's scalable allocator keeps per-thread
// heaps with cheap cross-thread frees; without oneTBB we fall back to operator new (glibc's
// tcache). tests/bench/bench_alloc compares the two on exactly that pattern.
#include <taskport/sched/executor.hpp>

#include <new>

#if TASKPORT_HAVE_TBB
#include <oneapi/tbb/scalable_allocator.h>
#endif

namespace taskport::detail {

void* allocate_task(std::size_t bytes) {
#if TASKPORT_HAVE_TBB
    if (void* p = scalable_malloc(bytes)) return p;
    throw std::bad_alloc();
#else
    return ::operator new(bytes);
#endif
}

void deallocate_task(void* p, std::size_t bytes) noexcept {
#if TASKPORT_HAVE_TBB
    (void)bytes;
    scalable_free(p);
#else
    ::operator delete(p, bytes);
#endif
}

}  // namespace taskport::detail
