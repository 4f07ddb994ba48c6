// taskport/sched/wait_table.hpp — wake waiters by address, like a futex.
//
// A counter that reaches zero (a task_group's pending count) must wake whoever waits for it, but
// the moment it reads zero its owner may return and destroy it. So the last decrementer never
// touches the counter's object again: it calls notify_all(address), which looks the waiters up in
// a static hashed table. Waiters keep their entry on their own stack and unlink it under the
// bucket lock before returning; notify runs under the same lock, so it never touches a gone
// entry. A stale address only causes a spurious wake-up, which every waiter tolerates by arming
// again (the notification unlinked its entry; see waitable in task_node.hpp).
#pragma once

#include <taskport/sched/task_node.hpp>

namespace taskport::detail {

struct wait_entry {
    const void* addr = nullptr;
    continuation* cont = nullptr;
    wait_entry* next = nullptr;
    wait_entry* prev = nullptr;
    bool listed = false;
};

// Registers e (addr and cont set by the caller). seq_cst: a notifier that decrements its counter
// (seq_cst) and then calls notify_all sees the entry, or the waiter's re-check sees the count.
void wait_table_add(wait_entry& e) noexcept;
// Unlinks e if still listed. Returns true if it was still listed (not notified).
bool wait_table_remove(wait_entry& e) noexcept;
// Notifies and unlinks every entry registered for addr.
void wait_table_notify_all(const void* addr) noexcept;

}  // namespace taskport::detail
