// file_open.cpp — io::file::open on POSIX: the open(2) call, run on the blocking pool as a
// detachable call (blocking_pool.hpp) with its own heap context, so with_timeout, cancel and
// shutdown never wait for an open that does not return (a FUSE or NFS server that does not
// answer): the operation completes at once, and the descriptor the late open returns is closed.
//
// Invariant: an open never waits for a peer. It is O_NONBLOCK | O_CLOEXEC | O_NOCTTY, then fstat
// says what was opened:
//  - a regular file or block device: O_NONBLOCK is cleared again (fcntl), so reads and writes
//    behave as on any regular file on every system;
//  - a directory: refused with is_a_directory (EISDIR) — a file is for bytes at positions, and
//    Linux would open a directory for reading only to fail every read_at with EISDIR;
//  - a FIFO, socket or character device: kept, with O_NONBLOCK left set. The open did not wait
//    (a FIFO with no writer opens for reading at once; for writing with no reader it fails with
//    no_such_device_or_address, ENXIO), and no later call blocks a pool thread on it: a FIFO,
//    socket or terminal has no positions (read_at/write_at fail with invalid_seek), a device with
//    positions (/dev/null, /dev/zero) reads and writes as usual, and one that would have to wait
//    fails with resource_unavailable_try_again (EAGAIN) instead.
#include <taskport/io/file.hpp>

#include "blocking_pool.hpp"
#include "service.hpp"

#include <cerrno>
#include <new>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace taskport::io::detail {

namespace {

std::error_code errno_code() noexcept { return {errno, std::system_category()}; }

// open(2) as the file comment says. On success fd and seekable are set and the code is empty.
std::error_code open_no_wait(const char* path, int flags, int& fd, bool& seekable) noexcept {
    int f;
    do {
        f = ::open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666);
    } while (f < 0 && errno == EINTR);
    if (f < 0) return errno_code();
    struct stat st {};
    std::error_code ec;
    if (::fstat(f, &st) < 0) {
        ec = errno_code();
    } else if (S_ISDIR(st.st_mode)) {
        ec = std::make_error_code(std::errc::is_a_directory);
    } else if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
        const int fl = ::fcntl(f, F_GETFL);
        if (fl < 0 || ::fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) ec = errno_code();
    }
    if (ec) {
        ::close(f);
        return ec;
    }
    seekable = !(::lseek(f, 0, SEEK_CUR) < 0 && errno == ESPIPE);
    fd = f;
    return {};
}

struct open_call final : blocking_call {
    open_call(std::string p, int f) : path(std::move(p)), flags(f) {}
    ~open_call() override {
        if (fd >= 0) ::close(fd);  // opened after its operation had completed without it
    }
    const char* name() const noexcept override { return "open"; }
    void run() noexcept override { ec = open_no_wait(path.c_str(), flags, fd, seekable); }
    void deliver(operation* o) noexcept override {
        auto* op = static_cast<file_open_op*>(o);
        op->ec = ec;
        op->new_fd = std::exchange(fd, -1);
        op->seekable = seekable;
    }
    std::string path;
    int flags;
    int fd = -1;
    bool seekable = true;
    std::error_code ec;
};

}  // namespace

bool file_open_op::start() noexcept {
    if (!enter_scope()) return false;
    open_call* call = nullptr;
    try {
        call = new open_call(path.string(), flags);
    } catch (...) {  // std::bad_alloc
        // No memory for its own context: the open runs on the operation itself (not
        // cancellable while it runs, but it never waits for a peer either).
        svc->pool.submit(this);
        return true;
    }
    svc->pool.submit(this, call);
    return true;
}

// The fallback of start(): the open on the operation's own fields.
bool file_open_op::perform_open(operation* o) noexcept {
    auto* op = static_cast<file_open_op*>(o);
    op->ec = open_no_wait(op->path.c_str(), op->flags, op->new_fd, op->seekable);
    return true;
}

}  // namespace taskport::io::detail
