// runtime.cpp — constructing and shutting down the runtime.
#include <taskport/runtime.hpp>
#include <taskport/detail/environment.hpp>

#include <cstdio>
#include <cstdlib>

namespace taskport {

namespace detail {
handoff_slot& this_thread_handoff() noexcept {
    __attribute__((tls_model("initial-exec"))) static thread_local handoff_slot slot;
    return slot;
}
// Defined whatever TASKPORT_RESUME_TRAMPOLINE is here: an application built without
// optimisation or with sanitizers uses it from its own inline code (future.hpp).
resume_loop& this_thread_resume_loop() noexcept {
    __attribute__((tls_model("initial-exec"))) static thread_local resume_loop loop;
    return loop;
}
}  // namespace detail

runtime::runtime(runtime_options opts) : opts_(std::move(opts)) {
    // Every TASKPORT_* variable is checked here, before any thread starts, whichever component
    // reads it later (a bad one: std::invalid_argument naming it and its accepted values).
    detail::check_environment();
    detail::scheduler_config cfg;
    cfg.workers = opts_.workers ? opts_.workers : detail::env_workers();
    cfg.worker_poll = detail::env_worker_poll();
    cfg.kind = opts_.scheduler;
    ex_ = detail::make_executor(cfg);
    ex_->set_owner(this);
}

// Destroying the runtime from one of its own tasks cannot work: a worker cannot join itself,
// and the executor's memory (queues, the worker's own state) would be freed under the task
// that is running the destructor, which then returns into freed memory. A destructor cannot
// throw, so this is reported the way std::thread's destructor reports a joinable thread: by
// terminating, but first saying what went wrong and how to do it instead (before, it died
// with "terminate called without an active exception" from ~std::thread).
runtime::~runtime() {
    if (ex_ && ex_->in_worker()) {
        std::fputs("taskport: runtime destroyed from one of its own tasks; a worker cannot join "
                   "itself. Destroy the runtime from outside its workers (a task may call "
                   "shutdown(), which only closes it)\n",
                   stderr);
        std::abort();
    }
    shutdown();
}

// Services first (newest first: each aborts its pending work, whose completions go to the
// executor's queues), then the executor (the workers run those completions and are joined).
// The services are released by ~service_registry, after this and before the executor is gone.
void runtime::shutdown() noexcept {
    services_.shutdown_all();
    ex_->shutdown();
}

void runtime::report_unhandled(std::exception_ptr e) noexcept {
    if (opts_.on_unhandled_exception) {
        try {
            opts_.on_unhandled_exception(e);
            return;
        } catch (...) {
            std::fputs("taskport: on_unhandled_exception handler threw\n", stderr);
        }
    }
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        std::fprintf(stderr, "taskport: exception escaped a posted task: %s\n", ex.what());
    } catch (...) {
        std::fputs("taskport: non-standard exception escaped a posted task\n", stderr);
    }
}

}  // namespace taskport
