// test_io_tls.cpp — io::tls_stream against a real TLS peer and against itself, on every backend.
//
// Certificates are made here at run time with OpenSSL's API (a CA; a server certificate for
// localhost and 127.0.0.1 signed by it; an expired one; a self-signed one; one for another name).
// Client side: `openssl s_server` started by the test on 127.0.0.1:0; its "ACCEPT host:port" line
// says it listens (no sleeps). Server side: a taskport server and a taskport client. Faults: a
// peer that drops mid-handshake, one that sends garbage, one that ends without close_notify;
// cancellation and with_timeout on handshake and read.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <taskport/io/tls.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace taskport;
namespace io = taskport::io;
namespace fs = std::filesystem;
using tp_test::bytes_of;
using tp_test::text_of;

namespace {

// ---- certificates ----

struct key_cert {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    ~key_cert() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
};

void check_ssl(bool ok, const char* what) {
    if (!ok) FAIL("OpenSSL: " << what);
}

// A certificate for cn with the given subjectAltName ("DNS:localhost,IP:127.0.0.1"), valid from
// now+from_s to now+to_s, signed by issuer (null: self-signed). ca: a CA certificate.
std::unique_ptr<key_cert> make_cert(const char* cn, const char* san, long from_s, long to_s, const key_cert* issuer,
                                    bool ca) {
    auto kc = std::make_unique<key_cert>();
    kc->key = EVP_EC_gen("P-256");
    check_ssl(kc->key != nullptr, "EVP_EC_gen");
    X509* x = X509_new();
    kc->cert = x;
    X509_set_version(x, 2);
    static long serial = 1;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, kc->key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer->cert : x, x, nullptr, nullptr, 0);
    auto add = [&](int nid, const char* value) {
        X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
        check_ssl(e != nullptr, "X509V3_EXT_conf_nid");
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    };
    add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca) add(NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san) add(NID_subject_alt_name, san);
    check_ssl(X509_sign(x, issuer ? issuer->key : kc->key, EVP_sha256()) > 0, "X509_sign");
    return kc;
}

void write_pem(const fs::path& p, const key_cert& kc, bool key) {
    FILE* f = std::fopen(p.c_str(), "w");
    REQUIRE(f);
    if (key)
        PEM_write_PrivateKey(f, kc.key, nullptr, nullptr, 0, nullptr, nullptr);
    else
        PEM_write_X509(f, kc.cert);
    std::fclose(f);
}

// The test's certificates, made once per process in a temporary folder.
struct pki {
    fs::path dir;
    fs::path ca;  // CA certificate
    // <name>.crt / <name>.key: good (localhost, 127.0.0.1), expired, self (self-signed), wrong (other.example)
    fs::path crt(const char* n) const { return dir / (std::string(n) + ".crt"); }
    fs::path key(const char* n) const { return dir / (std::string(n) + ".key"); }

    pki() {
        char tmpl[] = "/tmp/taskport-tls-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        ca = dir / "ca.crt";
        auto root = make_cert("taskport test CA", nullptr, -3600, 86400, nullptr, true);
        write_pem(ca, *root, false);
        auto save = [&](const char* n, const key_cert& kc) {
            write_pem(crt(n), kc, false);
            write_pem(key(n), kc, true);
        };
        save("good", *make_cert("localhost", "DNS:localhost,IP:127.0.0.1", -3600, 86400, root.get(), false));
        save("expired", *make_cert("localhost", "DNS:localhost,IP:127.0.0.1", -3 * 86400, -2 * 86400, root.get(), false));
        save("self", *make_cert("localhost", "DNS:localhost,IP:127.0.0.1", -3600, 86400, nullptr, false));
        save("wrong", *make_cert("other.example", "DNS:other.example", -3600, 86400, root.get(), false));
    }
    ~pki() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

const pki& certs() {
    static pki p;
    return p;
}

// ---- openssl s_server as the peer ----

// Runs `openssl s_server` on 127.0.0.1:0 with the named certificate (reversing each line it gets:
// -rev), until destroyed. The port comes from its "ACCEPT 127.0.0.1:PORT" line.
class s_server {
public:
    explicit s_server(const char* cert, std::vector<std::string> extra = {}) {
        int out[2];
        REQUIRE(::pipe(out) == 0);
        std::vector<std::string> args = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
                                         certs().crt(cert).string(), "-key", certs().key(cert).string(), "-rev",
                                         "-naccept", "1"};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(out[1], 1);
            ::dup2(out[1], 2);
            ::close(out[0]);
            ::close(out[1]);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execvp("openssl", argv.data());
            std::perror("exec openssl");
            ::_exit(127);
        }
        ::close(out[1]);
        out_ = ::fdopen(out[0], "r");
        tp_test::watchdog w("s_server start");
        char line[512];
        while (std::fgets(line, sizeof line, out_)) {
            log_ += line;
            unsigned p = 0;
            if (std::sscanf(line, "ACCEPT 127.0.0.1:%u", &p) == 1) {
                port_ = static_cast<std::uint16_t>(p);
                break;
            }
        }
        if (port_ == 0) FAIL("openssl s_server did not start: " << log_);
    }
    ~s_server() {
        ::kill(pid_, SIGTERM);
        int st;
        ::waitpid(pid_, &st, 0);
        std::fclose(out_);
    }
    io::endpoint endpoint() const { return io::endpoint::loopback_v4(port_); }

private:
    pid_t pid_ = -1;
    FILE* out_ = nullptr;
    std::uint16_t port_ = 0;
    std::string log_;
};

io::tls_context client_ctx() {
    io::tls_context c(io::tls_role::client);
    c.load_verify_file(certs().ca.string());
    return c;
}

io::tls_context server_ctx(const char* cert = "good") {
    io::tls_context c(io::tls_role::server);
    c.use_certificate_chain_file(certs().crt(cert).string());
    c.use_private_key_file(certs().key(cert).string());
    return c;
}

task<std::string> connect_and_talk(runtime& rt, io::endpoint ep, io::tls_context ctx, std::string host) {
    io::tls_stream s(co_await io::tcp_stream::connect(rt, ep), ctx);
    s.set_host(host);
    co_await s.handshake();
    co_await s.write_all(bytes_of("hello taskport\n"));
    std::string got;
    std::array<std::byte, 256> buf;
    while (got.find('\n') == std::string::npos) {
        std::size_t n = co_await s.read_some(buf);
        if (n == 0) break;
        got.append(text_of(std::span<const std::byte>(buf.data(), n)));
    }
    co_await s.shutdown();
    co_return got;
}

// The error a coroutine ended with (empty if none).
template <class T>
std::error_code error_of(runtime& rt, task<T> t) {
    try {
        tp_test::run(rt, std::move(t));
    } catch (const std::system_error& e) {
        INFO("what(): " << e.what());
        return e.code();
    }
    return {};
}

}  // namespace

TEST_CASE("tls client against openssl s_server: verified handshake and data", "[tls]") {
    runtime rt;
    s_server srv("good");
    std::string got = tp_test::run(rt, connect_and_talk(rt, srv.endpoint(), client_ctx(), "localhost"));
    CHECK(got == "tropksat olleh\n");
}

TEST_CASE("tls client verifies an IP address against the certificate's IP SAN", "[tls]") {
    runtime rt;
    s_server srv("good");
    std::string got = tp_test::run(rt, connect_and_talk(rt, srv.endpoint(), client_ctx(), "127.0.0.1"));
    CHECK(got == "tropksat olleh\n");
}

TEST_CASE("tls client negotiates ALPN with s_server", "[tls]") {
    runtime rt;
    s_server srv("good", {"-alpn", "h2,http/1.1"});
    auto t = [&]() -> task<std::string> {
        io::tls_context ctx = client_ctx();
        ctx.set_alpn({"http/1.1"});
        io::tls_stream s(co_await io::tcp_stream::connect(rt, srv.endpoint()), ctx);
        s.set_host("localhost");
        co_await s.handshake();
        std::string p = s.alpn_protocol();
        co_await s.shutdown();
        co_return p;
    };
    CHECK(tp_test::run(rt, t()) == "http/1.1");
}

TEST_CASE("tls client rejects a wrong host name, an expired and a self-signed certificate", "[tls]") {
    runtime rt;
    struct bad {
        const char* cert;
        const char* host;
        int verify_error;
        const char* text;
    };
    for (bad b : {bad{"wrong", "localhost", X509_V_ERR_HOSTNAME_MISMATCH, "hostname mismatch"},
                  bad{"good", "wrong.example", X509_V_ERR_HOSTNAME_MISMATCH, "hostname mismatch"},
                  bad{"expired", "localhost", X509_V_ERR_CERT_HAS_EXPIRED, "certificate has expired"},
                  bad{"self", "localhost", X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed certificate"}}) {
        INFO("server certificate " << b.cert << ", host " << b.host);
        s_server srv(b.cert);
        std::error_code ec = error_of(rt, connect_and_talk(rt, srv.endpoint(), client_ctx(), b.host));
        CHECK(io::is_verify_error(ec));
        CHECK(ec == std::error_code(io::tls_verify_base + b.verify_error, io::tls_category()));
        CHECK(ec.message().find(b.text) != std::string::npos);
    }
}

TEST_CASE("tls client with verification off accepts a self-signed certificate", "[tls]") {
    runtime rt;
    s_server srv("self");
    io::tls_context ctx(io::tls_role::client);
    ctx.set_verify_peer(false);
    CHECK(tp_test::run(rt, connect_and_talk(rt, srv.endpoint(), ctx, "localhost")) == "tropksat olleh\n");
}

TEST_CASE("tls client without the test CA rejects the server (system store only)", "[tls]") {
    runtime rt;
    s_server srv("good");
    std::error_code ec = error_of(rt, connect_and_talk(rt, srv.endpoint(), io::tls_context(io::tls_role::client), "localhost"));
    CHECK(ec == std::error_code(io::tls_verify_base + X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, io::tls_category()));
}

TEST_CASE("tls client trusting only a CA file (no system store) verifies the server", "[tls]") {
    runtime rt;
    s_server srv("good");
    io::tls_context ctx(io::tls_role::client);
    ctx.load_verify_file(certs().ca.string(), true);
    CHECK(tp_test::run(rt, connect_and_talk(rt, srv.endpoint(), ctx, "localhost")) == "tropksat olleh\n");
}

TEST_CASE("tls context setup errors name the file and carry OpenSSL's reason", "[tls]") {
    io::tls_context ctx(io::tls_role::server);
    try {
        ctx.use_certificate_chain_file("/nonexistent/cert.pem");
        FAIL("no error");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("/nonexistent/cert.pem") != std::string::npos);
        CHECK_FALSE(e.code().message().empty());
    }
    // A key that is not the certificate's.
    ctx.use_certificate_chain_file(certs().crt("good").string());
    CHECK_THROWS_AS(ctx.use_private_key_file(certs().key("self").string()), std::system_error);
}

// ---- taskport server + taskport client ----

namespace {

task<void> echo_tls(io::tls_stream s) {
    co_await s.handshake();
    std::vector<std::byte> buf(10000);
    for (;;) {
        std::size_t n = co_await s.read_some(buf);
        if (n == 0) break;
        co_await s.write_all(std::span<const std::byte>(buf.data(), n));
    }
    co_await s.shutdown();
}

}  // namespace

TEST_CASE("tls server and client: 1 MiB echo, ALPN, close_notify read as end of stream", "[tls]") {
    runtime rt;
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    io::tls_context sctx = server_ctx();
    sctx.set_alpn({"taskport/1", "http/1.1"});
    auto server = [&]() -> task<void> {
        io::tls_stream s(co_await l.accept(), sctx);
        co_await echo_tls(std::move(s));
    };
    auto sf = rt.spawn(server());
    auto client = [&]() -> task<std::vector<std::byte>> {
        io::tls_context ctx = client_ctx();
        ctx.set_alpn({"http/1.1", "taskport/1"});
        io::tls_stream s(co_await io::tcp_stream::connect(rt, l.local_endpoint()), ctx);
        s.set_host("localhost");
        co_await s.handshake();
        if (s.alpn_protocol() != "taskport/1") throw std::runtime_error("alpn: " + s.alpn_protocol());
        auto msg = tp_test::pattern(1 << 20, 7);
        std::vector<std::byte> got;
        std::vector<std::byte> buf(7000);
        // Write in pieces, reading the echo as it comes (one operation at a time).
        for (std::size_t off = 0; off < msg.size(); off += 65536) {
            std::size_t k = std::min<std::size_t>(65536, msg.size() - off);
            co_await s.write_all(std::span<const std::byte>(msg.data() + off, k));
            while (got.size() < off + k) {
                std::size_t n = co_await s.read_some(buf);
                if (n == 0) throw std::runtime_error("early end");
                got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            }
        }
        co_await s.shutdown();
        std::size_t n = co_await s.read_some(buf);  // the server's close_notify
        if (n != 0) throw std::runtime_error("data after the echo");
        if (got != msg) throw std::runtime_error("echo differs");
        co_return got;
    };
    CHECK(tp_test::run(rt, client()).size() == (1u << 20));
    tp_test::run(rt, [&]() -> task<void> { co_await std::move(sf); }());
}

TEST_CASE("tls: a connection that ends without close_notify is stream_truncated, after the data", "[tls]") {
    runtime rt;
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    io::tls_context sctx = server_ctx();
    auto server = [&]() -> task<void> {
        io::tls_stream s(co_await l.accept(), sctx);
        co_await s.handshake();
        co_await s.write_all(bytes_of("last words"));
        s.close();  // no close_notify
    };
    auto sf = rt.spawn(server());
    auto client = [&]() -> task<void> {
        io::tls_stream s(co_await io::tcp_stream::connect(rt, l.local_endpoint()), client_ctx());
        s.set_host("localhost");
        co_await s.handshake();
        std::string got;
        std::array<std::byte, 64> buf;
        for (;;) {
            std::size_t n = co_await s.read_some(buf);  // throws at the end
            got.append(text_of(std::span<const std::byte>(buf.data(), n)));
            if (got.size() > 10) throw std::runtime_error("too much");
            if (n == 0) throw std::runtime_error("end of stream reported as clean");
            if (got == "last words") break;
        }
        co_await s.read_some(buf);
    };
    std::error_code ec = error_of(rt, client());
    CHECK(ec == io::tls_errc::stream_truncated);
    CHECK(ec.message().find("close_notify") != std::string::npos);
    tp_test::run(rt, [&]() -> task<void> { co_await std::move(sf); }());
}

TEST_CASE("tls: a peer that drops mid-handshake, and one that sends garbage", "[tls]") {
    runtime rt;
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));

    SECTION("server drops after reading the ClientHello: handshake_eof") {
        auto server = [&]() -> task<void> {
            io::tcp_stream s = co_await l.accept();
            std::array<std::byte, 64> buf;
            co_await s.read_some(buf);
        };  // s closes
        auto sf = rt.spawn(server());
        auto client = [&]() -> task<void> {
            io::tls_stream s(co_await io::tcp_stream::connect(rt, l.local_endpoint()), client_ctx());
            s.set_host("localhost");
            co_await s.handshake();
        };
        std::error_code ec = error_of(rt, client());
        // A close with the rest of the ClientHello unread may send RST instead of FIN.
        CHECK((ec == io::tls_errc::handshake_eof || ec == std::errc::connection_reset));
        tp_test::run(rt, [&]() -> task<void> { co_await std::move(sf); }());
    }
    SECTION("server answers with plain HTTP: OpenSSL's reason") {
        auto server = [&]() -> task<void> {
            io::tcp_stream s = co_await l.accept();
            co_await s.write_all(bytes_of("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
            std::array<std::byte, 4096> buf;
            while (co_await s.read_some(buf) != 0) {
            }
        };
        auto sf = rt.spawn(server());
        auto client = [&]() -> task<void> {
            io::tls_stream s(co_await io::tcp_stream::connect(rt, l.local_endpoint()), client_ctx());
            s.set_host("localhost");
            co_await s.handshake();
        };
        std::error_code ec = error_of(rt, client());
        CHECK(ec.category() == io::tls_category());
        CHECK_FALSE(io::is_verify_error(ec));
        CHECK(ec.message().find("wrong version number") != std::string::npos);
        tp_test::run(rt, [&]() -> task<void> { co_await std::move(sf); }());
    }
    SECTION("client sends garbage to a taskport server: the server's handshake fails") {
        auto server = [&]() -> task<void> {
            io::tls_stream s(co_await l.accept(), server_ctx());
            co_await s.handshake();
        };
        auto sf = rt.spawn(server());
        auto client = [&]() -> task<void> {
            io::tcp_stream s = co_await io::tcp_stream::connect(rt, l.local_endpoint());
            co_await s.write_all(bytes_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            std::array<std::byte, 4096> buf;
            while (co_await s.read_some(buf) != 0) {
            }
        };
        auto cf = rt.spawn(client());
        std::error_code ec = error_of(rt, [&]() -> task<void> { co_await std::move(sf); }());
        CHECK(ec.category() == io::tls_category());
        CHECK(ec.message().find("http request") != std::string::npos);
        error_of(rt, [&]() -> task<void> { co_await std::move(cf); }());
    }
}

TEST_CASE("tls: with_timeout and cancel abort a handshake and a read that wait on a silent peer", "[tls]") {
    runtime rt;
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    std::vector<io::tcp_stream> held;  // the silent peers' sockets, open until the end

    SECTION("handshake under with_timeout: timed_out") {
        auto client = [&]() -> task<void> {
            io::tls_stream s(co_await io::tcp_stream::connect(rt, l.local_endpoint()), client_ctx());
            held.push_back(co_await l.accept());  // accepted, never answered
            s.set_host("localhost");
            co_await with_timeout(std::chrono::milliseconds(100), s.handshake());
        };
        CHECK(error_of(rt, client()) == std::errc::timed_out);
    }
    SECTION("read under with_timeout: timed_out, and the stream still works after") {
        auto server = [&]() -> task<void> {
            io::tls_stream s(co_await l.accept(), server_ctx());
            co_await echo_tls(std::move(s));
        };
        auto sf = rt.spawn(server());
        auto client = [&]() -> task<std::string> {
            io::tls_stream s(co_await io::tcp_stream::connect(rt, l.local_endpoint()), client_ctx());
            s.set_host("localhost");
            co_await s.handshake();
            std::array<std::byte, 64> buf;
            bool timed_out = false;
            try {
                co_await with_timeout(std::chrono::milliseconds(100), s.read_some(buf));
            } catch (const std::system_error& e) {
                timed_out = e.code() == std::errc::timed_out;
            }
            if (!timed_out) throw std::runtime_error("read did not time out");
            co_await s.write_all(bytes_of("again"));
            std::size_t n = co_await s.read_some(buf);
            co_await s.shutdown();
            co_return std::string(text_of(std::span<const std::byte>(buf.data(), n)));
        };
        CHECK(tp_test::run(rt, client()) == "again");
        tp_test::run(rt, [&]() -> task<void> { co_await std::move(sf); }());
    }
    SECTION("a read cancelled through its task's future: operation_aborted") {
        io::tls_context sctx = server_ctx();
        auto server = [&]() -> task<void> {
            io::tls_stream s(co_await l.accept(), sctx);
            co_await s.handshake();
            std::array<std::byte, 64> buf;
            co_await s.read_some(buf);  // the client never writes; it ends when the client closes
        };
        auto sf = rt.spawn(server());
        io::tls_stream cs;
        tp_test::run(rt, [&]() -> task<void> {
            cs = io::tls_stream(co_await io::tcp_stream::connect(rt, l.local_endpoint()), client_ctx());
            cs.set_host("localhost");
            co_await cs.handshake();
        }());
        auto reader = [](io::tls_stream& s) -> task<std::size_t> {
            std::array<std::byte, 64> buf;
            co_return co_await s.read_some(buf);
        };
        auto rf = rt.spawn(reader(cs));
        rf.cancel();
        CHECK(tp_test::code_of([&] {
                  try {
                      tp_test::run(rt, [&]() -> task<void> { co_await std::move(rf); }());
                  } catch (...) {
                      return std::current_exception();
                  }
                  return std::exception_ptr();
              }()) == io::operation_aborted());
        cs.close();
        error_of(rt, [&]() -> task<void> { co_await std::move(sf); }());
    }
}

TEST_CASE("tls: an empty (default) stream fails cleanly", "[tls]") {
    runtime rt;
    io::tls_stream none;
    std::error_code ec = error_of(rt, [&]() -> task<void> { co_await none.handshake(); }());
    CHECK(ec == std::errc::bad_file_descriptor);
}
