// file_posix.cpp — the POSIX file model (file_model.hpp): a read first copies what the page
// cache holds, on the calling worker (preadv2 RWF_NOWAIT: the fast path, as for sockets); each
// read step beyond that, and each write or sync, goes to io_uring when the service has it, else
// to the blocking pool (pread/pwrite/fsync on a pool thread). The open never waits for a peer
// (O_NONBLOCK, then fstat; see native_open). The steps, open and close are file_core.cpp's.
#include <taskport/io/file.hpp>
#include <taskport/detail/environment.hpp>

#include "file_model.hpp"
#include "service.hpp"

#include <atomic>
#include <cerrno>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

namespace taskport::io {
namespace detail {

namespace {

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

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

std::uint64_t max_file_offset() noexcept { return static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()); }

int native_create_flags(int flags) noexcept { return (flags | O_CLOEXEC | O_NOCTTY | O_EXCL) & ~O_NONBLOCK; }

int native_open_flags(open_mode m) noexcept {
    const bool w = has(m, open_mode::write) || has(m, open_mode::create) ||
                   has(m, open_mode::truncate) || has(m, open_mode::append);
    const bool r = has(m, open_mode::read);
    int f = O_CLOEXEC | (r && w ? O_RDWR : w ? O_WRONLY : O_RDONLY);
    if (has(m, open_mode::create)) f |= O_CREAT;
    if (has(m, open_mode::truncate)) f |= O_TRUNC;
    if (has(m, open_mode::append)) f |= O_APPEND;
    return f;
}

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
//
// With O_CREAT it first tries O_CREAT | O_EXCL, so that it knows whether it made the file
// (created: the late open of a cancelled operation removes it again, native_discard); that step
// has no O_NONBLOCK, since what it opens is always the new regular file it made, and so needs no
// check after it (no statx, fcntl or lseek: native_open_finish returns at once). When the
// file exists it opens it without O_CREAT. Were the name gone by then (removed in between, or a
// symbolic link to nothing, which O_EXCL refuses), a plain O_CREAT open decides, as it would
// have alone; whether that one made the file is not known, so created stays false.
std::error_code native_open(const std::filesystem::path& path, int flags, native_file& fd, bool& seekable,
                            bool& created) noexcept {
    const int base = flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    auto open_as = [&](int fl) {
        int r;
        do {
            r = ::open(path.c_str(), fl, 0666);
        } while (r < 0 && errno == EINTR);
        return r;
    };
    created = false;
    int f;
    if ((flags & O_CREAT) != 0) {
        f = open_as(native_create_flags(flags));
        if (f >= 0) {
            created = true;
        } else if (errno == EEXIST) {
            f = open_as(base & ~O_CREAT);
            if (f < 0 && errno == ENOENT) f = open_as(base);
        }
    } else {
        f = open_as(base);
    }
    if (f < 0) return last_error();
    std::error_code ec = native_open_finish(f, path, created, seekable);
    if (ec) {
        created = false;
        return ec;
    }
    fd = f;
    return {};
}

// The type comes from statx with AT_STATX_DONT_SYNC (the attributes cached by the open just made:
// NFS or FUSE is not asked again, so this never waits for a server; a file's type never changes);
// fstat where statx is refused (a seccomp filter, an old kernel).
std::error_code native_open_finish(native_file f, const std::filesystem::path& path, bool created,
                                   bool& seekable) noexcept {
    if (created) {  // made by the O_CREAT | O_EXCL step: a regular file, opened without O_NONBLOCK
        seekable = true;
        return {};
    }
    mode_t type = 0;
    std::error_code ec;
#if defined(STATX_TYPE) && defined(AT_STATX_DONT_SYNC)
    struct statx sx {};
    if (::statx(f, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &sx) == 0 && (sx.stx_mask & STATX_TYPE)) {
        type = sx.stx_mode & S_IFMT;
    } else
#endif
    {
        struct stat st {};
        if (::fstat(f, &st) < 0)
            ec = last_error();
        else
            type = st.st_mode & S_IFMT;
    }
    if (ec) {
    } else if (S_ISDIR(type)) {
        ec = std::make_error_code(std::errc::is_a_directory);
    } else if (S_ISREG(type) || S_ISBLK(type)) {
        const int fl = ::fcntl(f, F_GETFL);
        if (fl < 0 || ::fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) ec = last_error();
    }
    if (ec) {
        native_discard(f, path, created);
        return ec;
    }
    // A regular file always has positions; ask only about anything else (a device, a FIFO).
    seekable = S_ISREG(type) || !(::lseek(f, 0, SEEK_CUR) < 0 && errno == ESPIPE);
    return {};
}

void native_close(native_file fd) noexcept { ::close(fd); }

void native_discard(native_file fd, const std::filesystem::path& path, bool created) noexcept {
    struct stat mine {}, named {};
    if (created && ::fstat(fd, &mine) == 0 && ::lstat(path.c_str(), &named) == 0 && mine.st_dev == named.st_dev &&
        mine.st_ino == named.st_ino)
        ::unlink(path.c_str());
    ::close(fd);
}

file_core* adopt_file(service* svc, native_file fd, bool seekable, const std::filesystem::path& path, int) {
    return new file_core(svc, fd, seekable, path.string());
}

std::error_code native_size(native_file fd, std::uint64_t& size) noexcept {
    struct stat st {};
    if (::fstat(fd, &st) < 0) return last_error();
    size = static_cast<std::uint64_t>(st.st_size);
    return {};
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

}  // namespace detail
}  // namespace taskport::io
