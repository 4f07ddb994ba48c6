// unix_none.cpp — Unix domain sockets where they are not built (Windows, the completion port):
// bind() and connect() throw function_not_supported, so no unix_stream or unix_listener is
// ever open there and the operations below never run.
#include <taskport/io/unix.hpp>

namespace taskport::io {
namespace detail {

[[noreturn]] static void unsupported(const char* what) {
    throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                            std::string(what) + ": Unix domain sockets are not supported on this platform");
}

unix_address make_unix_address(std::string_view, const char* what) { unsupported(what); }
std::string unix_socket_name(const socket_core&, bool, const char* what) { unsupported(what); }
unix_stream unix_accept_op::await_resume() { unsupported("taskport::io::unix_listener::accept"); }
unix_connect_op::unix_connect_op(service* s, const unix_address& a) noexcept : connect_op(s, endpoint()), addr(a) {}
bool unix_connect_op::await_ready() noexcept {
    ec = std::make_error_code(std::errc::function_not_supported);
    return true;
}
unix_stream unix_connect_op::await_resume() { unsupported("taskport::io::unix_stream::connect"); }

bool unix_send_op::perform_send(operation* op) noexcept {
    op->ec = std::make_error_code(std::errc::function_not_supported);
    return true;
}
bool unix_receive_op::perform_receive(operation* op) noexcept {
    op->ec = std::make_error_code(std::errc::function_not_supported);
    return true;
}
unix_receive_result unix_receive_op::await_resume() const { unsupported("taskport::io::unix_datagram::receive_from"); }

}  // namespace detail

unix_datagram unix_datagram::bind(runtime&, std::string_view) { detail::unsupported("taskport::io::unix_datagram::bind"); }
unix_datagram unix_datagram::open(runtime&) { detail::unsupported("taskport::io::unix_datagram::open"); }
std::pair<unix_datagram, unix_datagram> unix_datagram::pair(runtime&) { detail::unsupported("taskport::io::unix_datagram::pair"); }
void unix_datagram::connect(std::string_view) { detail::unsupported("taskport::io::unix_datagram::connect"); }
detail::unix_send_op unix_datagram::send_to(std::span<const std::byte>, std::string_view) {
    detail::unsupported("taskport::io::unix_datagram::send_to");
}
std::string unix_datagram::local_name() const { detail::unsupported("taskport::io::unix_datagram::local_name"); }
std::string unix_datagram::remote_name() const { detail::unsupported("taskport::io::unix_datagram::remote_name"); }

detail::unix_connect_op unix_stream::connect(runtime&, std::string_view) { detail::unsupported("taskport::io::unix_stream::connect"); }
void unix_stream::shutdown_write() { detail::unsupported("taskport::io::unix_stream::shutdown_write"); }
std::string unix_stream::local_name() const { detail::unsupported("taskport::io::unix_stream::local_name"); }
std::string unix_stream::remote_name() const { detail::unsupported("taskport::io::unix_stream::remote_name"); }
std::string unix_listener::local_name() const { detail::unsupported("taskport::io::unix_listener::local_name"); }
unix_listener unix_listener::bind(runtime&, std::string_view, int) { detail::unsupported("taskport::io::unix_listener::bind"); }

}  // namespace taskport::io
