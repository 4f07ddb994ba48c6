// tls.cpp — TLS streams on OpenSSL 3 through a BIO pair (see tls.hpp).
//
// The engine (the shape of Asio's ssl::detail::engine): run the SSL call (SSL_do_handshake,
// SSL_read_ex, SSL_write_ex, SSL_shutdown); whatever it left in the network BIO is sent first
// (one write_all step); then its outcome decides: done, or read more ciphertext (one read_some
// step) and call again. Each step is a real socket operation built inside the tls_op; while it
// runs, a cancel of the tls_op reaches it through composite_place -> cancel_step, which holds
// step_lock so the step is never built or destroyed under it. Invariant: a tls_op has at most
// one step in flight, and `step` is non-null exactly while that step may still be parked.
#include <taskport/io/tls.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#if defined(_WIN32)
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#include <cstring>
#include <new>
#include <string>

namespace taskport::io {

// ---- errors ----

namespace {

class tls_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "tls"; }
    std::string message(int v) const override {
        switch (v) {
            case static_cast<int>(tls_errc::stream_truncated):
                return "stream truncated (the peer closed the connection without a TLS close_notify)";
            case static_cast<int>(tls_errc::handshake_eof):
                return "the peer closed the connection during the TLS handshake";
            case static_cast<int>(tls_errc::no_tls):
                return "TLS is not available (taskport was built without OpenSSL)";
            default: break;
        }
        if (v >= tls_verify_base && v < tls_verify_base + 0x10000)
            return std::string("certificate verify failed: ") + X509_verify_cert_error_string(v - tls_verify_base);
        char buf[256];
        ERR_error_string_n(static_cast<unsigned long>(v), buf, sizeof buf);
        return buf;
    }
};

// The first error OpenSSL queued on this thread, as an error_code; clears the queue.
std::error_code take_openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return make_error_code(tls_errc::stream_truncated);  // SSL_ERROR_SYSCALL with no cause: EOF
    if (ERR_SYSTEM_ERROR(e)) return {static_cast<int>(ERR_GET_REASON(e)), std::system_category()};
    return {static_cast<int>(ERR_PACK(ERR_GET_LIB(e), 0, ERR_GET_REASON(e))), tls_category()};
}

[[noreturn]] void throw_openssl(const char* what) {
    std::error_code ec = take_openssl_error();
    throw std::system_error(ec, what);
}

}  // namespace

const std::error_category& tls_category() noexcept {
    static const tls_category_impl c;
    return c;
}

bool is_verify_error(const std::error_code& ec) noexcept {
    return ec.category() == tls_category() && ec.value() >= tls_verify_base && ec.value() < tls_verify_base + 0x10000;
}

// ---- context ----

namespace detail {

struct tls_context_data {
    SSL_CTX* ctx = nullptr;
    tls_role role;
    bool verify = false;
    std::vector<unsigned char> alpn;  // wire format: length-prefixed names
    ~tls_context_data() { SSL_CTX_free(ctx); }
};

}  // namespace detail

namespace {

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
    auto* d = static_cast<detail::tls_context_data*>(arg);
    // Our preference first: the first of our names that the client offers.
    for (std::size_t i = 0; i < d->alpn.size(); i += 1 + d->alpn[i]) {
        const unsigned char* ours = &d->alpn[i];
        for (unsigned int j = 0; j < inlen; j += 1u + in[j]) {
            if (in[j] == ours[0] && j + 1 + in[j] <= inlen && std::memcmp(in + j + 1, ours + 1, ours[0]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

tls_context::tls_context(tls_role role) : d_(std::make_shared<detail::tls_context_data>()) {
    d_->role = role;
    d_->ctx = SSL_CTX_new(role == tls_role::client ? TLS_client_method() : TLS_server_method());
    if (!d_->ctx) throw_openssl("taskport::io::tls_context: SSL_CTX_new");
    SSL_CTX_set_min_proto_version(d_->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(d_->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (role == tls_role::client) {
        if (SSL_CTX_set_default_verify_paths(d_->ctx) != 1)
            throw_openssl("taskport::io::tls_context: the system's CA store");
        set_verify_peer(true);
    }
}

tls_context::~tls_context() = default;

tls_role tls_context::role() const noexcept { return d_->role; }
bool tls_context::verify_peer() const noexcept { return d_->verify; }
void* tls_context::native_handle() const noexcept { return d_->ctx; }

void tls_context::load_verify_file(const std::string& pem_file, bool only_this) {
    if (only_this) {
        X509_STORE* fresh = X509_STORE_new();
        if (!fresh) throw_openssl("taskport::io::tls_context: X509_STORE_new");
        SSL_CTX_set_cert_store(d_->ctx, fresh);  // frees the old store
    }
    if (SSL_CTX_load_verify_locations(d_->ctx, pem_file.c_str(), nullptr) != 1)
        throw_openssl(("taskport::io::tls_context: CA file '" + pem_file + "'").c_str());
    // OpenSSL caches a certificate's decoded extensions (its key identifier, ...) on first use,
    // writing them under the certificate's lock while another handshake's check reads them
    // without it (ThreadSanitizer saw this race in ASN1_STRING_cmp, two taskport-fetch handshakes
    // verifying against the same CA). Fill the caches now, while the context is still private
    // to one thread, so that concurrent handshakes only read them.
    STACK_OF(X509)* all = X509_STORE_get1_all_certs(SSL_CTX_get_cert_store(d_->ctx));
    for (int i = 0; i < sk_X509_num(all); ++i) X509_check_purpose(sk_X509_value(all, i), -1, 0);
    sk_X509_pop_free(all, X509_free);
}

void tls_context::set_verify_peer(bool on) {
    d_->verify = on;
    SSL_CTX_set_verify(d_->ctx, on ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
}

void tls_context::use_certificate_chain_file(const std::string& pem_file) {
    if (SSL_CTX_use_certificate_chain_file(d_->ctx, pem_file.c_str()) != 1)
        throw_openssl(("taskport::io::tls_context: certificate file '" + pem_file + "'").c_str());
}

void tls_context::use_private_key_file(const std::string& pem_file) {
    if (SSL_CTX_use_PrivateKey_file(d_->ctx, pem_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw_openssl(("taskport::io::tls_context: key file '" + pem_file + "'").c_str());
    if (SSL_CTX_check_private_key(d_->ctx) != 1)
        throw_openssl(("taskport::io::tls_context: key file '" + pem_file + "' does not match the certificate").c_str());
}

void tls_context::set_alpn(const std::vector<std::string>& protocols) {
    std::vector<unsigned char> wire;
    for (const auto& p : protocols) {
        if (p.empty() || p.size() > 255)
            throw std::invalid_argument("taskport::io::tls_context::set_alpn: a protocol name of 1..255 bytes");
        wire.push_back(static_cast<unsigned char>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
    }
    d_->alpn = std::move(wire);
    if (d_->role == tls_role::client) {
        // Note: SSL_CTX_set_alpn_protos returns 0 on success.
        if (SSL_CTX_set_alpn_protos(d_->ctx, d_->alpn.data(), static_cast<unsigned>(d_->alpn.size())) != 0)
            throw_openssl("taskport::io::tls_context::set_alpn");
    } else {
        SSL_CTX_set_alpn_select_cb(d_->ctx, &select_alpn, d_.get());
    }
}

// ---- stream state ----

namespace detail {

struct tls_state {
    static constexpr std::size_t buffer_size = 32 * 1024;

    std::atomic<int> refs{1};             // tls_state_ref holders: the stream, each pending op
    std::atomic<bool> busy{false};        // an operation runs (one at a time)
    std::shared_ptr<tls_context_data> ctx;  // keeps the ALPN callback's argument alive
    tcp_stream tcp;
    SSL* ssl = nullptr;
    BIO* net = nullptr;                   // our side of the BIO pair (OpenSSL has the other)
    bool eof = false;                     // the socket reported end of stream
    std::vector<std::byte> in;            // ciphertext read, not yet given to OpenSSL: [in_pos, in_end)
    std::size_t in_pos = 0, in_end = 0;
    std::vector<std::byte> out;           // ciphertext taken from OpenSSL, being sent

    ~tls_state() {
        SSL_free(ssl);  // frees OpenSSL's side of the pair
        BIO_free(net);
    }
};

void tls_state_add_ref(tls_state* s) noexcept { s->refs.fetch_add(1, std::memory_order_relaxed); }
void tls_state_release(tls_state* s) noexcept {
    if (s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s;
}

// ---- the operation ----

namespace {

enum : int { r_none = 0, r_ok, r_want_read, r_want_write, r_closed, r_failed, r_net_failed };

const char* op_name(tls_op_kind k) noexcept {
    switch (k) {
        case tls_op_kind::handshake: return "taskport::io::tls_stream::handshake";
        case tls_op_kind::read: return "taskport::io::tls_stream::read_some";
        case tls_op_kind::write: return "taskport::io::tls_stream::write_all";
        case tls_op_kind::shutdown: return "taskport::io::tls_stream::shutdown";
    }
    return "taskport::io::tls_stream";
}

}  // namespace

tls_op::~tls_op() = default;

std::size_t tls_op::await_resume() const {
    throw_if(ec, op_name(what));
    return bytes;
}

void tls_op::cancel_step(operation* op) noexcept {
    auto* self = static_cast<tls_op*>(op);
    while (self->step_lock.test_and_set(std::memory_order_acquire)) {
    }
    if (self->step) cancel(self->step);
    self->step_lock.clear(std::memory_order_release);
}

bool tls_op::start() noexcept {
    tls_state* s = st.get();
    if (!s || !s->ssl) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return false;
    }
    if (s->busy.exchange(true, std::memory_order_acquire)) {
        ec = std::make_error_code(std::errc::operation_in_progress);
        return false;
    }
    if (!enter_scope()) {
        s->busy.store(false, std::memory_order_release);
        return false;
    }
    kind = place_kind::composite;
    place.store(&cp, std::memory_order_seq_cst);  // Dekker with cancel(): see begin_step
    if (!drive()) return true;  // a step went asynchronous: `this` may be gone already
    place.store(nullptr, std::memory_order_relaxed);
    leave_scope();
    return false;
}

// Builds nothing; starts the step already built in step_mem. True when it finished at once.
bool tls_op::begin_step(socket_op* s) noexcept {
    s->run_fn = &tls_op::on_step_done;
    s->user = this;
    while (step_lock.test_and_set(std::memory_order_acquire)) {
    }
    // cancel() stored `cancelled` before reading place (== &cp since start): either it sees
    // this step below and cancels it, or we see its flag here.
    bool stop = cancelled.load(std::memory_order_seq_cst);
    if (!stop) step = s;
    step_lock.clear(std::memory_order_release);
    if (stop) {
        s->ec = operation_aborted();
        return true;
    }
    if (s->await_ready()) return true;
    return !s->start();  // started: on_step_done runs when it finishes (perhaps already has)
}

// The step in step_mem has finished: withdraw it from cancel_step, fold in its result.
static void end_step(tls_op* op, tls_state* s) noexcept {
    while (op->step_lock.test_and_set(std::memory_order_acquire)) {
    }
    socket_op* stp = op->step;
    op->step = nullptr;
    op->step_lock.clear(std::memory_order_release);
    if (!stp) stp = reinterpret_cast<socket_op*>(op->step_mem);  // aborted before it started
    bool is_read = stp->direction == 0;
    std::error_code e = stp->ec;
    std::size_t n = stp->bytes;
    if (is_read)
        static_cast<read_op*>(stp)->~read_op();
    else
        static_cast<write_op*>(stp)->~write_op();
    if (e) {
        if (!op->failure) op->failure = e;
        op->result = r_net_failed;  // the socket is done: send nothing more
        return;
    }
    if (is_read) {
        if (n == 0) {
            s->eof = true;
        } else {
            s->in_pos = 0;
            s->in_end = n;
        }
        op->result = r_none;  // call OpenSSL again with the new input
    }
}

void tls_op::on_step_done(taskport::detail::task_node* t) noexcept {
    auto* stp = static_cast<socket_op*>(static_cast<operation*>(t));
    auto* self = static_cast<tls_op*>(stp->user);
    end_step(self, self->st.get());
    if (!self->drive()) return;
    self->place.store(nullptr, std::memory_order_relaxed);
    self->run_fn(self);  // resumes the awaiting coroutine (or with_timeout's join)
}

// Runs the engine until the operation finishes (true) or a step goes asynchronous (false).
bool tls_op::drive() noexcept {
    tls_state* s = st.get();
    SSL* ssl = s->ssl;
    for (;;) {
        // Hand OpenSSL the ciphertext it has room for.
        while (s->in_pos < s->in_end) {
            std::size_t room = BIO_ctrl_get_write_guarantee(s->net);
            if (room == 0) break;
            std::size_t k = std::min(room, s->in_end - s->in_pos);
            int w = BIO_write(s->net, s->in.data() + s->in_pos, static_cast<int>(k));
            if (w <= 0) break;
            s->in_pos += static_cast<std::size_t>(w);
        }
        if (result == r_none) {
            ERR_clear_error();
            int r = 0;
            std::size_t n = 0;
            switch (what) {
                case tls_op_kind::handshake: r = SSL_do_handshake(ssl); break;
                case tls_op_kind::read:
                    if (rbuf.empty()) {
                        r = 1;
                        break;
                    }
                    r = SSL_read_ex(ssl, rbuf.data(), rbuf.size(), &n);
                    break;
                case tls_op_kind::write:
                    if (wbuf.empty()) {
                        r = 1;
                        break;
                    }
                    r = SSL_write_ex(ssl, wbuf.data(), wbuf.size(), &n);
                    break;
                case tls_op_kind::shutdown:
                    r = SSL_shutdown(ssl);
                    if (r == 0) r = 1;  // close_notify sent; we do not wait for the peer's
                    break;
            }
            if (r == 1) {
                result = r_ok;
                bytes = what == tls_op_kind::read ? n : what == tls_op_kind::write ? wbuf.size() : 0;
            } else {
                switch (SSL_get_error(ssl, r)) {
                    case SSL_ERROR_WANT_READ: result = r_want_read; break;
                    case SSL_ERROR_WANT_WRITE: result = r_want_write; break;
                    case SSL_ERROR_ZERO_RETURN:  // close_notify received
                        if (what == tls_op_kind::read) {
                            result = r_closed;
                        } else {
                            result = r_failed;
                            failure = what == tls_op_kind::handshake ? make_error_code(tls_errc::handshake_eof)
                                                                     : make_error_code(tls_errc::stream_truncated);
                        }
                        break;
                    default: {
                        result = r_failed;
                        long v = SSL_get_verify_result(ssl);
                        if (what == tls_op_kind::handshake && s->ctx->verify && v != X509_V_OK) {
                            ERR_clear_error();
                            failure = std::error_code(tls_verify_base + static_cast<int>(v), tls_category());
                        } else {
                            failure = take_openssl_error();
                        }
                        break;
                    }
                }
            }
        }
        // Send what OpenSSL wrote (records, an alert) before anything else.
        if (result != r_net_failed) {
            std::size_t pending = BIO_ctrl_pending(s->net);
            if (pending > 0) {
                int k = BIO_read(s->net, s->out.data(), static_cast<int>(std::min(pending, s->out.size())));
                if (k > 0) {
                    auto* w = new (step_mem) write_op(
                        s->tcp.write_all(std::span<const std::byte>(s->out.data(), static_cast<std::size_t>(k))));
                    if (!begin_step(w)) return false;
                    end_step(this, s);
                    continue;
                }
            }
        }
        switch (result) {
            case r_ok: break;
            case r_closed: bytes = 0; break;
            case r_failed:
            case r_net_failed:
                ec = failure;
                bytes = 0;
                break;
            case r_want_write: result = r_none; continue;  // its output is sent: call again
            case r_want_read:
                if (s->in_pos < s->in_end) {  // more input is waiting for room in the BIO
                    result = r_none;
                    continue;
                }
                if (s->eof) {
                    ec = make_error_code(what == tls_op_kind::handshake ? tls_errc::handshake_eof
                                                                        : tls_errc::stream_truncated);
                    bytes = 0;
                    break;
                }
                {
                    auto* rd = new (step_mem) read_op(s->tcp.read_some(std::span<std::byte>(s->in)));
                    if (!begin_step(rd)) return false;
                    end_step(this, s);
                }
                continue;
            default: result = r_none; continue;
        }
        s->busy.store(false, std::memory_order_release);
        return true;
    }
}

}  // namespace detail

// ---- tls_stream ----

tls_stream::tls_stream(tcp_stream&& s, const tls_context& ctx) {
    auto* st = new detail::tls_state;
    detail::tls_state_ref ref(st);
    st->ctx = ctx.d_;
    st->in.resize(detail::tls_state::buffer_size);
    st->out.resize(detail::tls_state::buffer_size);
    st->ssl = SSL_new(ctx.d_->ctx);
    if (!st->ssl) throw_openssl("taskport::io::tls_stream: SSL_new");
    BIO* inner = nullptr;
    if (BIO_new_bio_pair(&inner, detail::tls_state::buffer_size, &st->net, detail::tls_state::buffer_size) != 1)
        throw_openssl("taskport::io::tls_stream: BIO_new_bio_pair");
    SSL_set_bio(st->ssl, inner, inner);
    if (ctx.d_->role == tls_role::client)
        SSL_set_connect_state(st->ssl);
    else
        SSL_set_accept_state(st->ssl);
    st->tcp = std::move(s);
    st_ = std::move(ref);
}

tls_stream& tls_stream::operator=(tls_stream&& o) noexcept {
    if (this != &o) {
        close();
        st_ = std::move(o.st_);
    }
    return *this;
}

tls_stream::~tls_stream() { close(); }

void tls_stream::set_host(std::string_view name) {
    detail::tls_state* s = st_.get();
    if (!s) throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), "taskport::io::tls_stream::set_host");
    std::string host(name);
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host.c_str(), addr) == 1 || inet_pton(AF_INET6, host.c_str(), addr) == 1;
    if (is_ip) {
        if (s->ctx->verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host.c_str()) != 1)
            throw_openssl("taskport::io::tls_stream::set_host");
        return;
    }
    if (SSL_set_tlsext_host_name(s->ssl, host.c_str()) != 1) throw_openssl("taskport::io::tls_stream::set_host (SNI)");
    if (s->ctx->verify) {
        SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(s->ssl, host.c_str()) != 1) throw_openssl("taskport::io::tls_stream::set_host");
    }
}

std::string tls_stream::alpn_protocol() const {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    if (st_.get()) SSL_get0_alpn_selected(st_.get()->ssl, &p, &n);
    return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

std::string tls_stream::protocol_version() const { return st_.get() ? SSL_get_version(st_.get()->ssl) : ""; }

void tls_stream::close() noexcept {
    if (st_.get()) st_.get()->tcp.close();
}
void tls_stream::cancel() noexcept {
    if (st_.get()) st_.get()->tcp.cancel();
}
bool tls_stream::is_open() const noexcept { return st_.get() && st_.get()->tcp.is_open(); }

tcp_stream& tls_stream::next_layer() {
    if (!st_.get()) throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), "taskport::io::tls_stream::next_layer");
    return st_.get()->tcp;
}

void* tls_stream::native_handle() const noexcept { return st_.get() ? st_.get()->ssl : nullptr; }

}  // namespace taskport::io
