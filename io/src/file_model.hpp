// file_model.hpp — what an I/O model must provide for io::file; everything else about files is
// written once (file_core.cpp: the operations' checks, their step loop and completion, open as
// a detachable blocking call, close).
//
// Two models implement it: file_posix.cpp (io_uring or the blocking pool; preadv2 RWF_NOWAIT
// fast path) and iocp_file.cpp (overlapped ReadFile/WriteFile on the completion port). Their
// member functions of file_rw_op and file_core (file.hpp) are part of it:
//   file_rw_op::read_cached()      the fast path of a read, on the calling worker (false: none)
//   file_rw_op::perform_blocking() one step on the blocking pool, where the completion backend
//                                  (completion_backend.hpp: io_uring, IOCP) does not take it
// The steps themselves go to the service's completion backend when it has one.
#pragma once

#include <taskport/io/file.hpp>

#include <cstdint>
#include <filesystem>
#include <system_error>

namespace taskport::io::detail {

// A file handle as completion_backend names handles.
inline std::uintptr_t handle_value(native_file f) noexcept {
#if defined(_WIN32)
    return reinterpret_cast<std::uintptr_t>(f);  // a HANDLE
#else
    return static_cast<std::uintptr_t>(f);  // a descriptor
#endif
}

// The largest offset a read_at/write_at may start at (off_t's, LARGE_INTEGER's).
std::uint64_t max_file_offset() noexcept;

// open_mode (already checked: known bits, not empty) as the model's flags, kept in
// file_open_op::flags and passed back to native_open and adopt_file.
int native_open_flags(open_mode m) noexcept;

// POSIX: the flags of the first step of an open with O_CREAT (native_open, io_uring's OPENAT):
// O_CREAT | O_EXCL without O_NONBLOCK; what it opens is the regular file it made.
int native_create_flags(int flags) noexcept;

// The open itself, on a pool thread; never waits for a peer. On success fd and seekable are set,
// created says whether this call made the file (open_mode::create and it did not exist), and the
// code is empty; on failure nothing is left open.
std::error_code native_open(const std::filesystem::path& path, int flags, native_file& fd, bool& seekable,
                            bool& created) noexcept;

// What native_open does after the open itself, also for an open made elsewhere (io_uring's
// IORING_OP_OPENAT, uring_backend.cpp): checks what f is (POSIX: refuses a directory, clears
// O_NONBLOCK on a regular file or block device) and sets seekable; with created (the file was
// made by native_create_flags' step: a regular file without O_NONBLOCK) it checks nothing. Never waits for a peer (the type
// comes from cached attributes). On failure f is discarded (native_discard with created) and the
// OS's code returned.
std::error_code native_open_finish(native_file f, const std::filesystem::path& path, bool created,
                                   bool& seekable) noexcept;

// Closes a handle that was opened and never handed to a file (a late or discarded open).
void native_close(native_file fd) noexcept;

// Undoes a late open whose operation completed without it (cancelled, timed out, shut down):
// closes fd and, when that open created the file, removes it again — if path still names that
// very file (POSIX: same device and inode), so a file someone made under the name since is kept.
void native_discard(native_file fd, const std::filesystem::path& path, bool created) noexcept;

// The handle opened for path becomes a file_core (the model may register it: throws
// std::system_error then, and fd stays the caller's).
file_core* adopt_file(service* svc, native_file fd, bool seekable, const std::filesystem::path& path, int flags);

// The size of the open file, or the OS's error.
std::error_code native_size(native_file fd, std::uint64_t& size) noexcept;

}  // namespace taskport::io::detail
