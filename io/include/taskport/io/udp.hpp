// taskport/io/udp.hpp — UDP sockets.
//
//   auto s = io::udp_socket::bind(rt, io::endpoint::parse("127.0.0.1:0"));
//   co_await s.send_to(msg, peer);                        // one datagram; returns msg.size()
//   auto [n, from] = co_await s.receive_from(buf);        // one datagram, cut to buf.size()
//
// On the readiness core like TCP: an operation tries its system call at once and parks only when
// it would block. Coroutine forms throw std::system_error; callback forms get the
// std::error_code and run as a task on a worker. close() (or destruction) completes every
// pending operation with operation_aborted. Threads, moves and closing: as for tcp_stream.
#pragma once

#include <taskport/io/endpoint.hpp>
#include <taskport/io/tcp.hpp>  // the socket core shared with TCP

#include <cstddef>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport::io {

/// What receive_from gives: the datagram's length and its sender.
struct udp_receive_result {
    std::size_t bytes = 0;  // the datagram's length, or buf.size() if it was longer (cut)
    /// The sender's address.
    endpoint from;
};

namespace detail {

struct send_to_op : socket_op {
    send_to_op(const socket_core& s, std::span<const std::byte> b, const endpoint& to) noexcept
        : socket_op(s, &perform_send, 1), buf(b), target(to) {}
    std::size_t await_resume() const {
        throw_if(ec, "taskport::io::udp_socket::send_to");
        return bytes;
    }
    static bool perform_send(operation* op) noexcept;
    std::span<const std::byte> buf;
    endpoint target;
};

struct receive_from_op : socket_op {
    receive_from_op(const socket_core& s, std::span<std::byte> b) noexcept
        : socket_op(s, &perform_receive, 0), buf(b) {}
    udp_receive_result await_resume() const {
        throw_if(ec, "taskport::io::udp_socket::receive_from");
        return {bytes, from};
    }
    static bool perform_receive(operation* op) noexcept;
    std::span<std::byte> buf;
    endpoint from;
};

// receive_from's callback form: f(std::error_code, std::size_t, endpoint) as a task.
template <class F>
struct receive_callback_op final : receive_from_op, taskport::detail::task_allocated {
    receive_callback_op(F&& fn, const socket_core& s, std::span<std::byte> b)
        : receive_from_op(s, b), f(std::move(fn)) {
        this->run_fn = &receive_callback_op::on_done;
    }
    static void on_done(taskport::detail::task_node* t) noexcept {
        auto* self = static_cast<receive_callback_op*>(t);
        std::error_code ec = self->ec;
        std::size_t n = self->bytes;
        endpoint from = self->from;
        F f = std::move(self->f);
        delete self;
        try {
            f(ec, n, from);
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    void go() noexcept { start_detached(this); }
    F f;
};

}  // namespace detail

/// A UDP socket. Move-only. Threads: one task may receive while another sends; close() and
/// cancel() from any thread at any time. Coroutine forms throw std::system_error; callback forms
/// get the std::error_code.
class udp_socket {
public:
    using native_handle_type = detail::native_socket;  // int; SOCKET on Windows

    udp_socket() noexcept = default;

    // A socket of ep's family bound to ep (port 0: the system picks one; see local_endpoint).
    // Throws std::system_error (address in use, ...).
    static udp_socket bind(runtime& rt, const endpoint& ep);

    // Sends buf as one datagram to `to`; returns buf.size(). An empty buf sends an empty datagram.
    detail::send_to_op send_to(std::span<const std::byte> buf, const endpoint& to) noexcept {
        return {core_, buf, to};
    }
    // The next datagram: its length (cut to buf.size()) and its sender.
    detail::receive_from_op receive_from(std::span<std::byte> buf) noexcept { return {core_, buf}; }

    // Callback forms, run as a task on a worker. The socket and the buffer must outlive the
    // operation.
    template <class F>  // f(std::error_code, std::size_t)
    void async_send_to(std::span<const std::byte> buf, const endpoint& to, F&& f) {
        (new detail::callback_op<detail::send_to_op, std::decay_t<F>>(std::decay_t<F>(std::forward<F>(f)),
                                                                     core_, buf, to))
            ->go();
    }
    /// Callback form of receive_from: f(std::error_code, std::size_t, endpoint from) runs as a task on
    /// a worker. The socket and the buffer must outlive the operation.
    template <class F>  // f(std::error_code, std::size_t, endpoint from)
    void async_receive_from(std::span<std::byte> buf, F&& f) {
        (new detail::receive_callback_op<std::decay_t<F>>(std::decay_t<F>(std::forward<F>(f)), core_, buf))->go();
    }

    /// The bound address, with the port the system chose for port 0. Throws std::system_error.
    endpoint local_endpoint() const;
    /// Closes the socket: pending operations complete with operation_aborted. Idempotent; any thread.
    void close() noexcept { core_.close(); }
    void cancel() noexcept { core_.cancel(); }  // aborts pending operations, stays open
    /// True until close() (or a move from this object).
    bool is_open() const noexcept { return core_.is_open(); }
    /// The socket (an int; a SOCKET on Windows). Do not close it.
    native_handle_type native_handle() const noexcept { return core_.fd(); }

private:
    detail::socket_core core_;
};

}  // namespace taskport::io
