// udp.cpp — UDP sockets on the readiness core (POSIX: epoll or kqueue), the socket_op pattern
// of tcp.cpp.
#include <taskport/io/udp.hpp>
#include <taskport/runtime.hpp>

#include "posix_socket.hpp"
#include "service.hpp"
#include "socket_ops.hpp"

#include <cerrno>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace taskport::io {
namespace detail {

namespace {

std::error_code last_error() noexcept { return {errno, std::system_category()}; }
bool would_block(int e) noexcept { return e == EAGAIN || e == EWOULDBLOCK; }

}  // namespace

bool send_to_op::perform_send(operation* o) noexcept {
    auto* op = static_cast<send_to_op*>(o);
    for (;;) {
        ssize_t n = send_nosignal(op->st.get()->fd, op->buf.data(), op->buf.size(), op->target.data(),
                                  op->target.size());
        if (n >= 0) {
            op->bytes = static_cast<std::size_t>(n);
            op->ec.clear();
            return true;
        }
        if (errno == EINTR) continue;
        if (would_block(errno)) return false;
        op->ec = last_error();
        take_event_error(op->st.get());  // reported by the socket itself (see receive below)
        return true;
    }
}

bool receive_from_op::perform_receive(operation* o) noexcept {
    auto* op = static_cast<receive_from_op*>(o);
    for (;;) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ssize_t n = ::recvfrom(op->st.get()->fd, op->buf.data(), op->buf.size(), 0,
                               reinterpret_cast<sockaddr*>(&ss), &len);
        if (n >= 0) {
            op->bytes = static_cast<std::size_t>(n);
            std::error_code ignore;  // an unknown family leaves `from` as 0.0.0.0:0
            op->from = endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len, ignore);
            op->ec.clear();
            return true;
        }
        if (errno == EINTR) continue;
        op->ec = last_error();
        // Where a poller event took a pending error (an ICMP one) from the socket (kqueue on
        // libkqueue, poller.hpp), it is reported here, where recvfrom would have reported it.
        const int kept = take_event_error(op->st.get());
        if (would_block(errno)) {
            if (kept == 0) return false;
            op->ec = std::error_code(kept, std::system_category());
        }
        return true;
    }
}

}  // namespace detail

udp_socket udp_socket::bind(runtime& rt, const endpoint& ep) {
    detail::service& svc = detail::service_of(rt);
    std::error_code ec;
    int fd = detail::open_socket(ep.data()->sa_family, SOCK_DGRAM, ec);
    if (fd < 0) throw std::system_error(ec, "taskport::io::udp_socket::bind: socket");
    if (::bind(fd, ep.data(), ep.size()) < 0) {
        int e = errno;
        ::close(fd);
        throw std::system_error(e, std::system_category(), "taskport::io::udp_socket::bind " + ep.to_string());
    }
    udp_socket s;
    s.core_ = detail::socket_core(&svc, fd);
    return s;
}

endpoint udp_socket::local_endpoint() const {
    return detail::socket_name(core_, false, "taskport::io::udp_socket::local_endpoint");
}

}  // namespace taskport::io
