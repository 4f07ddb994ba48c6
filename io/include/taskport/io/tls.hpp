// taskport/io/tls.hpp — TLS over a tcp_stream (OpenSSL 3 through memory BIOs).
//
//   io::tls_context ctx(io::tls_role::client);          // system CA store, host name checked
//   io::tls_stream s(co_await io::tcp_stream::connect(rt, ep), ctx);
//   s.set_host("example.com");                           // SNI + the name the certificate must carry
//   co_await s.handshake();
//   co_await s.write_all(request);
//   std::size_t n = co_await s.read_some(buf);           // 0: the peer sent close_notify
//   co_await s.shutdown();                               // our close_notify
//
// OpenSSL never touches the socket: it reads and writes a memory BIO pair, and the stream moves
// the ciphertext with the tcp_stream's own read_some/write_all, so TLS runs unchanged on every
// backend (epoll, io_uring, kqueue, IOCP). Each TLS operation is one awaitable made of those socket
// steps; it honours cancellation (future::cancel of its task) and with_timeout like a socket
// operation: the step in flight is aborted and the operation throws operation_aborted (timed_out
// under with_timeout). After a cancelled handshake, write or shutdown the stream is unusable
// (a record may be half sent): close it. A cancelled read leaves it usable.
//
// Errors: std::system_error. Socket errors keep the OS's code; TLS failures carry
// tls_category(): OpenSSL's packed error (message: OpenSSL's reason text), a certificate
// verification result (message: X509_verify_cert_error_string's text, e.g. "certificate has
// expired", "hostname mismatch"), or a tls_errc (stream_truncated: the connection ended
// without close_notify; handshake_eof: it ended during the handshake).
//
// Threads: a tls_context is immutable after setup and shared by any number of streams on any
// threads (it holds a counted SSL_CTX). A tls_stream runs one operation at a time (unlike
// tcp_stream, no concurrent read and write); close() and cancel() may be called from any thread.
// Pending operations own the stream's state: moving a tls_stream with an operation pending is
// safe, and destroying it closes the socket and aborts the operation.
#pragma once

#include <taskport/io/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace taskport::io {

// Our own TLS conditions (values below 256; OpenSSL's packed errors are >= 1 << 23 and
// verification results are verify_base + X509_V_ERR_*).
enum class tls_errc {
    stream_truncated = 1,  // the peer closed the connection without close_notify
    handshake_eof = 2,     // the peer closed the connection during the handshake
    no_tls = 3,            // taskport was built without OpenSSL
};

/// The category of TLS errors: OpenSSL's packed errors, certificate verification results
/// (tls_verify_base + X509_V_ERR_*) and tls_errc. Thread-safe.
const std::error_category& tls_category() noexcept;
/// A tls_errc as a std::error_code in tls_category().
inline std::error_code make_error_code(tls_errc e) noexcept { return {static_cast<int>(e), tls_category()}; }

// A certificate verification failure: tls_category() code verify_base + X509_V_ERR_*.
inline constexpr int tls_verify_base = 0x10000;
// True when ec is a certificate verification failure (e.g. expired, self-signed, wrong name).
bool is_verify_error(const std::error_code& ec) noexcept;

/// Which side of the handshake a tls_context is for.
enum class tls_role { client, server };

// Certificates and settings, shared by many streams. Setup calls throw std::system_error
// (tls_category(), naming what failed); once streams use a context, do not change it.
namespace detail {
struct tls_context_data;  // SSL_CTX and the ALPN list (tls.cpp)
}

/// Certificates and settings for TLS streams (a counted SSL_CTX). Copies share the same
/// settings. Set it up first (setup calls throw std::system_error in tls_category() naming what
/// failed), then share it: once streams use it, any number of threads may use it but none may
/// change it.
class tls_context {
public:
    // client: verifies the peer against the system's CA store (SSL_CTX_set_default_verify_paths),
    // TLS 1.2 at least. server: no client certificate requested.
    explicit tls_context(tls_role role);
    tls_context(const tls_context&) noexcept = default;  // shares the same settings
    /// Shares other's settings.
    tls_context& operator=(const tls_context&) noexcept = default;
    ~tls_context();

    /// client or server, as constructed.
    tls_role role() const noexcept;
    // Trust the CA certificates in this PEM file: in addition to the system store, or instead of
    // it (only_this: as curl's --cacert).
    void load_verify_file(const std::string& pem_file, bool only_this = false);
    // Peer verification on (client default) or off (--insecure; server default: no client cert).
    void set_verify_peer(bool on);
    /// Whether the peer's certificate is verified.
    bool verify_peer() const noexcept;
    // Our certificate chain and key (server; or a client certificate).
    void use_certificate_chain_file(const std::string& pem_file);
    /// The private key for use_certificate_chain_file's certificate (PEM). Throws std::system_error.
    void use_private_key_file(const std::string& pem_file);
    // ALPN: a client offers these protocols in order; a server picks the first of its own list
    // that the client offers (the handshake goes on without ALPN when none matches).
    void set_alpn(const std::vector<std::string>& protocols);

    void* native_handle() const noexcept;  // SSL_CTX*

private:
    friend class tls_stream;
    std::shared_ptr<detail::tls_context_data> d_;
};

namespace detail {

struct tls_state;  // SSL, BIO pair, buffers, the tcp_stream (tls.cpp)
void tls_state_add_ref(tls_state* s) noexcept;
void tls_state_release(tls_state* s) noexcept;

class tls_state_ref {
public:
    tls_state_ref() noexcept = default;
    explicit tls_state_ref(tls_state* adopt) noexcept : p_(adopt) {}
    tls_state_ref(tls_state_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    tls_state_ref& operator=(tls_state_ref&& o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    tls_state_ref(const tls_state_ref& o) noexcept : p_(o.p_) {
        if (p_) tls_state_add_ref(p_);
    }
    ~tls_state_ref() {
        if (p_) tls_state_release(p_);
    }
    tls_state* get() const noexcept { return p_; }

private:
    tls_state* p_ = nullptr;
};

enum class tls_op_kind : unsigned char { handshake, read, write, shutdown };

// One TLS operation: a coro_operation (so with_timeout and task cancellation apply) that runs a
// sequence of socket steps. While it runs, place -> cp (kind composite), and cancel() forwards
// to the socket step in flight, under step_lock so the step is never being rebuilt meanwhile.
struct tls_op : coro_operation {
    tls_op(const tls_state_ref& s, tls_op_kind k, std::span<std::byte> rb, std::span<const std::byte> wb) noexcept
        : st(s), what(k), rbuf(rb), wbuf(wb) {}
    tls_op(tls_op&& o) noexcept
        : coro_operation(std::move(o)), st(o.st), what(o.what), rbuf(o.rbuf), wbuf(o.wbuf) {}
    ~tls_op();

    bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        capture(h);
        return start();
    }
    std::size_t await_resume() const;

    bool start() noexcept;  // true if it went asynchronous (run_fn runs at its end)
    static void on_step_done(taskport::detail::task_node* t) noexcept;
    static void cancel_step(operation* op) noexcept;
    bool drive() noexcept;  // true: finished (ec/bytes set)
    bool begin_step(socket_op* step) noexcept;  // true: finished at once

    tls_state_ref st;
    tls_op_kind what;
    std::span<std::byte> rbuf;
    std::span<const std::byte> wbuf;
    composite_place cp{&tls_op::cancel_step};
    std::atomic_flag step_lock;  // C++20: starts clear  // guards `step` against cancel_step
    socket_op* step = nullptr;  // the socket step in flight (built in step_mem), or null
    // The SSL call's last outcome (ssl_* below), kept while its output is being sent.
    int result = 0;
    std::error_code failure;  // reported once the pending output (an alert) is sent
    static constexpr std::size_t step_size = sizeof(read_op) > sizeof(write_op) ? sizeof(read_op) : sizeof(write_op);
    alignas(read_op) alignas(write_op) std::byte step_mem[step_size];
};

}  // namespace detail

/// TLS over a tcp_stream. Move-only. One operation at a time (a second gets
/// operation_in_progress); close() and cancel() from any thread. Errors: std::system_error, in
/// tls_category() for TLS failures (see the file comment).
class tls_stream {
public:
    tls_stream() noexcept = default;
    // Takes over s; the role (client/server) is the context's. Throws std::system_error.
    tls_stream(tcp_stream&& s, const tls_context& ctx);
    /// Takes over o's socket, state and pending operation.
    tls_stream(tls_stream&&) noexcept = default;
    /// Closes this stream, then takes over o's socket and state.
    tls_stream& operator=(tls_stream&& o) noexcept;
    ~tls_stream();

    // Client, before handshake(): the server's name, sent as SNI and checked against its
    // certificate when the context verifies (an IP address is checked against the certificate's
    // IP addresses and sent as no SNI).
    void set_host(std::string_view name);

    /// co_await handshake(): the TLS handshake (client or server, as the context). Throws
    /// std::system_error: certificate verification failures, handshake_eof, socket errors.
    detail::tls_op handshake() noexcept { return {st_, detail::tls_op_kind::handshake, {}, {}}; }
    // At most buf.size() bytes of plaintext; 0 when the peer sent close_notify (or buf is empty).
    // A connection that ends without close_notify throws tls_errc::stream_truncated.
    detail::tls_op read_some(std::span<std::byte> buf) noexcept { return {st_, detail::tls_op_kind::read, buf, {}}; }
    // All of buf, encrypted and sent; returns buf.size().
    detail::tls_op write_all(std::span<const std::byte> buf) noexcept { return {st_, detail::tls_op_kind::write, {}, buf}; }
    // Sends close_notify (and does not wait for the peer's). The socket stays open.
    detail::tls_op shutdown() noexcept { return {st_, detail::tls_op_kind::shutdown, {}, {}}; }

    // After handshake(): the protocol the server chose by ALPN ("" when none), "TLSv1.3", ...
    std::string alpn_protocol() const;
    /// After handshake(): the protocol version ("TLSv1.3", "TLSv1.2").
    std::string protocol_version() const;

    void close() noexcept;   // closes the socket; any thread
    void cancel() noexcept;  // aborts pending operations; any thread
    /// True until close() (or a move from this object).
    bool is_open() const noexcept;
    tcp_stream& next_layer();  // the socket (do not read or write it while TLS is in use)
    void* native_handle() const noexcept;  // SSL*

private:
    detail::tls_state_ref st_;
};

}  // namespace taskport::io

template <>
struct std::is_error_code_enum<taskport::io::tls_errc> : std::true_type {};
