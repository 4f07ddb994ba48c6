// wait_table.cpp — see taskport/sched/wait_table.hpp.
#include <taskport/sched/wait_table.hpp>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace taskport::detail {
namespace {

struct alignas(64) bucket {
    std::mutex mu;
    wait_entry* head = nullptr;        // guarded by mu
    std::atomic<std::uint32_t> count{0};  // entries listed; read without mu by notifiers
};

constexpr std::size_t bucket_count = 64;

bucket& bucket_for(const void* addr) noexcept {
    static bucket table[bucket_count];
    auto a = reinterpret_cast<std::uintptr_t>(addr);
    return table[(a >> 6 ^ a >> 12) % bucket_count];
}

}  // namespace

void wait_table_add(wait_entry& e) noexcept {
    bucket& b = bucket_for(e.addr);
    std::lock_guard<std::mutex> g(b.mu);
    e.prev = nullptr;
    e.next = b.head;
    if (b.head) b.head->prev = &e;
    b.head = &e;
    e.listed = true;
    b.count.fetch_add(1, std::memory_order_seq_cst);
}

static void unlink(bucket& b, wait_entry& e) noexcept {
    if (e.prev)
        e.prev->next = e.next;
    else
        b.head = e.next;
    if (e.next) e.next->prev = e.prev;
    e.listed = false;
    b.count.fetch_sub(1, std::memory_order_relaxed);
}

bool wait_table_remove(wait_entry& e) noexcept {
    bucket& b = bucket_for(e.addr);
    std::lock_guard<std::mutex> g(b.mu);
    if (!e.listed) return false;
    unlink(b, e);
    return true;
}

void wait_table_notify_all(const void* addr) noexcept {
    bucket& b = bucket_for(addr);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (b.count.load(std::memory_order_seq_cst) == 0) return;
    std::lock_guard<std::mutex> g(b.mu);
    for (wait_entry* e = b.head; e;) {
        wait_entry* next = e->next;
        if (e->addr == addr) {
            unlink(b, *e);
            e->cont->notify();  // under the lock: the waiter cannot unlink and leave meanwhile
        }
        e = next;
    }
}

}  // namespace taskport::detail
