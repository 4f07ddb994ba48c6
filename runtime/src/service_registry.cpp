// service_registry.cpp — see taskport/detail/service_registry.hpp.
#include <taskport/detail/service_registry.hpp>
#include <taskport/runtime.hpp>

#include <system_error>
#include <utility>

namespace taskport::detail {

service_registry::~service_registry() {
    release_all();
    for (entry* e = head_.load(std::memory_order_relaxed); e;) delete std::exchange(e, e->next);
}

runtime_service& service_registry::get(service_key key, runtime_service* (*make)(runtime&), runtime& rt) {
    if (runtime_service* s = find(key)) return *s;
    std::lock_guard<std::recursive_mutex> g(make_mu_);
    if (runtime_service* s = find(key)) return *s;  // made meanwhile (or by our own make, recursively)
    if (shut_ || released_)
        throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                                "taskport: runtime::use_service: the runtime is shut down, so no new service "
                                "can start");
    auto* e = new entry{key, nullptr, nullptr};
    try {
        e->svc = make(rt);
    } catch (...) {
        delete e;
        throw;
    }
    e->next = head_.load(std::memory_order_relaxed);  // make() may have added others: re-read
    // release: the entry and the service it names are built before a finder sees them.
    head_.store(e, std::memory_order_release);
    return *e->svc;
}

void service_registry::fill_stats(runtime_stats& s) const {
    for (const entry* e = head_.load(std::memory_order_acquire); e; e = e->next) e->svc->fill_stats(s);
}

void service_registry::shutdown_all() noexcept {
    entry* first;
    {
        std::lock_guard<std::recursive_mutex> g(make_mu_);
        shut_ = true;  // from here the list cannot grow
        first = head_.load(std::memory_order_relaxed);
    }
    // Outside the lock: a shutdown may wait for work that looks a service up.
    for (entry* e = first; e; e = e->next) e->svc->shutdown();
}

// Only from the registry's destructor (the runtime's), when nobody can look a service up.
void service_registry::release_all() noexcept {
    std::lock_guard<std::recursive_mutex> g(make_mu_);
    if (released_) return;
    released_ = true;
    for (entry* e = head_.load(std::memory_order_relaxed); e; e = e->next) e->svc->release_by_runtime();
}

std::size_t service_registry::size() const noexcept {
    std::size_t n = 0;
    for (const entry* e = head_.load(std::memory_order_acquire); e; e = e->next) ++n;
    return n;
}

}  // namespace taskport::detail
