// service.cpp — creating the per-runtime I/O service and choosing its backends.
#include "service.hpp"
#include "descriptor.hpp"

#include <taskport/detail/environment.hpp>
#include <taskport/io/detail/test_hooks.hpp>

#include <cstdio>
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

}  // namespace

service::service(runtime& r)
    : rt(r), ex(r.executor()), cq(ex), pool(cq, blocking_pool::default_max_threads, r.options().shutdown_timeout) {
    io_backend want = backend_from_env(r.options().io);
    if (want == io_backend::iocp || want == io_backend::automatic) {
        std::error_code why;
        iocp = iocp_backend::try_create(cq, why);
        if (!iocp && want == io_backend::iocp)
            throw std::system_error(why, "taskport: io backend iocp is not available (Windows only)");
    }
    if (iocp) {
        chosen = io_backend::iocp;
        timers = &iocp->timers();
        completion = iocp.get();
    } else {
        react = std::make_unique<reactor>(cq, make_poller(want), ex.polls_source());
        if (ex.polls_source()) cq.set_poller(react.get());
        if (want == io_backend::io_uring || want == io_backend::automatic) {
            uring = uring_backend::try_create(cq, r.options().shutdown_timeout, uring_unavailable);
            if (!uring && want == io_backend::io_uring)
                throw std::system_error(uring_unavailable,
                                        "taskport: TASKPORT_IO_BACKEND/io_backend asks for io_uring, "
                                        "which is not available");
        }
        timers = &react->timers();
        completion = uring.get();
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
    stopped_.store(true, std::memory_order_release);
    if (react) react->shutdown();
    if (completion) completion->shutdown();
    pool.shutdown();
}

// ---- the free functions of taskport/io/detail/operation.hpp ----

service& service_of(runtime& rt) {
    return rt.use_service<service>();
}

service& current_service() {
    auto* ex = taskport::detail::current_executor();
    if (!ex || !ex->owner())
        throw std::logic_error(
            "taskport: this operation needs a runtime; call it from a task running on one");
    return service_of(*static_cast<runtime*>(ex->owner()));
}

void complete(operation* op) noexcept { op->svc->cq.push(op); }

// ---- what every socket and file layer shares ----

namespace {
thread_local unsigned inline_budget = 128;
}  // namespace

bool take_inline_budget() noexcept {
    if (inline_budget == 0) {
        inline_budget = 128;
        return false;
    }
    --inline_budget;
    return true;
}

void report_callback_exception(std::exception_ptr e) noexcept {
    auto* ex = taskport::detail::current_executor();
    if (ex && ex->owner()) {
        static_cast<runtime*>(ex->owner())->report_unhandled(e);
        return;
    }
    std::fputs("taskport: exception escaped an I/O callback\n", stderr);
}

// ---- descriptor states (descriptor.hpp) ----

descriptor_state::descriptor_state(service* s, native_socket f) noexcept : svc(s), fd(f) { s->add_ref(); }

void descriptor_add_ref(descriptor_state* st) noexcept { st->refs.fetch_add(1, std::memory_order_relaxed); }

void descriptor_release(descriptor_state* st) noexcept {
    if (st->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    service* s = st->svc;
    delete st;
    s->release();  // last: this may destroy the service (a socket that outlived its runtime)
}

void cancel(operation* op) noexcept {
    op->cancelled.store(true, std::memory_order_seq_cst);
    void* p = op->place.load(std::memory_order_seq_cst);
    if (!p) return;
    switch (op->kind) {
        case place_kind::descriptor:
            op->svc->react->cancel(op, static_cast<descriptor_state*>(p));
            break;
        case place_kind::timer: op->svc->timers->cancel(op); break;
        case place_kind::completion: op->svc->completion->cancel(op); break;
        case place_kind::pool: op->svc->pool.cancel(op); break;
        case place_kind::composite: static_cast<composite_place*>(p)->fn(op); break;
        case place_kind::none: break;
    }
}

void operation::on_cancel_hook(cancel_hook* h) noexcept { cancel(static_cast<operation*>(h)); }

void start_timer(service& svc, operation* op, std::chrono::steady_clock::time_point when) noexcept {
    op->svc = &svc;
    svc.timers->add(op, when);
}

void throw_if(const std::error_code& ec, const char* what) {
    if (ec) throw std::system_error(ec, what);
}

}  // namespace taskport::io::detail

// ---- test hooks (taskport/io/detail/test_hooks.hpp) ----

namespace taskport::io::detail {
namespace {
// Written by set_test_hook (tests only), read by run_test_hook: relaxed, since a test installs
// it before starting the operations it should see, which orders the store before their loads.
std::atomic<test_hook_fn> installed_hook{nullptr};
}  // namespace
void set_test_hook(test_hook_fn f) noexcept { installed_hook.store(f, std::memory_order_relaxed); }
// Written by tests only; read (relaxed) by iocp_socket.cpp's write_all step.
std::atomic<std::size_t> test_write_all_step{0};
void set_write_all_step_limit(std::size_t n) noexcept { test_write_all_step.store(n, std::memory_order_relaxed); }
void run_test_hook(hook_point p, void* arg) noexcept {
    if (test_hook_fn f = installed_hook.load(std::memory_order_relaxed)) f(p, arg);
}
}  // namespace taskport::io::detail
