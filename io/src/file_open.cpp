// file_open.cpp — io::file::open on every system: on io_uring an OPENAT request (uring_backend.cpp,
// the same semantics), else the model's native_open (file_model.hpp) run on the blocking pool as a detachable call (blocking_pool.hpp) with its own heap context, so
// with_timeout, cancel and shutdown never wait for an open that does not return (a FUSE, NFS or
// SMB server that does not answer): the operation completes at once, and the late open is undone
// by the call's destructor: its handle is closed and, if it created the file, the file is removed
// (native_discard), so a cancelled open leaves nothing behind. (A truncation it made of a file
// that existed cannot be undone.)
#include <taskport/io/file.hpp>

#include "blocking_pool.hpp"
#include "file_model.hpp"
#include "service.hpp"
#include "uring_backend.hpp"

#include <filesystem>
#include <system_error>
#include <utility>

namespace taskport::io::detail {

namespace {

struct open_call final : blocking_call {
    open_call(std::filesystem::path p, int f) : path(std::move(p)), flags(f) {}
    ~open_call() override {
        if (fd != invalid_file) native_discard(fd, path, created);  // opened after its operation had completed without it
    }
    const char* name() const noexcept override { return "open"; }
    void run() noexcept override { ec = native_open(path, flags, fd, seekable, created); }
    void deliver(operation* o) noexcept override {
        auto* op = static_cast<file_open_op*>(o);
        op->ec = ec;
        op->new_fd = std::exchange(fd, invalid_file);
        op->seekable = seekable;
        op->created = std::exchange(created, false);
    }
    std::filesystem::path path;
    int flags;
    native_file fd = invalid_file;
    bool seekable = true;
    bool created = false;  // this open made the file
    std::error_code ec;
};

}  // namespace

bool file_open_op::start() noexcept {
    if (!enter_scope()) return false;
    // io_uring: an OPENAT SQE, same semantics, no hand-off to a pool thread (uring_backend.hpp).
    if (svc->uring && svc->uring.get() == svc->completion && svc->uring->open(this)) return true;
    submit_detachable(svc->pool, this, [&] { return new open_call(path, flags); });
    return true;
}

// The fallback of start(): the open on the operation's own fields.
bool file_open_op::perform_open(operation* o) noexcept {
    auto* op = static_cast<file_open_op*>(o);
    op->ec = native_open(op->path, op->flags, op->new_fd, op->seekable, op->created);
    return true;
}

}  // namespace taskport::io::detail
