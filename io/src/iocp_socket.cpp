// iocp_socket.cpp — TCP and UDP sockets on the I/O completion port (Windows): overlapped
// WSARecv, WSASend, AcceptEx, ConnectEx, WSARecvFrom, WSASendTo.
//
// The awaiters of tcp.hpp/udp.hpp are the same as on POSIX; here an operation has no
// speculative attempt before it parks: it starts its overlapped call at once, and with
// FILE_SKIP_COMPLETION_PORT_ON_SUCCESS a call that succeeds at once finishes it on the spot
// (the same fast path). Each op's perform function is its completion step (iocp_backend.hpp).
// Closing a socket cancels its operations (CancelIoEx, then closesocket): they complete with
// operation_aborted through the port. A process's stdio pipes (process_win.cpp) are named pipes
// on the same socket core: their ops (process.hpp's pipe_read_op/pipe_write_op) issue
// ReadFile/WriteFile instead, and close_socket closes their handle with CloseHandle.
#include <taskport/io/process.hpp>
#include <taskport/io/signal.hpp>
#include <taskport/io/tcp.hpp>
#include <taskport/io/udp.hpp>
#include <taskport/runtime.hpp>

#include "service.hpp"
#include "socket_types.hpp"
#include "socket_ops.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>

namespace taskport::io {
namespace detail {

namespace {

OVERLAPPED* overlapped_of(operation* op) noexcept { return reinterpret_cast<OVERLAPPED*>(op->plat.overlapped); }
SOCKET socket_of(operation* op) noexcept { return static_cast<SOCKET>(op->plat.handle); }

// One WSARecv or WSASend moves at most max_step (ULONG lengths); write_all continues past it.
// write_some sends at most max_send, and returns that piece, as a POSIX send returns what fitted
// the socket buffer (an overlapped send would otherwise take any size whole). write_all sends
// its whole buffer in one call, so that it is never between two calls when the socket closes.
constexpr std::size_t max_step = std::size_t{1} << 30;
constexpr std::size_t max_send = std::size_t{1} << 20;
ULONG step_len(std::size_t n, std::size_t max = max_step) noexcept { return static_cast<ULONG>(std::min(n, max)); }

// What an iocp_issue_fn returns for a WSA call's result (r: what the call returned, read after
// it returned). On an immediate success the byte count is the OVERLAPPED's (its IO_STATUS_BLOCK,
// which the call has filled), as libuv reads it; the calls' own count arguments are not used
// (null: Microsoft's advice with an OVERLAPPED).
int wsa_result(int r, operation* op) noexcept {
    if (r == 0) {
        op->plat.transferred = static_cast<std::uint32_t>(overlapped_of(op)->InternalHigh);
        return 0;
    }
    return ::WSAGetLastError();  // WSA_IO_PENDING is iocp_pending
}

// A completed step's error comes as a Win32 code (from its NTSTATUS); give it the Winsock code
// the synchronous call would have returned.
int to_wsa(int e) noexcept {
    switch (e) {
        case ERROR_NETNAME_DELETED: return WSAECONNRESET;
        case ERROR_CONNECTION_REFUSED:
        case ERROR_PORT_UNREACHABLE: return WSAECONNREFUSED;
        case ERROR_CONNECTION_ABORTED:
        case ERROR_REQUEST_ABORTED: return WSAECONNABORTED;
        case ERROR_NETWORK_UNREACHABLE: return WSAENETUNREACH;
        case ERROR_HOST_UNREACHABLE: return WSAEHOSTUNREACH;
        case ERROR_SEM_TIMEOUT: return WSAETIMEDOUT;
        case ERROR_MORE_DATA: return WSAEMSGSIZE;
        case ERROR_INVALID_NETNAME: return WSAEADDRNOTAVAIL;
        case ERROR_GRACEFUL_DISCONNECT: return WSAESHUTDOWN;
        default: return e;
    }
}
std::error_code socket_error(int e) noexcept {
    // Our sockets are valid until close(): a call that finds none lost a race with close() (the
    // next step of a write_all, or a start): that operation was aborted by the close.
    if (e == WSAENOTSOCK || e == ERROR_INVALID_HANDLE) return operation_aborted();
    return win32_error(to_wsa(e));
}
std::error_code last_socket_error() noexcept { return win32_error(::WSAGetLastError()); }
// An operation's failure once its socket is closed: whatever the system reports for a call
// that close() cut short (Wine and Windows differ: 995, 64, 10038, ...), it is operation_aborted,
// as on the readiness core (tcp.hpp: close() aborts every pending operation).
std::error_code op_error(const operation* o, int e) noexcept {
    if (static_cast<const socket_op*>(o)->st.get()->closed.load(std::memory_order_acquire)) return operation_aborted();
    return socket_error(e);
}

// AcceptEx, ConnectEx and GetAcceptExSockaddrs, looked up once per process.
struct extensions {
    LPFN_ACCEPTEX accept_ex = nullptr;
    LPFN_CONNECTEX connect_ex = nullptr;
    LPFN_GETACCEPTEXSOCKADDRS get_addrs = nullptr;
};

const extensions& ext() noexcept {
    static const extensions x = [] {
        extensions e;
        net_init();
        SOCKET s = ::WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED);
        if (s == INVALID_SOCKET) return e;
        auto load = [s](GUID id, auto& fn) {
            DWORD n = 0;
            if (::WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &id, sizeof id, &fn, sizeof fn, &n, nullptr,
                           nullptr) != 0)
                fn = nullptr;
        };
        load(GUID(WSAID_ACCEPTEX), e.accept_ex);
        load(GUID(WSAID_CONNECTEX), e.connect_ex);
        load(GUID(WSAID_GETACCEPTEXSOCKADDRS), e.get_addrs);
        ::closesocket(s);
        return e;
    }();
    return x;
}

constexpr DWORD accept_addr_len = sizeof(sockaddr_in6) + 16;
static_assert(2 * accept_addr_len <= sizeof(accept_storage::buf), "config.hpp: AcceptEx buffer too small");


// ---- the system calls, one step each (iocp_issue_fn) ----

int issue_recv(operation* o) noexcept {
    auto* op = static_cast<read_op*>(o);
    // A zero-byte WSARecv would wait for data to arrive; POSIX returns 0 at once.
    if (op->buf.empty()) return iocp_done_now;
    WSABUF b{step_len(op->buf.size()), reinterpret_cast<char*>(op->buf.data())};
    op->plat.flags = 0;
    const int r = ::WSARecv(socket_of(op), &b, 1, nullptr, &op->plat.flags, overlapped_of(op), nullptr);
    return wsa_result(r, op);
}

// signal_set::wait (signal_win.cpp): one byte, the signal's number, into the low byte of
// op->bytes (zeroed first; read back by signal_wait_op::perform_wait). process::wait
// (process_win.cpp) too: the byte that says the child has ended.
int issue_byte_recv(operation* o) noexcept {
    auto* op = static_cast<socket_op*>(o);
    op->bytes = 0;
    WSABUF b{1, reinterpret_cast<char*>(&op->bytes)};
    op->plat.flags = 0;
    const int r = ::WSARecv(socket_of(op), &b, 1, nullptr, &op->plat.flags, overlapped_of(op), nullptr);
    return wsa_result(r, op);
}

// A named pipe (a process's stdio::pipe): ReadFile/WriteFile with the op's OVERLAPPED (offsets 0,
// ignored on a pipe); a success at once reports its count from the OVERLAPPED, as wsa_result.
int file_result(BOOL ok, operation* op) noexcept {
    if (ok) {
        op->plat.transferred = static_cast<std::uint32_t>(overlapped_of(op)->InternalHigh);
        return 0;
    }
    return static_cast<int>(::GetLastError());  // ERROR_IO_PENDING is iocp_pending
}

int issue_pipe_read(operation* o) noexcept {
    auto* op = static_cast<read_op*>(o);
    if (op->buf.empty()) return iocp_done_now;  // as recv: 0 at once, not a wait for data
    return file_result(::ReadFile(reinterpret_cast<HANDLE>(op->plat.handle), op->buf.data(), step_len(op->buf.size()),
                                  nullptr, overlapped_of(op)),
                       op);
}

int issue_pipe_write(operation* o) noexcept {
    auto* op = static_cast<write_op*>(o);
    std::size_t cap = max_send;
    if (op->all) {
        const std::size_t t = test_write_all_step.load(std::memory_order_relaxed);
        cap = t ? t : max_step;
    }
    return file_result(::WriteFile(reinterpret_cast<HANDLE>(op->plat.handle), op->buf.data() + op->bytes,
                                   step_len(op->buf.size() - op->bytes, cap), nullptr, overlapped_of(op)),
                       op);
}

int issue_send(operation* o) noexcept {
    auto* op = static_cast<write_op*>(o);
    std::size_t cap = max_send;
    if (op->all) {
        // A test may shrink write_all's steps to make several (test_hooks.hpp); 0: no limit.
        const std::size_t t = test_write_all_step.load(std::memory_order_relaxed);
        cap = t ? t : max_step;
    }
    WSABUF b{step_len(op->buf.size() - op->bytes, cap), reinterpret_cast<char*>(const_cast<std::byte*>(op->buf.data() + op->bytes))};
    const int r = ::WSASend(socket_of(op), &b, 1, nullptr, 0, overlapped_of(op), nullptr);
    return wsa_result(r, op);
}

int issue_accept(operation* o) noexcept {
    auto* op = static_cast<accept_op*>(o);
    const extensions& x = ext();
    if (!x.accept_ex || !x.get_addrs) return WSAEOPNOTSUPP;
    SOCKET l = socket_of(op);
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (::getsockname(l, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return ::WSAGetLastError();
    std::error_code ec;
    SOCKET s = open_socket(ss.ss_family, SOCK_STREAM, ec);
    if (s == INVALID_SOCKET) return ::WSAGetLastError();  // WSAEMFILE, WSAENOBUFS...
    op->new_fd = s;
    DWORD n = 0;
    if (x.accept_ex(l, s, op->addrs.buf, 0, accept_addr_len, accept_addr_len, &n, overlapped_of(op))) return 0;
    return ::WSAGetLastError();
}

int issue_connect(operation* o) noexcept {
    auto* op = static_cast<connect_op*>(o);
    const extensions& x = ext();
    if (!x.connect_ex) return WSAEOPNOTSUPP;
    DWORD n = 0;
    if (x.connect_ex(socket_of(op), op->target.data(), static_cast<int>(op->target.size()), nullptr, 0, &n,
                     overlapped_of(op)))
        return 0;
    return ::WSAGetLastError();
}

int issue_send_to(operation* o) noexcept {
    auto* op = static_cast<send_to_op*>(o);
    WSABUF b{step_len(op->buf.size()), reinterpret_cast<char*>(const_cast<std::byte*>(op->buf.data()))};
    const int r = ::WSASendTo(socket_of(op), &b, 1, nullptr, 0, op->target.data(),
                              static_cast<int>(op->target.size()), overlapped_of(op), nullptr);
    return wsa_result(r, op);
}

int issue_receive_from(operation* o) noexcept {
    auto* op = static_cast<receive_from_op*>(o);
    WSABUF b{step_len(op->buf.size()), reinterpret_cast<char*>(op->buf.data())};
    op->plat.flags = 0;
    op->plat.addr_len = static_cast<int>(endpoint::capacity());
    const int r = wsa_result(::WSARecvFrom(socket_of(op), &b, 1, nullptr, &op->plat.flags, op->from.data(),
                                           &op->plat.addr_len, overlapped_of(op), nullptr),
                             op);
    // A datagram longer than buf fails the call with WSAEMSGSIZE, but its status is a warning
    // (STATUS_BUFFER_OVERFLOW), not an error: the call has finished, and the port gets a packet
    // exactly as after a success (none in skip mode). iocp_warning says so to the backend.
    if (r == WSAEMSGSIZE) {
        op->plat.error = WSAEMSGSIZE;
        op->plat.transferred = static_cast<std::uint32_t>(overlapped_of(op)->InternalHigh);
        return iocp_warning;
    }
    return r;
}

// Every step's call runs under the socket's close guard (descriptor_state::users), not only the
// first: the first from park(), the next ones (the rest of a write_all, an accept retried after
// the peer reset) from the completion thread inside iocp_backend's advance(). So no step ever
// runs on a handle value that close() has given back, and that a later socket may have reused.
// Closed between two steps: the step fails as a call on a closed socket does (WSAENOTSOCK,
// which socket_error reports as operation_aborted).
template <iocp_issue_fn Issue>
int guarded(operation* o) noexcept {
    descriptor_state* st = static_cast<socket_op*>(o)->st.get();
    if (!st->enter()) return WSAENOTSOCK;
    const int r = Issue(o);
    st->leave();  // may close the handle now (close() ran meanwhile): the call has returned
    return r;
}

iocp_issue_fn issue_for(operation::perform_fn p) noexcept {
    if (p == &read_op::perform_read) return &guarded<issue_recv>;
    if (p == &write_op::perform_write) return &guarded<issue_send>;
    if (p == &accept_op::perform_accept) return &guarded<issue_accept>;
    if (p == &connect_op::perform_connect) return &guarded<issue_connect>;
    if (p == &send_to_op::perform_send) return &guarded<issue_send_to>;
    if (p == &signal_wait_op::perform_wait) return &guarded<issue_byte_recv>;
    if (p == &process_wait_op::perform_wait) return &guarded<issue_byte_recv>;
    if (p == &perform_pipe_read) return &guarded<issue_pipe_read>;
    if (p == &perform_pipe_write) return &guarded<issue_pipe_write>;
    return &guarded<issue_receive_from>;
}

}  // namespace

native_socket open_socket(int family, int type, std::error_code& ec) noexcept {
    net_init();
    SOCKET s = ::WSASocketW(family, type, 0, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET) ec = last_socket_error();
    return s;
}

// ---- the completion port's half of the socket layer (socket_ops.hpp) ----

// A process's stdio pipe end is a named pipe's handle, not a socket: closesocket refuses it
// (WSAENOTSOCK) without closing it, and CloseHandle does. Each state closes its handle once.
void close_socket(native_socket fd) noexcept {
    if (::closesocket(fd) != 0 && ::WSAGetLastError() == WSAENOTSOCK) ::CloseHandle(reinterpret_cast<HANDLE>(fd));
}

void socket_backend::attach(descriptor_state* st) { st->svc->iocp->associate(st->fd); }

void socket_backend::close(descriptor_state* st) noexcept {
    {
        std::lock_guard<std::mutex> g(st->mu);
        if (st->closed.load(std::memory_order_relaxed)) return;  // another close() won
        st->closed.store(true, std::memory_order_release);
    }
    st->svc->iocp->forget(st->fd);
    // Cancel first: every pending operation then completes with operation_aborted, whatever
    // status closesocket alone would have given it.
    ::CancelIoEx(reinterpret_cast<HANDLE>(st->fd), nullptr);
    st->release_fd();  // closesocket now, or when the last start under way on it returns
}

void socket_backend::cancel(descriptor_state* st) noexcept {
    if (st->enter()) {
        ::CancelIoEx(reinterpret_cast<HANDLE>(st->fd), nullptr);
        st->leave();
    }
}

// No attempt before parking: the attempt is the overlapped call itself, in park().
bool socket_backend::try_now(descriptor_state*, socket_op*) noexcept { return false; }

// Starts op's overlapped call; a socket closed already fails it with bad_file_descriptor. The
// call itself, and every later step's, is guarded against a concurrent close() (guarded<>).
bool socket_backend::park(descriptor_state* st, socket_op* op) noexcept {
    if (!st->enter()) {
        op->ec = std::make_error_code(std::errc::bad_file_descriptor);
        return false;
    }
    const bool parked = st->svc->iocp->start(op, st->fd, issue_for(op->perform));
    st->leave();
    return parked;
}

// ---- completion steps (perform) ----

bool read_op::perform_read(operation* o) noexcept {
    auto* op = static_cast<read_op*>(o);
    const int e = op->plat.error;
    op->ec = e ? op_error(o, e) : std::error_code();
    op->bytes = e ? 0 : op->plat.transferred;
    return true;
}

bool write_op::perform_write(operation* o) noexcept {
    auto* op = static_cast<write_op*>(o);
    if (const int e = op->plat.error) {
        op->ec = op_error(o, e);
        return true;
    }
    op->ec.clear();
    op->bytes += op->plat.transferred;
    if (!op->all || op->bytes >= op->buf.size()) return true;
    if (op->plat.transferred == 0) {  // nothing moved and no error: do not loop
        op->ec = std::make_error_code(std::errc::io_error);
        return true;
    }
    return false;  // the rest of write_all
}

// A named pipe's read: the writer's end closed (the child exited or closed its stdout) is end
// of file, as a socket's FIN.
bool perform_pipe_read(operation* o) noexcept {
    auto* op = static_cast<read_op*>(o);
    const int e = op->plat.error;
    if (e == ERROR_BROKEN_PIPE || e == ERROR_HANDLE_EOF || e == ERROR_PIPE_NOT_CONNECTED) {
        op->ec = static_cast<socket_op*>(o)->st.get()->closed.load(std::memory_order_acquire) ? operation_aborted()
                                                                                             : std::error_code();
        op->bytes = 0;
        return true;
    }
    op->ec = e ? op_error(o, e) : std::error_code();
    op->bytes = e ? 0 : op->plat.transferred;
    return true;
}

// A named pipe's write: a reader gone (ERROR_NO_DATA, ERROR_BROKEN_PIPE) is broken_pipe.
bool perform_pipe_write(operation* o) noexcept { return write_op::perform_write(o); }

bool accept_op::perform_accept(operation* o) noexcept {
    auto* op = static_cast<accept_op*>(o);
    if (const int e = op->plat.error) {
        if (op->new_fd != invalid_socket) ::closesocket(std::exchange(op->new_fd, invalid_socket));
        const int w = to_wsa(e);
        // The peer gave up before we took the connection: wait for the next one, as POSIX
        // accept does with ECONNABORTED.
        if (w == WSAECONNRESET || w == WSAECONNABORTED) return false;
        op->ec = op_error(o, e);  // WSAEMFILE, ...: reported; the listener stays usable
        return true;
    }
    SOCKET l = socket_of(op);
    ::setsockopt(op->new_fd, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, reinterpret_cast<const char*>(&l), sizeof l);
    sockaddr* local = nullptr;
    sockaddr* remote = nullptr;
    int local_len = 0, remote_len = 0;
    ext().get_addrs(op->addrs.buf, 0, accept_addr_len, accept_addr_len, &local, &local_len, &remote, &remote_len);
    std::error_code ignore;
    if (remote) op->peer = endpoint::from_sockaddr(remote, static_cast<std::uint32_t>(remote_len), ignore);
    op->ec.clear();
    return true;
}

bool connect_op::perform_connect(operation* o) noexcept {
    auto* op = static_cast<connect_op*>(o);
    if (const int e = op->plat.error) {
        op->ec = op_error(o, e);
        return true;
    }
    ::setsockopt(socket_of(op), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0);
    op->ec.clear();
    return true;
}

bool send_to_op::perform_send(operation* o) noexcept {
    auto* op = static_cast<send_to_op*>(o);
    const int e = op->plat.error;
    op->ec = e ? op_error(o, e) : std::error_code();
    op->bytes = e ? 0 : op->plat.transferred;
    return true;
}

bool receive_from_op::perform_receive(operation* o) noexcept {
    auto* op = static_cast<receive_from_op*>(o);
    const int e = op->plat.error;
    if (e && to_wsa(e) == WSAEMSGSIZE) {  // longer than buf: cut, as recvfrom does on POSIX
        op->ec.clear();
        op->bytes = op->buf.size();
        return true;
    }
    op->ec = e ? op_error(o, e) : std::error_code();
    op->bytes = e ? 0 : op->plat.transferred;
    return true;
}

// ---- accept ----

accept_op::~accept_op() {
    if (new_fd != invalid_socket) ::closesocket(new_fd);  // accepted but never handed out
}

tcp_stream accept_op::await_resume() {
    throw_if(ec, "taskport::io::tcp_listener::accept");
    native_socket fd = std::exchange(new_fd, invalid_socket);
    return tcp_stream(socket_core(svc, fd));
}

// ---- connect ----

connect_op::connect_op(service* s, const endpoint& ep) noexcept : socket_op(&perform_connect, 1), target(ep) {
    svc = s;
}

connect_op::connect_op(connect_op&& o) noexcept
    : socket_op(std::move(o)), own(std::move(o.own)), target(o.target), started(o.started) {}

bool connect_op::await_ready() noexcept {
    std::error_code e;
    SOCKET fd = open_socket(target.data()->sa_family, SOCK_STREAM, e);
    if (fd == INVALID_SOCKET) {
        ec = e;
        return true;
    }
    try {
        own = socket_core(svc, fd);
    } catch (const std::system_error& x) {
        ec = x.code();
        return true;
    }
    st = own.state();
    // ConnectEx wants a bound socket.
    const endpoint any = target.is_v4() ? endpoint::any_v4(0) : endpoint::any_v6(0);
    if (::bind(fd, any.data(), static_cast<int>(any.size())) != 0) {
        ec = last_socket_error();
        return true;
    }
    started = true;
    return false;
}

tcp_stream connect_op::await_resume() {
    if (ec) {
        own.close();
        throw std::system_error(ec, "taskport::io::tcp_stream::connect to " + target.to_string());
    }
    return tcp_stream(std::move(own));
}

}  // namespace detail

// ---- tcp_stream / tcp_listener ----

detail::connect_op tcp_stream::connect(runtime& rt, const endpoint& ep) {
    return detail::connect_op(&detail::service_of(rt), ep);
}

void tcp_stream::set_nodelay(bool on) {
    const char* what = "taskport::io::tcp_stream::set_nodelay";
    BOOL v = on ? TRUE : FALSE;
    if (detail::with_fd(core_, what, [&](SOCKET fd) {
            return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&v), sizeof v);
        }) != 0)
        throw std::system_error(detail::last_socket_error(), what);
}

void tcp_stream::shutdown_write() {
    const char* what = "taskport::io::tcp_stream::shutdown_write";
    if (detail::with_fd(core_, what, [](SOCKET fd) { return ::shutdown(fd, SD_SEND); }) != 0)
        throw std::system_error(detail::last_socket_error(), what);
}

endpoint detail::socket_name(const socket_core& c, bool peer, const char* what) {
    return with_fd(c, what, [&](SOCKET fd) {
        sockaddr_storage ss{};
        int len = sizeof ss;
        int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
        if (r != 0) throw std::system_error(last_socket_error(), what);
        std::error_code ec;
        endpoint e = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), static_cast<std::uint32_t>(len), ec);
        if (ec) throw std::system_error(ec, what);
        return e;
    });
}

endpoint tcp_stream::local_endpoint() const { return detail::socket_name(core_, false, "taskport::io::tcp_stream::local_endpoint"); }
endpoint tcp_stream::remote_endpoint() const { return detail::socket_name(core_, true, "taskport::io::tcp_stream::remote_endpoint"); }
endpoint tcp_listener::local_endpoint() const { return detail::socket_name(core_, false, "taskport::io::tcp_listener::local_endpoint"); }
endpoint udp_socket::local_endpoint() const { return detail::socket_name(core_, false, "taskport::io::udp_socket::local_endpoint"); }

tcp_listener tcp_listener::bind(runtime& rt, const endpoint& ep, int backlog) {
    detail::service& svc = detail::service_of(rt);
    std::error_code ec;
    SOCKET fd = detail::open_socket(ep.data()->sa_family, SOCK_STREAM, ec);
    if (fd == INVALID_SOCKET) throw std::system_error(ec, "taskport::io::tcp_listener::bind: socket");
    // No SO_REUSEADDR: on Windows it would let a second listener take the same port. Binding
    // over connections in TIME_WAIT, what it is for on POSIX, is allowed here without it.
    if (::bind(fd, ep.data(), static_cast<int>(ep.size())) != 0) {
        auto e = detail::last_socket_error();
        ::closesocket(fd);
        throw std::system_error(e, "taskport::io::tcp_listener::bind " + ep.to_string());
    }
    if (::listen(fd, backlog) != 0) {
        auto e = detail::last_socket_error();
        ::closesocket(fd);
        throw std::system_error(e, "taskport::io::tcp_listener::bind: listen");
    }
    tcp_listener l;
    l.core_ = detail::socket_core(&svc, fd);
    return l;
}

udp_socket udp_socket::bind(runtime& rt, const endpoint& ep) {
    detail::service& svc = detail::service_of(rt);
    std::error_code ec;
    SOCKET fd = detail::open_socket(ep.data()->sa_family, SOCK_DGRAM, ec);
    if (fd == INVALID_SOCKET) throw std::system_error(ec, "taskport::io::udp_socket::bind: socket");
    // An ICMP "port unreachable" for an earlier send_to would otherwise fail the next
    // receive_from with WSAECONNRESET; POSIX reports nothing on an unconnected socket.
    BOOL off = FALSE;
    DWORD n = 0;
    ::WSAIoctl(fd, SIO_UDP_CONNRESET, &off, sizeof off, nullptr, 0, &n, nullptr, nullptr);
    if (::bind(fd, ep.data(), static_cast<int>(ep.size())) != 0) {
        auto e = detail::last_socket_error();
        ::closesocket(fd);
        throw std::system_error(e, "taskport::io::udp_socket::bind " + ep.to_string());
    }
    udp_socket s;
    s.core_ = detail::socket_core(&svc, fd);
    return s;
}

}  // namespace taskport::io
