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
// Windows: not built on the completion port yet; bind() and connect() throw
// std::system_error(std::errc::function_not_supported).
#pragma once

#include <taskport/io/tcp.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace taskport::io {

class unix_stream;
class unix_listener;

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

}  // namespace taskport::io
