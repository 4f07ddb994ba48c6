// iocp_file.cpp — io::file on Windows: overlapped ReadFile/WriteFile on the completion port;
// open (CreateFileW) and sync (FlushFileBuffers) on the blocking pool.
//
// The step logic is file.cpp's: a transfer is a chain of steps, a short one continued by
// on_step on a worker, and the op's own completion runs once after the last. A step that the
// system finishes at once (a cached read, with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS) is still
// delivered through the completion queue, so the coroutine resumes or the callback runs as a
// task on a worker, never inside the call, as on POSIX.
#include <taskport/io/file.hpp>
#include <taskport/runtime.hpp>

#include "service.hpp"
#include "socket_types.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace taskport::io {
namespace detail {

namespace {

constexpr std::uint64_t max_offset = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
constexpr std::size_t max_step = std::size_t{1} << 30;  // one ReadFile/WriteFile: at most 1 GiB

OVERLAPPED* overlapped_of(operation* op) noexcept { return reinterpret_cast<OVERLAPPED*>(op->plat.overlapped); }

// open_mode's bits, checked; file_open_op keeps them in its `flags`.
int open_flags(open_mode m) {
    constexpr unsigned known = static_cast<unsigned>(open_mode::read | open_mode::write | open_mode::create |
                                                     open_mode::truncate | open_mode::append);
    const unsigned bits = static_cast<unsigned>(m);
    if (bits == 0 || (bits & ~known) != 0)
        throw std::invalid_argument(
            "taskport::io::file::open: open_mode must combine read, write, create, truncate, append");
    return static_cast<int>(bits);
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// One ReadFile or WriteFile of the rest of the transfer (iocp_issue_fn).
int issue_rw(operation* o) noexcept {
    auto* op = static_cast<file_rw_op*>(o);
    OVERLAPPED* ov = overlapped_of(op);
    const std::uint64_t at = op->offset + op->done;
    // Append mode: every write goes to the end (offset all ones), whatever its offset.
    const bool at_end = op->action == file_op_kind::write && op->core->append;
    ov->Offset = at_end ? 0xFFFFFFFFu : static_cast<DWORD>(at);
    ov->OffsetHigh = at_end ? 0xFFFFFFFFu : static_cast<DWORD>(at >> 32);
    const DWORD n = static_cast<DWORD>(std::min(op->len - op->done, max_step));
    HANDLE h = op->core->fd;
    const BOOL ok = op->action == file_op_kind::read ? ::ReadFile(h, op->buf + op->done, n, nullptr, ov)
                                                     : ::WriteFile(h, op->buf + op->done, n, nullptr, ov);
    if (ok) {
        op->plat.transferred = static_cast<std::uint32_t>(ov->InternalHigh);
        return 0;
    }
    const DWORD e = ::GetLastError();
    // ERROR_MORE_DATA (a message longer than the buffer) is a warning status: finished, and a
    // packet comes as after a success (none in skip mode).
    if (e == ERROR_MORE_DATA) {
        op->plat.error = ERROR_MORE_DATA;
        op->plat.transferred = static_cast<std::uint32_t>(ov->InternalHigh);
        return iocp_warning;
    }
    return static_cast<int>(e);
}

// A step's completion (perform of an overlapped file step).
bool finish_rw(operation* o) noexcept {
    auto* op = static_cast<file_rw_op*>(o);
    const int e = op->plat.error;
    if (e == ERROR_HANDLE_EOF || e == ERROR_BROKEN_PIPE) {  // at or past the end: 0 bytes
        op->ec.clear();
        op->bytes = 0;
        return true;
    }
    // A read on a handle opened for writing only, or the reverse: POSIX says EBADF.
    op->ec = e == ERROR_ACCESS_DENIED ? std::make_error_code(std::errc::bad_file_descriptor)
             : e                      ? win32_error(e)
                                      : std::error_code();
    op->bytes = e ? 0 : op->plat.transferred;
    return true;
}

}  // namespace

void file_core::release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        svc->iocp->forget(reinterpret_cast<std::uintptr_t>(fd));
        ::CloseHandle(fd);
        svc->release();
        delete this;
    }
}

// No fast path of its own on Windows: a cached ReadFile already finishes inside the call (skip
// mode), though its result still travels through the completion queue. The switch is kept so
// tests and benchmarks can call it on every system.
void set_file_fast_path(bool) noexcept {}

bool file_rw_op::read_cached() noexcept { return false; }

// ---- read_at / write_at / sync ----

bool file_rw_op::await_ready() noexcept {
    if (!core) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return true;
    }
    if (core->svc->stopped()) {  // its runtime is gone (or going): nothing may reach the port
        ec = operation_aborted();
        return true;
    }
    if (action != file_op_kind::sync) {
        if (!core->seekable) {
            ec = std::make_error_code(std::errc::invalid_seek);
            return true;
        }
        if (len == 0) {
            ec.clear();
            bytes = 0;
            return true;
        }
        if (offset > max_offset) {
            ec = std::make_error_code(std::errc::invalid_argument);
            return true;
        }
    }
    return false;
}

bool file_rw_op::start() noexcept {
    svc = core->svc;
    if (!enter_scope()) return false;
    final_fn = run_fn;
    run_fn = &file_rw_op::on_step;
    submit_step();
    return true;  // `this` may already be running elsewhere
}

void file_rw_op::start_detached() noexcept {
    if (await_ready()) {  // finished at once: still delivered as a task, never inline
        if (core) {
            svc = core->svc;
            complete(this);
        } else if (auto* ex = taskport::detail::current_executor()) {
            ex->schedule_accepted(this);
        } else {
            run();  // a closed file, off the runtime: nowhere else to run it
        }
        return;
    }
    svc = core->svc;
    final_fn = run_fn;
    run_fn = &file_rw_op::on_step;
    submit_step();
}

void file_rw_op::submit_step() noexcept {
    bytes = 0;
    ec.clear();
    if (action == file_op_kind::sync) {
        perform = &file_rw_op::perform_blocking;
        svc->pool.submit(this);
        return;
    }
    perform = &finish_rw;
    if (!svc->iocp->start(this, reinterpret_cast<std::uintptr_t>(core->fd), &issue_rw))
        complete(this);  // finished at once: on_step still runs as a task
}

// A step finished (bytes/ec are that step's). Continue a short transfer, or finish.
void file_rw_op::on_step(taskport::detail::task_node* t) noexcept {
    auto* op = static_cast<file_rw_op*>(t);
    op->done += op->bytes;
    const bool cancelled = op->cancelled.load(std::memory_order_seq_cst);
    if (!op->ec && op->action != file_op_kind::sync && op->done < op->len) {
        if (op->bytes == 0) {
            // A read at end of file is done; a write that moves nothing would loop forever.
            if (op->action == file_op_kind::write) op->ec = std::make_error_code(std::errc::io_error);
        } else if (cancelled) {
            op->ec = operation_aborted();
        } else {
            op->submit_step();
            return;
        }
    }
    op->bytes = op->done;
    op->run_fn = op->final_fn;
    op->run();
}

// The pool's step: only sync comes here on Windows.
bool file_rw_op::perform_blocking(operation* o) noexcept {
    auto* op = static_cast<file_rw_op*>(o);
    op->bytes = 0;
    if (!::FlushFileBuffers(op->core->fd)) {
        op->ec = win32_error(static_cast<int>(::GetLastError()));
        return true;
    }
    op->ec.clear();
    return true;
}

void file_rw_op::fail() const {
    const char* what = action == file_op_kind::read    ? "taskport::io::file::read_at"
                       : action == file_op_kind::write ? "taskport::io::file::write_at"
                                                       : "taskport::io::file::sync";
    throw std::system_error(ec, core ? std::string(what) + " " + in_quotes(core->path) : std::string(what));
}

// ---- open ----

file_open_op::file_open_op(service* s, std::filesystem::path p, int f) noexcept
    : coro_operation(&file_open_op::perform_open), path(std::move(p)), flags(f) {
    svc = s;
}

file_open_op::file_open_op(file_open_op&& o) noexcept
    : coro_operation(std::move(o)), path(std::move(o.path)), flags(o.flags),
      new_fd(std::exchange(o.new_fd, invalid_file)), seekable(o.seekable) {}

file_open_op::~file_open_op() {
    if (new_fd != invalid_file) ::CloseHandle(new_fd);  // opened, never handed out
}

bool file_open_op::start() noexcept {
    if (!enter_scope()) return false;
    svc->pool.submit(this);
    return true;
}

bool file_open_op::perform_open(operation* o) noexcept {
    auto* op = static_cast<file_open_op*>(o);
    const auto m = static_cast<open_mode>(op->flags);
    const bool w = has(m, open_mode::write) || has(m, open_mode::create) || has(m, open_mode::truncate) ||
                   has(m, open_mode::append);
    DWORD access = 0;
    if (has(m, open_mode::read)) access |= GENERIC_READ;
    if (w) access |= GENERIC_WRITE;  // append: each write asks for the end (issue_rw)
    const bool create = has(m, open_mode::create), trunc = has(m, open_mode::truncate);
    const DWORD disposition = create && trunc ? CREATE_ALWAYS
                              : create        ? OPEN_ALWAYS
                              : trunc         ? TRUNCATE_EXISTING
                                              : OPEN_EXISTING;
    // Share everything, as POSIX does not lock: another open, a rename or a delete may proceed.
    HANDLE h = ::CreateFileW(op->path.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                             nullptr, disposition, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED, nullptr);
    if (h == INVALID_HANDLE_VALUE) {
        op->ec = win32_error(static_cast<int>(::GetLastError()));
        return true;
    }
    op->new_fd = h;
    op->seekable = ::GetFileType(h) == FILE_TYPE_DISK;
    op->ec.clear();
    return true;
}

file file_open_op::await_resume() {
    if (ec) throw std::system_error(ec, "taskport::io::file::open " + in_quotes(path.string()));
    svc->iocp->associate(reinterpret_cast<std::uintptr_t>(new_fd));  // throws; new_fd closed by ~
    file f;
    f.core_ = new file_core(svc, new_fd, seekable, path.string());
    f.core_->append = has(static_cast<open_mode>(flags), open_mode::append);
    new_fd = invalid_file;
    svc->add_ref();  // released with the handle: the service outlives every open file
    return f;
}

}  // namespace detail

// ---- file ----

detail::file_open_op file::open(runtime& rt, const std::filesystem::path& path, open_mode mode) {
    int flags = detail::open_flags(mode);
    return detail::file_open_op(&detail::service_of(rt), path, flags);
}

std::uint64_t file::size() const {
    if (!core_)
        throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), "taskport::io::file::size");
    LARGE_INTEGER n{};
    if (!::GetFileSizeEx(core_->fd, &n))
        throw std::system_error(detail::win32_error(static_cast<int>(::GetLastError())),
                                "taskport::io::file::size " + detail::in_quotes(core_->path));
    return static_cast<std::uint64_t>(n.QuadPart);
}

void file::close() noexcept {
    if (core_) std::exchange(core_, nullptr)->release();
}

}  // namespace taskport::io
