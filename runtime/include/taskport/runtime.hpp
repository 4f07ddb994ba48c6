// taskport/runtime.hpp — the runtime: a pool of workers you post, spawn and block_on work with.
//
// spawn(f) allocates one block (task node + callable + result state) and returns a future to
// it; post(f) allocates a task node + callable and nothing else. A coroutine task<T> spawned
// becomes a root task whose frame completes the future when it returns.
#pragma once

#include <taskport/detail/service_registry.hpp>
#include <taskport/future.hpp>
#include <taskport/sched/executor.hpp>
#include <taskport/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <atomic>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace taskport {

/// work_stealing (taskport's own scheduler) or tbb_arena (a oneTBB task_arena; needs a build with
/// oneTBB, else the runtime constructor throws std::invalid_argument).
using scheduler_kind = detail::scheduler_kind;

// Which system interface feeds the completion queue. automatic: TASKPORT_IO_BACKEND from the
// environment if set (auto|epoll|io_uring|kqueue|iocp), else the best the platform offers
// (Linux: io_uring for files beside epoll for sockets when the kernel allows it, else epoll
// plus the blocking pool).
enum class io_backend { automatic, epoll, io_uring, kqueue, iocp };

// What an operator needs to see: the scheduler's figures, and the I/O side's, filled in by io/
// once the runtime has done I/O.
struct runtime_stats : scheduler_stats {
    std::string io_backend;                  // "epoll", "io_uring", "kqueue", "iocp"; empty: none yet
    std::uint64_t io_completions = 0;        // operations delivered through the completion queue
    std::size_t completion_queue_depth = 0;  // completions waiting for a worker now
};

/// How a runtime is built: `taskport::runtime rt{{.workers = 4}}`.
struct runtime_options {
    // Worker threads; 0 means TASKPORT_WORKERS from the environment, else the CPUs the process
    // may use (online, affinity mask, cgroup CPU quota; docs/getting-started.md).
    std::size_t workers = 0;
    // work_stealing (taskport's own) or tbb_arena (a oneTBB task_arena; needs a oneTBB build).
    scheduler_kind scheduler = scheduler_kind::work_stealing;
    // Called (on a worker) with an exception that escaped a post()ed task. Default: print it to
    // stderr. A throwing task never kills its worker either way. (The `{}` keeps
    // `runtime_options{.workers = 4}` free of -Wmissing-field-initializers under -Wextra.)
    std::function<void(std::exception_ptr)> on_unhandled_exception{};
    // The I/O backend (see io_backend).
    io_backend io = io_backend::automatic;
    // How long shutdown waits for blocking-pool calls still running (open, getaddrinfo, file I/O
    // without io_uring) before it abandons them with a line on stderr; max(): no limit.
    std::chrono::milliseconds shutdown_timeout{5000};
};

class runtime;

namespace detail {

template <class T, class F>
struct spawned_fn final : shared_state<T>, task_node, task_allocated {
    spawned_fn(executor* ex, F&& f) : shared_state<T>(ex, 2), task_node(&on_run) {
        fn.emplace(std::move(f));
    }
    void destroy() noexcept override { delete this; }
    task_node* pending_task() noexcept override { return this; }
    static void on_run(task_node* t) noexcept {
        auto* self = static_cast<spawned_fn*>(t);
        if (self->cancel_requested()) {
            self->set_exception(std::make_exception_ptr(cancelled_error()));
        } else {
            running_task_scope scope(self);  // f waiting for its own future throws (future.hpp)
            self->set_from(*self->fn);
        }
        self->fn.reset();
        self->release_producer();
    }
    std::optional<F> fn;
};

// The root of a spawned coroutine: starts it, and completes the future when it returns.
template <class T, class Maker>
struct root_task final : shared_state<T>, task_node, root_hook, task_allocated {
    using handle = std::coroutine_handle<task_promise<T>>;

    root_task(executor* ex, Maker&& m) : shared_state<T>(ex, 2), task_node(&on_run) {
        maker.emplace(std::move(m));
    }
    void destroy() noexcept override { delete this; }
    task_node* pending_task() noexcept override { return this; }

    static void on_run(task_node* t) noexcept {
        auto* self = static_cast<root_task*>(t);
        if (self->cancel_requested()) {
            self->maker.reset();
            self->set_exception(std::make_exception_ptr(cancelled_error()));
            self->release_producer();
            return;
        }
        std::exception_ptr err;
        try {
            self->h = (*self->maker)().release();
        } catch (...) {
            err = std::current_exception();
        }
        if (err) {  // published after the handler has ended (see shared_state::take())
            self->maker.reset();
            self->set_exception(std::move(err));
            self->release_producer();
            return;
        }
        if (!self->h) {
            self->maker.reset();
            self->set_exception(std::make_exception_ptr(std::future_error(std::future_errc::no_state)));
            self->release_producer();
            return;
        }
        auto& p = self->h.promise();
        p.root = self;
        p.cancel_scope = self;
        resume_coroutine(self->h);  // `self` may be gone once this returns
    }

    void on_done() noexcept override {
        std::exception_ptr err;
        std::optional<stored_t<T>> value;
        try {
            if constexpr (std::is_void_v<T>) {
                h.promise().take();
                value.emplace();
            } else {
                value.emplace(h.promise().take());
            }
        } catch (...) {
            err = std::current_exception();
        }
        h.destroy();  // the frame's locals (sockets, buffers) are gone before the future is ready
        h = {};
        maker.reset();
        if (err)
            this->set_exception(std::move(err));
        else if constexpr (std::is_void_v<T>)
            this->set_value();
        else
            this->set_value(std::move(*value));
        this->release_producer();
    }

    std::optional<Maker> maker;
    handle h;
};

template <class T>
struct task_holder {
    task<T> t;
    task<T> operator()() { return std::move(t); }
};

struct posted_base : task_node, task_allocated {
    using task_node::task_node;
    runtime* rt;
};

}  // namespace detail

/// A pool of worker threads that runs tasks: post(), spawn() and block_on() submit work, and the
/// runtime's I/O service runs I/O started from its tasks. Not copyable or movable. Every member may
/// be called from any thread, except that the destructor must not run on one of its own workers.
class runtime {
public:
    runtime() : runtime(runtime_options{}) {}
    /// Checks every TASKPORT_* variable (a bad one: std::invalid_argument naming it), then starts the
    /// workers. Throws std::system_error when a worker thread cannot be started (after joining those
    /// already started), std::invalid_argument for tbb_arena without oneTBB.
    explicit runtime(runtime_options opts);
    ~runtime();
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;

    // Fire and forget. An exception escaping f goes to on_unhandled_exception.
    // Throws runtime_closed from outside the workers after shutdown().
    template <class F>
    void post(F&& f) {
        using Fn = std::decay_t<F>;
        if constexpr (detail::is_task<std::invoke_result_t<Fn&>>::value) {
            (void)spawn(std::forward<F>(f));
        } else {
            struct node final : detail::posted_base {
                node(runtime* r, Fn&& fn) : posted_base(&on_run), f(std::move(fn)) { rt = r; }
                static void on_run(detail::task_node* t) noexcept {
                    auto* self = static_cast<node*>(t);
                    try {
                        self->f();
                    } catch (...) {
                        self->rt->report_unhandled(std::current_exception());
                    }
                    delete self;
                }
                Fn f;
            };
            auto* n = new node(this, Fn(std::forward<F>(f)));
            try {
                ex_->schedule(n);
            } catch (...) {
                delete n;
                throw;
            }
        }
    }

    // Runs f on a worker; its result (or exception) arrives through the future. If f returns a
    // task<T>, the coroutine runs (with f kept alive until it finishes) and the future is T's.
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    auto spawn(F&& f) {
        using Fn = std::decay_t<F>;
        using R = std::invoke_result_t<Fn&>;
        if constexpr (detail::is_task<R>::value) {
            using T = typename R::value_type;
            return submit_future<T>(new detail::root_task<T, Fn>(ex_.get(), Fn(std::forward<F>(f))));
        } else {
            return submit_future<R>(new detail::spawned_fn<R, Fn>(ex_.get(), Fn(std::forward<F>(f))));
        }
    }

    // Runs a coroutine on a worker.
    template <class T>
    future<T> spawn(task<T> t) {
        return spawn(detail::task_holder<T>{std::move(t)});
    }

    // Runs a coroutine to completion and returns its value (or rethrows). From a worker it runs
    // other tasks while it waits.
    template <class T>
    T block_on(task<T> t) {
        return spawn(std::move(t)).get();
    }

    /// A snapshot of the scheduler's and the I/O side's figures. Any thread.
    runtime_stats stats() const {
        runtime_stats s;
        static_cast<scheduler_stats&>(s) = ex_->stats();
        services_.fill_stats(s);
        return s;
    }

    // Stops accepting work from outside, runs everything already queued (and what it spawns),
    // and joins the workers. Idempotent; the destructor calls it. Called from a task it only
    // closes the runtime (a worker cannot join itself).
    void shutdown() noexcept;
    /// True once shutdown() has begun: spawn and post from outside then throw runtime_closed.
    bool closed() const noexcept { return ex_->closed(); }

    /// The number of worker threads.
    std::size_t workers() const noexcept { return ex_->concurrency(); }
    /// The options the runtime was built with.
    const runtime_options& options() const noexcept { return opts_; }

    detail::executor& executor() noexcept { return *ex_; }  // detail: for io/ and adapters
    void report_unhandled(std::exception_ptr e) noexcept;    // detail

    // The runtime's service of type T (detail/service_registry.hpp), made by `new T(*this)` on
    // first use; any thread. T derives from detail::runtime_service. Throws std::system_error
    // (operation_canceled) when it would have to make one after shutdown() began.
    template <class T>
    T& use_service() {
        return static_cast<T&>(services_.get(
            detail::key_of<T>(), [](runtime& r) -> detail::runtime_service* { return new T(r); }, *this));
    }
    // The service of type T if one was made, else null. Any thread; lock-free.
    template <class T>
    T* find_service() const noexcept {
        return static_cast<T*>(services_.find(detail::key_of<T>()));
    }
    detail::service_registry& services() noexcept { return services_; }  // detail

private:
    template <class T, class Node>
    future<T> submit_future(Node* n) {
        try {
            ex_->schedule(n);
        } catch (...) {
            delete n;
            throw;
        }
        return detail::make_future<T>(static_cast<detail::shared_state<T>*>(n));
    }

    runtime_options opts_;
    std::unique_ptr<detail::executor> ex_;
    // After ex_: destroyed (every service released, newest first) before the executor.
    detail::service_registry services_;
};

}  // namespace taskport
