// uring_backend.cpp — the io_uring completion thread (Linux, liburing). See uring_backend.hpp.
//
// Submission: any thread, under mu_ (liburing's SQ side has one producer at a time). Each SQE
// carries its operation* as user_data; the tags below (never valid pointers) mark SQEs whose
// CQE completes no operation. in_flight_ counts every SQE submitted whose CQE has not been
// taken, so shutdown can wait for exactly those.
//
// Completion: one thread waits for CQEs, takes every one available as a batch, and under mu_
// (one lock per batch) sets each op's result and clears its place; then it hands the batch to
// the completion queue with one push, outside the lock.
//
// Exactly once (operation.hpp's protocol, with mu_ as the place's lock): an op is parked iff
// place == this. The canceller, under mu_, submits IORING_OP_ASYNC_CANCEL only while the op is
// still parked; the op then completes through its own CQE (-ECANCELED -> operation_aborted, or
// its real result when it won the race), never through the canceller. Because the completion
// thread clears place under mu_ before pushing, a canceller never names an op that may already
// be freed or reused. A cancel that arrives before the op parks is caught by the Dekker pair
// (submitter: store place, load cancelled; canceller: store cancelled, load place).
//
// -EBUSY / -EAGAIN from io_uring_enter (the CQ ring overflowed, or the kernel is short of
// memory): the submitter waits on cv_ without the lock — the completion thread reaps and
// notifies — and retries. The completion thread itself never submits, so it cannot wait on
// itself.
#include "uring_backend.hpp"

#include <taskport/io/file.hpp>

#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

namespace taskport::io::detail {

namespace {

// SQ size; the kernel makes the CQ twice as large. A build may shrink it (-DTASKPORT_URING_ENTRIES=1)
// to drive the SQ-full and CQ-overflow paths in tests.
#ifdef TASKPORT_URING_ENTRIES
constexpr unsigned ring_entries = TASKPORT_URING_ENTRIES;
#else
constexpr unsigned ring_entries = 256;
#endif
constexpr unsigned batch_max = 256;        // CQEs taken per wake-up
constexpr std::uint64_t tag_ignore = 1;    // ASYNC_CANCEL / NOP: the CQE completes nothing
constexpr std::uint64_t tag_stop = 2;      // the NOP that stops the completion thread

// One SQE moves at most this much (the kernel caps a transfer at MAX_RW_COUNT, just under
// 2 GiB, and sqe->len is 32 bits); the file layer continues a short transfer.
constexpr std::size_t max_transfer = std::size_t{1} << 30;

[[noreturn]] void fatal(const char* what, int err) noexcept {
    std::fprintf(stderr, "taskport: io_uring %s failed: %s\n", what,
                 std::generic_category().message(err).c_str());
    std::terminate();
}

class uring_impl final : public uring_backend {
public:
    explicit uring_impl(completion_queue& cq) : cq_(cq) {}
    ~uring_impl() override { shutdown(); }

    // Sets up the ring and the thread; false (why set) when the kernel or a filter refuses.
    bool init(std::error_code& why) noexcept {
        int r = io_uring_queue_init(ring_entries, &ring_, 0);
        if (r < 0) {
            why = std::error_code(-r, std::system_category());
            return false;
        }
        ring_live_ = true;
        // The opcodes used here (READ/WRITE need 5.6). A kernel without the probe is older.
        io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
        bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_READ) &&
                  io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
                  io_uring_opcode_supported(probe, IORING_OP_FSYNC) &&
                  io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL) &&
                  io_uring_opcode_supported(probe, IORING_OP_NOP);
        if (probe) io_uring_free_probe(probe);
        if (!ok) {
            why = std::make_error_code(std::errc::function_not_supported);
            io_uring_queue_exit(&ring_);
            ring_live_ = false;
            return false;
        }
        try {
            thread_ = std::thread([this] { run(); });
        } catch (const std::system_error& e) {
            why = e.code();
            io_uring_queue_exit(&ring_);
            ring_live_ = false;
            return false;
        }
        return true;
    }

    // No registration: the SQE names the descriptor.
    void associate(std::uintptr_t) override {}
    void forget(std::uintptr_t) noexcept override {}

    bool submit_file_step(file_rw_op* op) noexcept override {
        const int fd = op->core->fd;
        const std::uint64_t off = op->offset + op->done;
        switch (op->action) {
            case file_op_kind::read: read_at(op, fd, op->buf + op->done, op->len - op->done, off); break;
            case file_op_kind::write: write_at(op, fd, op->buf + op->done, op->len - op->done, off); break;
            case file_op_kind::sync: fsync(op, fd); break;
        }
        return true;
    }

    void read_at(operation* op, int fd, void* buf, std::size_t len, std::uint64_t off) noexcept override {
        submit(op, [&](io_uring_sqe* sqe) {
            io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(std::min(len, max_transfer)), off);
        });
    }

    void write_at(operation* op, int fd, const void* buf, std::size_t len, std::uint64_t off) noexcept override {
        submit(op, [&](io_uring_sqe* sqe) {
            io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(std::min(len, max_transfer)), off);
        });
    }

    void fsync(operation* op, int fd) noexcept override {
        submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, 0); });
    }

    void cancel(operation* op) noexcept override {
        std::unique_lock<std::mutex> g(mu_);
        if (op->place.load(std::memory_order_seq_cst) != this) return;  // its CQE was taken
        submit_cancel(g, op);
        flush(g);
    }

    void shutdown() noexcept override {
        std::lock_guard<std::mutex> once(shutdown_mu_);  // a second caller waits for the first
        if (!ring_live_) return;
        std::unique_lock<std::mutex> g(mu_);
        stopping_ = true;  // from here on, submit() refuses new operations
        if (in_flight_ > 0) {
            // One request cancels everything (5.19+; an older kernel answers -EINVAL, and then
            // the operations — file I/O, which finishes on its own — are waited for).
            io_uring_sqe* sqe = get_sqe(g);
            io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
            io_uring_sqe_set_data64(sqe, tag_ignore);
            ++in_flight_;
            flush(g);
        }
        ++waiters_;
        cv_.wait(g, [&] { return in_flight_ == 0; });
        --waiters_;
        io_uring_sqe* sqe = get_sqe(g);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, tag_stop);
        ++in_flight_;
        flush(g);
        g.unlock();
        if (thread_.joinable()) thread_.join();
        io_uring_queue_exit(&ring_);
        ring_live_ = false;
    }

private:
    template <class Prep>
    void submit(operation* op, Prep prep) noexcept {
        // A file op submits several steps; only the first writes kind, so a canceller that
        // read a stale place can read kind without racing this write.
        if (op->kind != place_kind::completion) op->kind = place_kind::completion;
        std::unique_lock<std::mutex> g(mu_);
        io_uring_sqe* sqe = nullptr;
        if (!stopping_ && !op->cancelled.load(std::memory_order_seq_cst)) {
            sqe = get_sqe(g);
            if (stopping_) {  // shutdown began while get_sqe waited: spend the SQE on nothing
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, tag_ignore);
                ++in_flight_;
                flush(g);
                sqe = nullptr;
            }
        }
        if (!sqe) {
            g.unlock();
            op->ec = operation_aborted();
            op->bytes = 0;
            cq_.push(op);
            return;
        }
        prep(sqe);
        io_uring_sqe_set_data(sqe, op);
        ++in_flight_;
        op->place.store(this, std::memory_order_seq_cst);
        if (op->cancelled.load(std::memory_order_seq_cst))  // Dekker pair with detail::cancel()
            submit_cancel(g, op);
        flush(g);
    }

    // Under mu_. Queues an ASYNC_CANCEL for op (parked). If get_sqe had to let go of the lock,
    // the op may have completed meanwhile (and its memory been reused): then cancel nothing.
    void submit_cancel(std::unique_lock<std::mutex>& g, operation* op) noexcept {
        io_uring_sqe* sqe = get_sqe(g);
        if (op->place.load(std::memory_order_seq_cst) == this)
            io_uring_prep_cancel(sqe, op, 0);
        else
            io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, tag_ignore);
        ++in_flight_;
    }

    // Under mu_. A free SQE; when the SQ is full, submits what is queued and tries again (the
    // lock may be released meanwhile; see flush()).
    io_uring_sqe* get_sqe(std::unique_lock<std::mutex>& g) noexcept {
        for (;;) {
            if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
            flush(g);
        }
    }

    // Under mu_. Hands every queued SQE to the kernel. On -EBUSY/-EAGAIN it waits (without the
    // lock) for the completion thread to reap, then retries; the SQEs stay queued meanwhile.
    void flush(std::unique_lock<std::mutex>& g) noexcept {
        while (io_uring_sq_ready(&ring_) > 0) {
            int r = io_uring_submit(&ring_);
            if (r > 0 || r == -EINTR) continue;
            if (r == 0 || r == -EBUSY || r == -EAGAIN) {
                ++waiters_;
                // Bounded wait: -EAGAIN (kernel memory) has no CQE to announce its end.
                cv_.wait_for(g, std::chrono::milliseconds(1));
                --waiters_;
                continue;
            }
            fatal("submit", -r);
        }
    }

    void run() noexcept {
        io_uring_cqe* cqes[batch_max];
        for (;;) {
            io_uring_cqe* first = nullptr;
            int r = io_uring_wait_cqe(&ring_, &first);
            if (r == -EINTR || r == -EAGAIN || r == -ETIME) continue;
            if (r < 0) fatal("wait", -r);
            unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, batch_max);
            if (n == 0) continue;
            op_batch b;
            bool stop = false;
            bool notify;
            {
                std::lock_guard<std::mutex> g(mu_);
                for (unsigned i = 0; i < n; ++i) {
                    const std::uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
                    const int res = cqes[i]->res;
                    if (tag == tag_stop) {
                        stop = true;
                        continue;
                    }
                    if (tag == tag_ignore) continue;
                    auto* op = reinterpret_cast<operation*>(static_cast<std::uintptr_t>(tag));
                    if (res >= 0) {
                        op->ec.clear();
                        op->bytes = static_cast<std::size_t>(res);
                    } else {
                        op->ec = res == -ECANCELED ? operation_aborted()
                                                   : std::error_code(-res, std::system_category());
                        op->bytes = 0;
                    }
                    op->place.store(nullptr, std::memory_order_seq_cst);
                    b.push(op);
                }
                in_flight_ -= n;
                notify = waiters_ > 0;
            }
            io_uring_cq_advance(&ring_, n);
            cq_.push(b);
            if (notify) cv_.notify_all();
            if (stop) return;
        }
    }

    completion_queue& cq_;
    io_uring ring_{};
    bool ring_live_ = false;     // written by init and shutdown (under shutdown_mu_)
    std::mutex shutdown_mu_;

    std::mutex mu_;              // the SQ side of ring_, in_flight_, stopping_, waiters_, places
    std::condition_variable cv_; // the completion thread took CQEs (for flush() and shutdown())
    std::size_t in_flight_ = 0;  // SQEs submitted or queued whose CQE has not been taken
    std::size_t waiters_ = 0;    // threads waiting on cv_
    bool stopping_ = false;

    std::thread thread_;         // the completion thread: run()
};

}  // namespace

std::unique_ptr<uring_backend> uring_backend::try_create(completion_queue& cq, std::error_code& why) {
    std::unique_ptr<uring_impl> u;
    try {
        u = std::make_unique<uring_impl>(cq);
    } catch (const std::bad_alloc&) {
        why = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
    if (!u->init(why)) return nullptr;
    why.clear();
    return u;
}

}  // namespace taskport::io::detail
