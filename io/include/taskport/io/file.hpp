// taskport/io/file.hpp — files: open, positional reads and writes, sync; each one a task.
//
//   io::file f = co_await io::file::open(rt, "data.bin", io::open_mode::read);
//   std::size_t n = co_await f.read_at(0, buf);          // < buf.size() only at end of file
//   io::file out = co_await io::file::open(rt, "out.bin", io::open_mode::create | io::open_mode::truncate);
//   co_await out.write_at(0, bytes);                     // writes all of it
//   co_await out.sync();
//
// Reads, writes and opens go through io_uring when the runtime uses it (an open is an
// IORING_OP_OPENAT request where the kernel has it), else through the blocking pool
// (open/pread/pwrite on a pool thread). Either way the
// coroutine resumes (or the callback runs) as a task on a worker. Coroutine forms throw
// std::system_error carrying the OS's error; callback forms get the std::error_code.
//
// A file's operations share its descriptor: close() (or destruction) lets go of the file's
// hold, and the descriptor is closed when the last pending operation has finished too, so an
// operation in flight never reads or writes a descriptor number that a later open() reused.
// The buffer must outlive the operation. Moving a file with operations in flight is safe. A file
// that outlives its runtime can be closed; its other operations fail with operation_aborted (a
// callback then runs inside the call: no worker is left).
//
// Cancelling (future::cancel, with_timeout) aborts a transfer between its steps or while its
// step waits (queued on the pool, or cancellable in io_uring); a step already under way finishes
// first. Either way the operation completes exactly once.
//
// Positions are the point: a FIFO, socket or terminal opens, but read_at/write_at on it fail
// with invalid_seek (ESPIPE), as pread does — with io_uring too, so both backends agree.
#pragma once

#include <taskport/io/detail/operation.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport::io {

// How to open a file; combine with |. create, truncate and append imply write access.
enum class open_mode : unsigned {
    read = 1u << 0,        // O_RDONLY, or O_RDWR with write
    write = 1u << 1,       // O_WRONLY, or O_RDWR with read; the file must exist unless create
    read_write = read | write,
    create = 1u << 2,      // O_CREAT: make it (mode 0666 less the umask) if it does not exist
    truncate = 1u << 3,    // O_TRUNC: cut it to length 0
    append = 1u << 4,      // O_APPEND: every write goes to the end, whatever its offset
};

/// Both sets of flags (`io::open_mode::create | io::open_mode::truncate`).
constexpr open_mode operator|(open_mode a, open_mode b) noexcept {
    return static_cast<open_mode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
/// The flags in both (test with `(m & flag) == flag`).
constexpr open_mode operator&(open_mode a, open_mode b) noexcept {
    return static_cast<open_mode>(static_cast<unsigned>(a) & static_cast<unsigned>(b));
}
// True when every flag of `flags` is in m.
constexpr bool has(open_mode m, open_mode flags) noexcept { return (m & flags) == flags; }

class file;

namespace detail {

// The open descriptor, shared by a file and its operations in flight (see the file comment).
struct file_core {
    file_core(service* s, native_file f, bool seek, std::string p) noexcept
        : svc(s), fd(f), seekable(seek), path(std::move(p)) {}
    void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept;  // the last one closes fd (io/src/file_core.cpp)

    service* svc;    // this holds a reference to it (taken by open, dropped by the last release)
    native_file fd;  // int; a HANDLE on Windows
    bool seekable;                      // false: a FIFO, socket or terminal (no positions)
    bool append = false;                // open_mode::append (Windows: writes are sent to the end)
    std::string path;                   // for error messages
    std::atomic<std::uint32_t> refs{1};  // the file's hold + one per operation object
};

enum class file_op_kind : unsigned char { read, write, sync };

// read_at / write_at / sync. A transfer may take several steps (a short read or write is
// continued); each step is one io_uring SQE or one pool job, and the op's own completion
// (coroutine resume, callback, with_timeout's) runs once, after the last step.
struct file_rw_op : coro_operation {
    file_rw_op(file_core* c, file_op_kind k, std::byte* b, std::size_t n, std::uint64_t off) noexcept
        : core(c), buf(b), len(n), offset(off), action(k) {
        if (core) core->add_ref();
    }
    // Before it starts only.
    file_rw_op(file_rw_op&& o) noexcept
        : coro_operation(std::move(o)), core(std::exchange(o.core, nullptr)), buf(o.buf), len(o.len),
          offset(o.offset), action(o.action) {}
    ~file_rw_op() {
        if (core) core->release();
    }

    bool await_ready() noexcept;  // true when finished now: closed file, empty buffer, bad offset
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        capture(h);
        return start();
    }
    std::size_t await_resume() const {
        if (ec) fail();
        return bytes;
    }

    // Written once (io/src/file_core.cpp):
    bool start() noexcept;           // true if under way; false if it finished at once
    void start_detached() noexcept;  // callback forms: the completion always runs as a task
    [[noreturn]] void fail() const;
    void begin_steps() noexcept;
    void submit_step() noexcept;     // one step: the completion backend, else the blocking pool
    static void on_step(taskport::detail::task_node* t) noexcept;
    // Each I/O model's (io/src/file_model.hpp):
    bool read_cached() noexcept;     // the fast path of a read
    static bool perform_blocking(operation* o) noexcept;  // one step on the blocking pool

    file_core* core;
    std::byte* buf;
    std::size_t len;
    std::uint64_t offset;
    std::size_t done = 0;  // bytes moved by the steps so far
    file_op_kind action;
    run_fn_t final_fn = nullptr;  // the op's own completion, while on_step runs the steps
};

struct file_sync_op : file_rw_op {
    explicit file_sync_op(file_core* c) noexcept : file_rw_op(c, file_op_kind::sync, nullptr, 0, 0) {}
    void await_resume() const {
        if (ec) fail();
    }
};

struct file_open_op : coro_operation {
    file_open_op(service* s, std::filesystem::path p, int flags) noexcept;
    file_open_op(file_open_op&& o) noexcept;
    ~file_open_op();

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        capture(h);
        return start();
    }
    file await_resume();

    bool start() noexcept;
    static bool perform_open(operation* o) noexcept;

    std::filesystem::path path;
    int flags;
    native_file new_fd = invalid_file;  // opened but not yet handed out (undone by the destructor)
    bool seekable = true;
    bool created = false;  // new_fd's open made the file: the destructor removes it again
};

// Reads first try to copy what the page cache holds, on the calling worker (file.cpp's
// read_cached). Off: every read goes to io_uring or the blocking pool — for tests of those paths
// and for benchmarks of the backends themselves. Initially on unless the environment has
// TASKPORT_FILE_FAST_PATH=0. Process-wide; any thread.
void set_file_fast_path(bool on) noexcept;


}  // namespace detail

/// A file opened for positional reads and writes, each one an operation that completes as a
/// task on a worker (io_uring or the blocking pool). Move-only. Threads: several operations
/// may be in flight on one file at once (each names its own offset); close() may be called
/// from any thread. Failures are std::system_error (coroutine forms) or std::error_code
/// (callback forms) carrying the OS's error.
class file {
public:
    using native_handle_type = detail::native_file;  // int; a HANDLE on Windows

    file() noexcept = default;
    /// Takes over o's descriptor (and its pending operations); o is left closed.
    file(file&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
    /// Closes this file, then takes over o's descriptor; o is left closed.
    file& operator=(file&& o) noexcept {
        if (this != &o) {
            close();
            core_ = std::exchange(o.core_, nullptr);
        }
        return *this;
    }
    ~file() { close(); }

    // Opens path (O_CLOEXEC) on the runtime's blocking pool; with TASKPORT_URING_OPEN=1 under
    // io_uring, an OPENAT request instead (docs/io.md says what that changes). Throws std::system_error naming
    // the path (no_such_file_or_directory, permission_denied, ...); std::invalid_argument for
    // an empty mode. A cancel or with_timeout completes the open at once even while the call is
    // in the kernel, on every system; the late open is then undone (io/src/file_open.cpp): its
    // handle is closed and, if it created the file (open_mode::create, no file there before),
    // the file is removed, so an open that did not deliver a file leaves none behind (a
    // truncation of an existing file cannot be undone). The same holds for an open whose file
    // was never taken (its awaiting task destroyed first). POSIX:
    // never waits for a peer (O_NONBLOCK, then fstat; io/src/file_posix.cpp): a directory fails
    // with is_a_directory; a FIFO, socket or character device opens and stays non-blocking (a
    // FIFO for writing with no reader fails with no_such_device_or_address).
    static detail::file_open_op open(runtime& rt, const std::filesystem::path& path, open_mode mode);

    // Reads from offset until buf is full or the file ends; returns the bytes read (fewer than
    // buf.size() only at end of file, 0 at or past it, 0 for an empty buf).
    detail::file_rw_op read_at(std::uint64_t offset, std::span<std::byte> buf) noexcept {
        return {core_, detail::file_op_kind::read, buf.data(), buf.size(), offset};
    }
    // Writes all of buf at offset (at the end, with open_mode::append); returns buf.size().
    detail::file_rw_op write_at(std::uint64_t offset, std::span<const std::byte> buf) noexcept {
        return {core_, detail::file_op_kind::write, const_cast<std::byte*>(buf.data()), buf.size(), offset};
    }
    // fsync: what was written reaches the device.
    detail::file_sync_op sync() noexcept { return detail::file_sync_op(core_); }

    // Callback forms: f(std::error_code, std::size_t) runs as a task on a worker, never inside
    // this call (except on a closed file, called off the runtime's workers: then there is no
    // runtime to run it). The buffer must outlive the operation; the file object need not.
    template <class F>
    void async_read_at(std::uint64_t offset, std::span<std::byte> buf, F&& f) {
        (new detail::callback_op<detail::file_rw_op, std::decay_t<F>>(
             std::forward<F>(f), core_, detail::file_op_kind::read, buf.data(), buf.size(), offset))
            ->start_detached();
    }
    /// Callback form of write_at: f(std::error_code, std::size_t) runs as a task on a worker.
    /// The buffer must outlive the operation; the file object need not.
    template <class F>
    void async_write_at(std::uint64_t offset, std::span<const std::byte> buf, F&& f) {
        (new detail::callback_op<detail::file_rw_op, std::decay_t<F>>(
             std::forward<F>(f), core_, detail::file_op_kind::write, const_cast<std::byte*>(buf.data()),
             buf.size(), offset))
            ->start_detached();
    }

    // The current size in bytes (fstat). Throws std::system_error.
    std::uint64_t size() const;
    // Lets go of the descriptor (closed once no operation uses it). Idempotent.
    void close() noexcept;
    /// True until close() (or a move from this object).
    bool is_open() const noexcept { return core_ != nullptr; }
    /// The descriptor (a HANDLE on Windows), or the invalid value when closed. Do not close it.
    native_handle_type native_handle() const noexcept { return core_ ? core_->fd : detail::invalid_file; }

private:
    friend struct detail::file_open_op;
    detail::file_core* core_ = nullptr;
};

}  // namespace taskport::io
