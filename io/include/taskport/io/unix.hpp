// taskport/io/unix.hpp — Unix domain stream sockets (AF_UNIX, SOCK_STREAM).
//
//   auto l = io::unix_listener::bind(rt, "/run/app.sock");     // leaves the file: see bind()
//   io::unix_stream s = co_await l.accept();
//   io::unix_stream c = co_await io::unix_stream::connect(rt, "/run/app.sock");
//   std::size_t n = co_await c.read_some(buf);                  // 0 at end of stream
//
// The same socket core as tcp.hpp: the same operations (read_op, write_op, accept_op, the
// connect step), the same descriptor state, the same rules for threads, close(), cancel(),
// moving with operations pending and outliving the runtime — read tcp.hpp's comment; only the
// address differs.
//
// Names. A name is a filesystem path ("/tmp/x.sock", "rel/x.sock"), or, on Linux, an
// abstract name: one whose first byte is '\0' (std::string("\0app", 4), or io::abstract_name
// ("app")). No '@' convention: "@app" is the file "@app". An abstract name lives in the
// network namespace, leaves no file and goes when its last socket closes. Limits: a path has
// at most sizeof(sun_path) - 1 bytes (107 on Linux, 103 on macOS), an abstract name at most
// sizeof(sun_path) - 1 after its '\0'; longer is std::errc::filename_too_long, empty or a path
// with a '\0' inside is std::errc::invalid_argument (thrown as std::system_error before any
// socket is made).
//
// The socket file. bind() creates the file and nothing removes it: not close(), not the
// destructor (as Asio's local::stream_protocol and the system call itself). A second bind()
// to a path whose file is still there fails with address_in_use; remove the file (std::
// filesystem::remove) before binding, and after closing the listener. There is no
// unlink_on_close: the file may have been replaced by another process's since bind(), and
// removing it then would break that one.
//
// Datagrams (unix_datagram, SOCK_DGRAM): bind a name or stay unnamed, send_to/receive_from a
// name, or connect() once and send/receive; pair() gives two connected ones. Datagrams keep their
// boundaries and, between two sockets, their order (Linux: reliable, a full receiver makes the
// sender wait). The names follow the rules above (a receive_from's sender is "" when unnamed).
//
// Windows: not built on the completion port yet; bind() and connect() (and unix_datagram's
// bind, open, pair) throw std::system_error(std::errc::function_not_supported).
#pragma once

#include <taskport/io/tcp.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace taskport::io {

class unix_stream;
class unix_listener;
class unix_datagram;

/// What unix_datagram::receive_from gives: the datagram's length and who sent it.
struct unix_receive_result {
    /// The datagram's length, or the buffer's size when the datagram was longer (cut).
    std::size_t bytes = 0;
    /// The sender's name: "" when it is unnamed, "\0..." for an abstract name.
    std::string from;
};

// The abstract name `name` (Linux): the same bytes after a leading '\0'.
inline std::string abstract_name(std::string_view name) {
    std::string s(1, '\0');
    s += name;
    return s;
}

namespace detail {

// A sockaddr_un, kept opaque here so that this header needs no <sys/un.h>.
struct unix_address {
    alignas(8) unsigned char storage[112];  // sizeof(sockaddr_un) is 110 on Linux, 106 on macOS
    std::uint32_t len = 0;
};
// The address of `name` (see the file comment); throws std::system_error naming `what`.
unix_address make_unix_address(std::string_view name, const char* what);
// A socket's own (peer false) or its peer's name: "" when unnamed, "\0..." when abstract.
std::string unix_socket_name(const socket_core& c, bool peer, const char* what);

struct unix_accept_op : accept_op {
    using accept_op::accept_op;
    unix_stream await_resume();
};

struct unix_connect_op : connect_op {
    unix_connect_op(service* svc, const unix_address& a) noexcept;
    bool await_ready() noexcept;
    unix_stream await_resume();
    unix_address addr;
};

// unix_datagram's operations. to_name: a send_to (else a send on a connected socket).
struct unix_send_op : socket_op {
    unix_send_op(const socket_core& s, std::span<const std::byte> b) noexcept : socket_op(s, &perform_send, 1), buf(b) {}
    unix_send_op(const socket_core& s, std::span<const std::byte> b, const unix_address& to) noexcept
        : socket_op(s, &perform_send, 1), buf(b), target(to), to_name(true) {}
    std::size_t await_resume() const {
        throw_if(ec, to_name ? "taskport::io::unix_datagram::send_to" : "taskport::io::unix_datagram::send");
        return bytes;
    }
    static bool perform_send(operation* op) noexcept;
    std::span<const std::byte> buf;
    unix_address target;
    bool to_name = false;
};

struct unix_receive_op : socket_op {
    unix_receive_op(const socket_core& s, std::span<std::byte> b) noexcept : socket_op(s, &perform_receive, 0), buf(b) {}
    unix_receive_result await_resume() const;  // throws std::system_error
    static bool perform_receive(operation* op) noexcept;
    std::span<std::byte> buf;
    unix_address from;  // the sender's address, as recvfrom gave it
};

// receive_from's callback form: f(std::error_code, unix_receive_result) as a task.
template <class F>
struct unix_receive_callback_op final : unix_receive_op, taskport::detail::task_allocated {
    unix_receive_callback_op(F&& fn, const socket_core& s, std::span<std::byte> b)
        : unix_receive_op(s, b), f(std::move(fn)) {
        this->run_fn = &unix_receive_callback_op::on_done;
    }
    static void on_done(taskport::detail::task_node* t) noexcept {
        auto* self = static_cast<unix_receive_callback_op*>(t);
        std::error_code ec = self->ec;
        unix_receive_result r;
        if (!ec) {
            try {
                r = self->unix_receive_op::await_resume();
            } catch (const std::system_error& e) {
                ec = e.code();
            }
        }
        F f = std::move(self->f);
        delete self;
        try {
            f(ec, std::move(r));
        } catch (...) {
            report_callback_exception(std::current_exception());
        }
    }
    void go() noexcept { start_detached(this); }
    F f;
};

}  // namespace detail

/// A connected Unix domain stream socket: tcp_stream's operations and rules over AF_UNIX.
/// Move-only. Threads: one reader and one writer at once; close() and cancel() from any thread.
class unix_stream {
public:
    /// An int (a SOCKET on Windows, where the type is not supported yet).
    using native_handle_type = detail::native_socket;

    unix_stream() noexcept = default;
    /// Adopts a connected socket core (what accept and connect produce).
    explicit unix_stream(detail::socket_core&& c) noexcept : core_(std::move(c)) {}

    // Connects to the listener bound to `name`. Throws std::system_error: connection_refused
    // (a file but nobody listening), no_such_file_or_directory, resource_unavailable_try_again
    // (the listener's backlog is full: Linux does not wait for room), filename_too_long, ...
    static detail::unix_connect_op connect(runtime& rt, std::string_view name);

    // As tcp_stream's (their errors name tcp_stream's calls: the operations are shared).
    detail::read_op read_some(std::span<std::byte> buf) noexcept { return {core_, buf}; }
    /// Some of buf; returns how much. Throws std::system_error.
    detail::write_op write_some(std::span<const std::byte> buf) noexcept { return {core_, buf, false}; }
    /// All of buf (several system calls if need be); returns buf.size(). Throws std::system_error.
    detail::write_op write_all(std::span<const std::byte> buf) noexcept { return {core_, buf, true}; }
    /// Callback form of read_some: f(std::error_code, std::size_t) runs as a task on a worker. The
    /// stream and the buffer must outlive the operation.
    template <class F>
    void async_read_some(std::span<std::byte> buf, F&& f) {
        (new detail::callback_op<detail::read_op, std::decay_t<F>>(std::forward<F>(f), core_, buf))->go();
    }
    /// Callback form of write_some: f(std::error_code, std::size_t) runs as a task on a worker.
    template <class F>
    void async_write_some(std::span<const std::byte> buf, F&& f) {
        (new detail::callback_op<detail::write_op, std::decay_t<F>>(std::forward<F>(f), core_, buf, false))->go();
    }
    /// Callback form of write_all: f(std::error_code, std::size_t) runs as a task on a worker.
    template <class F>
    void async_write_all(std::span<const std::byte> buf, F&& f) {
        (new detail::callback_op<detail::write_op, std::decay_t<F>>(std::forward<F>(f), core_, buf, true))->go();
    }

    void shutdown_write();  // throws std::system_error
    /// Closes the socket: pending operations complete with operation_aborted. Idempotent; any thread.
    void close() noexcept { core_.close(); }
    /// Aborts pending operations (operation_aborted); the stream stays open. Any thread.
    void cancel() noexcept { core_.cancel(); }
    /// True until close() (or a move from this object).
    bool is_open() const noexcept { return core_.is_open(); }
    std::string local_name() const;   // "" for a connecting stream (unnamed)
    std::string remote_name() const;  // the listener's name, for a connected one
    /// The socket. Do not close it.
    native_handle_type native_handle() const noexcept { return core_.fd(); }

private:
    detail::socket_core core_;
};

/// A listening Unix domain stream socket. Move-only. The socket file bind() creates is never
/// removed by taskport (see the file comment). Threads: one accept at a time; close() and
/// cancel() from any thread.
class unix_listener {
public:
    /// An int (a SOCKET on Windows, where the type is not supported yet).
    using native_handle_type = detail::native_socket;

    unix_listener() noexcept = default;

    // socket + bind + listen (no SO_REUSEADDR: it means nothing here). Creates the socket file
    // for a path, and leaves it (see the file comment). Throws std::system_error: address_in_use
    // (the file or abstract name exists), filename_too_long, permission_denied, ...
    static unix_listener bind(runtime& rt, std::string_view name, int backlog = 1024);

    // The next connection (as tcp_listener::accept: a failure leaves the listener usable).
    detail::unix_accept_op accept() noexcept { return detail::unix_accept_op(core_); }
    /// Callback form of accept(): f(std::error_code, unix_stream) runs as a task on a worker. The
    /// listener must outlive the operation.
    template <class F>  // f(std::error_code, unix_stream)
    void async_accept(F&& f) {
        detail::async_accept<detail::unix_accept_op, unix_stream>(core_, std::forward<F>(f));
    }

    /// The bound name (a path, or "\0..." for an abstract name). Throws std::system_error.
    std::string local_name() const;
    /// Closes the socket (not the file): a pending accept completes with operation_aborted. Any thread.
    void close() noexcept { core_.close(); }
    /// Aborts a pending accept (operation_aborted); the listener stays open. Any thread.
    void cancel() noexcept { core_.cancel(); }
    /// True until close() (or a move from this object).
    bool is_open() const noexcept { return core_.is_open(); }
    /// The socket. Do not close it.
    native_handle_type native_handle() const noexcept { return core_.fd(); }

private:
    detail::socket_core core_;
};

/// A Unix domain datagram socket (AF_UNIX, SOCK_DGRAM): see the file comment for names and
/// datagrams. Threads, close(), cancel(), moves and callbacks are as for udp_socket (udp.hpp).
class unix_datagram {
public:
    /// The platform's descriptor type (int on POSIX).
    using native_handle_type = detail::native_socket;

    /// A closed socket (operations fail with bad_file_descriptor).
    unix_datagram() noexcept = default;

    /// A socket bound to `name` (a path, whose file it creates and leaves as unix_listener::bind
    /// does, or an abstract name). Throws std::system_error: address_in_use, filename_too_long,
    /// invalid_argument, permission_denied, ...
    static unix_datagram bind(runtime& rt, std::string_view name);
    /// An unnamed socket (it can send; replies cannot reach it unless the peer was connected to
    /// it, e.g. by pair()). Throws std::system_error.
    static unix_datagram open(runtime& rt);
    /// Two unnamed sockets connected to each other (socketpair). Throws std::system_error.
    static std::pair<unix_datagram, unix_datagram> pair(runtime& rt);

    /// Sets the default peer to `name` (send/receive then need no name; datagrams from others
    /// are not received). Does not block. Throws std::system_error: no_such_file_or_directory,
    /// connection_refused (a file but no socket bound to it), ...
    void connect(std::string_view name);

    /// Sends buf as one datagram to `name`; returns buf.size(). Throws std::system_error:
    /// no_such_file_or_directory, connection_refused, message_size (too long), ...; a bad name
    /// (filename_too_long, invalid_argument) throws from this call.
    detail::unix_send_op send_to(std::span<const std::byte> buf, std::string_view name);
    /// Sends buf as one datagram to the connected peer; returns buf.size(). Throws std::system_error.
    detail::unix_send_op send(std::span<const std::byte> buf) noexcept { return {core_, buf}; }
    /// The next datagram: its length (cut to buf.size()) and its sender's name. Throws std::system_error.
    detail::unix_receive_op receive_from(std::span<std::byte> buf) noexcept { return {core_, buf}; }

    /// Callback form of send_to: f(std::error_code, std::size_t) runs as a task.
    template <class F>
    void async_send_to(std::span<const std::byte> buf, std::string_view name, F&& f) {
        const detail::unix_address a = detail::make_unix_address(name, "taskport::io::unix_datagram::send_to");
        (new detail::callback_op<detail::unix_send_op, std::decay_t<F>>(std::decay_t<F>(std::forward<F>(f)), core_,
                                                                       buf, a))
            ->go();
    }
    /// Callback form of receive_from: f(std::error_code, unix_receive_result) runs as a task.
    template <class F>
    void async_receive_from(std::span<std::byte> buf, F&& f) {
        (new detail::unix_receive_callback_op<std::decay_t<F>>(std::decay_t<F>(std::forward<F>(f)), core_, buf))->go();
    }

    /// Its own name ("" when unnamed). Throws std::system_error.
    std::string local_name() const;
    /// The connected peer's name. Throws std::system_error (not_connected).
    std::string remote_name() const;
    /// Closes it (any thread, idempotent): pending operations complete with operation_aborted.
    void close() noexcept { core_.close(); }
    /// Aborts pending operations (operation_aborted); stays open. Any thread.
    void cancel() noexcept { core_.cancel(); }
    /// False once closed, moved from or never opened.
    bool is_open() const noexcept { return core_.is_open(); }
    /// The descriptor (invalid once closed).
    native_handle_type native_handle() const noexcept { return core_.fd(); }

private:
    detail::socket_core core_;
};

}  // namespace taskport::io
