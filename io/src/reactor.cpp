// reactor.cpp — see reactor.hpp.
#include "reactor.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>

namespace taskport::io::detail {

reactor::reactor(completion_queue& cq, std::unique_ptr<poller> p) : cq_(cq), poller_(std::move(p)) {
    thread_ = std::thread([this] { run(); });
}

reactor::~reactor() {
    shutdown();
    for (descriptor_state* st : retired_) delete st;
    // States still attached belong to sockets that outlive the runtime; they were aborted by
    // shutdown() and are freed here (a later close() on such a socket only closes its fd).
    while (live_) {
        descriptor_state* st = live_;
        live_ = st->live_next;
        delete st;
    }
}

descriptor_state* reactor::attach(int fd) {
    auto st = std::make_unique<descriptor_state>();
    st->fd = fd;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stopped_.load(std::memory_order_acquire))
            throw std::system_error(operation_aborted(), "taskport: runtime is shut down");
        st->live_next = live_;
        if (live_) live_->live_prev = st.get();
        live_ = st.get();
    }
    try {
        poller_->add(fd, st.get());
    } catch (...) {
        std::lock_guard<std::mutex> g(mu_);
        if (st->live_prev)
            st->live_prev->live_next = st->live_next;
        else
            live_ = st->live_next;
        if (st->live_next) st->live_next->live_prev = st->live_prev;
        throw;
    }
    return st.release();
}

void reactor::abort_queues(descriptor_state* st, op_batch& b) noexcept {
    for (int d = 0; d < 2; ++d) {
        while (operation* op = st->q[d].pop()) {
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            b.push(op);
        }
        st->queued[d].store(0, std::memory_order_relaxed);
    }
}

void reactor::cancel_all(descriptor_state* st) noexcept {
    op_batch b;
    {
        std::lock_guard<std::mutex> g(st->mu);
        abort_queues(st, b);
    }
    cq_.push(b);
}

void reactor::detach(descriptor_state* st) noexcept {
    op_batch b;
    {
        std::lock_guard<std::mutex> g(st->mu);
        st->closed = true;
        abort_queues(st, b);
    }
    cq_.push(b);
    std::lock_guard<std::mutex> g(mu_);
    if (stopped_.load(std::memory_order_acquire) && !thread_.joinable()) {
        // The thread is gone: nobody can hold an event naming st.
        poller_->remove(st->fd);
        if (st->live_prev)
            st->live_prev->live_next = st->live_next;
        else
            live_ = st->live_next;
        if (st->live_next) st->live_next->live_prev = st->live_prev;
        delete st;
        return;
    }
    poller_->remove(st->fd);
    if (st->live_prev)
        st->live_prev->live_next = st->live_next;
    else
        live_ = st->live_next;
    if (st->live_next) st->live_next->live_prev = st->live_prev;
    retired_.push_back(st);
    if (retired_.size() >= 64) poller_->wake();
}

bool reactor::start(descriptor_state* st, operation* op, int dir, const std::uint32_t* seen) noexcept {
    op->kind = place_kind::descriptor;
    op->dir = static_cast<unsigned char>(dir);
    std::lock_guard<std::mutex> g(st->mu);
    if (st->closed || stopped_.load(std::memory_order_acquire)) {
        op->ec = operation_aborted();
        return false;
    }
    if (op->cancelled.load(std::memory_order_seq_cst)) {
        op->ec = operation_aborted();
        return false;
    }
    // Speculative, under the lock — unless the caller's own attempt just failed and no event
    // has been handled since: an edge that arrived after that attempt is handled after this
    // lock is released (it then finds the op queued), or was handled before (ready_seq moved).
    if (st->q[dir].empty() && !(seen && st->ready_seq[dir].load(std::memory_order_relaxed) == *seen) &&
        op->perform(op))
        return false;
    st->q[dir].push(op);
    st->queued[dir].fetch_add(1, std::memory_order_relaxed);
    op->place.store(st, std::memory_order_seq_cst);
    if (op->cancelled.load(std::memory_order_seq_cst)) {  // Dekker pair with cancel()
        st->q[dir].remove(op);
        st->queued[dir].fetch_sub(1, std::memory_order_relaxed);
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
        return false;
    }
    return true;
}

void reactor::cancel(operation* op, descriptor_state* st) noexcept {
    {
        std::lock_guard<std::mutex> g(st->mu);
        if (op->place.load(std::memory_order_seq_cst) != st) return;  // finished meanwhile
        st->q[op->dir].remove(op);
        st->queued[op->dir].fetch_sub(1, std::memory_order_relaxed);
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
    }
    cq_.push(op);
}

// ---- timers: a binary min-heap of operations on deadline, under timer_mu_ ----

void reactor::heap_up(std::size_t i) noexcept {
    while (i > 0) {
        std::size_t p = (i - 1) / 2;
        if (!(heap_[i]->deadline < heap_[p]->deadline)) break;
        std::swap(heap_[i], heap_[p]);
        heap_[i]->heap_index = i;
        heap_[p]->heap_index = p;
        i = p;
    }
}

void reactor::heap_down(std::size_t i) noexcept {
    const std::size_t n = heap_.size();
    for (;;) {
        std::size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && heap_[l]->deadline < heap_[m]->deadline) m = l;
        if (r < n && heap_[r]->deadline < heap_[m]->deadline) m = r;
        if (m == i) break;
        std::swap(heap_[i], heap_[m]);
        heap_[i]->heap_index = i;
        heap_[m]->heap_index = m;
        i = m;
    }
}

void reactor::heap_remove(std::size_t i) noexcept {
    std::swap(heap_[i], heap_.back());
    heap_[i]->heap_index = i;
    heap_.pop_back();
    if (i < heap_.size()) {
        heap_down(i);
        heap_up(i);
    }
}

void reactor::add_timer(operation* op, std::chrono::steady_clock::time_point when) noexcept {
    op->kind = place_kind::timer;
    op->deadline = when;
    bool earliest;
    {
        std::lock_guard<std::mutex> g(timer_mu_);
        if (stopped_.load(std::memory_order_acquire) ||
            op->cancelled.load(std::memory_order_seq_cst)) {
            op->ec = operation_aborted();
            cq_.push(op);
            return;
        }
        try {
            heap_.push_back(op);
        } catch (...) {  // out of memory: fail this timer rather than lose it
            op->ec = std::make_error_code(std::errc::not_enough_memory);
            cq_.push(op);
            return;
        }
        op->heap_index = heap_.size() - 1;
        heap_up(op->heap_index);
        earliest = heap_.front() == op;
        op->place.store(this, std::memory_order_seq_cst);
        if (op->cancelled.load(std::memory_order_seq_cst)) {
            heap_remove(op->heap_index);
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            cq_.push(op);
            return;
        }
    }
    if (earliest) poller_->wake();
}

void reactor::cancel_timer(operation* op) noexcept {
    {
        std::lock_guard<std::mutex> g(timer_mu_);
        if (op->place.load(std::memory_order_seq_cst) != this) return;
        heap_remove(op->heap_index);
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
    }
    cq_.push(op);
}

int reactor::next_timeout_ms() {
    std::lock_guard<std::mutex> g(timer_mu_);
    if (heap_.empty()) return -1;
    auto now = std::chrono::steady_clock::now();
    auto d = heap_.front()->deadline;
    if (d <= now) return 0;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(d - now).count();
    return ms > 60'000 ? 60'000 : static_cast<int>(ms);
}

void reactor::expire_timers(op_batch& b) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> g(timer_mu_);
    while (!heap_.empty() && heap_.front()->deadline <= now) {
        operation* op = heap_.front();
        heap_remove(0);
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec.clear();
        b.push(op);
    }
}

// ---- the readiness thread ----

void reactor::run() {
    poll_event evs[256];
    std::vector<descriptor_state*> to_free;
    while (!stopped_.load(std::memory_order_acquire)) {
        {
            std::lock_guard<std::mutex> g(mu_);
            to_free.swap(retired_);
        }
        for (descriptor_state* st : to_free) delete st;
        to_free.clear();

        int n;
        try {
            n = poller_->wait(evs, 256, next_timeout_ms());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "taskport: %s poller failed: %s\n", poller_->name(), e.what());
            std::terminate();
        }
        op_batch b;
        for (int i = 0; i < n; ++i) {
            auto* st = static_cast<descriptor_state*>(evs[i].tag);
            std::lock_guard<std::mutex> g(st->mu);
            if (st->closed) continue;
            for (int d = 0; d < 2; ++d) {
                if (!(d == 0 ? evs[i].readable : evs[i].writable)) continue;
                st->ready_seq[d].store(st->ready_seq[d].load(std::memory_order_relaxed) + 1,
                                       std::memory_order_relaxed);  // writers hold st->mu
                while (operation* op = st->q[d].head) {
                    if (!op->perform(op)) break;
                    st->q[d].pop();
                    st->queued[d].fetch_sub(1, std::memory_order_relaxed);
                    op->place.store(nullptr, std::memory_order_seq_cst);
                    b.push(op);
                }
            }
        }
        expire_timers(b);
        cq_.push(b);
    }
}

void reactor::shutdown() noexcept {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stopped_.exchange(true, std::memory_order_acq_rel)) {
            // second call: fall through to join if needed
        }
    }
    poller_->wake();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    op_batch b;
    {
        std::lock_guard<std::mutex> g(mu_);
        for (descriptor_state* st = live_; st; st = st->live_next) {
            std::lock_guard<std::mutex> g2(st->mu);
            abort_queues(st, b);
        }
    }
    {
        std::lock_guard<std::mutex> g(timer_mu_);
        for (operation* op : heap_) {
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            b.push(op);
        }
        heap_.clear();
    }
    cq_.push(b);
}

}  // namespace taskport::io::detail
