// service.cpp — creating the per-runtime I/O service and choosing its backends.
#include "service.hpp"

#include <taskport/detail/environment.hpp>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace taskport::io::detail {

const char* backend_name(io_backend b) noexcept {
    switch (b) {
        case io_backend::automatic: return "auto";
        case io_backend::epoll: return "epoll";
        case io_backend::io_uring: return "io_uring";
        case io_backend::kqueue: return "kqueue";
        case io_backend::iocp: return "iocp";
    }
    return "?";
}

io_backend backend_from_env(io_backend requested) {
    if (requested != io_backend::automatic) return requested;
    const char* env = taskport::detail::env_io_backend();  // validated there
    if (!env || !*env) return io_backend::automatic;
    for (io_backend b : {io_backend::automatic, io_backend::epoll, io_backend::io_uring,
                         io_backend::kqueue, io_backend::iocp})
        if (std::strcmp(env, backend_name(b)) == 0) return b;
    throw std::invalid_argument(std::string("taskport: TASKPORT_IO_BACKEND must be one of "
                                            "auto, epoll, io_uring, kqueue, iocp; got '") +
                                env + "'");
}

namespace {

std::unique_ptr<poller> make_poller(io_backend b) {
    if (b == io_backend::kqueue) {
        auto p = make_kqueue_poller();
        if (!p)
            throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                                    "taskport: io backend kqueue is not available in this build");
        return p;
    }
    if (auto p = make_epoll_poller()) return p;
    if (auto p = make_kqueue_poller()) return p;
    throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                            "taskport: no readiness API (epoll or kqueue) in this build");
}

std::size_t pool_threads() {
    return 16;
}

}  // namespace

service::service(runtime& r)
    : rt(r), ex(r.executor()), cq(ex), pool(cq, pool_threads()) {
    io_backend want = backend_from_env(r.options().io);
    if (want == io_backend::iocp || want == io_backend::automatic) {
        std::error_code why;
        iocp = iocp_backend::try_create(cq, why);
        if (!iocp && want == io_backend::iocp)
            throw std::system_error(why, "taskport: io backend iocp is not available (Windows only)");
    }
    if (iocp) {
        chosen = io_backend::iocp;
    } else {
        react = std::make_unique<reactor>(cq, make_poller(want), ex.polls_source());
        if (ex.polls_source()) cq.set_poller(react.get());
        if (want == io_backend::io_uring || want == io_backend::automatic) {
            uring = uring_backend::try_create(cq, uring_unavailable);
            if (!uring && want == io_backend::io_uring)
                throw std::system_error(uring_unavailable,
                                        "taskport: TASKPORT_IO_BACKEND/io_backend asks for io_uring, "
                                        "which is not available");
        }
        chosen = uring ? io_backend::io_uring
                       : (std::strcmp(react->poller_name(), "kqueue") == 0 ? io_backend::kqueue
                                                                          : io_backend::epoll);
    }
    // Last, once nothing above can throw: attached earlier, a failed construction (no such
    // backend, io_uring refused) left the executor polling a destroyed queue.
    ex.attach_source(&cq);
}

service::~service() { shutdown(); }

void service::fill_stats(runtime_stats& s) const {
    s.io_backend = backend_name(chosen);
    s.io_completions = cq.pushed();
    s.completion_queue_depth = cq.size();
}

void service::shutdown() noexcept {
    if (react) react->shutdown();
    if (iocp) iocp->shutdown();
    if (uring) uring->shutdown();
    pool.shutdown();
}

// ---- the free functions of taskport/io/detail/operation.hpp ----

service& service_of(runtime& rt) {
    return static_cast<service&>(
        rt.extension([](runtime& r) -> taskport::detail::runtime_extension* { return new service(r); }));
}

service& current_service() {
    auto* ex = taskport::detail::current_executor();
    if (!ex || !ex->owner())
        throw std::logic_error(
            "taskport: this operation needs a runtime; call it from a task running on one");
    return service_of(*static_cast<runtime*>(ex->owner()));
}

void complete(operation* op) noexcept { op->svc->cq.push(op); }

void cancel(operation* op) noexcept {
    op->cancelled.store(true, std::memory_order_seq_cst);
    void* p = op->place.load(std::memory_order_seq_cst);
    if (!p) return;
    switch (op->kind) {
        case place_kind::descriptor:
            op->svc->react->cancel(op, static_cast<descriptor_state*>(p));
            break;
        case place_kind::timer:
            if (op->svc->iocp)
                op->svc->iocp->cancel_timer(op);
            else
                op->svc->react->cancel_timer(op);
            break;
        case place_kind::iocp: op->svc->iocp->cancel(op); break;
        case place_kind::pool: op->svc->pool.cancel(op); break;
        case place_kind::uring:
            if (op->svc->uring) op->svc->uring->cancel(op);
            break;
        case place_kind::none: break;
    }
}

void operation::on_cancel_hook(cancel_hook* h) noexcept { cancel(static_cast<operation*>(h)); }

void start_timer(service& svc, operation* op, std::chrono::steady_clock::time_point when) noexcept {
    op->svc = &svc;
    if (svc.iocp)
        svc.iocp->add_timer(op, when);
    else
        svc.react->add_timer(op, when);
}

void throw_if(const std::error_code& ec, const char* what) {
    if (ec) throw std::system_error(ec, what);
}

}  // namespace taskport::io::detail
