// iocp_file.cpp — the Windows file model (file_model.hpp): overlapped ReadFile/WriteFile on the
// completion port; sync (FlushFileBuffers) and open (CreateFileW) on the blocking pool, the open
// as a detachable call like on POSIX. The steps, open and close are file_core.cpp's: a step
// that the system finishes at once (a cached read, with FILE_SKIP_COMPLETION_PORT_ON_SUCCESS)
// is still delivered through the completion queue, so the coroutine resumes or the callback
// runs as a task on a worker, never inside the call, as on POSIX.
#include <taskport/io/file.hpp>
#include <taskport/runtime.hpp>

#include "file_model.hpp"
#include "service.hpp"
#include "socket_types.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace taskport::io {
namespace detail {

namespace {

constexpr std::size_t max_step = std::size_t{1} << 30;  // one ReadFile/WriteFile: at most 1 GiB

OVERLAPPED* overlapped_of(operation* op) noexcept { return reinterpret_cast<OVERLAPPED*>(op->plat.overlapped); }

}  // namespace

// One ReadFile or WriteFile of the rest of the transfer (iocp_issue_fn).
int issue_file_step(operation* o) noexcept {
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
bool finish_file_step(operation* o) noexcept {
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

// No fast path of its own on Windows: a cached ReadFile already finishes inside the call (skip
// mode), though its result still travels through the completion queue. The switch is kept so
// tests and benchmarks can call it on every system.
void set_file_fast_path(bool) noexcept {}

bool file_rw_op::read_cached() noexcept { return false; }

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

// ---- open, size ----

std::uint64_t max_file_offset() noexcept { return static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()); }

// open_mode's bits as they are: native_open reads them.
int native_open_flags(open_mode m) noexcept { return static_cast<int>(m); }

std::error_code native_open(const std::filesystem::path& path, int flags, native_file& fd, bool& seekable,
                            bool& created) noexcept {
    const auto m = static_cast<open_mode>(flags);
    const bool w = has(m, open_mode::write) || has(m, open_mode::create) || has(m, open_mode::truncate) ||
                   has(m, open_mode::append);
    DWORD access = 0;
    if (has(m, open_mode::read)) access |= GENERIC_READ;
    if (w) access |= GENERIC_WRITE;  // append: each write asks for the end (issue_file_step)
    const bool create = has(m, open_mode::create), trunc = has(m, open_mode::truncate);
    const DWORD disposition = create && trunc ? CREATE_ALWAYS
                              : create        ? OPEN_ALWAYS
                              : trunc         ? TRUNCATE_EXISTING
                                              : OPEN_EXISTING;
    // Share everything, as POSIX does not lock: another open, a rename or a delete may proceed.
    HANDLE h = ::CreateFileW(path.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                             nullptr, disposition, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED, nullptr);
    if (h == INVALID_HANDLE_VALUE) return win32_error(static_cast<int>(::GetLastError()));
    // CREATE_ALWAYS and OPEN_ALWAYS say ERROR_ALREADY_EXISTS when the file was there.
    created = create && ::GetLastError() != ERROR_ALREADY_EXISTS;
    fd = h;
    seekable = ::GetFileType(h) == FILE_TYPE_DISK;
    return {};
}

void native_close(native_file fd) noexcept { ::CloseHandle(fd); }

// The file was opened sharing delete: DeleteFileW marks it for deletion, done at the close, if
// the name still names the file this handle has open (same volume and file index).
void native_discard(native_file fd, const std::filesystem::path& path, bool created) noexcept {
    if (created) {
        BY_HANDLE_FILE_INFORMATION mine{}, named{};
        HANDLE h = ::CreateFileW(path.c_str(), FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                                 nullptr, OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT, nullptr);
        if (h != INVALID_HANDLE_VALUE) {
            if (::GetFileInformationByHandle(fd, &mine) && ::GetFileInformationByHandle(h, &named) &&
                mine.dwVolumeSerialNumber == named.dwVolumeSerialNumber && mine.nFileIndexHigh == named.nFileIndexHigh &&
                mine.nFileIndexLow == named.nFileIndexLow)
                ::DeleteFileW(path.c_str());
            ::CloseHandle(h);
        }
    }
    ::CloseHandle(fd);
}

file_core* adopt_file(service* svc, native_file fd, bool seekable, const std::filesystem::path& path, int flags) {
    svc->iocp->associate(reinterpret_cast<std::uintptr_t>(fd));  // throws; fd stays the caller's
    auto* c = new file_core(svc, fd, seekable, path.string());
    c->append = has(static_cast<open_mode>(flags), open_mode::append);
    return c;
}

std::error_code native_size(native_file fd, std::uint64_t& size) noexcept {
    LARGE_INTEGER n{};
    if (!::GetFileSizeEx(fd, &n)) return win32_error(static_cast<int>(::GetLastError()));
    size = static_cast<std::uint64_t>(n.QuadPart);
    return {};
}

}  // namespace detail
}  // namespace taskport::io
