// test_soak_echo.cpp — soak: an echo server on taskport coroutines holds N connections at once
// (10,000 in a plain build), every byte of every connection is checked, and the process's
// descriptor count returns to its baseline afterwards. Runs once per I/O backend (meson).
//
// Clients and server are taskport coroutines in this one process, so N connections take 2N
// descriptors: the test raises RLIMIT_NOFILE for its duration (soft limit, and the hard limit
// where the process may) and restores it; where the limit cannot be raised far enough it skips
// and says why. N per build (the whole test must fit the suite's deadline on 2 busy cores):
// 10,000 plain, 4,000 under ASan, 2,000 under TSan; TASKPORT_SOAK_CONNECTIONS=<n> overrides.
//
// Phases: (1) 64 connector tasks open all N connections (at most 64 handshakes in flight, so the
// listener's backlog never overflows and no SYN waits for a retransmit) while the server accepts
// each and spawns its echo coroutine; (2) with all N open (counted on both sides, and the fd count
// taken), one client task per connection runs its rounds: a distinct pattern of a size that
// varies per round (seeded by connection and round) is written, read back to the last byte and
// compared; (3) each client sends FIN, sees the server's end of stream and closes; the server's
// sessions end. Asserted: every byte equal, byte totals equal on both sides, no error anywhere,
// N sessions started and finished, the fd count back where it started (with the runtime up, and
// again after it is gone).
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/resource.h>
#endif

using namespace taskport;
namespace io = taskport::io;

namespace {

long soak_connections() {
    if (const char* e = std::getenv("TASKPORT_SOAK_CONNECTIONS"); e && *e) {
        long v = std::atol(e);
        if (v > 0) return v;
    }
    if (tp_test::tsan) return 2000;
    if (tp_test::asan) return 4000;
    return 10000;
}

constexpr int rounds = 4;
constexpr std::size_t max_chunk = 3000;  // well under a loopback socket's buffer: write, then read
constexpr int connectors = 64;

// Bytes of round r on connection c: 1..max_chunk, different per connection and per round.
std::size_t chunk_size(long c, int r) {
    std::uint32_t x = static_cast<std::uint32_t>(c) * 2654435761u ^ static_cast<std::uint32_t>(r + 1) * 40503u;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return 1 + x % max_chunk;
}
unsigned chunk_seed(long c, int r) { return static_cast<unsigned>(c * rounds + r); }

// The first error anywhere (server or client), for the failure message.
struct error_log {
    std::atomic<long> count{0};
    std::mutex mu;
    std::string first;
    void add(const std::string& what) {
        if (count.fetch_add(1) == 0) {
            std::lock_guard<std::mutex> g(mu);
            first = what;
        }
    }
    std::string get() {
        std::lock_guard<std::mutex> g(mu);
        return first;
    }
};

struct server_state {
    std::atomic<long> live{0};
    std::atomic<long> peak_live{0};
    std::atomic<long long> bytes{0};
    tp_test::counter_latch accepted;
    tp_test::counter_latch finished;
    error_log errors;
};

task<void> echo_session(io::tcp_stream s, server_state& st) {
    const long now = st.live.fetch_add(1) + 1;
    long peak = st.peak_live.load();
    while (now > peak && !st.peak_live.compare_exchange_weak(peak, now)) {
    }
    long long echoed = 0;
    try {
        std::array<std::byte, 4096> buf;
        for (;;) {
            std::size_t n = co_await s.read_some(buf);
            if (n == 0) break;
            co_await s.write_all(std::span<const std::byte>(buf.data(), n));
            echoed += static_cast<long long>(n);
        }
    } catch (const std::exception& e) {
        st.errors.add(std::string("server session: ") + e.what());
    }
    s.close();  // before counting: the fd check after `finished` must not race the frame's end
    st.bytes += echoed;
    st.live.fetch_sub(1);
    st.finished.arrive();
}

// Accepts exactly n connections, each served by its own (detached) session task.
task<void> accept_n(runtime& rt, io::tcp_listener& l, long n, server_state& st) {
    for (long i = 0; i < n; ++i) {
        io::tcp_stream s = co_await l.accept();
        (void)rt.spawn(echo_session(std::move(s), st));
        st.accepted.arrive();
    }
}

// Connects streams[k], streams[k + step], ... (each slot written by this task only).
task<void> connect_some(runtime& rt, io::endpoint ep, std::vector<io::tcp_stream>& streams, long k, long step) {
    for (long i = k; i < static_cast<long>(streams.size()); i += step) {
        streams[static_cast<std::size_t>(i)] = co_await io::tcp_stream::connect(rt, ep);
    }
}

// One connection's rounds; returns the bytes it verified. Throws on any difference.
task<long long> client(io::tcp_stream s, long c) {
    long long verified = 0;
    std::vector<std::byte> got(max_chunk);
    for (int r = 0; r < rounds; ++r) {
        const std::vector<std::byte> sent = tp_test::pattern(chunk_size(c, r), chunk_seed(c, r));
        co_await s.write_all(sent);
        std::size_t have = 0;
        while (have < sent.size()) {
            std::size_t n = co_await s.read_some(std::span<std::byte>(got.data() + have, sent.size() - have));
            if (n == 0)
                throw std::runtime_error("connection " + std::to_string(c) + " round " + std::to_string(r) +
                                         ": end of stream after " + std::to_string(have) + " of " +
                                         std::to_string(sent.size()) + " bytes");
            have += n;
        }
        auto diff = std::mismatch(sent.begin(), sent.end(), got.begin());
        if (diff.first != sent.end())
            throw std::runtime_error("connection " + std::to_string(c) + " round " + std::to_string(r) +
                                     ": byte " + std::to_string(diff.first - sent.begin()) + " of " +
                                     std::to_string(sent.size()) + " differs");
        verified += static_cast<long long>(sent.size());
    }
    s.shutdown_write();
    std::array<std::byte, 16> tail;
    std::size_t extra = co_await s.read_some(tail);
    if (extra != 0)
        throw std::runtime_error("connection " + std::to_string(c) + ": " + std::to_string(extra) +
                                 " unexpected bytes after the last round");
    co_return verified;
}

#if !defined(_WIN32)
// Raises RLIMIT_NOFILE's soft limit to at least `need` (and the hard limit if it is lower and the
// process may raise it); restores both on scope exit. why() is empty when it worked.
struct fd_limit {
    rlimit old{};
    bool changed = false;
    std::string why_not;
    explicit fd_limit(rlim_t need) {
        if (::getrlimit(RLIMIT_NOFILE, &old) != 0) {
            why_not = std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
            return;
        }
        if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur >= need) return;
        if (old.rlim_cur == RLIM_INFINITY) return;
        rlimit want = old;
        want.rlim_cur = need;
        if (old.rlim_max != RLIM_INFINITY && old.rlim_max < need) want.rlim_max = need;
        if (::setrlimit(RLIMIT_NOFILE, &want) != 0) {
            why_not = "RLIMIT_NOFILE is " + std::to_string(old.rlim_cur) + " (hard " +
                      std::to_string(old.rlim_max) + ") and raising it to " + std::to_string(need) +
                      " failed: " + std::strerror(errno) +
                      " (raising the hard limit needs CAP_SYS_RESOURCE, or run under `ulimit -n " +
                      std::to_string(need) + "`; or set TASKPORT_SOAK_CONNECTIONS lower)";
            return;
        }
        changed = true;
    }
    ~fd_limit() {
        if (changed) ::setrlimit(RLIMIT_NOFILE, &old);
    }
};
#endif

}  // namespace

TEST_CASE("soak: an echo server holds N connections at once, every byte checked, no fd leaked", "[soak]") {
    const long n = soak_connections();
    const long fds_before_runtime = tp_test::open_fds();
#if !defined(_WIN32)
    // 2 per connection, the runtime's own, the test's, and headroom for what a backend opens.
    fd_limit limit(static_cast<rlim_t>(2 * n + fds_before_runtime + 256));
    if (!limit.why_not.empty()) TP_SKIP(limit.why_not.c_str());
#endif
    const auto t0 = std::chrono::steady_clock::now();
    long fds_with_listener = 0;
    long fds_peak = 0;
    long long client_bytes = 0;
    server_state st;
    error_log client_errors;
    {
        runtime rt(tp_test::workers(2));
        auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0), 4096);
        const io::endpoint ep = l.local_endpoint();
        fds_with_listener = tp_test::open_fds();

        future<void> server = rt.spawn(accept_n(rt, l, n, st));

        // (1) open all n connections.
        std::vector<io::tcp_stream> streams(static_cast<std::size_t>(n));
        {
            std::vector<future<void>> conns;
            for (long k = 0; k < connectors; ++k) conns.push_back(rt.spawn(connect_some(rt, ep, streams, k, connectors)));
            tp_test::watchdog wd("soak: connecting");
            when_all(std::move(conns)).get();
            server.get();
        }
        REQUIRE(st.accepted.wait_for(n));
        // All n are open on both sides now (a session counts itself live when it starts).
        REQUIRE(tp_test::eventually([&] { return st.live.load() == n; }));
        fds_peak = tp_test::open_fds();
        CHECK(fds_peak >= fds_with_listener + 2 * n);
        const auto t_connected = std::chrono::steady_clock::now();

        // (2) + (3) every connection's rounds, all at once; then FIN both ways.
        std::vector<future<long long>> clients;
        clients.reserve(static_cast<std::size_t>(n));
        for (long c = 0; c < n; ++c) clients.push_back(rt.spawn(client(std::move(streams[static_cast<std::size_t>(c)]), c)));
        {
            tp_test::watchdog wd("soak: echo rounds");
            for (long c = 0; c < n; ++c) {
                try {
                    client_bytes += clients[static_cast<std::size_t>(c)].get();
                } catch (const std::exception& e) {
                    client_errors.add(e.what());
                }
            }
        }
        REQUIRE(st.finished.wait_for(n));
        INFO("first client error: " << client_errors.get());
        INFO("first server error: " << st.errors.get());
        CHECK(client_errors.count == 0);
        CHECK(st.errors.count == 0);
        CHECK(st.peak_live.load() == n);
        CHECK(st.live.load() == 0);
        long long expected = 0;
        for (long c = 0; c < n; ++c)
            for (int r = 0; r < rounds; ++r) expected += static_cast<long long>(chunk_size(c, r));
        CHECK(client_bytes == expected);
        CHECK(st.bytes.load() == expected);
        // Every connection closed on both sides: back to the count with only the listener open.
        CHECK(tp_test::eventually([&] { return tp_test::open_fds() == fds_with_listener; }));
        CHECK(tp_test::open_fds() == fds_with_listener);
        const auto t_end = std::chrono::steady_clock::now();
        using ms = std::chrono::milliseconds;
        std::printf("soak: %ld connections held at once (%ld sessions at the peak), %d rounds, %lld bytes each way "
                    "verified; fds %ld before the runtime, %ld with the listener, %ld at the peak, %ld after; "
                    "connect %lld ms, rounds %lld ms, total %lld ms\n",
                    n, st.peak_live.load(), rounds, expected, fds_before_runtime, fds_with_listener, fds_peak,
                    tp_test::open_fds(), static_cast<long long>(std::chrono::duration_cast<ms>(t_connected - t0).count()),
                    static_cast<long long>(std::chrono::duration_cast<ms>(t_end - t_connected).count()),
                    static_cast<long long>(std::chrono::duration_cast<ms>(t_end - t0).count()));
        std::fflush(stdout);
    }
    // The runtime, its reactor and the listener are gone: back to where the test started.
    CHECK(tp_test::open_fds() == fds_before_runtime);
}
