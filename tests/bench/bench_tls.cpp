// bench_tls.cpp — TLS echo: taskport (io::tls_stream server and client) vs Boost.Asio
// (ssl::stream server and client), one process, the same certificate and OpenSSL.
//
//   bench_tls [CONNECTIONS [BYTES [HANDSHAKERS]]]      (default 16 64 4)
//
// Round trips/s: CONNECTIONS connections, each sending BYTES and reading the whole echo back, in a
// loop, over a fixed window after a warm-up. Handshakes/s: HANDSHAKERS clients in a loop connect,
// handshake (ECDHE + an EC P-256 certificate, TLS 1.3), send close_notify and close; the server
// handshakes, reads to close_notify. Both sides run server and client on one runtime /
// io_context with as many threads as taskport has workers; both use coroutines (taskport tasks,
// Asio's awaitable). Sides alternate rep by rep (bench::alternate). Ratio = taskport / Asio.
#include "common.hpp"
#include "io_report.hpp"

#include <taskport/io/io.hpp>
#include <taskport/io/tls.hpp>
#include <taskport/taskport.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace io = taskport::io;
namespace asio = boost::asio;
using asio_tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// One self-signed EC certificate for localhost/127.0.0.1 (CA:TRUE, so trusting it verifies it).
struct cert {
    EVP_PKEY* key = nullptr;
    X509* x = nullptr;
    cert() {
        key = EVP_EC_gen("P-256");
        x = X509_new();
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -3600);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME* n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
        X509_set_issuer_name(x, n);
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
        for (auto [nid, v] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                              std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"}}) {
            X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, v);
            X509_add_ext(x, e, -1);
            X509_EXTENSION_free(e);
        }
        if (!key || X509_sign(x, key, EVP_sha256()) <= 0) {
            std::fprintf(stderr, "bench_tls: cannot make a certificate\n");
            std::exit(2);
        }
    }
    ~cert() {
        X509_free(x);
        EVP_PKEY_free(key);
    }
    void serve_with(SSL_CTX* c) const {
        SSL_CTX_use_certificate(c, x);
        SSL_CTX_use_PrivateKey(c, key);
    }
    void trust_in(SSL_CTX* c) const { X509_STORE_add_cert(SSL_CTX_get_cert_store(c), x); }
};

struct config {
    std::size_t conns, bytes, handshakers, workers;
    std::chrono::milliseconds warm{300}, window{1500};
};

// Counts over the window: the clients bump `count` and stop when `stop` is set.
struct window_counter {
    std::atomic<std::uint64_t> count{0};
    std::atomic<bool> stop{false};
    double measure(const config& c) {
        std::this_thread::sleep_for(c.warm);
        const std::uint64_t c0 = count.load();
        const auto t0 = bench::clock::now();
        std::this_thread::sleep_for(c.window);
        const std::uint64_t c1 = count.load();
        const double s = std::chrono::duration<double>(bench::clock::now() - t0).count();
        stop.store(true);
        return static_cast<double>(c1 - c0) / s;
    }
};

// ---- taskport ----------------------------------------------------------------------------

struct taskport_side {
    const cert& crt;
    const config& cfg;

    taskport::task<void> session(io::tls_stream s) {
        try {
            co_await s.handshake();
            std::array<std::byte, 4096> buf;
            for (;;) {
                const std::size_t n = co_await s.read_some(buf);
                if (n == 0) break;
                co_await s.write_all(std::span(buf).first(n));
            }
            co_await s.shutdown();
        } catch (const std::system_error&) {
        }
    }
    taskport::task<void> accept_loop(taskport::runtime& rt, io::tcp_listener& l, io::tls_context ctx) {
        for (;;) {
            io::tcp_stream s = co_await l.accept();
            s.set_nodelay(true);
            (void)rt.spawn(session(io::tls_stream(std::move(s), ctx)));
        }
    }
    taskport::task<void> pinger(taskport::runtime& rt, io::endpoint ep, io::tls_context ctx, window_counter& w) {
        io::tcp_stream t = co_await io::tcp_stream::connect(rt, ep);
        t.set_nodelay(true);
        io::tls_stream s(std::move(t), ctx);
        s.set_host("localhost");
        co_await s.handshake();
        std::vector<std::byte> msg(cfg.bytes, std::byte{'x'}), buf(4096);
        while (!w.stop.load(std::memory_order_relaxed)) {
            co_await s.write_all(msg);
            std::size_t got = 0;
            while (got < msg.size()) {
                const std::size_t n = co_await s.read_some(buf);
                if (n == 0) throw std::runtime_error("early close");
                got += n;
            }
            w.count.fetch_add(1, std::memory_order_relaxed);
        }
        co_await s.shutdown();
    }
    taskport::task<void> handshaker(taskport::runtime& rt, io::endpoint ep, io::tls_context ctx, window_counter& w) {
        while (!w.stop.load(std::memory_order_relaxed)) {
            io::tcp_stream t = co_await io::tcp_stream::connect(rt, ep);
            t.set_nodelay(true);
            io::tls_stream s(std::move(t), ctx);
            s.set_host("localhost");
            co_await s.handshake();
            co_await s.shutdown();
            w.count.fetch_add(1, std::memory_order_relaxed);
        }
    }

    double run(bool handshakes) {
        taskport::runtime_options o;
        o.workers = cfg.workers;
        taskport::runtime rt(o);
        io::tls_context sctx(io::tls_role::server), cctx(io::tls_role::client);
        crt.serve_with(static_cast<SSL_CTX*>(sctx.native_handle()));
        crt.trust_in(static_cast<SSL_CTX*>(cctx.native_handle()));
        auto l = io::tcp_listener::bind(rt, io::endpoint::parse("127.0.0.1:0"));
        auto loop = rt.spawn(accept_loop(rt, l, sctx));
        window_counter w;
        std::vector<taskport::future<void>> clients;
        const std::size_t n = handshakes ? cfg.handshakers : cfg.conns;
        for (std::size_t i = 0; i < n; ++i)
            clients.push_back(rt.spawn(handshakes ? handshaker(rt, l.local_endpoint(), cctx, w)
                                                  : pinger(rt, l.local_endpoint(), cctx, w)));
        const double rate = w.measure(cfg);
        for (auto& f : clients) f.get();
        loop.cancel();
        try {
            loop.get();
        } catch (const std::exception&) {
        }
        l.close();
        return rate;
    }
};

// ---- Boost.Asio ----------------------------------------------------------------------------

struct asio_side {
    const cert& crt;
    const config& cfg;
    using ssl_stream = asio::ssl::stream<asio_tcp::socket>;

    static asio::awaitable<void> session(ssl_stream s) {
        try {
            co_await s.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
            std::array<char, 4096> buf;
            for (;;) {
                boost::system::error_code ec;
                const std::size_t n =
                    co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
                if (ec) break;  // asio::error::eof at close_notify
                co_await asio::async_write(s, asio::buffer(buf, n), asio::use_awaitable);
            }
            co_await s.async_shutdown(asio::use_awaitable);
        } catch (const std::exception&) {
        }
    }
    static asio::awaitable<void> accept_loop(asio_tcp::acceptor& a, asio::ssl::context& ctx) {
        for (;;) {
            boost::system::error_code ec;
            asio_tcp::socket s = co_await a.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            s.set_option(asio_tcp::no_delay(true));
            asio::co_spawn(a.get_executor(), session(ssl_stream(std::move(s), ctx)), asio::detached);
        }
    }
    asio::awaitable<void> pinger(asio_tcp::endpoint ep, asio::ssl::context& ctx, window_counter& w) {
        auto ex = co_await asio::this_coro::executor;
        ssl_stream s(ex, ctx);
        co_await s.next_layer().async_connect(ep, asio::use_awaitable);
        s.next_layer().set_option(asio_tcp::no_delay(true));
        s.set_verify_mode(asio::ssl::verify_peer);
        s.set_verify_callback(asio::ssl::host_name_verification("localhost"));
        SSL_set_tlsext_host_name(s.native_handle(), "localhost");
        co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
        std::vector<char> msg(cfg.bytes, 'x'), buf(4096);
        while (!w.stop.load(std::memory_order_relaxed)) {
            co_await asio::async_write(s, asio::buffer(msg), asio::use_awaitable);
            std::size_t got = 0;
            while (got < msg.size()) got += co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
            w.count.fetch_add(1, std::memory_order_relaxed);
        }
        co_await s.async_shutdown(asio::use_awaitable);
    }
    asio::awaitable<void> handshaker(asio_tcp::endpoint ep, asio::ssl::context& ctx, window_counter& w) {
        auto ex = co_await asio::this_coro::executor;
        while (!w.stop.load(std::memory_order_relaxed)) {
            ssl_stream s(ex, ctx);
            co_await s.next_layer().async_connect(ep, asio::use_awaitable);
            s.next_layer().set_option(asio_tcp::no_delay(true));
            s.set_verify_mode(asio::ssl::verify_peer);
            s.set_verify_callback(asio::ssl::host_name_verification("localhost"));
            SSL_set_tlsext_host_name(s.native_handle(), "localhost");
            co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
            co_await s.async_shutdown(asio::use_awaitable);
            w.count.fetch_add(1, std::memory_order_relaxed);
        }
    }

    double run(bool handshakes) {
        asio::io_context ioc;
        asio::ssl::context sctx(asio::ssl::context::tls_server), cctx(asio::ssl::context::tls_client);
        SSL_CTX_set_min_proto_version(sctx.native_handle(), TLS1_2_VERSION);
        SSL_CTX_set_min_proto_version(cctx.native_handle(), TLS1_2_VERSION);
        crt.serve_with(sctx.native_handle());
        crt.trust_in(cctx.native_handle());
        asio_tcp::acceptor a(ioc, asio_tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        asio::co_spawn(ioc, accept_loop(a, sctx), asio::detached);
        window_counter w;
        std::atomic<std::size_t> done{0};
        const std::size_t n = handshakes ? cfg.handshakers : cfg.conns;
        for (std::size_t i = 0; i < n; ++i) {
            auto c = handshakes ? handshaker(a.local_endpoint(), cctx, w) : pinger(a.local_endpoint(), cctx, w);
            asio::co_spawn(ioc, std::move(c), [&](std::exception_ptr e) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& x) {
                        std::fprintf(stderr, "bench_tls: asio client: %s\n", x.what());
                        std::exit(2);
                    }
                }
                done.fetch_add(1);
            });
        }
        auto guard = asio::make_work_guard(ioc);
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < cfg.workers; ++i) threads.emplace_back([&] { ioc.run(); });
        const double rate = w.measure(cfg);
        const auto give_up = bench::clock::now() + 30s;
        while (done.load() < n && bench::clock::now() < give_up) std::this_thread::sleep_for(1ms);
        a.close();
        ioc.stop();
        for (auto& t : threads) t.join();
        return rate;
    }
};

}  // namespace

int main(int argc, char** argv) {
    config cfg{};
    cfg.conns = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 16;
    cfg.bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
    cfg.handshakers = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 4;
    {
        taskport::runtime probe;
        cfg.workers = probe.workers();
    }
    const int r = bench::reps(5);
    bench::raise_nofile();
    cert crt;
    taskport_side tp{crt, cfg};
    asio_side as{crt, cfg};
    std::printf("# bench_tls: %zu connections x %zu B echo, %zu handshaking clients, %zu threads each "
                "(taskport workers; Asio io_context threads), server and client in one process, %d reps of %lld ms\n",
                cfg.conns, cfg.bytes, cfg.handshakers, cfg.workers, r, static_cast<long long>(cfg.window.count()));
    bench::row_rate("tls echo " + std::to_string(cfg.conns) + " conns x " + std::to_string(cfg.bytes) +
                        " B: round trips/s, taskport vs Asio ssl::stream",
                    bench::alternate(r, [&] { return tp.run(false); }, [&] { return as.run(false); }), "rt/s", 0);
    bench::row_rate("tls handshakes (" + std::to_string(cfg.handshakers) +
                        " clients, connect + handshake + close_notify): handshakes/s, taskport vs Asio",
                    bench::alternate(r, [&] { return tp.run(true); }, [&] { return as.run(true); }), "hs/s", 0);
}
