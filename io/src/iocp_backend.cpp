// iocp_backend.cpp — the I/O completion port and its thread (Windows). See iocp_backend.hpp.
#include "iocp_backend.hpp"

#include "socket_types.hpp"
#include "timer_queue.hpp"

#include <taskport/io/file.hpp>

#include <taskport/detail/environment.hpp>
#include <taskport/io/detail/test_hooks.hpp>

#include <winternl.h>  // RtlNtStatusToDosError

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_set>

namespace taskport::io::detail {

static_assert(sizeof(OVERLAPPED) <= sizeof(platform_op_storage::overlapped), "config.hpp: OVERLAPPED does not fit");
static_assert(alignof(OVERLAPPED) <= alignof(platform_op_storage), "config.hpp: OVERLAPPED misaligned");

namespace {

OVERLAPPED* overlapped_of(operation* op) noexcept { return reinterpret_cast<OVERLAPPED*>(op->plat.overlapped); }
operation* op_of(OVERLAPPED* ov) noexcept {
    // overlapped is the first member of platform_op_storage: same address.
    return reinterpret_cast<platform_op_storage*>(ov)->owner;
}

// Can a successful call skip the port? Only if every installed provider of the sockets we open
// (IPv4/IPv6, stream/datagram) hands out real kernel handles: a layered provider that does not
// may queue a packet anyway. As in Go's Windows poller, but limited to the families and types
// taskport uses, as libuv limits it to the socket's own provider: a provider of another family
// (Wine lists a non-IFS IPX one) says nothing about ours. Files are always kernel handles.
bool providers_are_ifs() noexcept {
    DWORD len = 0;
    if (::WSAEnumProtocolsW(nullptr, nullptr, &len) != SOCKET_ERROR || ::WSAGetLastError() != WSAENOBUFS)
        return false;
    std::unique_ptr<unsigned char[]> buf(new (std::nothrow) unsigned char[len]);
    if (!buf) return false;
    auto* info = reinterpret_cast<WSAPROTOCOL_INFOW*>(buf.get());
    int n = ::WSAEnumProtocolsW(nullptr, info, &len);
    if (n == SOCKET_ERROR) return false;
    for (int i = 0; i < n; ++i) {
        const bool ours = (info[i].iAddressFamily == AF_INET || info[i].iAddressFamily == AF_INET6) &&
                          (info[i].iSocketType == SOCK_STREAM || info[i].iSocketType == SOCK_DGRAM);
        if (ours && !(info[i].dwServiceFlags1 & XP1_IFS_HANDLES)) return false;
    }
    return true;
}

class iocp_impl final : public iocp_backend {
public:
    iocp_impl(completion_queue& cq, HANDLE port, bool skip) : cq_(cq), port_(port), skip_(skip) {
        thread_ = std::thread([this] { run(); });
    }
    ~iocp_impl() override {
        shutdown();
        ::CloseHandle(port_);
    }

    void associate(std::uintptr_t h) override {
        std::lock_guard<std::mutex> g(reg_mu_);
        if (stopped_.load(std::memory_order_seq_cst))
            throw std::system_error(operation_aborted(), "taskport: runtime is shut down");
        if (!::CreateIoCompletionPort(reinterpret_cast<HANDLE>(h), port_, 0, 0))
            throw std::system_error(win32_error(static_cast<int>(::GetLastError())), "CreateIoCompletionPort");
        if (skip_ && !::SetFileCompletionNotificationModes(
                         reinterpret_cast<HANDLE>(h),
                         FILE_SKIP_COMPLETION_PORT_ON_SUCCESS | FILE_SKIP_SET_EVENT_ON_HANDLE))
            throw std::system_error(win32_error(static_cast<int>(::GetLastError())),
                                    "SetFileCompletionNotificationModes");
        handles_.insert(h);
    }

    void forget(std::uintptr_t h) noexcept override {
        std::lock_guard<std::mutex> g(reg_mu_);
        handles_.erase(h);
    }

    bool start(operation* op, std::uintptr_t h, iocp_issue_fn issue) noexcept override {
        op->kind = place_kind::completion;
        std::memset(op->plat.overlapped, 0, sizeof op->plat.overlapped);
        op->plat.owner = op;
        op->plat.handle = h;
        op->plat.issue = issue;
        op->plat.error = 0;
        op->plat.transferred = 0;
        outstanding_.fetch_add(1, std::memory_order_seq_cst);
        std::unique_lock<std::mutex> g(stripe(op));
        op->place.store(this, std::memory_order_seq_cst);
        // Dekker pairs: with cancel() (place / cancelled) and with shutdown() (outstanding_ /
        // stopped_): one side sees the other.
        if (op->cancelled.load(std::memory_order_seq_cst) || stopped_.load(std::memory_order_seq_cst)) {
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            g.unlock();
            outstanding_.fetch_sub(1, std::memory_order_seq_cst);
            return false;
        }
        if (advance(op, issue(op))) {
            run_test_hook(hook_point::parked, op);
            g.unlock();
            return true;  // `op` is not touched again here: it may complete at any moment now
        }
        op->place.store(nullptr, std::memory_order_seq_cst);
        g.unlock();
        outstanding_.fetch_sub(1, std::memory_order_seq_cst);
        return false;
    }

    bool submit_file_step(file_rw_op* op) noexcept override {
        if (op->action == file_op_kind::sync) return false;  // FlushFileBuffers: on the pool
        op->perform = &finish_file_step;
        if (!start(op, reinterpret_cast<std::uintptr_t>(op->core->fd), &issue_file_step))
            cq_.push(op);  // finished at once: still delivered through the queue
        return true;
    }

    void cancel(operation* op) noexcept override {
        run_test_hook(hook_point::cancel_before_lock, op);
        std::lock_guard<std::mutex> g(stripe(op));
        if (op->place.load(std::memory_order_seq_cst) != this) return;  // finished meanwhile
        ::CancelIoEx(reinterpret_cast<HANDLE>(op->plat.handle), overlapped_of(op));
    }

    timer_queue& timers() noexcept override { return timers_; }

    void shutdown() noexcept override {
        {
            std::lock_guard<std::mutex> g(reg_mu_);
            stopped_.store(true, std::memory_order_seq_cst);
            // Every parked operation runs on a registered handle; ops started after this see
            // stopped_ (start() and advance() check it after their call) and cancel themselves.
            for (std::uintptr_t h : handles_) ::CancelIoEx(reinterpret_cast<HANDLE>(h), nullptr);
        }
        op_batch b;
        timers_.abort_all(b);
        cq_.push(b);
        wake();
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    }

private:
    std::mutex& stripe(const operation* op) noexcept {
        auto a = reinterpret_cast<std::uintptr_t>(op);
        return stripes_[(a >> 6 ^ a >> 12) % stripes_.size()].mu;
    }

    void wake() noexcept { ::PostQueuedCompletionStatus(port_, 0, 0, nullptr); }

    // Under op's lock, after a step was issued (r: what the issue function returned) or has
    // completed (r: its error, 0 for success). Runs op->perform on every finished step and
    // issues the next one it asks for. True: op is parked (a packet will come); false: op is
    // finished (ec/bytes final) — the caller clears place and hands it over.
    bool advance(operation* op, int r) noexcept {
        for (;;) {
            if (r == iocp_pending || ((r == 0 || r == iocp_warning) && !skip_)) {
                // Parked. A shutdown that began before the call may have swept the handles
                // already: this op was not among them, so cancel it here.
                if (stopped_.load(std::memory_order_seq_cst))
                    ::CancelIoEx(reinterpret_cast<HANDLE>(op->plat.handle), overlapped_of(op));
                return true;
            }
            if (r != iocp_warning) op->plat.error = r == iocp_done_now ? 0 : r;
            if (op->perform(op)) break;
            if (op->cancelled.load(std::memory_order_seq_cst) || stopped_.load(std::memory_order_seq_cst)) {
                op->ec = operation_aborted();  // between steps: the rest is not started
                break;
            }
            std::memset(op->plat.overlapped, 0, sizeof op->plat.overlapped);
            op->plat.transferred = 0;
            run_test_hook(hook_point::next_step, op);
            r = op->plat.issue(op);  // the issue function guards its handle (iocp_socket.cpp)
        }
        return false;
    }

    void run() {
        std::array<OVERLAPPED_ENTRY, 256> entries;
        for (;;) {
            if (stopped_.load(std::memory_order_seq_cst) && outstanding_.load(std::memory_order_seq_cst) == 0)
                break;
            ULONG n = 0;
            if (!::GetQueuedCompletionStatusEx(port_, entries.data(), static_cast<ULONG>(entries.size()), &n,
                                               next_timeout_ms(), FALSE)) {
                DWORD e = ::GetLastError();
                if (e != WAIT_TIMEOUT) {
                    std::fprintf(stderr, "taskport: GetQueuedCompletionStatusEx failed: %lu\n", e);
                    std::terminate();
                }
                n = 0;
            }
            op_batch b;
            std::size_t finished = 0;
            for (ULONG i = 0; i < n; ++i) {
                OVERLAPPED* ov = entries[i].lpOverlapped;
                if (!ov) continue;  // a wake-up
                operation* op = op_of(ov);
                std::unique_lock<std::mutex> g(stripe(op));
                const auto status = static_cast<NTSTATUS>(ov->Internal);
                op->plat.transferred = entries[i].dwNumberOfBytesTransferred;
                int r = NT_SUCCESS(status) ? 0 : static_cast<int>(::RtlNtStatusToDosError(status));
                if (r == 0 && !NT_SUCCESS(status)) r = ERROR_GEN_FAILURE;  // no Win32 code for it
                // This step's packet is in: its result is final whatever skip_ says.
                if (r == 0) r = iocp_done_now;
                if (advance(op, r)) continue;  // another step is under way
                op->place.store(nullptr, std::memory_order_seq_cst);
                g.unlock();
                b.push(op);
                ++finished;
            }
            timers_.expire(b);
            cq_.push(b);
            if (finished) outstanding_.fetch_sub(finished, std::memory_order_seq_cst);
        }
    }

    DWORD next_timeout_ms() noexcept {
        if (stopped_.load(std::memory_order_relaxed)) return 100;  // draining: re-check the count
        const long ms = timers_.next_timeout_ms();
        return ms < 0 ? INFINITE : static_cast<DWORD>(ms);
    }

    static void wake_for_timer(void* self) noexcept { static_cast<iocp_impl*>(self)->wake(); }

    struct alignas(64) padded_mutex {
        std::mutex mu;
    };

    completion_queue& cq_;
    HANDLE port_;
    const bool skip_;  // FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is set on every handle
    // Writers: start() (+1), the completion thread and start() on an immediate finish (-1).
    // Read by the completion thread to know when a shutdown has drained. seq_cst: the Dekker
    // pair with stopped_.
    std::atomic<std::size_t> outstanding_{0};
    std::atomic<bool> stopped_{false};  // written by shutdown() under reg_mu_; read anywhere
    std::array<padded_mutex, 64> stripes_;

    std::mutex reg_mu_;  // guards handles_
    std::unordered_set<std::uintptr_t> handles_;

    timer_queue timers_{cq_, &iocp_impl::wake_for_timer, this};

    std::thread thread_;
};

}  // namespace

std::unique_ptr<iocp_backend> iocp_backend::try_create(completion_queue& cq, std::error_code& why) {
    net_init();
    HANDLE port = ::CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
    if (!port) {
        why = win32_error(static_cast<int>(::GetLastError()));
        return nullptr;
    }
    try {
        // TASKPORT_IOCP_SKIP_ON_SUCCESS=0 keeps the mode off (tests run both ways).
        const bool skip = taskport::detail::env_iocp_skip_on_success() && providers_are_ifs();
        return std::make_unique<iocp_impl>(cq, port, skip);
    } catch (const std::system_error& e) {
        ::CloseHandle(port);
        why = e.code();
        return nullptr;
    }
}

}  // namespace taskport::io::detail
