// tcp.cpp — TCP sockets on the readiness core (POSIX: epoll or kqueue).
#include <taskport/io/tcp.hpp>
#include <taskport/runtime.hpp>
#include <taskport/io/detail/test_hooks.hpp>

#include "posix_socket.hpp"
#include "service.hpp"
#include "socket_ops.hpp"

#include <cerrno>
#include <cstdio>
#include <exception>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace taskport::io {
namespace detail {

namespace {
std::error_code last_error() noexcept { return {errno, std::system_category()}; }
bool would_block(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }
}  // namespace

// ---- the readiness core's half of the socket layer (socket_ops.hpp) ----

void close_socket(int fd) noexcept { ::close(fd); }

void socket_backend::attach(descriptor_state* st) {
    // Short reads and writes prove a side drained only on a stream socket (a datagram read
    // returns one datagram, whatever is left) and where the poller's edges allow (poller.hpp).
    if (st->svc->react->short_io_drains()) {
        int type = 0;
        socklen_t len = sizeof type;
        st->short_drains = ::getsockopt(st->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    }
    st->svc->react->attach(st);
}

void socket_backend::close(descriptor_state* st) noexcept {
    bool drop_ref = false;
    if (!st->svc->react->detach(st, drop_ref)) return;  // another close() won
    st->release_fd();  // closes fd now, or when the last fast-path attempt on it returns
    if (drop_ref) descriptor_release(st);  // the registration's; the caller still holds one
}

void socket_backend::cancel(descriptor_state* st) noexcept { st->svc->react->cancel_all(st); }

namespace {
// A read or write of at least one byte: the ops whose attempt a drained side makes fail
// (a zero-length one completes at once; accept, connect and datagram ops are never skipped).
bool moves_bytes(socket_op* op) noexcept {
    if (op->perform == &read_op::perform_read) return !static_cast<read_op*>(op)->buf.empty();
    if (op->perform == &write_op::perform_write) {
        auto* w = static_cast<write_op*>(op);
        return w->bytes < w->buf.size();
    }
    return false;
}
}  // namespace

bool socket_backend::try_now(descriptor_state* st, socket_op* op) noexcept {
    // Speculative attempt without the lock when nothing is queued in this direction, guarded
    // against a concurrent close(). The readiness count is read first: park() skips a second
    // attempt if no event came since.
    const int dir = op->direction;
    if (st->queued[dir].load(std::memory_order_relaxed) != 0) return false;
    const std::uint32_t seq = st->ready_seq[dir].load(std::memory_order_acquire);
    // Known drained since the last event (a short read or write, or a would-block): park
    // without the call that would fail; start() re-checks under the lock (reactor.hpp).
    if (st->known_drained(dir, seq) && moves_bytes(op)) {
        op->ready_seen = seq;
        op->tried = true;
        run_test_hook(hook_point::drained_skip, st);
        return false;
    }
    if (!st->enter()) {
        op->ec = std::make_error_code(std::errc::bad_file_descriptor);
        return true;
    }
    op->ready_seen = seq;
    const bool done = op->perform(op);
    st->leave();
    op->tried = !done;
    return done;
}

bool socket_backend::park(descriptor_state* st, socket_op* op) noexcept {
    return st->svc->react->start(st, op, op->direction, op->tried ? &op->ready_seen : nullptr);
}

// ---- reads and writes ----
//
// Where the poller's events carry the socket's error (kqueue; poller.hpp), a reset may have
// been taken from the socket by the event (libkqueue): recv() then reads end-of-stream, send()
// fails with EPIPE and SO_ERROR is 0. The readiness core keeps it (descriptor_state::
// event_error) and the operation reports it in their place, once. An end-of-stream read on a
// hung-up socket (POLLHUP: reset, or closed both ways) is final only once an event taken
// while it was hung up has been handled (hup_event): until then its error may be inside a
// kevent() call on another thread. The read waits for that event; it comes (EPOLLHUP under
// libkqueue, EV_EOF natively) and wakes both directions. A plain end-of-stream (the peer's
// FIN, not hung up) is final at once: it has no error, and libkqueue may never report it.

bool read_op::perform_read(operation* o) noexcept {
    auto* op = static_cast<read_op*>(o);
    if (op->buf.empty()) {
        op->bytes = 0;
        return true;
    }
    descriptor_state* st = op->st.get();
    for (;;) {
        // Read before the call: a short read or EAGAIN proves the side drained at this count.
        const std::uint32_t seq = st->ready_seq[0].load(std::memory_order_acquire);
        ssize_t n = ::recv(st->fd, op->buf.data(), op->buf.size(), 0);
        if (n > 0) {
            // Short (not end of stream: 0 is not short): the socket's buffer is empty now.
            if (static_cast<std::size_t>(n) < op->buf.size() && st->short_drains) st->mark_drained(0, seq);
            op->bytes = static_cast<std::size_t>(n);
            op->ec.clear();
            return true;
        }
        if (n == 0) {  // end of stream, or a reset whose error the poller took
            op->bytes = 0;
            op->ec.clear();
            if (st->svc->react->events_carry_errors()) {
                if (!st->hup_event.load(std::memory_order_acquire)) {
                    pollfd p{st->fd, 0, 0};
                    if (::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP)) return false;  // see above
                }
                if (int e = take_event_error(st)) op->ec = std::error_code(e, std::system_category());
            }
            return true;
        }
        if (errno == EINTR) continue;
        if (would_block(errno)) {
            st->mark_drained(0, seq);
            run_test_hook(hook_point::would_block, st);
            return false;
        }
        op->ec = last_error();
        take_event_error(st);  // the socket reported its error itself: a kept copy is the same one
        return true;
    }
}

bool write_op::perform_write(operation* o) noexcept {
    auto* op = static_cast<write_op*>(o);
    descriptor_state* st = op->st.get();
    for (;;) {
        if (op->bytes == op->buf.size() && (op->all || op->bytes > 0 || op->buf.empty())) {
            op->ec.clear();
            return true;
        }
        const std::size_t want = op->buf.size() - op->bytes;
        // Read before the call: a short write or EAGAIN proves the side full at this count.
        const std::uint32_t seq = st->ready_seq[1].load(std::memory_order_acquire);
        ssize_t n = send_nosignal(st->fd, op->buf.data() + op->bytes, want, nullptr, 0);
        if (n >= 0) {
            op->bytes += static_cast<std::size_t>(n);
            const bool full = static_cast<std::size_t>(n) < want && st->short_drains;
            if (full) st->mark_drained(1, seq);
            if (!op->all) {
                op->ec.clear();
                return true;
            }
            if (full) return false;  // the send buffer is full: the rest waits for the next edge
            continue;
        }
        if (errno == EINTR) continue;
        if (would_block(errno)) {
            st->mark_drained(1, seq);
            run_test_hook(hook_point::would_block, st);
            return false;
        }
        op->ec = last_error();
        // A reset that the poller's event took (see above) reads as EPIPE here.
        if (int e = take_event_error(st)) op->ec = std::error_code(e, std::system_category());
        return true;
    }
}

// ---- accept ----

accept_op::~accept_op() {
    if (new_fd >= 0) ::close(new_fd);  // accepted but never handed out (e.g. timed out)
}

bool accept_op::perform_accept(operation* o) noexcept {
    auto* op = static_cast<accept_op*>(o);
    for (;;) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd = accept_socket(op->st.get()->fd, reinterpret_cast<sockaddr*>(&ss), &len);
        if (fd >= 0) {
            op->new_fd = fd;
            std::error_code ignore;
            op->peer = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len, ignore);
            op->ec.clear();
            return true;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (would_block(errno)) return false;
        op->ec = last_error();  // EMFILE, ENFILE, ENOBUFS...: reported; the listener stays usable
        return true;
    }
}

tcp_stream accept_op::await_resume() {
    throw_if(ec, "taskport::io::tcp_listener::accept");
    int fd = std::exchange(new_fd, -1);
    return tcp_stream(socket_core(st.get()->svc, fd));
}

// ---- connect ----

connect_op::connect_op(service* s, const endpoint& ep) noexcept : socket_op(&perform_connect, 1), target(ep) {
    svc = s;
}

connect_op::connect_op(connect_op&& o) noexcept
    : socket_op(std::move(o)), own(std::move(o.own)), target(o.target), started(o.started) {}

bool connect_op::await_ready() noexcept { return begin(target.data(), target.size()); }

bool connect_op::begin(const sockaddr* sa, std::uint32_t len) noexcept {
    std::error_code e;
    int fd = open_socket(sa->sa_family, SOCK_STREAM, e);
    if (fd < 0) {
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
    for (;;) {
        if (::connect(fd, sa, len) == 0) {
            ec.clear();
            return true;
        }
        if (errno == EINTR) continue;
        if (errno == EINPROGRESS) break;
        ec = last_error();
        return true;
    }
    started = true;
    return false;
}

bool connect_op::perform_connect(operation* o) noexcept {
    auto* op = static_cast<connect_op*>(o);
    if (!op->started) return true;  // connected (or failed) in await_ready
    // Writable means the handshake finished, one way or the other; a spurious wake-up is not.
    pollfd p{op->st.get()->fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) == 0) return false;
    descriptor_state* st = op->st.get();
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(st->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    // Where the poller's events carry the socket's error (kqueue, see the reads above), a
    // failed handshake (hung up) with no error left on the socket has it in a poller event:
    // wait for a hung-up event if none was handled yet, then report its error.
    if (st->svc->react->events_carry_errors()) {
        if (err != 0)
            take_event_error(st);  // the socket still had it: a kept copy is the same one
        else if (p.revents & POLLHUP) {
            if (!st->hup_event.load(std::memory_order_acquire)) return false;
            err = take_event_error(st);
        }
    }
    op->ec = err ? std::error_code(err, std::system_category()) : std::error_code();
    return true;
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
    int v = on ? 1 : 0;
    if (detail::with_fd(core_, what, [&](int fd) { return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v); }) < 0)
        throw std::system_error(errno, std::system_category(), what);
}

void tcp_stream::shutdown_write() {
    const char* what = "taskport::io::tcp_stream::shutdown_write";
    if (detail::with_fd(core_, what, [](int fd) { return ::shutdown(fd, SHUT_WR); }) < 0)
        throw std::system_error(errno, std::system_category(), what);
}

endpoint detail::socket_name(const socket_core& c, bool peer, const char* what) {
    return with_fd(c, what, [&](int fd) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
        if (r < 0) throw std::system_error(errno, std::system_category(), what);
        std::error_code ec;
        endpoint e = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len, ec);
        if (ec) throw std::system_error(ec, what);
        return e;
    });
}

endpoint tcp_stream::local_endpoint() const { return detail::socket_name(core_, false, "taskport::io::tcp_stream::local_endpoint"); }
endpoint tcp_stream::remote_endpoint() const { return detail::socket_name(core_, true, "taskport::io::tcp_stream::remote_endpoint"); }
endpoint tcp_listener::local_endpoint() const { return detail::socket_name(core_, false, "taskport::io::tcp_listener::local_endpoint"); }

detail::socket_core detail::listen_socket(service& svc, const sockaddr* sa, std::uint32_t len, int backlog, bool reuse_addr,
                                  const char* what, const std::string& name) {
    std::error_code ec;
    int fd = open_socket(sa->sa_family, SOCK_STREAM, ec);
    if (fd < 0) throw std::system_error(ec, std::string(what) + ": socket");
    int one = 1;
    if (reuse_addr) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, sa, len) < 0) {
        int e = errno;
        ::close(fd);
        throw std::system_error(e, std::system_category(), std::string(what) + " " + name);
    }
    if (::listen(fd, backlog) < 0) {
        int e = errno;
        ::close(fd);
        throw std::system_error(e, std::system_category(), std::string(what) + ": listen");
    }
    return socket_core(&svc, fd);
}

tcp_listener tcp_listener::bind(runtime& rt, const endpoint& ep, int backlog) {
    tcp_listener l;
    l.core_ = detail::listen_socket(detail::service_of(rt), ep.data(), ep.size(), backlog, true,
                                    "taskport::io::tcp_listener::bind", ep.to_string());
    return l;
}

}  // namespace taskport::io
