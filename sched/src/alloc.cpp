// alloc.cpp — where task memory comes from: a per-thread cache of small blocks in front of
// oneTBB's scalable allocator (operator new without oneTBB).
//
// Spawned tasks, future states and coroutine frames are small, short-lived and mostly freed on
// the thread that allocated them (a worker spawns and runs its own children), like oneTBB's own
// task objects, which it keeps in a per-thread small-object pool. Blocks up to 512 bytes are kept
// in size classes of 16 bytes on the freeing thread's lists, each list capped (16 KiB of blocks,
// at least 16), and handed out again by the next allocation of that class on that thread: a pop
// and a push, no atomic instruction. Blocks allocated on one thread and freed on another (a task
// spawned from outside, run by a worker) join the freeing thread's cache until it is full and go
// back to the backend after that; the backend is oneTBB's scalable_malloc (cheap cross-thread
// frees, measured in tests/bench/bench_alloc) or operator new.
//
// Contract: deallocate_task gets the size that was passed to allocate_task (sized delete does
// this); the size picks the class. Under AddressSanitizer or ThreadSanitizer the cache is off and
// the backend is operator new (see TASKPORT_TBB_BACKEND), so they see every allocation and free.
//
// Who touches what: each thread only its own cache (reached through a thread_local pointer); at
// thread exit the cache goes back to the backend and the thread allocates directly after that.
#include "block_depot.hpp"

#include <taskport/sched/executor.hpp>

#include <array>
#include <cassert>
#include <cstdint>
#include <new>
#include <utility>

#if TASKPORT_HAVE_TBB
#include <oneapi/tbb/scalable_allocator.h>
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TASKPORT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TASKPORT_SANITIZED 1
#endif
#endif
#ifndef TASKPORT_SANITIZED
#define TASKPORT_SANITIZED 0
#endif
#define TASKPORT_TASK_CACHE (!TASKPORT_SANITIZED)
// The sanitizers intercept malloc/operator new, not scalable_malloc: with oneTBB's allocator
// underneath, ThreadSanitizer sees a block freed on one thread and reused on another with no
// happens-before (tbbmalloc's own synchronisation is not instrumented) and reports a race on
// every recycled task, and AddressSanitizer cannot see a use after free. So the sanitized builds
// allocate with operator new.
#define TASKPORT_TBB_BACKEND (TASKPORT_HAVE_TBB && !TASKPORT_SANITIZED)

namespace taskport::detail {

namespace {

void* backend_alloc(std::size_t bytes) {
#if TASKPORT_TBB_BACKEND
    if (void* p = scalable_malloc(bytes)) return p;
    throw std::bad_alloc();
#else
    return ::operator new(bytes);
#endif
}

void backend_free(void* p) noexcept {
#if TASKPORT_TBB_BACKEND
    scalable_free(p);
#else
    ::operator delete(p);
#endif
}

#if TASKPORT_TASK_CACHE

constexpr std::size_t granule = 16;
constexpr std::size_t max_cached = 512;
constexpr std::size_t classes = max_cached / granule;
constexpr std::size_t bytes_per_class = 16 * 1024;

constexpr std::size_t class_of(std::size_t bytes) noexcept { return (bytes - 1) / granule; }
// Class 0 (1..16 bytes) gets 32-byte blocks too: every cached block holds a depot_block.
constexpr std::size_t class_bytes(std::size_t c) noexcept { return c == 0 ? 2 * granule : (c + 1) * granule; }
constexpr std::uint32_t cap_of(std::size_t c) noexcept {
    return class_bytes(c) * 16 > bytes_per_class ? 16
                                                 : static_cast<std::uint32_t>(bytes_per_class / class_bytes(c));
}

// cap_of(c) for every class, computed at compile time: deallocate_task reads it, and the
// division in cap_of would otherwise run on every free.
constexpr auto class_caps = [] {
    std::array<std::uint32_t, classes> caps{};
    for (std::size_t c = 0; c < classes; ++c) caps[c] = cap_of(c);
    return caps;
}();

// A cached block; as the first block of a chain in a depot it also carries the chain's fields.
using free_block = basic_depot_block<std_atomics>;
static_assert(sizeof(free_block) <= 2 * granule, "every class's blocks must hold a free_block");
using block_depot = basic_block_depot<std_atomics>;

// Per class, the blocks threads hand each other (block_depot.hpp): at most 64 KiB of blocks.
constexpr std::size_t depot_bytes_per_class = 64 * 1024;
template <std::size_t... I>
struct depot_set {
    constexpr depot_set(std::index_sequence<I...>) noexcept
        : d{block_depot(static_cast<std::uint32_t>(depot_bytes_per_class / class_bytes(I)))...} {}
    block_depot d[sizeof...(I)];
};
template <std::size_t... I>
depot_set(std::index_sequence<I...>) -> depot_set<I...>;
constinit depot_set depots{std::make_index_sequence<classes>{}};

struct thread_cache {
    free_block* head[classes] = {};
    free_block* tail[classes] = {};  // the oldest block of each list (a chain's tail in the depot)
    std::uint32_t count[classes] = {};
};

// The calling thread's cache: null until its first free, then a block of its own; at thread exit
// the blocks go back to the backend and the pointer to a cache that takes nothing (`retired`).
// initial-exec: a plain %fs-relative load; only this pointer lives in static TLS (a library that
// is dlopen()ed has a small static TLS surplus to draw on, so the cache itself is on the heap).
__attribute__((tls_model("initial-exec"))) thread_local thread_cache* tl_cache = nullptr;

constinit thread_cache retired_cache{};  // heads stay null; counts set to "full" below

struct exit_flusher {
    ~exit_flusher() {
        thread_cache* c = tl_cache;
        tl_cache = &retired_cache;
        if (!c || c == &retired_cache) return;
        for (std::size_t i = 0; i < classes; ++i) {
            while (free_block* b = c->head[i]) {
                c->head[i] = b->next.load();
                backend_free(b);
            }
        }
        delete c;
    }
};
thread_local exit_flusher tl_flusher;

[[gnu::noinline]] thread_cache* make_cache() noexcept {
    static const bool retired_ready = [] {
        for (std::size_t i = 0; i < classes; ++i) retired_cache.count[i] = UINT32_MAX;
        return true;
    }();
    (void)retired_ready;
    auto* c = new (std::nothrow) thread_cache;
    if (!c) return &retired_cache;
    tl_cache = c;
    (void)&tl_flusher;  // odr-use: constructs it and registers its destructor for thread exit
    return c;
}

// The calling thread's cache of class c is empty: take every chain of c from the depot (blocks
// that other threads freed), keep all but the first, return the first; null when the depot
// turned out empty (the caller goes to the backend).
[[gnu::noinline]] void* refill(thread_cache* tc, std::size_t c) noexcept {
    std::uint32_t n = 0;
    free_block* tail = nullptr;
    if (free_block* b = depots.d[c].take_all(n, tail)) {
        if (!tc) tc = make_cache();
        if (tc != &retired_cache) {
            tc->head[c] = b->next.load();
            tc->tail[c] = tail;  // stale when n == 1 (the list is empty then: never read)
            tc->count[c] = n - 1;
            return b;
        }
        while (b) {  // a thread past its exit: nothing is cached any more
            free_block* nx = b->next.load();
            backend_free(b);
            b = nx;
        }
    }
    return nullptr;
}

// The calling thread's cache of class c is full: its blocks go to the depot as one chain (for
// a thread that allocates what this one frees), p starting a new list. False when the depot is
// full (or this thread is past its exit): the caller frees p to the backend.
[[gnu::noinline]] bool spill(thread_cache* tc, std::size_t c, free_block* p) noexcept {
    if (tc == &retired_cache || !tc->head[c]) return false;
    if (!depots.d[c].put(tc->head[c], tc->tail[c], tc->count[c])) return false;
    p->next.store(nullptr);
    tc->head[c] = tc->tail[c] = p;
    tc->count[c] = 1;
    return true;
}


// The miss paths, out of line and handed what the fast path already computed, so that the fast
// paths below (a pop or a push on this thread's list) save no registers and set up no frame and
// a miss costs one tail call more than before, nothing recomputed.
[[gnu::noinline]] void* allocate_task_miss(thread_cache* tc, std::size_t c) {
    // The depot only when it may have blocks: a relaxed read, so an allocating thread that
    // nobody feeds (spawn-then-get from outside) pays one load, not a call, per miss.
    if (depots.d[c].maybe_nonempty())
        if (void* p = refill(tc, c)) return p;
    return backend_alloc(class_bytes(c));
}

// No cache yet (tc null), or class c's list is full.
[[gnu::noinline]] void deallocate_task_miss(thread_cache* tc, std::size_t c, void* p) noexcept {
    auto* b = static_cast<free_block*>(p);
    if (!tc) {
        tc = make_cache();
        if (tc->count[c] < class_caps[c]) {  // the new cache (never the retired one: it is full)
            b->next.store(tc->head[c]);
            if (!tc->head[c]) tc->tail[c] = b;
            tc->head[c] = b;
            ++tc->count[c];
            return;
        }
    }
    if (depots.d[c].may_fit(tc->count[c]) && spill(tc, c, b)) return;
    backend_free(p);
}

#endif  // TASKPORT_TASK_CACHE

[[gnu::noinline]] void* backend_alloc_large(std::size_t bytes) { return backend_alloc(bytes); }
[[gnu::noinline]] void backend_free_large(void* p) noexcept { backend_free(p); }

}  // namespace

void* allocate_task(std::size_t bytes) {
#if TASKPORT_TASK_CACHE
    if (bytes - 1 < max_cached) {  // 1..512 (0 wraps around and goes to the backend)
        const std::size_t c = class_of(bytes);
        thread_cache* const tc = tl_cache;
        if (tc) {
            if (free_block* b = tc->head[c]) {
                tc->head[c] = b->next.load();
                --tc->count[c];
                return b;
            }
        }
        return allocate_task_miss(tc, c);
    }
#endif
    return backend_alloc_large(bytes);
}

void deallocate_task(void* p, std::size_t bytes) noexcept {
#if TASKPORT_TASK_CACHE
    if (bytes - 1 < max_cached) {
        const std::size_t c = class_of(bytes);
#if TASKPORT_HAVE_TBB && !defined(NDEBUG)
        assert(scalable_msize(p) >= class_bytes(c) && "deallocate_task: size differs from allocation");
#endif
        thread_cache* const tc = tl_cache;
        if (tc) {
            // A push onto a list with room (a block pushed onto an empty list is also its tail).
            if (tc->count[c] < class_caps[c]) {
                auto* b = static_cast<free_block*>(p);
                free_block* const h = tc->head[c];
                b->next.store(h);
                if (!h) tc->tail[c] = b;
                tc->head[c] = b;
                ++tc->count[c];
                return;
            }
            // Full, and the depot has no room for the list either (blocks allocated elsewhere,
            // freed here, as for outside submissions): straight to the backend, a tail call.
            if (!depots.d[c].may_fit(tc->count[c])) return backend_free(p);
        }
        return deallocate_task_miss(tc, c, p);
    }
#endif
    (void)bytes;
    backend_free_large(p);
}

}  // namespace taskport::detail
