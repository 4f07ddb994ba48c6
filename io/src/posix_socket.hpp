// posix_socket.hpp — the POSIX socket calls whose form differs between systems, each with the
// fallback io/meson.build picks where the system lacks the call (TASKPORT_HAVE_* defines), and
// the socket error a kqueue event took from a socket (descriptor_state::event_error).
//
// Linux has accept4, SOCK_NONBLOCK/SOCK_CLOEXEC and MSG_NOSIGNAL; macOS has none of them and
// has SO_NOSIGPIPE; FreeBSD has all but SO_NOSIGPIPE is also there. -Dforce_posix_fallbacks=true
// takes every fallback where the call exists, so Linux runs the macOS paths (posix_socket.cpp).
#pragma once

#include "descriptor.hpp"

#include <cstddef>

#include <sys/socket.h>
#include <sys/types.h>

namespace taskport::io::detail {

// A new non-blocking, close-on-exec socket with SIGPIPE off where that is a socket option
// (socket_ops.hpp's open_socket); accept() likewise for an accepted one. -1 with errno set.
int accept_socket(int listen_fd, sockaddr* addr, socklen_t* len) noexcept;

// send (to == nullptr) or sendto without raising SIGPIPE on a broken connection.
ssize_t send_nosignal(int fd, const void* data, std::size_t n, const sockaddr* to, socklen_t to_len) noexcept;

// The error a poller event took from st's socket and no operation has reported yet (0: none),
// taken: the caller reports it (or drops it, having reported the same error from its own
// system call). A plain load first: on epoll it is always 0, and the would-block path of a
// datagram receive checks it.
inline int take_event_error(descriptor_state* st) noexcept {
    if (st->event_error.load(std::memory_order_relaxed) == 0) return 0;
    return st->event_error.exchange(0, std::memory_order_relaxed);
}

}  // namespace taskport::io::detail
