// socket_ops.hpp — the interface between the socket layer (socket_core.cpp, written once) and
// each I/O model's half (reactive: tcp.cpp on epoll/kqueue; completion: iocp_socket.cpp), plus
// what the socket classes share: opening a socket, its address, and running a call on its
// descriptor guarded against a concurrent close() (descriptor.hpp).
#pragma once

#include "descriptor.hpp"

#include <taskport/io/endpoint.hpp>
#include <taskport/io/tcp.hpp>

#include <cstdint>
#include <string>
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

// One I/O model's socket operations (Asio selects its reactor the same way: one set of
// functions, chosen by which file is built).
struct socket_backend {
    // Registers a new socket's state (the readiness core: with the poller; IOCP: with the port).
    // Throws std::system_error (operation_aborted once the runtime is shutting down).
    static void attach(descriptor_state* st);
    // Marks st closed under its lock (once; nothing if another close() did), completes every
    // pending operation with operation_aborted, deregisters, then st->release_fd().
    static void close(descriptor_state* st) noexcept;
    // Completes every pending operation with operation_aborted; st stays open.
    static void cancel(descriptor_state* st) noexcept;
    // The fast path: one attempt on the calling thread before parking (readiness core only).
    // True when it finished op (ec/bytes set).
    static bool try_now(descriptor_state* st, socket_op* op) noexcept;
    // Parks op on st (or finishes it now): true if parked, false if finished (ec/bytes set).
    static bool park(descriptor_state* st, socket_op* op) noexcept;
};

// close(2) or closesocket.
void close_socket(native_socket fd) noexcept;

// A new non-blocking, close-on-exec socket (SOCK_STREAM or SOCK_DGRAM); sets ec on failure.
native_socket open_socket(int family, int type, std::error_code& ec) noexcept;

// socket + (SO_REUSEADDR) + bind + listen: a listening socket registered with svc (readiness
// core: tcp.cpp; tcp_listener and unix_listener). Throws std::system_error: "<what>: socket",
// "<what> <name>" (bind), "<what>: listen".
socket_core listen_socket(service& svc, const sockaddr* sa, std::uint32_t len, int backlog, bool reuse_addr,
                          const char* what, const std::string& name);

// getsockname (peer false) or getpeername. Throws std::system_error naming `what`.
endpoint socket_name(const socket_core& c, bool peer, const char* what);

}  // namespace taskport::io::detail
