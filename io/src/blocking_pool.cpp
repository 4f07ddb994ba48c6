// blocking_pool.cpp — see blocking_pool.hpp. Everything below is guarded by state::mu; the
// atomics it touches (op->place, op->cancelled) belong to operation.hpp's cancel protocol.
#include "blocking_pool.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <list>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace taskport::io::detail {

namespace {

// Written by tests only (set_blocking_call_hook), read by pool threads; relaxed: a test sets it
// before it starts the calls it wants held, and the submit's lock orders the two.
std::atomic<blocking_call_hook> test_hook{nullptr};

void run_hook(const char* call, bool finished) noexcept {
    if (auto h = test_hook.load(std::memory_order_relaxed)) h(call, finished);
}

}  // namespace

void set_blocking_call_hook(blocking_call_hook h) noexcept { test_hook.store(h, std::memory_order_relaxed); }
void run_blocking_call_hook(const char* call, bool finished) noexcept { run_hook(call, finished); }

struct blocking_pool::state {
    struct thread_rec {
        std::thread t;
    };

    state(completion_queue& q, std::size_t max, std::chrono::milliseconds timeout)
        : cq(&q), max_threads(max ? max : 1), shutdown_timeout(timeout) {}

    void worker(std::list<thread_rec>::iterator self);
    // Under mu: wakes an idle thread or starts one for the work just queued. False when no
    // thread exists and none could be started.
    bool wake_or_spawn(const std::shared_ptr<state>& me) noexcept;
    void leave(std::list<thread_rec>::iterator self) noexcept;
    std::vector<std::thread> take_exited() noexcept { return std::exchange(exited, {}); }
    static void join(std::vector<std::thread>& ts) noexcept {
        for (auto& t : ts)
            if (t.joinable()) {
                if (t.get_id() == std::this_thread::get_id())
                    t.detach();
                else
                    t.join();
            }
    }
    void link_running(blocking_call* c) noexcept {
        c->prev = nullptr;
        c->next = running;
        if (running) running->prev = c;
        running = c;
    }
    void unlink_running(blocking_call* c) noexcept {
        if (c->prev)
            c->prev->next = c->next;
        else
            running = c->next;
        if (c->next) c->next->prev = c->prev;
        c->prev = c->next = nullptr;
    }
    std::size_t waited() const noexcept { return performing + calls_waited + delivering; }

    completion_queue* cq;  // not touched by a thread after shutdown abandoned its work
    const std::size_t max_threads;
    const std::chrono::milliseconds shutdown_timeout;

    std::mutex mu;
    std::condition_variable work_cv;  // idle threads wait here for work
    std::condition_variable done_cv;  // shutdown waits here for running work and leaving threads
    std::chrono::milliseconds keep_alive = default_keep_alive;
    op_queue queue;                    // queued ops: place == this (perform) or their call
    std::size_t queued = 0;            // queue's length
    std::size_t idle = 0;              // threads waiting on work_cv
    std::size_t live = 0;              // threads started that have not left
    std::size_t busy = 0;              // threads holding a job (any kind)
    std::size_t performing = 0;        // perform(op) steps running
    std::size_t calls_waited = 0;      // detachable calls running whose op still waits
    std::size_t delivering = 0;        // finished jobs being pushed to cq outside the lock
    blocking_call* running = nullptr;  // every detachable call running (attached or not)
    bool stopped = false;
    bool abandoned = false;            // shutdown gave up on what still runs
    std::list<thread_rec> threads;     // live threads' handles
    std::vector<std::thread> exited;   // handles of threads that left, to join
};

blocking_pool::blocking_pool(completion_queue& cq, std::size_t max_threads,
                             std::chrono::milliseconds shutdown_timeout)
    : s_(std::make_shared<state>(cq, max_threads, shutdown_timeout)) {}

blocking_pool::~blocking_pool() { shutdown(); }

bool blocking_pool::state::wake_or_spawn(const std::shared_ptr<state>& me) noexcept {
    if (queued > idle && live < max_threads) {
        try {
            auto it = threads.emplace(threads.end());
            try {
                it->t = std::thread([me, it] { me->worker(it); });
                ++live;
            } catch (...) {
                threads.erase(it);
            }
        } catch (...) {
        }
    }
    if (idle > 0) work_cv.notify_one();
    return live > 0;
}

void blocking_pool::state::leave(std::list<thread_rec>::iterator self) noexcept {
    --live;
    exited.push_back(std::move(self->t));
    threads.erase(self);
    done_cv.notify_all();
}

void blocking_pool::submit(operation* op) noexcept { submit(op, nullptr); }

// call null: op->perform(op) runs on a pool thread, and op is parked in the pool itself
// (place == the state); else op is parked in its call. The one queueing path of both kinds.
void blocking_pool::submit(operation* op, blocking_call* call) noexcept {
    op->kind = place_kind::pool;
    state& s = *s_;
    std::vector<std::thread> done;
    std::error_code why = operation_aborted();
    {
        std::unique_lock<std::mutex> g(s.mu);
        done = s.take_exited();
        if (!s.stopped && !op->cancelled.load(std::memory_order_seq_cst)) {
            if (call) call->op = op;
            s.queue.push(op);
            ++s.queued;
            op->place.store(call ? static_cast<void*>(call) : s_.get(), std::memory_order_seq_cst);
            if (op->cancelled.load(std::memory_order_seq_cst)) {  // Dekker pair with cancel()
                s.queue.remove(op);
                --s.queued;
                op->place.store(nullptr, std::memory_order_seq_cst);
            } else if (s.wake_or_spawn(s_)) {
                g.unlock();
                state::join(done);
                return;
            } else {  // no thread at all: fail it rather than strand it
                s.queue.remove(op);
                --s.queued;
                op->place.store(nullptr, std::memory_order_seq_cst);
                why = std::make_error_code(std::errc::resource_unavailable_try_again);
            }
        }
    }
    state::join(done);
    delete call;
    op->ec = why;
    s.cq->push(op);
}

void blocking_pool::cancel(operation* op) noexcept {
    state& s = *s_;
    blocking_call* queued_call = nullptr;
    {
        std::lock_guard<std::mutex> g(s.mu);
        void* p = op->place.load(std::memory_order_seq_cst);
        if (!p) return;  // a perform step running (it finishes first), or finished
        if (p == s_.get()) {
            s.queue.remove(op);
            --s.queued;
        } else {
            auto* call = static_cast<blocking_call*>(p);
            call->op = nullptr;
            if (call->running) {  // the thread frees it, and the late result, when the call returns
                --s.calls_waited;
                if (s.stopped) s.done_cv.notify_all();
            } else {
                s.queue.remove(op);
                --s.queued;
                queued_call = call;
            }
        }
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
    }
    delete queued_call;
    s.cq->push(op);
}

void blocking_pool::state::worker(std::list<thread_rec>::iterator self) {
    std::unique_lock<std::mutex> g(mu);
    for (;;) {
        while (queue.empty() && !stopped) {
            ++idle;
            const auto r = work_cv.wait_for(g, keep_alive);
            --idle;
            if (r == std::cv_status::timeout && queue.empty() && !stopped) {
                leave(self);
                return;
            }
        }
        if (queue.empty()) {  // stopped and drained
            leave(self);
            return;
        }
        operation* op = queue.pop();
        --queued;
        ++busy;
        void* p = op->place.load(std::memory_order_seq_cst);
        if (p == this) {
            op->place.store(nullptr, std::memory_order_seq_cst);  // running: no longer cancellable
            ++performing;
            g.unlock();
            op->perform(op);
            g.lock();
            --performing;
            if (abandoned) {  // shutdown gave up on it: the service may be gone; touch nothing
                --busy;
                leave(self);
                return;
            }
            ++delivering;
            g.unlock();
            cq->push(op);
            g.lock();
            --delivering;
        } else {
            auto* call = static_cast<blocking_call*>(p);
            call->running = true;
            link_running(call);
            ++calls_waited;
            const char* name = call->name();
            g.unlock();
            run_hook(name, false);
            call->run();
            g.lock();
            unlink_running(call);
            if (call->op) {
                call->deliver(op);
                call->op = nullptr;
                op->place.store(nullptr, std::memory_order_seq_cst);
                --calls_waited;
                ++delivering;
                g.unlock();
                cq->push(op);
                delete call;
                run_hook(name, true);
                g.lock();
                --delivering;
            } else {  // op completed without it (cancelled or abandoned): free the late result
                g.unlock();
                delete call;
                run_hook(name, true);
                g.lock();
            }
        }
        --busy;
        if (stopped) done_cv.notify_all();
    }
}

void blocking_pool::shutdown() noexcept {
    state& s = *s_;
    op_batch aborted;
    std::vector<blocking_call*> dropped;
    std::unique_lock<std::mutex> g(s.mu);
    if (s.stopped) return;
    s.stopped = true;
    while (operation* op = s.queue.pop()) {
        void* p = op->place.load(std::memory_order_seq_cst);
        if (p != s_.get()) dropped.push_back(static_cast<blocking_call*>(p));
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
        aborted.push(op);
    }
    s.queued = 0;
    s.work_cv.notify_all();
    g.unlock();
    for (blocking_call* c : dropped) delete c;
    s.cq->push(aborted);
    g.lock();

    // Running work whose operation waits: at most shutdown_timeout (max(): no limit).
    auto finished = [&] { return s.waited() == 0; };
    bool all_done = true;
    if (s.shutdown_timeout == std::chrono::milliseconds::max())
        s.done_cv.wait(g, finished);
    else
        all_done = s.done_cv.wait_for(g, std::max(s.shutdown_timeout, std::chrono::milliseconds(0)), finished);
    if (!all_done) {
        s.abandoned = true;
        op_batch late;
        std::size_t calls = 0;
        for (blocking_call* c = s.running; c; c = c->next) {
            if (!c->op) continue;
            operation* op = c->op;
            c->op = nullptr;
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            late.push(op);
            ++calls;
        }
        s.calls_waited = 0;
        const std::size_t steps = s.performing;
        g.unlock();
        s.cq->push(late);
        const std::size_t n = calls + steps;
        std::fprintf(stderr,
                     "taskport: runtime shutdown abandoned %zu blocking call%s still running after "
                     "shutdown_timeout (%lld ms): %zu open/resolve call%s completed with "
                     "operation_aborted, %zu file read/write/sync step%s left to finish\n",
                     n, n == 1 ? "" : "s", static_cast<long long>(s.shutdown_timeout.count()), calls,
                     calls == 1 ? "" : "s", steps, steps == 1 ? "" : "s");
        std::fflush(stderr);
        g.lock();
        s.done_cv.wait(g, [&] { return s.delivering == 0; });  // a push under way: bounded
    }
    // Idle threads leave at once; a thread still in a call (abandoned or cancelled) is detached
    // and leaves when its call returns.
    s.done_cv.wait(g, [&] { return s.live == s.busy; });
    for (auto& rec : s.threads)
        if (rec.t.joinable()) rec.t.detach();
    std::vector<std::thread> done = s.take_exited();
    g.unlock();
    state::join(done);
}

std::size_t blocking_pool::threads() const noexcept {
    std::lock_guard<std::mutex> g(s_->mu);
    return s_->live;
}

void blocking_pool::set_keep_alive(std::chrono::milliseconds d) noexcept {
    std::lock_guard<std::mutex> g(s_->mu);
    s_->keep_alive = d;
    s_->work_cv.notify_all();
}

}  // namespace taskport::io::detail
