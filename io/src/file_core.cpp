// file_core.cpp — io::file written once, over the per-model primitives of file_model.hpp.
//
// A read_at/write_at is a chain of steps: await_ready checks what needs no system (closed file,
// runtime gone, empty buffer, bad offset) and tries the model's fast path; then each step is
// issued by the model's submit_step and completes through the completion queue into on_step,
// which continues a short transfer, or finishes the op by restoring its own completion
// (final_fn: coroutine resume, callback, with_timeout's) and running it once. So with_timeout
// and future::cancel see one operation throughout, parked in whichever place its current step is,
// and every completion runs as a task on a worker, never inside the call.
#include <taskport/io/file.hpp>
#include <taskport/runtime.hpp>

#include "file_model.hpp"
#include "service.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace taskport::io {
namespace detail {

namespace {

int checked_open_flags(open_mode m) {
    constexpr unsigned known = static_cast<unsigned>(open_mode::read | open_mode::write | open_mode::create |
                                                     open_mode::truncate | open_mode::append);
    const unsigned bits = static_cast<unsigned>(m);
    if (bits == 0 || (bits & ~known) != 0)
        throw std::invalid_argument(
            "taskport::io::file::open: open_mode must combine read, write, create, truncate, append");
    return native_open_flags(m);
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

void file_core::release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        service* s = svc;
        if (s->completion) s->completion->forget(handle_value(fd));
        native_close(fd);  // Linux: the descriptor is released even when close reports EINTR
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
        if (offset > max_file_offset()) {
            ec = std::make_error_code(std::errc::invalid_argument);
            return true;
        }
        if (action == file_op_kind::read && read_cached()) return true;
    }
    return false;
}

// From here on_step runs the steps; the op's own completion waits in final_fn.
void file_rw_op::begin_steps() noexcept {
    final_fn = run_fn;
    run_fn = &file_rw_op::on_step;
    submit_step();
}

bool file_rw_op::start() noexcept {
    svc = core->svc;
    if (!enter_scope()) return false;
    begin_steps();
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
    begin_steps();
}

// One step: on the completion backend when there is one and it does this kind of step, else on
// the blocking pool (the model's perform_blocking). It completes into on_step.
void file_rw_op::submit_step() noexcept {
    bytes = 0;
    ec.clear();
    if (completion_backend* c = svc->completion; c && c->submit_file_step(this)) return;
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

void file_rw_op::fail() const {
    const char* what = action == file_op_kind::read    ? "taskport::io::file::read_at"
                       : action == file_op_kind::write ? "taskport::io::file::write_at"
                                                       : "taskport::io::file::sync";
    throw std::system_error(ec, core ? std::string(what) + " " + in_quotes(core->path) : std::string(what));
}

// ---- open: the operation (file_open.cpp: the call on the blocking pool) ----

file_open_op::file_open_op(service* s, std::filesystem::path p, int f) noexcept
    : coro_operation(&file_open_op::perform_open), path(std::move(p)), flags(f) {
    svc = s;
}

file_open_op::file_open_op(file_open_op&& o) noexcept
    : coro_operation(std::move(o)), path(std::move(o.path)), flags(o.flags),
      new_fd(std::exchange(o.new_fd, invalid_file)), seekable(o.seekable), created(o.created) {}

file_open_op::~file_open_op() {
    if (new_fd != invalid_file) native_discard(new_fd, path, created);  // opened, never handed out (its task was dropped)
}

file file_open_op::await_resume() {
    if (ec) throw std::system_error(ec, "taskport::io::file::open " + in_quotes(path.string()));
    file f;
    f.core_ = adopt_file(svc, new_fd, seekable, path, flags);  // throws: new_fd closed by ~
    new_fd = invalid_file;
    svc->add_ref();  // released with the handle: the service outlives every open file
    return f;
}

}  // namespace detail

// ---- file ----

detail::file_open_op file::open(runtime& rt, const std::filesystem::path& path, open_mode mode) {
    int flags = detail::checked_open_flags(mode);
    return detail::file_open_op(&detail::service_of(rt), path, flags);
}

std::uint64_t file::size() const {
    if (!core_)
        throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), "taskport::io::file::size");
    std::uint64_t n = 0;
    if (std::error_code ec = detail::native_size(core_->fd, n))
        throw std::system_error(ec, "taskport::io::file::size " + detail::in_quotes(core_->path));
    return n;
}

void file::close() noexcept {
    if (core_) std::exchange(core_, nullptr)->release();
}

}  // namespace taskport::io
