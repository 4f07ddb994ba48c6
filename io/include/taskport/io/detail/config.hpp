// taskport/io/detail/config.hpp — the one place that says which platform io/ is built for.
//
// Everything else in io/ is either platform-neutral or a platform file chosen by meson
// (epoll_poller.cpp, kqueue_poller.cpp, iocp_*.cpp, ...). What the public headers need to know
// lives here: the type of a native socket or file handle, and the room an operation record
// keeps for the system (an OVERLAPPED on Windows; nothing elsewhere).
#pragma once

#include <cstdint>

#if defined(_WIN32)
#define TASKPORT_IO_WINDOWS 1
#else
#define TASKPORT_IO_WINDOWS 0
#endif

namespace taskport::io::detail {

#if TASKPORT_IO_WINDOWS

using native_socket = std::uintptr_t;  // SOCKET
inline constexpr native_socket invalid_socket = ~std::uintptr_t{0};
using native_file = void*;             // HANDLE
inline const native_file invalid_file = reinterpret_cast<void*>(~std::uintptr_t{0});

struct operation;

// What an overlapped operation needs beside the generic fields (iocp_backend.hpp).
struct platform_op_storage {
    // An OVERLAPPED (32 bytes on 64-bit Windows, 20 on 32-bit), first: the completion thread
    // finds the operation from it. It stays put while the operation is in the kernel
    // (operations do not move once started).
    alignas(void*) unsigned char overlapped[4 * sizeof(void*) + (sizeof(void*) == 4 ? 4 : 0)];
    operation* owner;                     // the operation this is part of
    std::uintptr_t handle;                // the SOCKET or HANDLE it runs on (for CancelIoEx)
    int (*issue)(operation*) noexcept;    // starts one step (iocp_issue_fn)
    int error;                            // the last step's Win32/WSA error, 0 if it succeeded
    std::uint32_t transferred;            // the last step's byte count
    unsigned long flags;                  // WSARecv/WSARecvFrom flags, valid until completion
    int addr_len;                         // WSARecvFrom's lpFromlen, valid until completion
};
// AcceptEx writes both addresses, each with 16 bytes to spare, beside the accepted socket.
struct accept_storage {
    alignas(8) unsigned char buf[2 * (28 + 16)];
};

#else

using native_socket = int;
inline constexpr native_socket invalid_socket = -1;
using native_file = int;
inline constexpr native_file invalid_file = -1;

struct platform_op_storage {};
struct accept_storage {};

#endif

}  // namespace taskport::io::detail
