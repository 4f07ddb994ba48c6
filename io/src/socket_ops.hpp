// socket_ops.hpp — what the socket classes share beside their operations, written once per I/O
// model (reactive: tcp.cpp; completion: iocp_socket.cpp): the socket's address, and running a
// call on its descriptor guarded against a concurrent close() (descriptor.hpp).
#pragma once

#include "descriptor.hpp"

#include <taskport/io/endpoint.hpp>
#include <taskport/io/tcp.hpp>

#include <system_error>

namespace taskport::io::detail {

// Runs f(fd) while close() cannot close fd; throws bad_file_descriptor naming `what` when the
// socket is closed (or moved-from, or never opened).
template <class F>
auto with_fd(const socket_core& c, const char* what, F f) {
    descriptor_state* st = c.state().get();
    if (!st || !st->enter()) throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what);
    struct leave_on_exit {
        descriptor_state* st;
        ~leave_on_exit() { st->leave(); }
    } guard{st};
    return f(st->fd);
}

// A new non-blocking, close-on-exec socket (SOCK_STREAM or SOCK_DGRAM); sets ec on failure.
native_socket open_socket(int family, int type, std::error_code& ec) noexcept;

// getsockname (peer false) or getpeername. Throws std::system_error naming `what`.
endpoint socket_name(const socket_core& c, bool peer, const char* what);

}  // namespace taskport::io::detail
