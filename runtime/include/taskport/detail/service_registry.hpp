// taskport/detail/service_registry.hpp — the runtime's typed services (Asio's
// execution_context::service and use_service<T>): at most one service of each type per runtime,
// made on first use, keyed by a per-type id. io/ keeps its reactor, timers and completion queue
// in one; any other component may add its own beside it.
//
// Invariants:
//  - Lookup is lock-free and thread-safe: entries form a singly linked list, newest first; an
//    entry is fully built before it is published (release store of head_), never changed after,
//    and freed only by the registry's destructor, when no thread can look up any more.
//  - Creation is serialised by make_mu_ (recursive: a service's constructor may use_service
//    another one on the same thread); a type is made at most once.
//  - Order: shutdown_all() calls every service's shutdown() newest first, and refuses to make
//    new ones from then on (use_service throws); release_all() lets go of them newest first.
//    The runtime calls shutdown_all() before its workers are joined (so the completions a
//    shutdown aborts still run on a worker) and release_all() after, before the executor is
//    destroyed. A service made later may depend on one made earlier, never the reverse.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

namespace taskport {

struct runtime_stats;
class runtime;

namespace detail {

// What a runtime service implements.
struct runtime_service {
    virtual ~runtime_service() = default;
    // Runtime shutdown, before the workers are joined: abort pending work, refuse new work.
    virtual void shutdown() noexcept = 0;
    // The runtime lets go of it (after every worker is joined). A service that other objects
    // still use (a socket outliving its runtime) may outlive this call.
    virtual void release_by_runtime() noexcept { delete this; }
    virtual void fill_stats(runtime_stats&) const {}
};

// A type's key: the address of a variable that exists once per type in the program (an inline
// variable: one address across translation units and shared objects, as long as its symbol is
// not hidden; look a type up from one side of a DLL boundary only).
using service_key = const void*;
template <class T>
struct service_id {
    static constexpr char tag = 0;
};
template <class T>
constexpr service_key key_of() noexcept {
    return &service_id<T>::tag;
}

class service_registry {
public:
    service_registry() = default;
    service_registry(const service_registry&) = delete;
    service_registry& operator=(const service_registry&) = delete;
    ~service_registry();  // release_all(), then frees the entries

    // The service under key, or null. Any thread, lock-free.
    runtime_service* find(service_key key) const noexcept {
        // acquire: pairs with make()'s release store; the entry and its service are built.
        for (const entry* e = head_.load(std::memory_order_acquire); e; e = e->next)
            if (e->key == key) return e->svc;
        return nullptr;
    }
    // The service under key, made by make(rt) if there is none. Throws what make throws, and
    // std::system_error (operation_canceled) after shutdown_all() when it would have to make one.
    runtime_service& get(service_key key, runtime_service* (*make)(runtime&), runtime& rt);
    // Every service's fill_stats, newest first. Any thread.
    void fill_stats(runtime_stats& s) const;

    void shutdown_all() noexcept;  // every service's shutdown(), newest first; refuses new ones
    void release_all() noexcept;   // every service's release_by_runtime(), newest first; once (~)

    // Services made so far (tests).
    std::size_t size() const noexcept;

private:
    struct entry {
        service_key key;
        runtime_service* svc;
        entry* next;  // the one made before; immutable once published
    };
    std::recursive_mutex make_mu_;    // serialises get()'s creation path, shutdown_all, release_all
    std::atomic<entry*> head_{nullptr};  // written under make_mu_ (release); read by find (acquire)
    bool shut_ = false;               // under make_mu_
    bool released_ = false;           // under make_mu_
};

}  // namespace detail
}  // namespace taskport
