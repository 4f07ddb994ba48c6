// taskport/io/tcp.hpp — TCP streams and listeners.
//
//   auto l = io::tcp_listener::bind(rt, io::endpoint::parse("127.0.0.1:0"));
//   io::tcp_stream s = co_await l.accept();
//   std::size_t n = co_await s.read_some(buf);      // 0 at end of stream
//   co_await s.write_all(reply);
//
// Coroutine forms throw std::system_error carrying the OS's error; callback forms
// (async_read_some, ...) get the std::error_code and run as a task on a worker. An operation
// tries its system call at once and parks only when it would block.
//
// Threads (as Asio's): one stream or listener is not for concurrent use — except that close()
// and cancel() may be called from any thread at any time, also while another thread starts an
// operation on it; and one task may read while another writes. close() (or destruction)
// completes every pending operation with operation_aborted; an operation started after close()
// fails with bad_file_descriptor (one racing it gets either, or runs on the still-open socket
// and is then aborted). Moving a stream or listener with operations pending is safe: they belong
// to the socket, not to the object, and complete as if it had not moved. An object that outlives
// its runtime can be closed; its other operations fail with operation_aborted (callbacks then
// run inside the call: no worker is left). The runtime's I/O service (its poller's descriptors)
// stays until the last object that used it is destroyed.
#pragma once

#include <taskport/io/detail/operation.hpp>
#include <taskport/io/endpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

namespace taskport::io {

class tcp_stream;
class tcp_listener;

namespace detail {

// An open socket: a counted reference to its state, which the backend owns (descriptor.hpp).
// Moving it moves that reference; operations hold their own, so they never look back at this
// object. close() and cancel() may run on any thread, also while another thread starts an
// operation on the same object (see tcp_stream); nothing else here is for concurrent use.
class socket_core {
public:
    socket_core() noexcept = default;
    socket_core(service* s, native_socket fd);  // registers fd (non-blocking); closes it and throws on error
    socket_core(socket_core&& o) noexcept = default;
    socket_core& operator=(socket_core&& o) noexcept {
        if (this != &o) {
            close();
            st_ = std::move(o.st_);
        }
        return *this;
    }
    ~socket_core() { close(); }

    void close() noexcept;   // idempotent; aborts pending operations; any thread
    void cancel() noexcept;  // aborts pending operations, stays open; any thread
    bool is_open() const noexcept;
    native_socket fd() const noexcept;  // invalid_socket once closed
    const descriptor_ref& state() const noexcept { return st_; }

private:
    descriptor_ref st_;  // set at construction, changed only by moves (never by close)
};

// Common shape of the socket awaiters: fast path in await_ready, park in await_suspend.
struct socket_op : coro_operation {
    socket_op(const socket_core& s, perform_fn p, int direction) noexcept
        : coro_operation(p), st(s.state()), direction(direction) {}
    socket_op(perform_fn p, int direction) noexcept : coro_operation(p), direction(direction) {}  // st set later
    socket_op(socket_op&&) noexcept = default;

    bool await_ready() noexcept;  // true when finished now (or the socket is closed)
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        capture(h);
        return start();
    }
    bool start() noexcept;  // true if parked / queued; false if finished now

    descriptor_ref st;  // the socket's state, held for the operation's whole life
    int direction;
    bool force_queue = false;  // the coop budget ran out: deliver through the queue
    bool tried = false;        // await_ready's attempt would block; ready_seen is valid
    std::uint32_t ready_seen = 0;  // the descriptor's readiness count read before that attempt
};

struct read_op : socket_op {
    read_op(const socket_core& s, std::span<std::byte> b) noexcept : socket_op(s, &perform_read, 0), buf(b) {}
    std::size_t await_resume() const {
        throw_if(ec, "taskport::io::tcp_stream::read_some");
        return bytes;
    }
    static bool perform_read(operation* op) noexcept;
    std::span<std::byte> buf;
};

struct write_op : socket_op {
    write_op(const socket_core& s, std::span<const std::byte> b, bool all) noexcept
        : socket_op(s, &perform_write, 1), buf(b), all(all) {}
    std::size_t await_resume() const {
        throw_if(ec, all ? "taskport::io::tcp_stream::write_all" : "taskport::io::tcp_stream::write_some");
        return bytes;
    }
    static bool perform_write(operation* op) noexcept;
    std::span<const std::byte> buf;
    bool all;
};

struct accept_op : socket_op {
    explicit accept_op(const socket_core& s) noexcept : socket_op(s, &perform_accept, 0) {}
    accept_op(accept_op&& o) noexcept : socket_op(std::move(o)), new_fd(std::exchange(o.new_fd, invalid_socket)) {}
    ~accept_op();
    tcp_stream await_resume();
    static bool perform_accept(operation* op) noexcept;
    native_socket new_fd = invalid_socket;
    endpoint peer;
    [[no_unique_address]] accept_storage addrs;  // Windows: AcceptEx's address buffer
};

struct connect_op : socket_op {
    connect_op(service* svc, const endpoint& ep) noexcept;
    connect_op(connect_op&& o) noexcept;
    bool await_ready() noexcept;
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        capture(h);
        return start();
    }
    tcp_stream await_resume();
    static bool perform_connect(operation* op) noexcept;
    // Readiness core (tcp.cpp): opens a socket of sa's family and starts connecting it to sa;
    // await_ready's body, shared with unix_connect_op. True when finished (ec set or clear).
    bool begin(const sockaddr* sa, std::uint32_t len) noexcept;
    socket_core own;  // the new socket (st refers to its state once it exists)
    endpoint target;
    bool started = false;
};

// Starts a heap op whose completion is a task: parks it, or queues it at once when it finishes
// synchronously (so the callback never runs inside the caller). A closed socket: bad_file_descriptor;
// a runtime gone: operation_aborted (run inline then: no worker is left).
void start_detached(socket_op* op) noexcept;

// The callback form of an accept (tcp_listener, unix_listener): Op is the listener's accept_op,
// Stream what its await_resume gives; f(std::error_code, Stream) runs as a task.
template <class Op, class Stream, class F>
void async_accept(const socket_core& core, F&& f) {
    struct op final : Op, taskport::detail::task_allocated {
        op(const socket_core& s, std::decay_t<F>&& fn) : Op(s), f(std::move(fn)) {
            this->run_fn = &op::on_done;
        }
        static void on_done(taskport::detail::task_node* t) noexcept {
            auto* self = static_cast<op*>(t);
            std::error_code ec = self->ec;
            Stream s;
            if (!ec) {
                try {
                    s = self->Op::await_resume();
                } catch (const std::system_error& e) {
                    ec = e.code();
                }
            }
            auto fn = std::move(self->f);
            delete self;
            try {
                fn(ec, std::move(s));
            } catch (...) {
                report_callback_exception(std::current_exception());
            }
        }
        std::decay_t<F> f;
    };
    start_detached(new op(core, std::decay_t<F>(std::forward<F>(f))));
}



}  // namespace detail

/// A connected TCP stream. Move-only. Threads: one task may read while another writes; two reads
/// (or two writes) at once are not allowed; close() and cancel() may be called from any thread at
/// any time (see the file comment). Coroutine forms throw std::system_error with the OS's error;
/// callback forms get the std::error_code.
class tcp_stream {
public:
    using native_handle_type = detail::native_socket;  // int; SOCKET on Windows

    tcp_stream() noexcept = default;
    /// Adopts a connected socket core (what accept and connect produce).
    explicit tcp_stream(detail::socket_core&& c) noexcept : core_(std::move(c)) {}

    // Connects to ep. Throws std::system_error (connection refused, unreachable, ...).
    static detail::connect_op connect(runtime& rt, const endpoint& ep);

    // At most buf.size() bytes; 0 means the peer closed its side (or buf is empty).
    detail::read_op read_some(std::span<std::byte> buf) noexcept { return {core_, buf}; }
    // Some of buf; returns how much.
    detail::write_op write_some(std::span<const std::byte> buf) noexcept { return {core_, buf, false}; }
    // All of buf (several system calls if need be); returns buf.size().
    detail::write_op write_all(std::span<const std::byte> buf) noexcept { return {core_, buf, true}; }

    // Callback forms: f(std::error_code, std::size_t) runs as a task on a worker. The stream
    // and the buffer must outlive the operation.
    template <class F>
    void async_read_some(std::span<std::byte> buf, F&& f) {
        (new detail::callback_op<detail::read_op, std::decay_t<F>>(std::forward<F>(f), core_, buf))->go();
    }
    /// Callback form of write_some: f(std::error_code, std::size_t) runs as a task on a worker. The
    /// stream and the buffer must outlive the operation.
    template <class F>
    void async_write_some(std::span<const std::byte> buf, F&& f) {
        (new detail::callback_op<detail::write_op, std::decay_t<F>>(std::forward<F>(f), core_, buf, false))->go();
    }
    /// Callback form of write_all: f(std::error_code, std::size_t) runs as a task on a worker. The
    /// stream and the buffer must outlive the operation.
    template <class F>
    void async_write_all(std::span<const std::byte> buf, F&& f) {
        (new detail::callback_op<detail::write_op, std::decay_t<F>>(std::forward<F>(f), core_, buf, true))->go();
    }

    void set_nodelay(bool on);    // throws std::system_error
    void shutdown_write();        // sends FIN; throws std::system_error
    /// Closes the socket: every pending operation completes with operation_aborted; later ones fail
    /// with bad_file_descriptor. Idempotent; any thread, at any time.
    void close() noexcept { core_.close(); }
    void cancel() noexcept { core_.cancel(); }  // aborts pending operations, stays open
    /// True until close() (or a move from this object).
    bool is_open() const noexcept { return core_.is_open(); }
    /// The local address (getsockname). Throws std::system_error.
    endpoint local_endpoint() const;
    /// The peer's address (getpeername). Throws std::system_error (not_connected, ...).
    endpoint remote_endpoint() const;
    /// The socket (an int; a SOCKET on Windows). Do not close it.
    native_handle_type native_handle() const noexcept { return core_.fd(); }

private:
    detail::socket_core core_;
};

/// A listening TCP socket. Move-only. Threads: one accept at a time; close() and cancel() may be
/// called from any thread at any time.
class tcp_listener {
public:
    /// An int; a SOCKET on Windows.
    using native_handle_type = detail::native_socket;

    tcp_listener() noexcept = default;

    // socket + SO_REUSEADDR + bind + listen. Throws std::system_error (address in use, ...).
    static tcp_listener bind(runtime& rt, const endpoint& ep, int backlog = 1024);

    // The next connection. A failure (EMFILE when descriptors run out, ...) throws
    // std::system_error and leaves the listener usable: accept again.
    detail::accept_op accept() noexcept { return detail::accept_op(core_); }
    /// Callback form of accept(): f(std::error_code, tcp_stream) runs as a task on a worker. The
    /// listener must outlive the operation.
    template <class F>  // f(std::error_code, tcp_stream)
    void async_accept(F&& f);

    /// The bound address, with the port the system chose for port 0. Throws std::system_error.
    endpoint local_endpoint() const;
    /// Closes the socket: a pending accept completes with operation_aborted. Idempotent; any thread.
    void close() noexcept { core_.close(); }
    /// Aborts a pending accept (operation_aborted); the listener stays open. Any thread.
    void cancel() noexcept { core_.cancel(); }
    /// True until close() (or a move from this object).
    bool is_open() const noexcept { return core_.is_open(); }
    /// The socket (an int; a SOCKET on Windows). Do not close it.
    native_handle_type native_handle() const noexcept { return core_.fd(); }

private:
    detail::socket_core core_;
};

template <class F>
void tcp_listener::async_accept(F&& f) {
    detail::async_accept<detail::accept_op, tcp_stream>(core_, std::forward<F>(f));
}

}  // namespace taskport::io
