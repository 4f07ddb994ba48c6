// blocking_pool.cpp — see blocking_pool.hpp.
#include "blocking_pool.hpp"

namespace taskport::io::detail {

blocking_pool::blocking_pool(completion_queue& cq, std::size_t max_threads)
    : cq_(cq), max_threads_(max_threads ? max_threads : 1) {}

blocking_pool::~blocking_pool() { shutdown(); }

void blocking_pool::submit(operation* op) noexcept {
    op->kind = place_kind::pool;
    {
        std::unique_lock<std::mutex> g(mu_);
        if (!stopped_ && !op->cancelled.load(std::memory_order_seq_cst)) {
            queue_.push(op);
            op->place.store(this, std::memory_order_seq_cst);
            if (op->cancelled.load(std::memory_order_seq_cst)) {  // Dekker pair with cancel()
                queue_.remove(op);
                op->place.store(nullptr, std::memory_order_seq_cst);
            } else {
                if (idle_ > 0) {
                    cv_.notify_one();
                } else if (threads_.size() < max_threads_) {
                    try {
                        threads_.emplace_back([this] { worker(); });
                    } catch (...) {
                        // No new thread: the queued op waits for a running one. With none
                        // at all, fail it rather than strand it.
                        if (threads_.empty()) {
                            queue_.remove(op);
                            op->place.store(nullptr, std::memory_order_seq_cst);
                            op->ec = std::make_error_code(std::errc::resource_unavailable_try_again);
                            g.unlock();
                            cq_.push(op);
                            return;
                        }
                    }
                }
                return;
            }
        }
    }
    op->ec = operation_aborted();
    cq_.push(op);
}

void blocking_pool::cancel(operation* op) noexcept {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (op->place.load(std::memory_order_seq_cst) != this) return;  // running or finished
        queue_.remove(op);
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
    }
    cq_.push(op);
}

void blocking_pool::worker() {
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
        while (queue_.empty() && !stopped_) {
            ++idle_;
            cv_.wait(g);
            --idle_;
        }
        if (queue_.empty()) return;  // stopped and drained
        operation* op = queue_.pop();
        op->place.store(nullptr, std::memory_order_seq_cst);  // running: no longer cancellable
        g.unlock();
        op->perform(op);
        cq_.push(op);
        g.lock();
    }
}

void blocking_pool::shutdown() noexcept {
    op_batch aborted;
    std::vector<std::thread> threads;
    {
        std::lock_guard<std::mutex> g(mu_);
        stopped_ = true;
        while (operation* op = queue_.pop()) {
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            aborted.push(op);
        }
        threads.swap(threads_);
    }
    cv_.notify_all();
    cq_.push(aborted);
    for (auto& t : threads)
        if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
}

}  // namespace taskport::io::detail
