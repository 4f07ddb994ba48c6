// taskport/future.hpp — future<T>, promise<T> and the shared state behind them.
//
// One heap block per spawned task holds the task node, the callable and the result (see
// runtime.hpp); future<T> is a counted reference to it. The state's waiter list
// (detail/waiter_list.hpp) is the whole synchronisation: one word that is either ready or a
// lock-free stack of everyone waiting, in any number and mix: then() and co_await continuations,
// when_all slots, workers helping in wait(), outside threads blocked in wait(). Registering
// allocates nothing (the nodes live in the waiting frames); a single continuation costs one CAS
// to register and one exchange to notify, as before the list existed.
// Invariants: the result is written before the state becomes ready (release), read after seeing
// ready (acquire); completion happens exactly once and notifies every registered waiter exactly
// once; the completer holds a reference until it has finished notifying, so a waiter may drop its
// future the moment it sees ready.
#pragma once

#include <taskport/detail/refcount.hpp>
#include <taskport/detail/take_back.hpp>
#include <taskport/detail/timed_waiter.hpp>
#include <taskport/detail/waiter_list.hpp>
#include <taskport/sched/executor.hpp>
#include <taskport/sched/futex.hpp>
#include <taskport/sched/task_node.hpp>

#include <atomic>
#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <future>
#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace taskport {

template <class T>
class future;
template <class T>
class promise;

// The error a cancelled task, continuation or operation completes with.
inline std::system_error cancelled_error() {
    return std::system_error(std::make_error_code(std::errc::operation_canceled),
                             "taskport: cancelled");
}

namespace detail {

template <class T>
using stored_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// What future::cancel() calls to abort the operation (I/O, a timer) a task is suspended on.
// A task tree may have several pending at once (fork_join's children, fork.hpp): a state keeps
// them in a list through next_hook, under its hook lock.
struct cancel_hook {
    using fn_t = void (*)(cancel_hook*) noexcept;
    explicit cancel_hook(fn_t f) noexcept : fn(f) {}
    fn_t fn;
    cancel_hook* next_hook = nullptr;  // the state's list (under its hook lock)
};

// Test hook, off (null) in normal use: called with the state's address each time a waiter (a
// then(), a co_await, a worker or an outside thread in wait()) has registered with a state, so a
// test can complete the future only once every waiter it started is registered.
inline std::atomic<void (*)(const void*) noexcept> wait_registered_hook{nullptr};
inline void note_wait_registered(const void* state) noexcept {
    if (auto h = wait_registered_hook.load(std::memory_order_relaxed)) h(state);
}

// Allocation through allocate_task for every runtime-internal block.
struct task_allocated {
    static void* operator new(std::size_t n) { return allocate_task(n); }
    static void operator delete(void* p, std::size_t n) noexcept { deallocate_task(p, n); }
};

// A registration with a state's waiter list (detail/waiter_list.hpp): a continuation plus the
// list's link. then() nodes, co_await awaiters and when_all slots are `once` nodes; a worker's
// wait() uses a `waiter` node (state_base::worker_wait).
using wait_link = basic_wait_node<std_atomics>;
struct wait_node : continuation, wait_link {
    explicit wait_node(notify_fn_t f) noexcept : continuation(f) {}
};

class state_base;

// The state whose spawned callable this thread is running now (null: none, or while the callable
// helps in wait(): the executor may then run other tasks here, and the tbb_arena executor may
// even move the suspended callable to another thread). wait() compares it with the state waited
// for: a callable waiting for its own future could never finish.
inline const state_base*& running_task_state() noexcept {
    static thread_local const state_base* s = nullptr;
    return s;
}
struct running_task_scope {
    explicit running_task_scope(const state_base* s) noexcept
        : saved(std::exchange(running_task_state(), s)) {}
    ~running_task_scope() { running_task_state() = saved; }
    running_task_scope(const running_task_scope&) = delete;
    running_task_scope& operator=(const running_task_scope&) = delete;
    const state_base* saved;
};

// Private take-back: the state a waiter on this thread is taking back (state_base::take_back)
// while it owns the only future and nothing is registered, so that the task's completion, when it
// comes on this thread before take_back returns, is a plain store and its producer's reference
// goes to the waiter without a decrement (the producer clears this to say so). Only this thread
// reads or writes it; take_back restores the enclosing value, so it never names a freed state.
inline const state_base*& private_take_back_state() noexcept {
    static thread_local const state_base* s = nullptr;
    return s;
}

// Take-back (executor::run_if_newest): runs t, the unstarted task a waiter on this worker is
// about to wait for, here and now. Hidden from the self-wait check like help_until's tasks: t
// is another task, not the caller's own callable.
inline bool run_pending(executor* ex, task_node* t) noexcept {
    running_task_scope hide(nullptr);
    return ex->run_if_newest(t);
}

// steady_clock::now() + rel, saturating (wait_for(hours::max()) must not wrap into the past);
// a zero or negative rel is now.
template <class Rep, class Period>
std::chrono::steady_clock::time_point saturating_deadline(const std::chrono::duration<Rep, Period>& rel) {
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    if (rel <= rel.zero()) return now;
    // In double seconds: no integer conversion can overflow here.
    const std::chrono::duration<double> left = clock::time_point::max() - now;
    if (std::chrono::duration<double>(rel) >= left) return clock::time_point::max();
    return now + std::chrono::ceil<clock::duration>(rel);
}

[[noreturn]] inline void throw_self_wait() {
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                            "taskport: a task waits for its own future");
}

class state_base {
public:
    explicit state_base(executor* ex, std::uint32_t refs) noexcept : refs_(refs), ex_(ex) {}

    bool ready() const noexcept { return waiters_.ready(); }

    // Registers a one-shot continuation (a `once` node). False when already ready: then nothing
    // will be notified and the caller goes on itself.
    bool arm(wait_node* n) noexcept {
        if (!waiters_.push(n, wait_kind::once)) return false;
        note_wait_registered(this);
        return true;
    }

    // Any number of threads at once, workers and outside threads mixed. Blocks an outside thread;
    // on a worker, runs other tasks until ready. Throws (resource_deadlock_would_occur) when the
    // calling thread is running this state's own task, which could then never finish. sole: the
    // caller's future is consumed right after (get()), so no other thread may wait on it meanwhile.
    void wait(bool sole = false) {
        if (ready()) return;
        if (running_task_state() == this) throw_self_wait();
        executor* ex = current_executor();
        if (ex && ex->in_worker()) {
            // The awaited task unstarted on top of this worker's queue: run it here (take-back,
            // see future_awaiter::await_suspend) before helping with anything else.
            if (task_node* t = pending_task(); t && take_back(ex, t, sole)) return;
            worker_wait w(*this);
            running_task_scope hide(nullptr);  // other tasks run here meanwhile
            ex->help_until(w);
        } else {
            wait_blocking();
        }
    }

    // Blocks the calling (non-worker) thread until ready.
    void wait_blocking() noexcept {
        if (!waiters_.add_sleeper()) return;
        note_wait_registered(this);
        waiters_.wait_released();
    }

    // wait() with a deadline (future::wait_until): true when ready, false when the deadline
    // passed first. The same threads, rules and self-wait error as wait(); a deadline already
    // passed only looks (no take-back, no registration). On a worker: the take-back, then
    // help_until_deadline() with a heap node the worker may leave registered (timed_worker_wait).
    bool wait_until(std::chrono::steady_clock::time_point deadline) {
        if (ready()) return true;
        if (running_task_state() == this) throw_self_wait();
        if (std::chrono::steady_clock::now() >= deadline) return ready();
        executor* ex = current_executor();
        if (ex && ex->in_worker()) {
            if (task_node* t = pending_task(); t && take_back(ex, t, false)) return true;
            timed_worker_wait w(*this);  // allocates its node: may throw std::bad_alloc
            running_task_scope hide(nullptr);  // other tasks run here meanwhile
            return ex->help_until_deadline(w, deadline);
        }
        return wait_blocking_until(deadline);
    }

    // wait_blocking() with a deadline: timed rounds on the released word. Leaving at the
    // deadline leaves only the sleepers bit behind (no node): complete() then wakes nobody.
    bool wait_blocking_until(std::chrono::steady_clock::time_point deadline) noexcept {
        if (!waiters_.add_sleeper()) return true;
        note_wait_registered(this);
        for (;;) {
            const auto now = std::chrono::steady_clock::now();
            if (now >= deadline) return ready();
            if (waiters_.wait_released_for(deadline - now)) return true;
        }
    }

    // Sets the flag, then aborts the registered pending operation, if any. The hook lock makes
    // this safe against the operation finishing: it unregisters (under the same lock) before
    // its coroutine resumes, so a hook is never called after its operation is gone.
    void request_cancel() noexcept {
        cancel_.store(true, std::memory_order_seq_cst);
        lock_hook();
        // Each fn only starts the abort (its coroutine resumes elsewhere, and unregisters under
        // this lock first), so no hook leaves the list while we walk it.
        for (cancel_hook* h = hook_; h;) {
            cancel_hook* const next = h->next_hook;
            h->fn(h);
            h = next;
        }
        unlock_hook();
    }
    bool cancel_requested() const noexcept { return cancel_.load(std::memory_order_relaxed); }

    // Registers the operation a task of this state is about to suspend on. Returns false (and
    // registers nothing) when cancellation was already requested.
    bool set_cancel_hook(cancel_hook* h) noexcept {
        lock_hook();
        bool ok = !cancel_.load(std::memory_order_seq_cst);
        if (ok) {
            h->next_hook = hook_;
            hook_ = h;
        }
        unlock_hook();
        return ok;
    }
    void clear_cancel_hook(cancel_hook* h) noexcept {
        lock_hook();
        for (cancel_hook** p = &hook_; *p; p = &(*p)->next_hook) {
            if (*p == h) {
                *p = h->next_hook;
                h->next_hook = nullptr;
                break;
            }
        }
        unlock_hook();
    }

    executor* exec() const noexcept { return ex_; }
    void set_exec(executor* ex) noexcept { ex_ = ex; }

    void add_ref() noexcept { refs_.add_ref(); }
    // The last holder destroys (detail/refcount.hpp: a holder that reads 1 does so without a
    // read-modify-write; tests/model/future_refcount_model.cpp checks it).
    void release() noexcept {
        if (refs_.release()) destroy();
    }

    // Take-back: t, this state's pending task, runs here if it is still the newest task of this
    // worker's queue (executor::run_if_newest). True when it ran and the state is ready. sole:
    // the caller owns the only future and consumes it (get(), co_await of an rvalue). Then, if
    // the task is the only other holder and nobody is registered, no other thread can reach the
    // state while the task runs nested here, so its completion on this thread (the usual case)
    // is private: complete() stores `ready` without the exchange, the producer hands its
    // reference over without the decrement (release_producer), and the count is set to the one
    // reference left, the caller's (detail/take_back.hpp says why no other thread can reach the
    // state meanwhile). A task that suspends and completes later, or elsewhere, does so the
    // usual way (private_take_back_state() no longer names this state then).
    bool take_back(executor* ex, task_node* t, bool sole) noexcept {
        if (sole && private_take_back_allowed(refs_, waiters_)) {
            const state_base*& pc = private_take_back_state();
            const state_base* const outer = pc;
            pc = this;
            const bool ran = run_pending(ex, t);
            const bool handed = pc == nullptr;  // the producer finished here, privately
            pc = outer;
            if (handed) {
                refs_.set_private(1);
                return true;
            }
            return ran && ready();
        }
        return run_pending(ex, t) && ready();
    }

    // The producer's release (a spawned callable's or a coroutine root's, after completing):
    // after a private completion (take_back) its reference goes to the waiter as it is.
    void release_producer() noexcept {
        const state_base*& pc = private_take_back_state();
        if (pc == this) {
            pc = nullptr;
            return;
        }
        release();
    }

    /// The task that completes this state while it may still sit unstarted in a worker's queue
    /// (a spawned callable or coroutine root: runtime.hpp), else null. An awaiter on a worker
    /// hands it to executor::run_if_newest() to run it at once instead of suspending.
    virtual task_node* pending_task() noexcept { return nullptr; }

protected:
    ~state_base() = default;
    virtual void destroy() noexcept = 0;

    // Exactly once, after the result is stored. The caller holds a reference until this returns.
    void complete() noexcept {
        if (private_take_back_state() == this) {  // see take_back()
            waiters_.private_complete();
            return;
        }
        waiters_.complete([](wait_link* n) noexcept { static_cast<wait_node*>(n)->notify(); });
    }

private:
    // What a worker's wait() hands to help_until: a `waiter` node in the wait() frame that
    // forwards the notification to whatever help_until armed it with (the worker's parker, a
    // tbb resumer). It registers once and stays registered until the state completes (a
    // re-arm after a wake-up for other work finds it registered); leaving before the completer
    // has released it would free a node the completer may still read, so the destructor waits
    // for that (at once, in nearly every case: help_until returns only once ready()).
    struct worker_wait final : waitable, wait_node {
        explicit worker_wait(state_base& s) noexcept
            : wait_node(&worker_wait::on_notify), st(s) {}
        ~worker_wait() {
            if (registered) st.waiters_.wait_released();
        }
        bool ready() const noexcept override { return st.ready(); }
        bool arm(continuation* c) noexcept override {
            if (registered) return !st.ready();  // still registered: the completion will come
            target = c;
            registered = st.waiters_.push(this, wait_kind::waiter);
            if (registered) note_wait_registered(&st);
            return registered;
        }
        void disarm(continuation*) noexcept override {}  // see above: stays until completion
        static void on_notify(continuation* c) noexcept {
            static_cast<worker_wait*>(c)->target->notify();
        }
        state_base& st;
        continuation* target = nullptr;  // set before the push; read by the completer
        bool registered = false;
    };

    // What a timed wait on a worker hands to help_until_deadline: a `waiter` node on the heap,
    // shared with the completer (detail/timed_waiter.hpp), so that the worker can return at
    // its deadline while the node is still registered; whichever of the two lets go last frees
    // it. disarm() is synchronous (it waits out a notification under way), as the default
    // help_until_deadline needs for its continuation in its frame.
    struct timed_wait_node final : wait_node, task_allocated {
        timed_wait_node() noexcept : wait_node(&timed_wait_node::on_notify) {}
        shared_waiter<std_atomics, continuation> shared;
        static void destroy(timed_wait_node* n) noexcept { delete n; }
        static void on_notify(continuation* c) noexcept {
            auto* self = static_cast<timed_wait_node*>(c);
            if (self->shared.notify_and_drop()) destroy(self);
        }
    };
    struct timed_worker_wait final : waitable {
        explicit timed_worker_wait(state_base& s) : st(s), reg(s.waiters_, new timed_wait_node) {}
        bool ready() const noexcept override { return st.ready(); }
        bool arm(continuation* c) noexcept override {
            const bool first = !reg.registered();
            const bool armed = reg.arm(c);
            if (armed && first) note_wait_registered(&st);
            return armed;
        }
        void disarm(continuation*) noexcept override { reg.disarm(); }
        state_base& st;
        basic_timed_registration<std_atomics, timed_wait_node, continuation> reg;
    };

    void lock_hook() noexcept {
        while (hook_lock_.exchange(true, std::memory_order_acquire)) {
            while (hook_lock_.load(std::memory_order_relaxed)) {
            }
        }
    }
    void unlock_hook() noexcept { hook_lock_.store(false, std::memory_order_release); }

    waiter_list<std_atomics> waiters_;  // see the file comment
    basic_refcount<std_atomics> refs_;         // futures, producers, continuations
    std::atomic<bool> cancel_{false};          // set by future::cancel(), read by the task
    std::atomic<bool> hook_lock_{false};       // guards hook_ and its list
    cancel_hook* hook_ = nullptr;              // the pending operations to abort (a list)
    executor* ex_;  // where continuations run; null: inline on the completing thread
};

template <class T>
class shared_state : public state_base {
public:
    using state_base::state_base;

    template <class... A>
    void set_value(A&&... a) {
        ::new (static_cast<void*>(&storage_)) stored_t<T>(std::forward<A>(a)...);
        kind_ = kind::value;
        complete();
    }
    void set_exception(std::exception_ptr e) noexcept {
        error_ = std::move(e);
        kind_ = kind::error;
        complete();
    }
    // Runs f and stores what it returns or throws.
    template <class F, class... A>
    void set_from(F&& f, A&&... a) noexcept {
        if (!try_set_from(std::forward<F>(f), std::forward<A>(a)...)) [[unlikely]]
            complete_error();
    }

    bool has_error() const noexcept { return kind_ == kind::error; }
    std::exception_ptr error() const noexcept { return error_; }
    // After ready(), by the future's sole consumer (then(), when_all): moves the exception out,
    // so that it lives only as long as the consumer passes it on, not until the producer lets
    // go of this state (see take()).
    std::exception_ptr take_error() noexcept { return std::exchange(error_, nullptr); }

    // After ready(). Moves the value out, or rethrows. With last (nobody takes again: get(),
    // co_await of an rvalue future) the exception_ptr is moved out too: the exception then
    // lives only as long as the taker's copy, on the taker's thread, not until the last holder
    // of this state lets go (possibly another thread, after the taker has read the exception:
    // correct, since exception_ptr counts atomically, but that count is inside uninstrumented
    // libstdc++, and ThreadSanitizer reports the free as a race with the taker's reads).
    T take(bool last = true) {
        if (kind_ == kind::error) std::rethrow_exception(last ? std::exchange(error_, nullptr) : error_);
        if constexpr (!std::is_void_v<T>) return std::move(*value_ptr());
    }

protected:
    ~shared_state() {
        if (kind_ == kind::value) value_ptr()->~stored_t<T>();
    }

private:
    // Runs f; what it returns is stored and completes the state (true). What it throws is kept
    // in error_ without completing (false): the caller completes once the handler has ended, so
    // the handler's own reference to the exception is dropped before a taker can see it (else
    // the last drop, and the free, could fall on this thread after the taker's reads; correct,
    // the count being atomic, but ThreadSanitizer does not see that count inside libstdc++ and
    // reports a race). No exception_ptr lives on the value path: it costs nothing there.
    template <class F, class... A>
    bool try_set_from(F&& f, A&&... a) noexcept {
        try {
            if constexpr (std::is_void_v<T>) {
                std::forward<F>(f)(std::forward<A>(a)...);
                set_value();
            } else {
                set_value(std::forward<F>(f)(std::forward<A>(a)...));
            }
            return true;
        } catch (...) {
            error_ = std::current_exception();
            return false;
        }
    }
    [[gnu::noinline]] void complete_error() noexcept {
        kind_ = kind::error;
        complete();
    }

    enum class kind : unsigned char { none, value, error };
    stored_t<T>* value_ptr() noexcept { return std::launder(reinterpret_cast<stored_t<T>*>(&storage_)); }

    alignas(stored_t<T>) unsigned char storage_[sizeof(stored_t<T>)];
    std::exception_ptr error_;
    kind kind_ = kind::none;
};

template <class T>
struct plain_state final : shared_state<T>, task_allocated {
    explicit plain_state(executor* ex) : shared_state<T>(ex, 2) {}
    void destroy() noexcept override { delete this; }
};

template <class T>
future<T> make_future(shared_state<T>* s) noexcept;

// Resuming coroutines on constant stack. Symmetric transfer (await_suspend returning the next
// handle) uses constant stack only if the compiler makes the resume of that handle a tail call.
// Clang guarantees that; GCC 12 does it at -O2 and above, but not at -O0/-O1 nor under
// AddressSanitizer or ThreadSanitizer (their instrumentation runs after the call), and there a
// chain of a million nested co_awaits overflowed the stack (tests/test_coroutine.cpp). With
// TASKPORT_RESUME_TRAMPOLINE (on by default in those GCC builds; define it 1 to force it, e.g. at
// -O1 without sanitizers, which no macro reveals) every resume taskport performs is a loop: a
// transfer made by the coroutine the loop is running returns noop_coroutine() and leaves its
// target in the loop's `next`, which the loop resumes as soon as the current resume returns.
// A transfer from a coroutine the loop is not running (one resumed directly by other code) is
// left to the compiler, exactly as without the trampoline, so mixing the two is safe.
#ifndef TASKPORT_RESUME_TRAMPOLINE
#if !defined(__clang__) && defined(__GNUC__) && \
    (!defined(__OPTIMIZE__) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__))
#define TASKPORT_RESUME_TRAMPOLINE 1
#else
#define TASKPORT_RESUME_TRAMPOLINE 0
#endif
#endif

// One per thread. Only the thread itself touches it.
struct resume_loop {
    void* running = nullptr;  // what the innermost loop resumed, until it transfers elsewhere
    void* next = nullptr;     // where it transferred to: the loop resumes that next
};
resume_loop& this_thread_resume_loop() noexcept;  // runtime.cpp

// Resumes h, a suspended coroutine, and (with the trampoline) every coroutine it transfers to.
inline void resume_coroutine(std::coroutine_handle<> h) noexcept {
#if TASKPORT_RESUME_TRAMPOLINE
    resume_loop& l = this_thread_resume_loop();
    void* const outer_running = l.running;  // an enclosing loop's, restored below
    void* const outer_next = l.next;
    l.next = nullptr;
    for (;;) {
        l.running = h.address();
        h.resume();  // h may be gone once this returns: only `next` is read after it
        void* const n = l.next;
        if (!n) break;
        l.next = nullptr;
        h = std::coroutine_handle<>::from_address(n);
    }
    l.running = outer_running;
    l.next = outer_next;
#else
    h.resume();
#endif
}

// From the await_suspend of coroutine `from`: continue with `to` (symmetric transfer).
inline std::coroutine_handle<> transfer_to(std::coroutine_handle<> from,
                                           std::coroutine_handle<> to) noexcept {
#if TASKPORT_RESUME_TRAMPOLINE
    resume_loop& l = this_thread_resume_loop();
    if (l.running == from.address()) {
        l.running = nullptr;  // `from` is suspending: nothing else may claim `next` now
        l.next = to.address();
        return std::noop_coroutine();
    }
#else
    (void)from;
#endif
    return to;
}

template <class F, class T>
struct then_result {
    using type = void;
};

// Direct hand-off. While a spawned coroutine's root task completes its future at the coroutine's
// end (final_suspend), a coroutine awaiting that future on the same executor is not scheduled:
// its handle is left here and the finishing frame resumes it by symmetric transfer, on this
// thread, at once — what the LIFO slot would do a few steps later, without the queue round trip.
// Only at a coroutine's end, so a chain of hand-offs is bounded by the nesting of spawned tasks
// and ends at the next suspension, where the worker loop (and its fairness rules) takes over.
// The transfer is a tail call when the compiler optimises sibling calls (-O2); below that each
// one nests a frame, so hand-offs stop once the stack is handoff_stack_budget deeper than the
// shallowest point this thread completed a root at, and the queue (which unwinds) takes over.
struct handoff_slot {
    executor* ex = nullptr;          // set while a root completes on a worker of ex
    std::coroutine_handle<> next;    // the awaiter handed over, if any
    std::uintptr_t stack_top = 0;    // shallowest frame address seen here (stacks grow down)
};
inline constexpr std::uintptr_t handoff_stack_budget = 128 * 1024;
handoff_slot& this_thread_handoff() noexcept;  // thread-local, runtime.cpp

// Resumes a coroutine waiting on a state, as a task on the state's executor.
template <class T>
struct future_awaiter : wait_node, task_node {
    explicit future_awaiter(shared_state<T>* st) noexcept
        : wait_node(&future_awaiter::on_notify),
          task_node(&future_awaiter::on_run),
          s(st) {}
    future_awaiter(future_awaiter&& o) noexcept
        : wait_node(&future_awaiter::on_notify),
          task_node(std::move(o)),
          s(o.s),
          last(o.last) {}

    bool await_ready() const noexcept { return s->ready(); }
    // A coroutine of the spawned task that produces this very future, awaiting it, would wait
    // for itself for ever: it does not suspend, and await_resume throws
    // (resource_deadlock_would_occur). (Not thrown here: a noexcept await_suspend keeps the
    // common path free of an exception edge.)
    template <class P>
    bool await_suspend(std::coroutine_handle<P> caller) noexcept {
        if constexpr (requires { caller.promise().cancel_scope; }) {
            if (caller.promise().cancel_scope == s) [[unlikely]] {
                self_wait = true;
                return false;
            }
        }
        ex = current_executor();
        if (ex) {
            // Take-back: the awaited task still unstarted on top of this worker's own queue (a
            // child spawned just before) runs here and now, as a plain call, not after a
            // suspension, a registration and a wake-up. Mostly it finishes: no suspension.
            if (task_node* t = s->pending_task(); t && s->take_back(ex, t, last)) return false;
        } else {
            ex = s->exec();
        }
        h = caller;
        return s->arm(this);
    }
    T await_resume() {
        if (self_wait) [[unlikely]]
            throw_self_wait();
        return s->take(last);
    }

    static void on_notify(continuation* c) noexcept {
        auto* self = static_cast<future_awaiter*>(c);
        if (self->ex) {
            handoff_slot& d = this_thread_handoff();
            if (d.ex == self->ex && !d.next) {
                d.next = self->h;
                return;
            }
            self->ex->schedule_next(self);
        } else {
            resume_coroutine(self->h);
        }
    }
    static void on_run(task_node* t) noexcept {
        resume_coroutine(static_cast<future_awaiter*>(t)->h);
    }

    shared_state<T>* s;
    bool last = false;       // no one takes the result after this awaiter (an owning awaiter)
    bool self_wait = false;  // await_suspend found the awaiter waiting for its own future
    std::coroutine_handle<> h;
    executor* ex = nullptr;
};

template <class T, class F>
class then_node;

}  // namespace detail

// The result of an asynchronous computation. Move-only, like std::future; get() consumes it.
// Dropping a future detaches its task (the task still runs; its result is discarded).
template <class T>
class future {
public:
    /// The type get() returns.
    using value_type = T;

    future() noexcept = default;
    /// Takes over o's state; o becomes invalid.
    future(future&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    /// Drops this future's state (detaching its task), then takes over o's.
    future& operator=(future&& o) noexcept {
        if (this != &o) {
            reset();
            s_ = std::exchange(o.s_, nullptr);
        }
        return *this;
    }
    future(const future&) = delete;
    future& operator=(const future&) = delete;
    ~future() { reset(); }

    /// True while the future refers to a state (not default-constructed, moved from or taken by
    /// get()).
    bool valid() const noexcept { return s_ != nullptr; }
    /// True once the result is there (get() would not wait). Throws std::future_error(no_state) on
    /// an invalid future. Any thread.
    bool is_ready() const { return state().ready(); }

    // Blocks an outside thread; on a worker, runs other tasks until ready (no deadlock when
    // tasks wait for tasks). Const: any number of threads (outside threads and tasks mixed, and
    // alongside a then() or co_await already registered) may wait on one future at once, and
    // all wake. A task waiting for its own future (it would wait for ever) gets
    // std::system_error(resource_deadlock_would_occur) instead.
    // Like any non-const member of a standard type, get(), then(), co_await of an rvalue,
    // assignment and destruction must not overlap another thread's call on the same future
    // object (they may free the state under it): wait from many threads, then get() once they
    // have returned. A second get() throws (see get()).
    void wait() const { state().wait(); }

    /// As wait(), for at most `rel` (std::future::wait_for): std::future_status::ready once the
    /// result is there, std::future_status::timeout when `rel` passed first (never deferred). The
    /// future stays valid either way; wait, wait_for and wait_until may be called again. Measured
    /// on std::chrono::steady_clock. Const: any number of threads at once, workers and outside
    /// threads mixed, as wait(). A zero or negative `rel` only looks. On a worker it runs other
    /// tasks meanwhile (the tbb_arena scheduler blocks the thread instead) and may return later
    /// than the deadline by the length of the task it was running then. Throws
    /// std::future_error(no_state) on an invalid future; a task waiting for its own future gets
    /// wait()'s std::system_error(resource_deadlock_would_occur), not a timeout (it could only
    /// ever time out: a bug to report, as wait() does); std::bad_alloc when a worker cannot
    /// allocate its wait node.
    template <class Rep, class Period>
    std::future_status wait_for(const std::chrono::duration<Rep, Period>& rel) const {
        auto& s = state();
        return s.wait_until(detail::saturating_deadline(rel)) ? std::future_status::ready
                                                         : std::future_status::timeout;
    }

    /// As wait_for(), until `abs` on any clock (std::future::wait_until): ready, or timeout once
    /// Clock::now() >= abs. A clock other than steady_clock is re-read after each timed round,
    /// so a clock that is set forward or back moves the deadline with it. Throws as wait_for().
    template <class Clock, class Duration>
    std::future_status wait_until(const std::chrono::time_point<Clock, Duration>& abs) const {
        auto& s = state();
        for (;;) {
            // abs - now only when abs is ahead (time_point::min() - now would overflow).
            const auto now = Clock::now();
            const auto deadline = abs <= now ? std::chrono::steady_clock::time_point::min()
                                             : detail::saturating_deadline(abs - now);
            if (s.wait_until(deadline)) return std::future_status::ready;
            if (std::is_same_v<Clock, std::chrono::steady_clock> || Clock::now() >= abs)
                return std::future_status::timeout;
        }
    }

    // Waits, then returns the value or rethrows the task's exception. Leaves the future invalid.
    // The value is taken once: a get() on a future already taken (or moved from, or default
    // constructed) throws std::future_error(no_state). get() is not const: two threads calling
    // it on one future object at once race, as with std::future (share the value instead). A
    // task calling get() on its own future gets wait()'s error, and the future stays valid.
    T get() {
        auto& s = state();
        s.wait(true);
        detail::shared_state<T>* st = std::exchange(s_, nullptr);
        struct releaser {
            detail::shared_state<T>* p;
            ~releaser() { p->release(); }
        } r{st};
        return st->take();
    }

    // Asks the task to stop: a task that has not started completes with cancelled_error()
    // instead of running; a running coroutine sees it at its next co_await; pending I/O
    // completes with operation_aborted. A finished task is unaffected.
    void cancel() noexcept {
        if (s_) s_->request_cancel();
    }

    // Runs h when this future is ready, as a task; returns h's result as a future. h takes
    // either this future's value (an exception skips h and propagates) or the ready future
    // itself (h sees the exception). Leaves this future invalid.
    template <class H>
    auto then(H&& h);

    // co_await f / co_await std::move(f): the value, or the task's exception.
    auto operator co_await() && noexcept { return owning_awaiter{std::move(*this)}; }
    /// co_await f on an lvalue: the value is moved out as with get(); the future stays valid until
    /// it is destroyed.
    auto operator co_await() & noexcept { return detail::future_awaiter<T>(&state()); }

    detail::shared_state<T>* state_ptr() const noexcept { return s_; }  // detail

private:
    template <class U>
    friend future<U> detail::make_future(detail::shared_state<U>*) noexcept;
    template <class U>
    friend class future;

    struct owning_awaiter : detail::future_awaiter<T> {
        explicit owning_awaiter(future&& f) noexcept
            : detail::future_awaiter<T>(&f.state()), keep(std::move(f)) {
            this->last = true;
        }
        future keep;
    };

    detail::shared_state<T>& state() const {
        if (!s_) throw std::future_error(std::future_errc::no_state);
        return *s_;
    }
    void reset() noexcept {
        if (s_) std::exchange(s_, nullptr)->release();
    }

    explicit future(detail::shared_state<T>* s) noexcept : s_(s) {}
    detail::shared_state<T>* s_ = nullptr;
};

namespace detail {
template <class T>
future<T> make_future(shared_state<T>* s) noexcept {
    return future<T>(s);
}
}  // namespace detail

// A value set by hand. Continuations of its future run on the runtime whose worker created the
// promise (or on the one passed in); with neither, inline on the thread that sets it.
// Destroying a promise that was never set stores std::future_error(broken_promise).
template <class T>
class promise {
public:
    promise() : s_(new detail::plain_state<T>(current_executor())) {}
    /// A promise whose future's continuations run on ex (null: inline on the setting thread).
    explicit promise(detail::executor* ex) : s_(new detail::plain_state<T>(ex)) {}
    /// Takes over o's state; o refers to none (and breaks no promise when destroyed).
    promise(promise&& o) noexcept
        : s_(std::exchange(o.s_, nullptr)), retrieved_(o.retrieved_), set_(o.set_) {}
    /// Abandons this promise (broken_promise if it was never set), then takes over o's state.
    promise& operator=(promise&& o) noexcept {
        if (this != &o) {
            abandon();
            s_ = std::exchange(o.s_, nullptr);
            retrieved_ = o.retrieved_;
            set_ = o.set_;
        }
        return *this;
    }
    ~promise() { abandon(); }

    /// The future of this promise, once. Throws std::future_error: future_already_retrieved on a
    /// second call, no_state on a moved-from promise.
    future<T> get_future() {
        if (!s_) throw std::future_error(std::future_errc::no_state);
        if (retrieved_) throw std::future_error(std::future_errc::future_already_retrieved);
        retrieved_ = true;
        return detail::make_future(static_cast<detail::shared_state<T>*>(s_));
    }

    /// Stores the value (constructed from a...) and wakes every waiter. Throws std::future_error:
    /// promise_already_satisfied on a second set, no_state on a moved-from promise. One thread at a
    /// time, as std::promise.
    template <class... A>
    void set_value(A&&... a) {
        check_settable();
        set_ = true;
        s_->set_value(std::forward<A>(a)...);
    }
    /// Stores the exception and wakes every waiter. Throws as set_value().
    void set_exception(std::exception_ptr e) {
        check_settable();
        set_ = true;
        s_->set_exception(std::move(e));
    }
    /// True once cancel() was called on the future: the producer may stop and set cancelled_error().
    /// Any thread.
    bool cancel_requested() const noexcept { return s_ && s_->cancel_requested(); }

private:
    static detail::executor* current_executor() noexcept { return detail::current_executor(); }
    void check_settable() const {
        if (!s_) throw std::future_error(std::future_errc::no_state);
        if (set_) throw std::future_error(std::future_errc::promise_already_satisfied);
    }
    void abandon() noexcept {
        if (!s_) return;
        if (!set_)
            s_->set_exception(
                std::make_exception_ptr(std::future_error(std::future_errc::broken_promise)));
        if (!retrieved_) s_->release();  // the reference get_future() would have handed out
        s_->release();
        s_ = nullptr;
    }

    detail::plain_state<T>* s_;
    bool retrieved_ = false;
    bool set_ = false;
};

// A ready future.
template <class T, class... A>
future<T> make_ready_future(A&&... a) {
    auto* s = new detail::plain_state<T>(nullptr);
    s->set_value(std::forward<A>(a)...);
    s->release();
    return detail::make_future<T>(s);
}
/// A ready future holding the exception e.
template <class T>
future<T> make_exceptional_future(std::exception_ptr e) {
    auto* s = new detail::plain_state<T>(nullptr);
    s->set_exception(std::move(e));
    s->release();
    return detail::make_future<T>(s);
}

namespace detail {

template <class T, class H>
constexpr bool takes_future = std::is_invocable_v<H, future<T>&&>;

template <class T, class H>
struct then_ret {
    static auto f() {
        if constexpr (takes_future<T, H>)
            return std::type_identity<std::invoke_result_t<H, future<T>&&>>{};
        else if constexpr (std::is_void_v<T>)
            return std::type_identity<std::invoke_result_t<H>>{};
        else
            return std::type_identity<std::invoke_result_t<H, T&&>>{};
    }
    using type = typename decltype(f())::type;
};

// The continuation of then(): notified by the source, runs as a task, fills its own state.
template <class T, class H>
class then_node final : public shared_state<typename then_ret<T, H>::type>,
                        public wait_node,
                        public task_node,
                        public task_allocated {
    using U = typename then_ret<T, H>::type;

public:
    then_node(shared_state<T>* src, H&& h, executor* ex)
        : shared_state<U>(ex, 2),
          wait_node(&then_node::on_notify),
          task_node(&then_node::on_run),
          src_(src),
          h_(std::move(h)) {}

    void destroy() noexcept override { delete this; }

private:
    static void on_notify(continuation* c) noexcept {
        auto* self = static_cast<then_node*>(c);
        if (executor* ex = self->exec())
            ex->schedule_next(self);
        else
            on_run(self);
    }
    static void on_run(task_node* t) noexcept {
        auto* self = static_cast<then_node*>(t);
        future<T> src = make_future(self->src_);  // adopts the source reference
        if (self->cancel_requested()) {
            self->set_exception(std::make_exception_ptr(cancelled_error()));
        } else if constexpr (takes_future<T, H>) {
            self->set_from(std::move(self->h_), std::move(src));
        } else if (src.state_ptr()->has_error()) {
            // The error is moved out and the source let go before it is published: neither this
            // thread nor the source's producer may drop the last reference to the exception
            // after a taker has read it (see take()).
            std::exception_ptr e = src.state_ptr()->take_error();
            src = future<T>();
            self->set_exception(std::move(e));
        } else if constexpr (std::is_void_v<T>) {
            self->set_from(std::move(self->h_));
        } else {
            self->set_from(std::move(self->h_), src.get());
        }
        self->release();
    }

    shared_state<T>* src_;
    H h_;
};

}  // namespace detail

template <class T>
template <class H>
auto future<T>::then(H&& h) {
    using U = typename detail::then_ret<T, std::decay_t<H>>::type;
    auto& src = state();
    detail::executor* ex = src.exec() ? src.exec() : detail::current_executor();
    auto* node = new detail::then_node<T, std::decay_t<H>>(s_, std::decay_t<H>(std::forward<H>(h)), ex);
    s_ = nullptr;  // the node adopts our reference
    future<U> out = detail::make_future<U>(node);
    if (!src.arm(node)) node->notify();  // already ready
    return out;
}

}  // namespace taskport
