// unix.cpp — Unix domain stream sockets on the readiness core (POSIX). Only the address is
// here: reads, writes, accept, the connect step, listen and close are tcp.cpp's (socket_ops.hpp
// listen_socket, connect_op::begin, accept_op::perform_accept), run on an AF_UNIX socket.
// Names and the socket file: see unix.hpp.
#include <taskport/io/unix.hpp>
#include <taskport/runtime.hpp>

#include "posix_socket.hpp"
#include "service.hpp"
#include "socket_ops.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace taskport::io {
namespace detail {

static_assert(sizeof(sockaddr_un) <= sizeof(unix_address::storage));
static_assert(alignof(sockaddr_un) <= 8);

namespace {
constexpr std::size_t path_room = sizeof(sockaddr_un::sun_path);
constexpr std::uint32_t path_offset = offsetof(sockaddr_un, sun_path);

[[noreturn]] void bad_name(std::errc e, const char* what, std::string_view name, const char* why) {
    std::string shown;
    for (char c : name) shown += c == '\0' ? std::string("\\0") : std::string(1, c);
    throw std::system_error(std::make_error_code(e), std::string(what) + ": \"" + shown + "\" " + why);
}
}  // namespace

unix_address make_unix_address(std::string_view name, const char* what) {
    if (name.empty()) bad_name(std::errc::invalid_argument, what, name, "is empty");
    const bool abstract = name.front() == '\0';
    if (!abstract && name.find('\0') != std::string_view::npos)
        bad_name(std::errc::invalid_argument, what, name, "has a '\\0' inside a path");
    // A path keeps room for its terminating '\0' (portable, and what getsockname gives back);
    // an abstract name is its bytes, the leading '\0' included, with no terminator.
    if (name.size() > (abstract ? path_room : path_room - 1))
        bad_name(std::errc::filename_too_long, what, name,
                 abstract ? "is longer than an abstract name may be (sun_path)" : "is longer than sun_path holds");
    unix_address a;
    auto* sa = reinterpret_cast<sockaddr_un*>(a.storage);
    std::memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    std::memcpy(sa->sun_path, name.data(), name.size());
    a.len = path_offset + static_cast<std::uint32_t>(name.size()) + (abstract ? 0 : 1);
    return a;
}

namespace {
// The name in a sockaddr_un of length len, as the system gave it.
std::string name_of(const sockaddr_un& sa, socklen_t len) {
    if (len <= path_offset) return std::string();  // unnamed
    const std::size_t n = std::min<std::size_t>(len - path_offset, path_room);
    if (sa.sun_path[0] == '\0') return std::string(sa.sun_path, n);  // abstract: every byte counts
    return std::string(sa.sun_path, ::strnlen(sa.sun_path, n));
}
}  // namespace

std::string unix_socket_name(const socket_core& c, bool peer, const char* what) {
    return with_fd(c, what, [&](int fd) {
        sockaddr_un sa{};
        socklen_t len = sizeof sa;
        int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
        if (r < 0) throw std::system_error(errno, std::system_category(), what);
        return name_of(sa, len);
    });
}

// ---- datagrams ----

bool unix_send_op::perform_send(operation* o) noexcept {
    auto* op = static_cast<unix_send_op*>(o);
    for (;;) {
        const ssize_t n = send_nosignal(op->st.get()->fd, op->buf.data(), op->buf.size(),
                                        op->to_name ? reinterpret_cast<const sockaddr*>(op->target.storage) : nullptr,
                                        op->to_name ? op->target.len : 0);
        if (n >= 0) {
            op->bytes = static_cast<std::size_t>(n);
            op->ec.clear();
            return true;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;  // the receiver's queue is full
        op->ec = std::error_code(errno, std::system_category());
        return true;
    }
}

bool unix_receive_op::perform_receive(operation* o) noexcept {
    auto* op = static_cast<unix_receive_op*>(o);
    for (;;) {
        auto* sa = reinterpret_cast<sockaddr_un*>(op->from.storage);
        socklen_t len = sizeof(sockaddr_un);
        const ssize_t n = ::recvfrom(op->st.get()->fd, op->buf.data(), op->buf.size(), 0,
                                     reinterpret_cast<sockaddr*>(sa), &len);
        if (n >= 0) {
            op->bytes = static_cast<std::size_t>(n);
            op->from.len = static_cast<std::uint32_t>(len);
            op->ec.clear();
            return true;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        op->ec = std::error_code(errno, std::system_category());
        return true;
    }
}

unix_receive_result unix_receive_op::await_resume() const {
    throw_if(ec, "taskport::io::unix_datagram::receive_from");
    return {bytes, name_of(*reinterpret_cast<const sockaddr_un*>(from.storage), static_cast<socklen_t>(from.len))};
}

unix_stream unix_accept_op::await_resume() {
    throw_if(ec, "taskport::io::unix_listener::accept");
    int fd = std::exchange(new_fd, -1);
    return unix_stream(socket_core(st.get()->svc, fd));
}

unix_connect_op::unix_connect_op(service* s, const unix_address& a) noexcept : connect_op(s, endpoint()), addr(a) {}

bool unix_connect_op::await_ready() noexcept {
    return begin(reinterpret_cast<const sockaddr*>(addr.storage), addr.len);
}

unix_stream unix_connect_op::await_resume() {
    if (ec) {
        own.close();
        const auto* sa = reinterpret_cast<const sockaddr_un*>(addr.storage);
        std::string name(sa->sun_path, addr.len - path_offset);
        if (!name.empty() && name.front() == '\0')
            name = "\\0" + name.substr(1);
        else if (!name.empty())
            name.pop_back();  // the terminator
        throw std::system_error(ec, "taskport::io::unix_stream::connect to " + name);
    }
    return unix_stream(std::move(own));
}

}  // namespace detail

detail::unix_connect_op unix_stream::connect(runtime& rt, std::string_view name) {
    return detail::unix_connect_op(&detail::service_of(rt),
                                   detail::make_unix_address(name, "taskport::io::unix_stream::connect"));
}

void unix_stream::shutdown_write() {
    const char* what = "taskport::io::unix_stream::shutdown_write";
    if (detail::with_fd(core_, what, [](int fd) { return ::shutdown(fd, SHUT_WR); }) < 0)
        throw std::system_error(errno, std::system_category(), what);
}

std::string unix_stream::local_name() const {
    return detail::unix_socket_name(core_, false, "taskport::io::unix_stream::local_name");
}
std::string unix_stream::remote_name() const {
    return detail::unix_socket_name(core_, true, "taskport::io::unix_stream::remote_name");
}
std::string unix_listener::local_name() const {
    return detail::unix_socket_name(core_, false, "taskport::io::unix_listener::local_name");
}

unix_listener unix_listener::bind(runtime& rt, std::string_view name, int backlog) {
    const char* what = "taskport::io::unix_listener::bind";
    const detail::unix_address a = detail::make_unix_address(name, what);
    std::string shown(name);
    if (!shown.empty() && shown.front() == '\0') shown = "\\0" + shown.substr(1);
    unix_listener l;
    l.core_ = detail::listen_socket(detail::service_of(rt), reinterpret_cast<const sockaddr*>(a.storage), a.len,
                                    backlog, false, what, shown);
    return l;
}


// ---- unix_datagram ----

namespace {
std::string shown_name(std::string_view name) {
    std::string shown(name);
    if (!shown.empty() && shown.front() == '\0') shown = "\\0" + shown.substr(1);
    return shown;
}

detail::socket_core open_datagram(runtime& rt, const char* what) {
    std::error_code ec;
    const int fd = detail::open_socket(AF_UNIX, SOCK_DGRAM, ec);
    if (fd < 0) throw std::system_error(ec, std::string(what) + ": socket");
    return detail::socket_core(&detail::service_of(rt), fd);  // closes fd if it throws
}
}  // namespace

unix_datagram unix_datagram::bind(runtime& rt, std::string_view name) {
    const char* what = "taskport::io::unix_datagram::bind";
    const detail::unix_address a = detail::make_unix_address(name, what);
    unix_datagram d;
    d.core_ = open_datagram(rt, what);
    detail::with_fd(d.core_, what, [&](int fd) {
        if (::bind(fd, reinterpret_cast<const sockaddr*>(a.storage), a.len) < 0)
            throw std::system_error(errno, std::system_category(), std::string(what) + " " + shown_name(name));
        return 0;
    });
    return d;
}

unix_datagram unix_datagram::open(runtime& rt) {
    unix_datagram d;
    d.core_ = open_datagram(rt, "taskport::io::unix_datagram::open");
    return d;
}

std::pair<unix_datagram, unix_datagram> unix_datagram::pair(runtime& rt) {
    const char* what = "taskport::io::unix_datagram::pair";
    detail::service& svc = detail::service_of(rt);
    int sv[2];
#if TASKPORT_HAVE_SOCK_FLAGS
    if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        throw std::system_error(errno, std::system_category(), what);
#else
    if (::socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0) throw std::system_error(errno, std::system_category(), what);
    for (int fd : sv) {  // the fork window of posix_socket.cpp's fallback applies
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
#endif
#if !TASKPORT_HAVE_MSG_NOSIGNAL && TASKPORT_HAVE_SO_NOSIGPIPE
    for (int fd : sv) {
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    std::pair<unix_datagram, unix_datagram> p;
    try {
        p.first.core_ = detail::socket_core(&svc, sv[0]);
    } catch (...) {
        ::close(sv[1]);
        throw;
    }
    p.second.core_ = detail::socket_core(&svc, sv[1]);
    return p;
}

void unix_datagram::connect(std::string_view name) {
    const char* what = "taskport::io::unix_datagram::connect";
    const detail::unix_address a = detail::make_unix_address(name, what);
    detail::with_fd(core_, what, [&](int fd) {
        int r;
        while ((r = ::connect(fd, reinterpret_cast<const sockaddr*>(a.storage), a.len)) < 0 && errno == EINTR) {
        }
        if (r < 0) throw std::system_error(errno, std::system_category(), std::string(what) + " to " + shown_name(name));
        return 0;
    });
}

detail::unix_send_op unix_datagram::send_to(std::span<const std::byte> buf, std::string_view name) {
    return {core_, buf, detail::make_unix_address(name, "taskport::io::unix_datagram::send_to")};
}

std::string unix_datagram::local_name() const {
    return detail::unix_socket_name(core_, false, "taskport::io::unix_datagram::local_name");
}
std::string unix_datagram::remote_name() const {
    return detail::unix_socket_name(core_, true, "taskport::io::unix_datagram::remote_name");
}

}  // namespace taskport::io
