// test_soak_emfile.cpp — descriptor exhaustion during accept, as an independent tester measured
// it: the server's descriptor limit at 64, 200 clients at once. The server runs the echo sample's
// accept loop (samples/echo/accept_loop.hpp, the loop README recommends), which backs off on a
// taskport timer (1 ms doubling to 100 ms) when accept fails with EMFILE. Asserted: every one of
// the 200 clients gets its own bytes back (the server keeps serving what it has and accepts again
// when descriptors free up), and the number of failed accepts while starved is bounded by a count
// the back-off schedule allows for the time starved — a loop that retried at once made 2.5M in 9 s.
// The CPU the server used while starved is printed (a figure, never a pass/fail criterion).
//
// The clients live in a child process forked before the runtime starts (they must not count
// against the server's limit): plain blocking sockets, each sending a distinct message, holding
// all 200 connections open until the test releases them; then, in connection order, each reads
// its echo, checks it and closes, which frees a descriptor in the server for the next one.
// The starved phase lasts TASKPORT_EMFILE_HOLD_MS (default 1000; the tester's run was 9000).
// TASKPORT_EMFILE_BACKOFF=0 runs the loop without back-off (retry at once), to measure the
// "before" figures: the count assertion then fails, as it should.
#include <catch2/catch.hpp>

#include "accept_loop.hpp"
#include "fork_client.hpp"
#include "io_test_util.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#endif

using namespace taskport;
namespace io = taskport::io;
using namespace std::chrono_literals;

// Where the test runs (see the skips in the test case).
#if defined(_WIN32) || (defined(TASKPORT_TEST_UBSAN) && TASKPORT_TEST_UBSAN)
#define TASKPORT_SOAK_EMFILE_RUNS 0
#else
#define TASKPORT_SOAK_EMFILE_RUNS 1
#endif

#if TASKPORT_SOAK_EMFILE_RUNS
namespace {

constexpr int clients = 200;
constexpr rlim_t server_fd_limit = 64;

long env_long(const char* name, long dflt) {
    const char* e = std::getenv(name);
    return e && *e ? std::atol(e) : dflt;
}

std::string message_of(int i) {
    char m[40];
    std::snprintf(m, sizeof m, "client %03d of %d: hello", i, clients);
    return m;
}

bool write_byte(int fd, char c) { return tp_test::write_all_fd(fd, std::string(1, c)); }
using tp_test::read_byte;

// The client process. Writes 'C' when all 200 are connected and have sent their message, waits
// for 'R', then checks the echoes in order and writes "ok" or the first problem; exit status 0/1.
[[noreturn]] void client_process(int from_parent, int to_parent) {
    auto fail = [&](const std::string& what) {
        std::string line = "client: " + what + "\n";
        (void)!::write(to_parent, line.data(), line.size());
        ::_exit(1);
    };
    std::uint16_t port = 0;
    if (::read(from_parent, &port, sizeof port) != sizeof port) fail("no port from the test");
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::vector<int> fds;
    for (int i = 0; i < clients; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) fail("socket: " + std::string(std::strerror(errno)));
        if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
            fail("connect " + std::to_string(i) + ": " + std::strerror(errno));
        timeval tv{static_cast<time_t>(tp_test::hang_deadline.count()), 0};  // a hung server fails us
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        const std::string m = message_of(i);
        if (::send(fd, m.data(), m.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(m.size()))
            fail("send " + std::to_string(i) + ": " + std::strerror(errno));
        fds.push_back(fd);
    }
    if (!write_byte(to_parent, 'C')) ::_exit(1);
    if (read_byte(from_parent) != 'R')
        fail("no release from the test");
    for (int i = 0; i < clients; ++i) {
        const std::string m = message_of(i);
        std::string got(m.size(), '\0');
        std::size_t have = 0;
        while (have < m.size()) {
            ssize_t n = ::recv(fds[static_cast<std::size_t>(i)], got.data() + have, m.size() - have, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0)
                fail("connection " + std::to_string(i) + ": " +
                     (n == 0 ? std::string("end of stream") : std::string(std::strerror(errno))) + " after " +
                     std::to_string(have) + " of " + std::to_string(m.size()) + " bytes");
            have += static_cast<std::size_t>(n);
        }
        if (got != m) fail("connection " + std::to_string(i) + ": got \"" + got + "\", sent \"" + m + "\"");
        ::close(fds[static_cast<std::size_t>(i)]);
    }
    const std::string ok = "ok\n";
    (void)!::write(to_parent, ok.data(), ok.size());
    ::_exit(0);
}

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

// The most failed attempts the back-off schedule allows within `elapsed` after the first one:
// attempt k+1 comes at the earliest after the first k delays (a timer never fires early).
unsigned long max_failures(echo_sample::accept_backoff b, std::chrono::nanoseconds elapsed) {
    if (b.first.count() == 0) return ~0UL;
    unsigned long k = 1;
    std::chrono::nanoseconds sum{0};
    std::chrono::milliseconds d = b.first;
    for (;;) {
        sum += d;
        if (sum > elapsed) return k;
        ++k;
        d = std::min(2 * d, b.max);
    }
}

struct server_counts {
    std::atomic<long> accepted{0};
    std::atomic<long> served{0};          // echoed the whole message and saw the client close
    std::atomic<long> open_sessions{0};
    std::atomic<long> peak_sessions{0};
    std::atomic<unsigned long> failures{0};  // failed accepts (resource errors), all episodes
    std::atomic<long long> first_failure_ns{0};  // steady_clock time of the first one
    std::atomic<long> session_errors{0};
    std::atomic<long> other_errors{0};     // a resource error other than EMFILE
    tp_test::counter_latch starved;        // arrives on the first failed accept
    tp_test::counter_latch served_latch;
};

task<void> session(io::tcp_stream s, server_counts& c) {
    const long now = c.open_sessions.fetch_add(1) + 1;
    long peak = c.peak_sessions.load();
    while (now > peak && !c.peak_sessions.compare_exchange_weak(peak, now)) {
    }
    try {
        std::array<std::byte, 256> buf;
        std::size_t total = 0;
        for (;;) {
            std::size_t n = co_await s.read_some(buf);
            if (n == 0) break;
            co_await s.write_all(std::span<const std::byte>(buf.data(), n));
            total += n;
        }
        s.close();
        if (total > 0) {
            c.served.fetch_add(1);
            c.served_latch.arrive();
        } else {
            c.session_errors.fetch_add(1);
        }
    } catch (const std::exception&) {
        c.session_errors.fetch_add(1);
    }
    c.open_sessions.fetch_sub(1);
}

}  // namespace
#endif

TEST_CASE("soak: EMFILE during accept (limit 64, 200 clients): all served, failed accepts bounded by the back-off",
          "[soak][emfile]") {
#if defined(_WIN32)
    TP_SKIP("Windows has no per-process handle limit a process can lower (no RLIMIT_NOFILE), and no fork");
#elif !TASKPORT_SOAK_EMFILE_RUNS
    TP_SKIP("UBSan's vptr check probes memory through pipe(2), which EMFILE refuses, and then reports a false "
            "'invalid vptr' from the library's code while the server is starved (seen at operation.hpp's "
            "enter_scope); the plain and TSan builds run this test");
#else
    const echo_sample::accept_backoff backoff =
        env_long("TASKPORT_EMFILE_BACKOFF", 1) == 0 ? echo_sample::accept_backoff{0ms, 0ms} : echo_sample::accept_backoff{};
    const std::chrono::milliseconds hold{env_long("TASKPORT_EMFILE_HOLD_MS", 1000)};

    // The client process first, while this process has no other thread.
    tp_test::forked_client child([](int from_parent, int to_parent) { client_process(from_parent, to_parent); });
    REQUIRE(child.started());

    server_counts c;
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    struct restore_limit {
        rlimit lim;
        ~restore_limit() { ::setrlimit(RLIMIT_NOFILE, &lim); }
    } restore{old};

    double cpu_starved = 0, wall_starved = 0;
    unsigned long failures_starved = 0;
    unsigned long failures_allowed = 0;
    long accepted_before_release = 0;
    double recover_s = 0;
    {
        runtime rt(tp_test::workers(2));
        auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0), 1024);
        const std::uint16_t port = l.local_endpoint().port();
        const long fds_at_start = tp_test::open_fds();
        REQUIRE(fds_at_start + 8 < static_cast<long>(server_fd_limit));
        // From here until the limit is restored, no Catch assertion runs: under UBSan an assertion
        // can reach a vptr check whose memory probe needs pipe(2), which EMFILE refuses (see
        // meson.build). What goes wrong is kept in `problem` and checked afterwards.
        std::string problem;
        unsigned long f1 = 0;
        long served_while_starved = -1;
        rlimit lim = old;
        lim.rlim_cur = server_fd_limit;
        if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) FAIL("setrlimit(RLIMIT_NOFILE, 64): " << std::strerror(errno));

        auto on_accept = [&](io::tcp_stream s) {
            c.accepted.fetch_add(1);
            (void)rt.spawn(session(std::move(s), c));
        };
        auto on_starved = [&](const std::error_code& ec, std::chrono::milliseconds, unsigned long) {
            if (ec != std::errc::too_many_files_open) c.other_errors.fetch_add(1);
            if (c.failures.fetch_add(1) == 0) {
                c.first_failure_ns = std::chrono::steady_clock::now().time_since_epoch().count();
                c.starved.arrive();
            }
        };
        future<void> server = rt.spawn(echo_sample::accept_loop(l, on_accept, on_starved, backoff));
        if (::write(child.to_child(), &port, sizeof port) != sizeof port)
            problem = "could not send the port to the client process";
        // All 200 connected and waiting; the server has run out of descriptors.
        else if (read_byte(child.from_child()) != 'C')
            problem = "the client process did not connect its 200 clients";
        else if (!c.starved.wait_for(1))
            problem = "accept never failed with a limit of 64 descriptors";
        if (problem.empty()) {
            // Starved: hold it (the load, not a wait for an event), measuring the process's CPU.
            const double cpu0 = cpu_seconds();
            const auto t0 = std::chrono::steady_clock::now();
            const unsigned long f0 = c.failures.load();
            std::this_thread::sleep_for(hold);
            f1 = c.failures.load();
            const auto t1 = std::chrono::steady_clock::now();
            cpu_starved = cpu_seconds() - cpu0;
            wall_starved = std::chrono::duration<double>(t1 - t0).count();
            failures_starved = f1 - f0;
            accepted_before_release = c.accepted.load();
            served_while_starved = c.served.load();  // nobody has closed yet: 0
            // The most failures since the first that the schedule allows by t1 (+1 for an attempt
            // under way while the count was read).
            const auto since_first =
                t1 - std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(c.first_failure_ns.load()));
            failures_allowed = max_failures(backoff, since_first);
            if (failures_allowed != ~0UL) ++failures_allowed;

            // Release: the clients check their echoes in order and close; the server accepts the rest.
            const auto t_release = std::chrono::steady_clock::now();
            if (!write_byte(child.to_child(), 'R')) {
                problem = "could not release the client process";
            } else {
                tp_test::watchdog wd("EMFILE: serving all 200 after the release");
                if (!c.served_latch.wait_for(clients)) problem = "not all 200 were served";
            }
            recover_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_release).count();
        }
        if (!problem.empty()) child.kill();
        // The client process's one line: "ok" or its first problem.
        const std::string said = tp_test::read_line(child.from_child(), 512, 10s);
        const int status = child.wait();
        const bool limit_restored = ::setrlimit(RLIMIT_NOFILE, &old) == 0;

        INFO("the client process said \"" << said << "\" and exited with status " << status);
        REQUIRE(problem == "");
        REQUIRE(limit_restored);
        CHECK(served_while_starved == 0);
        INFO("failed accepts since the first: " << f1 << "; the back-off schedule allows " << failures_allowed
             << (backoff.first.count() == 0 ? " (no back-off: unbounded)" : ""));
        CHECK(f1 <= failures_allowed);
        CHECK(backoff.first.count() != 0);  // TASKPORT_EMFILE_BACKOFF=0 measures; it never passes
        CHECK(said == "ok");
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));

        server.cancel();
        {
            tp_test::watchdog wd("EMFILE: stopping the accept loop");
            server.wait();
        }
    }
    CHECK(c.accepted.load() == clients);
    CHECK(c.served.load() == clients);
    CHECK(c.session_errors.load() == 0);
    CHECK(c.other_errors.load() == 0);
    std::printf("emfile: limit %llu, %d clients: %ld accepted before starving (peak %ld sessions); "
                "starved %.2f s: %lu failed accepts (schedule allows %ld), CPU %.3f s = %.1f%% of one core; "
                "all %ld served %.3f s after the release; %lu failed accepts in all; back-off %lld..%lld ms\n",
                static_cast<unsigned long long>(server_fd_limit), clients, accepted_before_release,
                c.peak_sessions.load(), wall_starved, failures_starved, failures_allowed == ~0UL ? -1L : static_cast<long>(failures_allowed), cpu_starved,
                100.0 * cpu_starved / wall_starved, c.served.load(), recover_s, c.failures.load(),
                static_cast<long long>(backoff.first.count()), static_cast<long long>(backoff.max.count()));
    std::fflush(stdout);
#endif
}
