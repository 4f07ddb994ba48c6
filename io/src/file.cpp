// file.cpp — io::file: a read first copies what the page cache holds, on the calling worker
// (preadv2 RWF_NOWAIT: the fast path, as for sockets); each read step beyond that, and each
// write, goes to io_uring when the service has it, else to the blocking pool (pread/pwrite on a
// pool thread); open always goes to the pool. A short
// transfer is continued by on_step on a worker, so with_timeout and future::cancel see one
// operation throughout, parked in whichever place its current step is.
#include <taskport/io/file.hpp>
#include <taskport/detail/environment.hpp>
#include <taskport/runtime.hpp>

#include "service.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

namespace taskport::io {
namespace detail {

namespace {

constexpr std::uint64_t max_offset = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

int open_flags(open_mode m) {
    constexpr unsigned known = static_cast<unsigned>(open_mode::read | open_mode::write | open_mode::create |
                                                     open_mode::truncate | open_mode::append);
    const unsigned bits = static_cast<unsigned>(m);
    if (bits == 0 || (bits & ~known) != 0)
        throw std::invalid_argument(
            "taskport::io::file::open: open_mode must combine read, write, create, truncate, append");
    const bool w = has(m, open_mode::write) || has(m, open_mode::create) ||
                   has(m, open_mode::truncate) || has(m, open_mode::append);
    const bool r = has(m, open_mode::read);
    int f = O_CLOEXEC | (r && w ? O_RDWR : w ? O_WRONLY : O_RDONLY);
    if (has(m, open_mode::create)) f |= O_CREAT;
    if (has(m, open_mode::truncate)) f |= O_TRUNC;
    if (has(m, open_mode::append)) f |= O_APPEND;
    return f;
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// set_file_fast_path: -1 until first read from the environment, then 0 (off) or 1 (on).
std::atomic<int> fast_path{-1};

bool fast_path_on() noexcept {
    int v = fast_path.load(std::memory_order_relaxed);
    if (v < 0) {
        v = taskport::detail::env_file_fast_path() ? 1 : 0;
        int unread = -1;  // a concurrent set_file_fast_path() wins
        if (!fast_path.compare_exchange_strong(unread, v, std::memory_order_relaxed)) v = unread;
    }
    return v != 0;
}

}  // namespace

void set_file_fast_path(bool on) noexcept { fast_path.store(on ? 1 : 0, std::memory_order_relaxed); }

void file_core::release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        ::close(fd);  // on Linux the descriptor is released even when close reports EINTR
        service* s = svc;
        delete this;
        s->release();  // last: a file that outlived its runtime may hold the service's last reference
    }
}

// ---- read_at / write_at / sync ----

bool file_rw_op::await_ready() noexcept {
    if (!core) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return true;
    }
    if (core->svc->stopped()) {  // its runtime is gone (or going): nothing may reach the backends
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
        if (action == file_op_kind::read && read_cached()) return true;
    }
    return false;
}

// The fast path of a read, as for sockets: copy what the page cache already holds, here and
// now, with preadv2(RWF_NOWAIT), which never waits for the device. True when that finished the
// read (buffer full, end of file, or an error); false when the rest must go to io_uring or the
// pool (not cached, or RWF_NOWAIT unsupported there): `done` then says how much was copied. Bound
// by the same cooperative budget as socket fast paths, so a task reading a cached file still
// lets others run.
bool file_rw_op::read_cached() noexcept {
#if defined(RWF_NOWAIT)
    if (!fast_path_on() || !take_inline_budget()) return false;
    while (done < len) {
        iovec v{buf + done, len - done};
        ssize_t r = ::preadv2(core->fd, &v, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
        if (r > 0) {
            done += static_cast<std::size_t>(r);
            continue;
        }
        if (r == 0) break;  // end of file
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS) return false;
        ec = last_error();
        bytes = done;
        return true;
    }
    ec.clear();
    bytes = done;
    return true;
#else
    return false;
#endif
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
    if (uring_backend* u = svc->uring.get()) {
        switch (action) {
            case file_op_kind::read:
                u->read_at(this, core->fd, buf + done, len - done, offset + done);
                break;
            case file_op_kind::write:
                u->write_at(this, core->fd, buf + done, len - done, offset + done);
                break;
            case file_op_kind::sync: u->fsync(this, core->fd); break;
        }
        return;
    }
    perform = &file_rw_op::perform_blocking;
    svc->pool.submit(this);
}

// A step finished (bytes/ec are that step's). Continue a short transfer, or finish.
void file_rw_op::on_step(taskport::detail::task_node* t) noexcept {
    auto* op = static_cast<file_rw_op*>(t);
    op->done += op->bytes;
    const bool cancelled = op->cancelled.load(std::memory_order_seq_cst);
    if (op->ec == std::errc::interrupted && !cancelled) {
        op->submit_step();
        return;
    }
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

bool file_rw_op::perform_blocking(operation* o) noexcept {
    auto* op = static_cast<file_rw_op*>(o);
    const int fd = op->core->fd;
    op->bytes = 0;
    if (op->action == file_op_kind::sync) {
        while (::fsync(fd) < 0) {
            if (errno == EINTR) continue;
            op->ec = last_error();
            return true;
        }
        op->ec.clear();
        return true;
    }
    std::size_t moved = 0;
    while (op->done + moved < op->len) {
        const std::size_t at = op->done + moved;
        const auto pos = static_cast<off_t>(op->offset + at);
        ssize_t r = op->action == file_op_kind::read ? ::pread(fd, op->buf + at, op->len - at, pos)
                                                     : ::pwrite(fd, op->buf + at, op->len - at, pos);
        if (r > 0) {
            moved += static_cast<std::size_t>(r);
            continue;
        }
        if (r == 0) break;  // end of file; on_step decides what a write of 0 means
        if (errno == EINTR) continue;
        op->ec = last_error();
        op->bytes = moved;
        return true;
    }
    op->ec.clear();
    op->bytes = moved;
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
      new_fd(std::exchange(o.new_fd, -1)), seekable(o.seekable) {}

file_open_op::~file_open_op() {
    if (new_fd >= 0) ::close(new_fd);  // opened, never handed out (e.g. its task was dropped)
}

// start() and perform_open(): file_open.cpp (the open itself, on the blocking pool).

file file_open_op::await_resume() {
    if (ec) throw std::system_error(ec, "taskport::io::file::open " + in_quotes(path.string()));
    file f;
    f.core_ = new file_core(svc, new_fd, seekable, path.string());
    new_fd = -1;
    svc->add_ref();  // released with the descriptor: the service outlives every open file (as on IOCP)
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
    struct stat st {};
    if (::fstat(core_->fd, &st) < 0)
        throw std::system_error(detail::last_error(), "taskport::io::file::size " + detail::in_quotes(core_->path));
    return static_cast<std::uint64_t>(st.st_size);
}

void file::close() noexcept {
    if (core_) std::exchange(core_, nullptr)->release();
}

}  // namespace taskport::io
