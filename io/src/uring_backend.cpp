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
// Opens (io::file::open, open()): an open_req on the heap carries the open through its SQEs
// (submitted by the completion thread, see below)
// (O_CREAT|O_EXCL first, as native_open does, then without O_CREAT on EEXIST, then plain O_CREAT
// on ENOENT). Its operation is parked at the request (place == the open_req, not this); every
// CQE of a request goes to the completion queue as the request itself (a task), and the worker
// that runs it submits the next step or finishes the open (native_open_finish) and, under mu_,
// delivers it if the operation still waits (place == req), running its completion right there —
// else it undoes it (native_discard:
// close, and remove a file this open created). cancel() and shutdown() detach a waiting
// operation at once (it completes with operation_aborted, never waiting for the kernel, as on
// the blocking pool) and ask the kernel to stop the SQE. The request is freed only by the worker
// that handled its last CQE, so a tag in the ring never names freed memory.
//
// Shutdown: new operations are refused, every waiting open completes at once (operation_aborted),
// one ASYNC_CANCEL_ANY asks the kernel to stop the rest, and shutdown waits for every SQE's CQE —
// at most shutdown_timeout (runtime_options), as the blocking pool waits for its calls. Past it
// (an OPENAT or a read held by a hung NFS or FUSE server: the kernel's cancel cannot stop an
// io-wq worker in a killable wait) the ring is abandoned: the ring's state is a ring_core shared
// by the backend and its completion thread, so the thread, detached, keeps reaping after the
// service is gone. From then on it never touches the completion queue: a late open's result is
// undone right there (on_open_cqe: closed, and a file it created removed), a late read/write/sync
// CQE is dropped (its operation never completes, as for the pool's abandoned steps), and once the
// last CQE is in, the thread closes the ring and frees the ring_core. A push of a batch the
// thread took before the abandon is waited for (pushing_), so no push reaches a freed queue.
//
// -EBUSY / -EAGAIN from io_uring_enter (the CQ ring overflowed, or the kernel is short of
// memory): the submitter waits on cv_ without the lock — the completion thread reaps and
// notifies — and retries. The completion thread submits only the opens' OPENATs
// (submit_pending: workers queue them and wake it with one NOP, so that an OPENAT the kernel
// hands to an io-wq thread belongs to the completion thread, which can be abandoned, and never to
// a worker, whose exit would wait for it); it never waits to submit (a full SQ or a refusal
// leaves them queued, and it looks again within 1 ms), so it cannot wait on itself.
#include "uring_backend.hpp"

#include "blocking_pool.hpp"
#include "file_model.hpp"

#include <taskport/io/file.hpp>

#include <liburing.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

#include <fcntl.h>

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
constexpr std::uint64_t tag_kick = 3;      // a NOP that wakes the completion thread to submit opens
constexpr std::uint64_t tag_open = 1;      // low bit of an open_req's address: an OPENAT's CQE

// One SQE moves at most this much (the kernel caps a transfer at MAX_RW_COUNT, just under
// 2 GiB, and sqe->len is 32 bits); the file layer continues a short transfer.
constexpr std::size_t max_transfer = std::size_t{1} << 30;

[[noreturn]] void fatal(const char* what, int err) noexcept {
    std::fprintf(stderr, "taskport: io_uring %s failed: %s\n", what,
                 std::generic_category().message(err).c_str());
    std::terminate();
}

class ring_core;

// One io::file::open on the ring. Owned by the ring from open() until the worker that handles
// its last CQE frees it (ring_core::on_open_cqe; after an abandon, the completion thread). A task: each CQE pushes it to the completion
// queue.
struct open_req final : operation {
    enum stage_t : unsigned char { exclusive, existing, plain };
    open_req(ring_core* r, std::string p, int f, stage_t st);

    std::uint64_t tag() const noexcept { return reinterpret_cast<std::uintptr_t>(this) | tag_open; }
    // The open(2) flags of this step (native_open's: O_NONBLOCK | O_CLOEXEC | O_NOCTTY added,
    // except to the exclusive create, native_create_flags).
    int step_flags() const noexcept {
        const int base = flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
        return stage == exclusive ? native_create_flags(flags) : stage == existing ? base & ~O_CREAT : base;
    }

    ring_core* ring;  // alive while the request is: the backend or the abandoned thread holds it
    file_open_op* op = nullptr;  // under mu_: the operation waiting for it; null once it completed without it
    open_req* prev = nullptr;  // under mu_: the ring's list of requests with a waiting operation
    open_req* next = nullptr;
    open_req* pending_next = nullptr;  // under mu_: the list of steps the completion thread is to submit
    std::string path;      // c_str() named by the SQE; the path again for native_discard
    int flags;             // native_open_flags
    stage_t stage;
    int res = 0;           // the last CQE's result: written by the completion thread before the
                           // push, read by the worker the completion queue hands it to
};

// The ring, its lock, its counts and its completion thread: everything a request or a CQE can
// reach. Shared (std::shared_ptr) by the backend (uring_impl) and the completion thread, so an
// abandoned ring outlives the service (see the top of this file).
class ring_core {
public:
    ring_core(completion_queue& cq, std::chrono::milliseconds shutdown_timeout)
        : cq_(cq), shutdown_timeout_(shutdown_timeout) {}

    // Sets up the ring and the thread (which keeps `self`); false (why set) when the kernel or a
    // filter refuses.
    bool init(const std::shared_ptr<ring_core>& self, std::error_code& why) noexcept {
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
        // Opens too when TASKPORT_URING_OPEN=1 and the kernel has OPENAT (5.6); else they stay on
        // the blocking pool. Opt-in: shutdown now gives up on an OPENAT as the pool does
        // (abandon()), but with the OPENATs submitted by the completion thread (what makes that
        // possible) it measured no cheaper than the pool (session 8, taskport-fetch, perf stat
        // without tracepoints: task-clock 177-236 ms against 190-228, context switches per file
        // 3.0-5.6 against 3.5-4.6; futex calls 1.5-2.6 against 5.1-5.3). Submitted by workers it
        // was cheaper (context switches 1.6-2.6) but could not be abandoned.
        const char* env = std::getenv("TASKPORT_URING_OPEN");
        open_ok_ = ok && io_uring_opcode_supported(probe, IORING_OP_OPENAT) && env && std::strcmp(env, "1") == 0;
        if (probe) io_uring_free_probe(probe);
        if (!ok) {
            why = std::make_error_code(std::errc::function_not_supported);
            io_uring_queue_exit(&ring_);
            ring_live_ = false;
            return false;
        }
        try {
            thread_ = std::thread([keep = self] { keep->run(); });
        } catch (const std::system_error& e) {
            why = e.code();
            io_uring_queue_exit(&ring_);
            ring_live_ = false;
            return false;
        }
        return true;
    }

    bool submit_file_step(file_rw_op* op) noexcept {
        const int fd = op->core->fd;
        const std::uint64_t off = op->offset + op->done;
        switch (op->action) {
            case file_op_kind::read: read_at(op, fd, op->buf + op->done, op->len - op->done, off); break;
            case file_op_kind::write: write_at(op, fd, op->buf + op->done, op->len - op->done, off); break;
            case file_op_kind::sync: fsync(op, fd); break;
        }
        return true;
    }

    void read_at(operation* op, int fd, void* buf, std::size_t len, std::uint64_t off) noexcept {
        submit(op, [&](io_uring_sqe* sqe) {
            io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(std::min(len, max_transfer)), off);
        });
    }

    void write_at(operation* op, int fd, const void* buf, std::size_t len, std::uint64_t off) noexcept {
        submit(op, [&](io_uring_sqe* sqe) {
            io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(std::min(len, max_transfer)), off);
        });
    }

    void fsync(operation* op, int fd) noexcept {
        submit(op, [&](io_uring_sqe* sqe) { io_uring_prep_fsync(sqe, fd, 0); });
    }

    void cancel(operation* op) noexcept {
        std::unique_lock<std::mutex> g(mu_);
        void* p = op->place.load(std::memory_order_seq_cst);
        if (!p) return;  // its CQE was taken (or its open delivered)
        if (p == this) {
            submit_cancel(g, op);
            flush(g);
            return;
        }
        // An open (place == its open_req): the operation completes now; the kernel is asked to
        // stop the request, whose result, if it comes anyway, is undone by on_open_cqe. The SQE
        // is taken first: get_sqe may let go of the lock, and the request is alive only while
        // it still has this operation.
        io_uring_sqe* sqe = get_sqe(g);
        if (op->place.load(std::memory_order_seq_cst) != p) {  // delivered or detached meanwhile
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, tag_ignore);
            ++in_flight_;
            flush(g);
            return;
        }
        auto* req = static_cast<open_req*>(p);
        io_uring_prep_cancel64(sqe, req->tag(), 0);
        io_uring_sqe_set_data64(sqe, tag_ignore);
        ++in_flight_;
        detach(req);
        flush(g);
        g.unlock();
        op->ec = operation_aborted();
        cq_.push(op);
    }

    bool open(file_open_op* op) noexcept {
        if (!open_ok_) return false;
        open_req* req;
        try {
            req = new open_req(this, op->path.string(), op->flags,
                               (op->flags & O_CREAT) != 0 ? open_req::exclusive : open_req::plain);
        } catch (...) {  // std::bad_alloc
            return false;
        }
        op->kind = place_kind::completion;
        std::unique_lock<std::mutex> g(mu_);
        if (!stopping_ && !op->cancelled.load(std::memory_order_seq_cst)) {
            attach(req, op);
            if (!op->cancelled.load(std::memory_order_seq_cst)) {  // Dekker pair with detail::cancel()
                submit_open_step(g, req);
                flush(g);
                return true;
            }
            detach(req);
        }
        g.unlock();
        delete req;
        op->ec = operation_aborted();
        cq_.push(op);
        return true;
    }

    // A CQE of an open, on a worker (the completion queue runs the request as a task).
    static void on_open_cqe(taskport::detail::task_node* t) noexcept {
        auto* req = static_cast<open_req*>(t);
        ring_core* u = req->ring;
        const int res = req->res;
        const bool next = (res == -EINTR) || (res == -EEXIST && req->stage == open_req::exclusive) ||
                          (res == -ENOENT && req->stage == open_req::existing);
        if (next) {
            if (res == -EEXIST) req->stage = open_req::existing;
            else if (res == -ENOENT) req->stage = open_req::plain;
            std::unique_lock<std::mutex> g(u->mu_);
            if (req->op && !u->stopping_ && !req->op->cancelled.load(std::memory_order_seq_cst)) {
                u->submit_open_step(g, req);
                u->flush(g);
                return;
            }
            // Its operation completed without it (or is being cancelled, or the ring stops):
            // nothing was opened; finish below with operation_aborted.
        }
        run_blocking_call_hook("open", false);
        std::error_code ec;
        native_file fd = invalid_file;
        bool seekable = true;
        bool created = false;
        if (next) {
            ec = operation_aborted();
        } else if (res >= 0) {
            created = req->stage == open_req::exclusive;
            ec = native_open_finish(res, req->path, created, seekable);  // on failure res is discarded
            if (!ec) fd = res;
            else created = false;
        } else {
            ec = res == -ECANCELED ? operation_aborted() : std::error_code(-res, std::system_category());
        }
        file_open_op* op = nullptr;
        {
            std::lock_guard<std::mutex> g(u->mu_);
            if (req->op) {
                op = req->op;
                u->detach(req);
                op->ec = ec;
                op->new_fd = fd;
                op->seekable = seekable;
                op->created = created;
            }
        }
        if (!op && fd != invalid_file)
            native_discard(fd, req->path, created);  // opened after its operation completed without it
        delete req;
        run_blocking_call_hook("open", true);
        // Delivered: its completion runs here, as this task's last step (as file_core's on_step
        // runs a transfer's), rather than through the completion queue a second time.
        if (op) op->run();
    }

    void shutdown() noexcept {
        std::lock_guard<std::mutex> once(shutdown_mu_);  // a second caller waits for the first
        if (shut_ || !ring_live_) return;  // shut_ first: an abandoned ring's thread writes ring_live_
        std::unique_lock<std::mutex> g(mu_);
        stopping_ = true;  // from here on, submit() refuses new operations
        // Opens complete at once (their late results are undone by on_open_cqe), as on the pool.
        op_batch aborted;
        while (opens_) {
            operation* op = opens_->op;
            detach(opens_);
            op->ec = operation_aborted();
            aborted.push(op);
        }
        drop_pending();
        if (!aborted.empty()) {
            g.unlock();
            cq_.push(aborted);
            g.lock();
        }
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
        bool all_in = true;
        if (shutdown_timeout_ == std::chrono::milliseconds::max())
            cv_.wait(g, [&] { return in_flight_ == 0; });
        else
            all_in = cv_.wait_for(g, std::max(shutdown_timeout_, std::chrono::milliseconds(0)),
                                  [&] { return in_flight_ == 0; });
        --waiters_;
        if (!all_in) {  // in_flight_ > 0 still, under this lock: the thread will see abandoned_
            abandon(g);
            shut_ = true;
            return;
        }
        io_uring_sqe* sqe = get_sqe(g);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, tag_stop);
        ++in_flight_;
        flush(g);
        g.unlock();
        if (thread_.joinable()) thread_.join();
        io_uring_queue_exit(&ring_);
        ring_live_ = false;
        shut_ = true;
    }

private:
    // Under mu_ (shutdown, past shutdown_timeout): leaves the ring to its thread, which undoes
    // late opens and closes the ring once the kernel has returned every SQE (run()). Waits for a
    // push the thread began before (a few pointer moves), so it never pushes after this returns.
    void abandon(std::unique_lock<std::mutex>& g) noexcept {
        abandoned_ = true;
        const std::size_t opens = open_sqes_, steps = step_sqes_, n = opens + steps;
        g.unlock();
        while (pushing_.load(std::memory_order_acquire)) std::this_thread::yield();
        thread_.detach();  // it holds its own reference to this ring_core
        std::fprintf(stderr,
                     "taskport: runtime shutdown abandoned %zu io_uring request%s still in the kernel after "
                     "shutdown_timeout (%lld ms): %zu open%s (already completed with operation_aborted; a late "
                     "result is closed and a file it created removed), %zu file read/write/sync step%s left to "
                     "finish\n",
                     n, n == 1 ? "" : "s", static_cast<long long>(shutdown_timeout_.count()), opens,
                     opens == 1 ? "" : "s", steps, steps == 1 ? "" : "s");
        std::fflush(stderr);
    }

    // Under mu_. op waits for req: linked, and parked at req.
    void attach(open_req* req, file_open_op* op) noexcept {
        req->op = op;
        req->prev = nullptr;
        req->next = opens_;
        if (opens_) opens_->prev = req;
        opens_ = req;
        op->place.store(req, std::memory_order_seq_cst);
    }
    // Under mu_. req's operation no longer waits for it (it completes now, by the caller).
    void detach(open_req* req) noexcept {
        if (req->prev) req->prev->next = req->next;
        else opens_ = req->next;
        if (req->next) req->next->prev = req->prev;
        req->prev = req->next = nullptr;
        req->op->place.store(nullptr, std::memory_order_seq_cst);
        req->op = nullptr;
    }
    // Under mu_, on a worker. Hands req's OPENAT for its stage to the completion thread, which
    // submits it (submit_pending): the kernel runs a request it cannot finish at once (every
    // O_CREAT) on an io-wq thread of the task that submitted it, and a thread cannot exit while
    // its io-wq still runs one — so an OPENAT held by a hung NFS or FUSE server, submitted by a
    // worker, would keep that worker, and the runtime's shutdown, waiting for the server. The
    // completion thread can be abandoned instead (abandon()). One NOP wakes it (kicked_ until it
    // takes the list); the caller flushes. get_sqe may let go of the lock meanwhile; req stays
    // the ring's until its CQE is handled (or, never submitted, until it is dropped).
    void submit_open_step(std::unique_lock<std::mutex>& g, open_req* req) noexcept {
        req->pending_next = nullptr;
        if (pending_tail_)
            pending_tail_->pending_next = req;
        else
            pending_ = req;
        pending_tail_ = req;
        if (kicked_) return;
        kicked_ = true;
        io_uring_sqe* sqe = get_sqe(g);
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, tag_kick);
        ++in_flight_;
    }

    // Under mu_, on the completion thread: submits the pending opens' OPENATs (a request whose
    // operation completed without it meanwhile is dropped: nothing was opened). Never waits: when
    // the SQ is full or the kernel refuses (-EBUSY, -EAGAIN) the rest stays queued and false says
    // so (run() then looks again within 1 ms).
    bool submit_pending() noexcept {
        kicked_ = false;
        while (open_req* req = pending_) {
            if (req->op) {
                io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
                if (!sqe) break;
                io_uring_prep_openat(sqe, AT_FDCWD, req->path.c_str(), req->step_flags(), 0666);
                io_uring_sqe_set_data64(sqe, req->tag());
                ++in_flight_;
                ++open_sqes_;
            }
            pending_ = req->pending_next;
            if (!pending_) pending_tail_ = nullptr;
            if (!req->op) delete req;
        }
        while (io_uring_sq_ready(&ring_) > 0) {
            const int r = io_uring_submit(&ring_);
            if (r > 0 || r == -EINTR) continue;
            if (r == 0 || r == -EBUSY || r == -EAGAIN) break;
            fatal("submit", -r);
        }
        return !pending_ && io_uring_sq_ready(&ring_) == 0;
    }
    // Under mu_ (shutdown, every operation detached): drops the steps never submitted.
    void drop_pending() noexcept {
        while (open_req* req = pending_) {
            pending_ = req->pending_next;
            delete req;
        }
        pending_tail_ = nullptr;
    }

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
        ++step_sqes_;
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
        bool retry = false;  // opens left queued by submit_pending: look again soon
        for (;;) {
            io_uring_cqe* first = nullptr;
            int r;
            if (retry) {
                __kernel_timespec ts{0, 1000000};
                r = io_uring_wait_cqe_timeout(&ring_, &first, &ts);
                if (r == -ETIME) {
                    std::lock_guard<std::mutex> g(mu_);
                    retry = !stopping_ && !submit_pending();
                    continue;
                }
            } else {
                r = io_uring_wait_cqe(&ring_, &first);
            }
            if (r == -EINTR || r == -EAGAIN || r == -ETIME) continue;
            if (r < 0) fatal("wait", -r);
            unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, batch_max);
            if (n == 0) continue;
            op_batch b;
            bool stop = false;
            bool notify;
            bool abandoned;
            {
                std::lock_guard<std::mutex> g(mu_);
                abandoned = abandoned_;
                for (unsigned i = 0; i < n; ++i) {
                    const std::uint64_t tag = io_uring_cqe_get_data64(cqes[i]);
                    const int res = cqes[i]->res;
                    if (tag == tag_stop) {
                        stop = true;
                        continue;
                    }
                    if (tag == tag_ignore || tag == tag_kick) continue;
                    if (tag & tag_open) {  // its worker decides (on_open_cqe); place stays
                        auto* req = reinterpret_cast<open_req*>(static_cast<std::uintptr_t>(tag & ~tag_open));
                        req->res = res;
                        --open_sqes_;
                        b.push(req);  // abandoned: undone by this thread, below
                        continue;
                    }
                    --step_sqes_;
                    if (abandoned) continue;  // its operation was left to finish: never completes
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
                retry = !abandoned && !stopping_ && (pending_ || kicked_) && !submit_pending();
                // Not abandoned: shutdown's abandon(), if it comes, waits for this push.
                if (!abandoned && !b.empty()) pushing_.store(true, std::memory_order_relaxed);
            }
            io_uring_cq_advance(&ring_, n);
            if (abandoned) {
                // The service may be gone: the opens' results are undone here, never queued.
                for (task_node* t = b.first; t;) {
                    task_node* next = t->next;
                    t->next = nullptr;
                    on_open_cqe(t);  // its operation completed at shutdown: closes, removes, frees
                    t = next;
                }
                bool last;
                {
                    std::lock_guard<std::mutex> g(mu_);
                    last = in_flight_ == 0;
                }
                if (last) {
                    io_uring_queue_exit(&ring_);
                    ring_live_ = false;
                    return;  // the lambda's reference to this ring_core goes with the thread
                }
                continue;
            }
            if (!b.empty()) {
                cq_.push(b);
                // release: abandon() that reads false knows the push, and its reads of cq_, are over.
                pushing_.store(false, std::memory_order_release);
            }
            if (notify) cv_.notify_all();
            if (stop) return;
        }
    }

    completion_queue& cq_;       // not touched by the thread once abandoned_ is set
    const std::chrono::milliseconds shutdown_timeout_;
    io_uring ring_{};
    bool ring_live_ = false;     // written by init and shutdown (under shutdown_mu_), or by the abandoned thread
    std::mutex shutdown_mu_;
    bool shut_ = false;          // under shutdown_mu_: shutdown() has run (joined, or abandoned the ring)

    std::mutex mu_;              // the SQ side of ring_, in_flight_, stopping_, waiters_, places
    std::condition_variable cv_; // the completion thread took CQEs (for flush() and shutdown())
    std::size_t in_flight_ = 0;  // SQEs submitted or queued whose CQE has not been taken
    std::size_t waiters_ = 0;    // threads waiting on cv_
    bool stopping_ = false;
    open_req* opens_ = nullptr;  // under mu_: the open requests whose operation waits
    bool open_ok_ = false;       // opens go to the ring (set by init)
    std::size_t open_sqes_ = 0;  // under mu_: OPENAT SQEs in the kernel (for abandon()'s line)
    open_req* pending_ = nullptr;       // under mu_: OPENATs for the completion thread to submit
    open_req* pending_tail_ = nullptr;
    bool kicked_ = false;        // under mu_: a tag_kick NOP is on its way to the completion thread
    std::size_t step_sqes_ = 0;  // under mu_: read/write/fsync SQEs in the kernel
    bool abandoned_ = false;     // under mu_: shutdown gave up waiting; the thread owns what is left
    // The completion thread is pushing a batch it took while abandoned_ was false: set by it
    // under mu_, cleared by it after the push (release); abandon() waits for false (acquire).
    std::atomic<bool> pushing_{false};

    std::thread thread_;         // the completion thread: run()
};

// The backend the service holds: forwards to its ring_core, which may outlive it (abandon()).
class uring_impl final : public uring_backend {
public:
    explicit uring_impl(std::shared_ptr<ring_core> c) : core_(std::move(c)) {}
    ~uring_impl() override { core_->shutdown(); }

    // No registration: the SQE names the descriptor.
    void associate(std::uintptr_t) override {}
    void forget(std::uintptr_t) noexcept override {}
    bool submit_file_step(file_rw_op* op) noexcept override { return core_->submit_file_step(op); }
    void read_at(operation* op, int fd, void* buf, std::size_t len, std::uint64_t off) noexcept override {
        core_->read_at(op, fd, buf, len, off);
    }
    void write_at(operation* op, int fd, const void* buf, std::size_t len, std::uint64_t off) noexcept override {
        core_->write_at(op, fd, buf, len, off);
    }
    void fsync(operation* op, int fd) noexcept override { core_->fsync(op, fd); }
    void cancel(operation* op) noexcept override { core_->cancel(op); }
    bool open(file_open_op* op) noexcept override { return core_->open(op); }
    void shutdown() noexcept override { core_->shutdown(); }

private:
    std::shared_ptr<ring_core> core_;
};

open_req::open_req(ring_core* r, std::string p, int f, stage_t st)
    : operation(&ring_core::on_open_cqe, nullptr), ring(r), path(std::move(p)), flags(f), stage(st) {}

}  // namespace

std::unique_ptr<uring_backend> uring_backend::try_create(completion_queue& cq,
                                                         std::chrono::milliseconds shutdown_timeout,
                                                         std::error_code& why) {
    std::shared_ptr<ring_core> core;
    try {
        core = std::make_shared<ring_core>(cq, shutdown_timeout);
    } catch (const std::bad_alloc&) {
        why = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
    if (!core->init(core, why)) return nullptr;
    std::unique_ptr<uring_impl> u;
    try {
        u = std::make_unique<uring_impl>(core);
    } catch (const std::bad_alloc&) {
        core->shutdown();  // stops the thread, which holds a reference too
        why = std::make_error_code(std::errc::not_enough_memory);
        return nullptr;
    }
    why.clear();
    return u;
}

}  // namespace taskport::io::detail
