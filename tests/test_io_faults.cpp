// test_io_faults.cpp — bad input and faults on TCP: each gives a clear error and loses nothing.
//
// Connection refused, reset by peer, broken pipe (SIGPIPE must not kill us), EMFILE during
// accept (the listener survives), closed and moved-from sockets, closing a socket with a read and
// a write pending, cancelling from another thread at the moment of completion, future::cancel of
// a task parked in I/O, and shutting the runtime down with thousands of operations parked.
//
// A test never sleeps to let something happen and never passes on timing: where two things race
// on purpose, every outcome the contract allows is accepted and counted, and the invariants
// (exactly one completion per operation, no byte lost or duplicated, no hang) are asserted.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <taskport/io/detail/test_hooks.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/resource.h>
#endif

using namespace taskport;
using Catch::Matchers::Contains;
namespace io = taskport::io;
using tp_test::aborted;
using tp_test::bytes_of;

namespace {

#if defined(_WIN32)
struct sigpipe_default {  // Windows has no SIGPIPE
    sigpipe_default() noexcept {}
};
#else
// Restores SIGPIPE's disposition; sets it to the default (terminate) meanwhile, so a SIGPIPE
// raised by the library would kill the test instead of being ignored by accident.
struct sigpipe_default {
    struct sigaction old {};
    sigpipe_default() {
        struct sigaction sa {};
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGPIPE, &sa, &old);
    }
    ~sigpipe_default() { ::sigaction(SIGPIPE, &old, nullptr); }
};

// Lowers RLIMIT_NOFILE so that no new descriptor can be created (every number below the limit is
// in use); restores the old limit on scope exit or restore().
struct no_more_fds {
    rlimit old{};
    bool active = false;
    no_more_fds() {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
        int lowest_free = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
        REQUIRE(lowest_free >= 0);
        ::close(lowest_free);
        rlimit lim = old;
        lim.rlim_cur = static_cast<rlim_t>(lowest_free);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
        active = true;
        // Proof that the limit bites.
        int probe = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
        if (probe >= 0) ::close(probe);
        REQUIRE(probe < 0);
        REQUIRE(errno == EMFILE);
    }
    void restore() {
        if (active) ::setrlimit(RLIMIT_NOFILE, &old);
        active = false;
    }
    ~no_more_fds() { restore(); }
};
#endif

// When a test leaves early (a failed REQUIRE), its helper threads must not stay blocked on the
// barrier (std::thread's destructor would terminate the run): leave the barrier, join them.
struct barrier_leaver {
    tp_test::barrier& b;
    std::atomic<bool>* stop;
    std::vector<std::thread*> threads;
    bool finished = false;
    ~barrier_leaver() {
        if (finished) return;
        if (stop) *stop = true;
        b.arrive_and_drop();
        for (auto* t : threads) t->join();
    }
};

// After a round whose read was cancelled, the byte sent in that round is still in the socket:
// read it (waiting for it if need be), so that the next round starts from an empty socket and its
// read really parks. Returns the bytes read.
long drain_one(runtime& rt, io::tcp_stream& s) {
    return tp_test::run(rt, [](io::tcp_stream& s) -> task<long> {
        std::array<std::byte, 64> b;
        co_return static_cast<long>(co_await s.read_some(b));
    }(s), "drain");
}

task<std::error_code> read_outcome(io::tcp_stream& s, std::size_t* got = nullptr) {
    std::array<std::byte, 256> buf;
    try {
        std::size_t n = co_await s.read_some(buf);
        if (got) *got = n;
        co_return std::error_code{};
    } catch (const std::system_error& e) {
        co_return e.code();
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Errors from the peer
// ---------------------------------------------------------------------------------------------

TEST_CASE("faults: connecting to a port nobody listens on throws connection_refused", "[faults]") {
    runtime rt(tp_test::workers(2));
    auto warm = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));  // the service exists
    // A socket bound but not listening holds the port, so nothing else can take it meanwhile.
    tp_test::raw_fd holder(tp_test::raw_tcp_socket());
    io::endpoint ep = io::endpoint::loopback_v4(0);
    REQUIRE(::bind(holder.get(), ep.data(), ep.size()) == 0);
    socklen_t len = io::endpoint::capacity();
    REQUIRE(::getsockname(holder.get(), ep.data(), &len) == 0);

    // Counted after a first attempt, so that what starts lazily is done: once (ASan build,
    // TASKPORT_WORKER_POLL=0) 9 descriptors were counted here and 7 after the loop — something
    // held two for a moment at the first count (not identified; lazy library initialisation on
    // a worker is the guess). A leak shows as more after, never fewer.
    try {
        tp_test::run(rt, [](runtime& rt, io::endpoint ep) -> task<io::tcp_stream> {
            co_return co_await io::tcp_stream::connect(rt, ep);
        }(rt, ep));
    } catch (const std::system_error&) {
    }
    const long fds = tp_test::open_fds();
    for (int i = 0; i < 20; ++i) {
        try {
            tp_test::run(rt, [](runtime& rt, io::endpoint ep) -> task<io::tcp_stream> {
                co_return co_await io::tcp_stream::connect(rt, ep);
            }(rt, ep));
            FAIL("connected to a port that does not listen");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            CHECK_THAT(e.what(), Contains("connect") && Contains(ep.to_string()));
        }
    }
    CHECK(tp_test::open_fds() <= fds);  // the failed sockets were closed
}

TEST_CASE("faults: reset by peer reaches a read as connection_reset", "[faults]") {
    if (tp_test::under_wine())
        TP_SKIP("Wine 8 closes a socket with FIN even after SO_LINGER {1, 0}: no reset to see");
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    tp_test::watchdog wd("reset by peer");

    SECTION("coroutine read, possibly parked when the RST arrives") {
        auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
        std::atomic<bool> reading{false};
        auto f = rt.spawn([&]() -> task<std::error_code> {
            reading = true;
            co_return co_await read_outcome(p.client);
        });
        REQUIRE(tp_test::eventually([&] { return reading.load(); }));
        tp_test::set_linger0(p.server.native_handle());
        p.server.close();  // RST
        CHECK(f.get() == std::errc::connection_reset);
        // The error is reported once; afterwards the stream reads as closed by the peer.
        auto again = tp_test::run(rt, read_outcome(p.client));
        CHECK((!again || again == std::errc::connection_reset));
    }
    SECTION("callback read after the RST arrived") {
        auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
        tp_test::set_linger0(p.server.native_handle());
        p.server.close();
        std::array<std::byte, 16> buf;
        std::promise<std::error_code> got;
        p.client.async_read_some(buf, [&](std::error_code ec, std::size_t) { got.set_value(ec); });
        CHECK(got.get_future().get() == std::errc::connection_reset);
    }
    SECTION("write to a reset connection fails with connection_reset or broken_pipe") {
        sigpipe_default sig;
        auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
        tp_test::set_linger0(p.server.native_handle());
        p.server.close();
        // Wait for the RST to land (the read reports it), then write.
        CHECK(tp_test::run(rt, read_outcome(p.client)) == std::errc::connection_reset);
        auto ec = tp_test::run(rt, [](io::tcp_stream& s) -> task<std::error_code> {
            try {
                co_await s.write_all(bytes_of("after reset"));
                co_return std::error_code{};
            } catch (const std::system_error& e) {
                co_return e.code();
            }
        }(p.client));
        CHECK((ec == std::errc::broken_pipe || ec == std::errc::connection_reset));
    }
}

TEST_CASE("faults: writing after the peer closed is broken_pipe, and SIGPIPE kills nobody", "[faults]") {
    sigpipe_default sig;  // a SIGPIPE now terminates the test
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    tp_test::watchdog wd("broken pipe");

    SECTION("coroutine write_all") {
        auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
        p.server.close();  // FIN; its RST answers the next data
        auto r = tp_test::run(rt, [](io::tcp_stream& s) -> task<std::string> {
            std::array<std::byte, 16> buf;
            if (co_await s.read_some(buf) != 0) co_return "no EOF";
            // The first write may still be accepted by the kernel (the peer answers it with
            // RST); a later one must fail. The loop is bounded by the hang deadline only.
            const auto chunk = tp_test::pattern(1 << 16, 1);
            const auto until = std::chrono::steady_clock::now() + tp_test::hang_deadline;
            while (std::chrono::steady_clock::now() < until) {
                try {
                    co_await s.write_all(chunk);
                } catch (const std::system_error& e) {
                    co_return e.code() == std::errc::broken_pipe ? "EPIPE"
                              : e.code() == std::errc::connection_reset ? "ECONNRESET"
                                                                        : e.what();
                }
            }
            co_return "writes never failed";
        }(p.client));
        CHECK((r == "EPIPE" || r == "ECONNRESET"));
        // Once broken, it stays broken (EPIPE from here on), through the callback form too.
        // Windows reports the reset on every later send (WSAECONNRESET), not EPIPE.
        std::promise<std::error_code> got;
        p.client.async_write_all(bytes_of("more"), [&](std::error_code ec, std::size_t) { got.set_value(ec); });
        const std::error_code later = got.get_future().get();
        if (tp_test::on_windows)
            CHECK((later == std::errc::broken_pipe || later == std::errc::connection_reset));
        else
            CHECK(later == std::errc::broken_pipe);
    }
    SECTION("after our own shutdown_write") {
        auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
        p.client.shutdown_write();
        auto ec = tp_test::run(rt, [](io::tcp_stream& s) -> task<std::error_code> {
            try {
                co_await s.write_some(bytes_of("x"));
                co_return std::error_code{};
            } catch (const std::system_error& e) {
                co_return e.code();
            }
        }(p.client));
        CHECK(ec == std::errc::broken_pipe);
    }
}

// ---------------------------------------------------------------------------------------------
// Out of descriptors
// ---------------------------------------------------------------------------------------------

// Under UndefinedBehaviorSanitizer's vptr check (-fsanitize=vptr, part of -fsanitize=undefined)
// this test draws false "object has invalid vptr" reports while the limit is down: on a cache
// miss the check probes the vtable's memory through pipe(2), which EMFILE refuses, and takes
// the failure for an unreadable vtable. tests/meson.build builds this file with -fno-sanitize=vptr.
TEST_CASE("faults: EMFILE during accept is reported and the listener accepts again", "[faults][emfile]") {
#if defined(_WIN32)
    TP_SKIP("no RLIMIT_NOFILE on Windows: a process cannot lower its handle limit to provoke "
            "WSAEMFILE (the IOCP accept reports it like any error; see iocp_socket.cpp)");
#else
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    tp_test::watchdog wd("EMFILE accept");

    auto accept_outcome = [&]() {
        return tp_test::run(rt, [](io::tcp_listener& l) -> task<std::pair<std::error_code, io::tcp_stream>> {
            try {
                io::tcp_stream s = co_await l.accept();
                co_return std::pair{std::error_code{}, std::move(s)};
            } catch (const std::system_error& e) {
                co_return std::pair{e.code(), io::tcp_stream{}};
            }
        }(l));
    };

    SECTION("the connection is already waiting (accept's fast path)") {
        // Client descriptors first: once the limit is down nothing can open one.
        tp_test::raw_fd c1(tp_test::raw_connect(l.local_endpoint()));
        tp_test::raw_fd c2(tp_test::raw_connect(l.local_endpoint()));
        {
            no_more_fds limit;
            auto [ec, s] = accept_outcome();
            CHECK(ec == std::errc::too_many_files_open);
            CHECK_FALSE(s.is_open());
            // The callback form reports it too.
            std::promise<std::error_code> got;
            l.async_accept([&](std::error_code e, io::tcp_stream) { got.set_value(e); });
            CHECK(got.get_future().get() == std::errc::too_many_files_open);
            limit.restore();

            // Same listener, both waiting connections still there.
            auto [ec1, s1] = accept_outcome();
            REQUIRE_FALSE(ec1);
            auto [ec2, s2] = accept_outcome();
            REQUIRE_FALSE(ec2);
            // And they carry data: write from the raw clients, read through the accepted ones.
            tp_test::raw_send_all(c1.get(), bytes_of("one"));
            tp_test::raw_send_all(c2.get(), bytes_of("two"));
            auto text = tp_test::run(rt, [](io::tcp_stream& a, io::tcp_stream& b) -> task<std::string> {
                std::array<std::byte, 8> buf;
                std::size_t n = co_await a.read_some(buf);
                std::string r(tp_test::text_of(std::span(buf.data(), n)));
                n = co_await b.read_some(buf);
                co_return r + std::string(tp_test::text_of(std::span(buf.data(), n)));
            }(s1, s2));
            // Which accepted stream is which client is the kernel's order: either is fine.
            CHECK((text == "onetwo" || text == "twoone"));
        }
    }
    SECTION("the accept is parked when the connection arrives (the reactor's path)") {
        tp_test::raw_fd c(tp_test::raw_tcp_socket());
        no_more_fds limit;
        std::atomic<bool> accepting{false};
        auto f = rt.spawn([&]() -> task<std::error_code> {
            accepting = true;
            try {
                io::tcp_stream s = co_await l.accept();
                co_return std::error_code{};
            } catch (const std::system_error& e) {
                co_return e.code();
            }
        });
        REQUIRE(tp_test::eventually([&] { return accepting.load(); }));
        io::endpoint ep = l.local_endpoint();
        REQUIRE(::connect(c.get(), ep.data(), ep.size()) == 0);  // needs no new descriptor
        CHECK(f.get() == std::errc::too_many_files_open);
        limit.restore();
        auto [ec, s] = accept_outcome();
        CHECK_FALSE(ec);
        CHECK(s.is_open());
    }
#endif
}

// ---------------------------------------------------------------------------------------------
// Closed, moved-from and default sockets
// ---------------------------------------------------------------------------------------------

TEST_CASE("faults: closed, moved-from and default sockets give bad_file_descriptor", "[faults]") {
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));

    io::tcp_stream moved_to = std::move(p.client);
    io::tcp_stream closed = std::move(p.server);
    closed.close();
    closed.close();  // twice is harmless
    io::tcp_stream never_opened;
    io::tcp_listener closed_listener = std::move(l);
    closed_listener.close();

    CHECK(moved_to.is_open());
    CHECK_FALSE(p.client.is_open());
    CHECK_FALSE(closed.is_open());
    CHECK(closed.native_handle() == tp_test::raw_fd::none);

    auto errors = [](io::tcp_stream& s, io::tcp_listener& l) -> task<std::vector<std::string>> {
        std::vector<std::string> out;
        std::array<std::byte, 8> buf;
        auto record = [&](const std::system_error& e, const char* op) {
            out.push_back(e.code() == std::errc::bad_file_descriptor &&
                                  std::string(e.what()).find(op) != std::string::npos
                              ? "EBADF"
                              : std::string("wrong: ") + e.what());
        };
        try { co_await s.read_some(buf); out.push_back("read ok?"); }
        catch (const std::system_error& e) { record(e, "read_some"); }
        try { co_await s.write_all(bytes_of("x")); out.push_back("write ok?"); }
        catch (const std::system_error& e) { record(e, "write_all"); }
        try { co_await s.write_some(bytes_of("x")); out.push_back("write ok?"); }
        catch (const std::system_error& e) { record(e, "write_some"); }
        try { co_await l.accept(); out.push_back("accept ok?"); }
        catch (const std::system_error& e) { record(e, "accept"); }
        co_return out;
    };
    const std::vector<std::string> all_ebadf(4, "EBADF");
    CHECK(tp_test::run(rt, errors(p.client, closed_listener)) == all_ebadf);
    CHECK(tp_test::run(rt, errors(closed, l)) == all_ebadf);  // l: moved-from listener
    CHECK(tp_test::run(rt, errors(never_opened, closed_listener)) == all_ebadf);

    for (io::tcp_stream* s : {&p.client, &closed, &never_opened}) {
        auto is_ebadf = [](const std::system_error& e) { return e.code() == std::errc::bad_file_descriptor; };
        CHECK_THROWS_MATCHES(s->set_nodelay(true), std::system_error, Catch::Predicate<std::system_error>(is_ebadf));
        CHECK_THROWS_MATCHES(s->shutdown_write(), std::system_error, Catch::Predicate<std::system_error>(is_ebadf));
        CHECK_THROWS_MATCHES(s->local_endpoint(), std::system_error, Catch::Predicate<std::system_error>(is_ebadf));
        CHECK_THROWS_MATCHES(s->remote_endpoint(), std::system_error, Catch::Predicate<std::system_error>(is_ebadf));
        s->cancel();  // no-op, no crash
    }
    CHECK_THROWS_AS(closed_listener.local_endpoint(), std::system_error);

    // Callback forms, started from a task: each callback runs once, with EBADF, on a worker.
    std::atomic<int> ebadf{0}, other{0}, off_worker{0};
    tp_test::counter_latch done;
    auto cb = [&](std::error_code ec, std::size_t) {
        (ec == std::errc::bad_file_descriptor ? ebadf : other).fetch_add(1);
        if (!rt.executor().in_worker()) off_worker.fetch_add(1);
        done.arrive();
    };
    std::array<std::byte, 8> buf;
    rt.spawn([&] {
        closed.async_read_some(buf, cb);
        closed.async_write_all(bytes_of("x"), cb);
        p.client.async_write_some(bytes_of("x"), cb);
        closed_listener.async_accept([&](std::error_code ec, io::tcp_stream s) { cb(ec, s.is_open() ? 1 : 0); });
    }).get();
    REQUIRE(done.wait_for(4));
    CHECK(ebadf.load() == 4);
    CHECK(other.load() == 0);
    CHECK(off_worker.load() == 0);

    // The moved-to stream still works: its peer was closed above, so it reads end of stream.
    std::size_t n = 99;
    CHECK_FALSE(tp_test::run(rt, read_outcome(moved_to, &n)));
    CHECK(n == 0);
    CHECK(moved_to.local_endpoint().port() != 0);
}

// ---------------------------------------------------------------------------------------------
// Closing and cancelling with operations pending
// ---------------------------------------------------------------------------------------------

TEST_CASE("faults: close() with a read and a write pending aborts both, exactly once", "[faults][close]") {
    const std::size_t big = std::size_t{64} << 20;  // more than any socket buffers: the write parks
    const auto data = tp_test::pattern(big, 3);

    SECTION("coroutines (one worker, so both are provably parked before the close)") {
        runtime rt(tp_test::workers(1));
        auto p = tp_test::connect_pair(rt);
        std::atomic<bool> r_started{false}, w_started{false};
        std::atomic<int> r_done{0}, w_done{0};
        auto result = tp_test::run(rt, [&]() -> task<std::pair<std::error_code, std::error_code>> {
            auto reader = rt.spawn([&]() -> task<std::error_code> {
                r_started = true;
                auto ec = co_await read_outcome(p.client);
                r_done.fetch_add(1);
                co_return ec;
            });
            auto writer = rt.spawn([&]() -> task<std::error_code> {
                w_started = true;
                std::error_code ec;
                try {
                    co_await p.client.write_all(data);
                } catch (const std::system_error& e) {
                    ec = e.code();
                }
                w_done.fetch_add(1);
                co_return ec;
            });
            // On the only worker: once a task has started it ran until it suspended in its op.
            while (!r_started || !w_started) co_await taskport::yield();
            if (r_done || w_done) throw std::logic_error("an op finished before the close");
            p.client.close();
            auto re = co_await std::move(reader);
            auto we = co_await std::move(writer);
            co_return std::pair{re, we};
        }());
        CHECK(result.first == aborted);
        CHECK(result.second == aborted);
        rt.shutdown();
        CHECK(r_done.load() == 1);
        CHECK(w_done.load() == 1);
    }
    SECTION("callbacks (started from this thread: parked when the calls return)") {
        runtime rt(tp_test::workers(2));
        auto p = tp_test::connect_pair(rt);
        std::array<std::byte, 64> buf;
        std::atomic<int> r_calls{0}, w_calls{0};
        std::error_code r_ec, w_ec;
        std::size_t w_bytes = 0;
        tp_test::counter_latch done;
        p.client.async_read_some(buf, [&](std::error_code ec, std::size_t) {
            r_ec = ec;
            r_calls.fetch_add(1);
            done.arrive();
        });
        p.client.async_write_all(data, [&](std::error_code ec, std::size_t n) {
            w_ec = ec;
            w_bytes = n;
            w_calls.fetch_add(1);
            done.arrive();
        });
        CHECK(done.count() == 0);
        p.client.close();
        REQUIRE(done.wait_for(2));
        rt.shutdown();  // runs anything still queued: a second completion would show now
        CHECK(r_calls.load() == 1);
        CHECK(w_calls.load() == 1);
        CHECK(r_ec == aborted);
        CHECK(w_ec == aborted);
        CHECK(w_bytes < big);
    }
}

TEST_CASE("faults: close() of a listener with an accept pending aborts it", "[faults][close]") {
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    std::promise<std::error_code> got;
    std::atomic<int> calls{0};
    l.async_accept([&](std::error_code ec, io::tcp_stream) {
        if (calls.fetch_add(1) == 0) got.set_value(ec);
    });
    l.close();
    CHECK(got.get_future().get() == aborted);
    rt.shutdown();
    CHECK(calls.load() == 1);
}

TEST_CASE("faults: cancel() racing data arrival: every read completes exactly once, no byte lost",
          "[faults][race]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    const int iters = static_cast<int>(tp_test::scaled(3000));
    std::vector<std::atomic<int>> calls(static_cast<std::size_t>(iters));
    std::atomic<long> received{0}, aborted_n{0}, data_n{0}, wrong{0};
    std::array<std::byte, 64> buf;
    tp_test::counter_latch done;
    std::atomic<int> iter{0};

    // Two threads meet the test thread at a barrier each round: one sends a byte (the
    // completion), the other cancels the stream's pending operations.
    tp_test::barrier sync(3);
    std::atomic<bool> stop{false};
    const auto peer = p.server.native_handle();
    // A thread woken from the barrier may be scheduled much later than the other, so the race
    // is aimed: in even rounds the canceller waits until the sender is sending, in odd rounds
    // the sender waits until the canceller is cancelling (a spin on a flag, not a sleep). The
    // second one then acts a moment after the first, from both sides of the race.
    std::atomic<int> sending{-1}, cancelling{-1};
    std::thread sender([&] {
        for (;;) {
            sync.arrive_and_wait();
            if (stop) return;
            const int i = iter.load();
            if (i % 2 == 1)
                while (cancelling.load() != i) std::this_thread::yield();
            sending = i;
            tp_test::raw_send_all(peer, bytes_of("z"));
            sync.arrive_and_wait();
        }
    });
    std::thread canceller([&] {
        for (;;) {
            sync.arrive_and_wait();
            if (stop) return;
            const int i = iter.load();
            if (i % 2 == 0)
                while (sending.load() != i) std::this_thread::yield();
            cancelling = i;
            p.client.cancel();
            sync.arrive_and_wait();
        }
    });
    barrier_leaver leave{sync, &stop, {&sender, &canceller}};
    tp_test::watchdog wd("cancel race");
    for (int i = 0; i < iters; ++i) {
        iter = i;
        std::atomic<bool> was_aborted{false};
        p.client.async_read_some(buf, [&, i](std::error_code ec, std::size_t n) {
            calls[static_cast<std::size_t>(i)].fetch_add(1);
            if (!ec && n > 0) {
                received.fetch_add(static_cast<long>(n));
                data_n.fetch_add(1);
            } else if (ec == aborted) {
                aborted_n.fetch_add(1);
                was_aborted = true;
            } else {
                wrong.fetch_add(1);
            }
            done.arrive();
        });
        sync.arrive_and_wait();  // go
        sync.arrive_and_wait();  // both acted
        REQUIRE(done.wait_for(i + 1));
        if (was_aborted) received.fetch_add(drain_one(rt, p.client));  // this round's byte
    }
    stop = true;
    sync.arrive_and_wait();
    sender.join();
    canceller.join();
    leave.finished = true;

    // What the aborted reads left behind is still in the socket: read it to the end.
    p.server.shutdown_write();
    long rest = tp_test::run(rt, [](io::tcp_stream& s) -> task<long> {
        long total = 0;
        std::array<std::byte, 4096> b;
        for (;;) {
            std::size_t n = co_await s.read_some(b);
            if (n == 0) co_return total;
            total += static_cast<long>(n);
        }
    }(p.client));
    rt.shutdown();

    for (int i = 0; i < iters; ++i) {
        if (calls[static_cast<std::size_t>(i)].load() != 1) FAIL("read " << i << " completed " << calls[static_cast<std::size_t>(i)].load() << " times");
    }
    CHECK(wrong.load() == 0);
    CHECK(aborted_n.load() + data_n.load() == iters);
    CHECK(received.load() + rest == iters);  // every byte sent arrived exactly once
    CHECK(rest == 0);                         // each round's byte was read in its round
    // Both outcomes are allowed; which ones happened is only reported.
    WARN("cancel race: " << data_n.load() << " reads got data, " << aborted_n.load() << " were aborted");
}

TEST_CASE("faults: future::cancel of a task parked in read_some completes it with operation_canceled",
          "[faults][cancel]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    tp_test::watchdog wd("future::cancel");

    std::atomic<bool> reading{false};
    std::atomic<int> resumed{0};
    auto f = rt.spawn([&]() -> task<std::size_t> {
        std::array<std::byte, 16> buf;
        reading = true;
        std::size_t n = co_await p.client.read_some(buf);
        resumed.fetch_add(1);
        co_return n;
    });
    REQUIRE(tp_test::eventually([&] { return reading.load(); }));
    f.cancel();
    std::error_code ec = tp_test::outcome(f);
    CHECK(ec == std::errc::operation_canceled);
    CHECK(resumed.load() == 0);

    // The stream is still usable and nothing was consumed: a later read gets the data.
    tp_test::raw_send_all(p.server.native_handle(), bytes_of("later"));
    std::size_t got = 0;
    CHECK_FALSE(tp_test::run(rt, read_outcome(p.client, &got)));
    CHECK(got == 5);

    SECTION("parked in accept") {
        auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
        std::atomic<bool> accepting{false};
        auto a = rt.spawn([&]() -> task<void> {
            accepting = true;
            co_await l.accept();
        });
        REQUIRE(tp_test::eventually([&] { return accepting.load(); }));
        a.cancel();
        CHECK(tp_test::outcome(a) == std::errc::operation_canceled);
        // The listener still accepts.
        auto q = tp_test::run(rt, tp_test::connect_pair(rt, l));
        CHECK(q.server.is_open());
    }
    SECTION("parked in write_all with the peer not reading") {
        const auto data = tp_test::pattern(std::size_t{64} << 20, 5);
        std::atomic<bool> writing{false};
        auto w = rt.spawn([&]() -> task<void> {
            writing = true;
            co_await p.client.write_all(data);
        });
        REQUIRE(tp_test::eventually([&] { return writing.load(); }));
        w.cancel();
        CHECK(tp_test::outcome(w) == std::errc::operation_canceled);
    }
    SECTION("cancelled before it starts: the task never runs") {
        std::atomic<bool> ran{false};
        tp_test::gate g;
        tp_test::counter_latch busy, left;
        for (int i = 0; i < 2; ++i)  // both workers blocked: the task cannot start early
            rt.post([&] {
                busy.arrive();
                g.wait();
                left.arrive();  // g, busy and left live on this section's stack: see below
            });
        REQUIRE(busy.wait_for(2));
        auto t = rt.spawn([&]() -> task<void> {
            ran = true;
            std::array<std::byte, 4> b;
            co_await p.client.read_some(b);
        });
        t.cancel();
        g.open();
        CHECK(tp_test::outcome(t) == std::errc::operation_canceled);
        CHECK_FALSE(ran.load());
        // Both blocking tasks must be out of g.wait() before g goes out of scope (ASan saw a
        // stack-use-after-scope in gate::wait when the section ended first).
        REQUIRE(left.wait_for(2));
    }
}

TEST_CASE("faults: future::cancel racing data arrival: one outcome per task, never a hang",
          "[faults][race][cancel]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    const int iters = static_cast<int>(tp_test::scaled(1500));
    const auto peer = p.server.native_handle();
    long got_data = 0, cancelled = 0, received = 0;
    tp_test::watchdog wd("future::cancel race");
    tp_test::barrier sync(2);
    std::atomic<int> sending{-1};
    std::thread sender([&] {  // one byte per round, right as the round's cancel is issued
        for (int i = 0; i < iters; ++i) {
            sync.arrive_and_wait();
            sending = i;
            tp_test::raw_send_all(peer, bytes_of("q"));
        }
    });
    barrier_leaver leave{sync, nullptr, {&sender}};
    for (int i = 0; i < iters; ++i) {
        std::atomic<int> completions{0};
        std::atomic<bool> reading{false};
        auto f = rt.spawn([&]() -> task<std::size_t> {
            std::array<std::byte, 64> buf;
            reading = true;
            std::size_t n = co_await p.client.read_some(buf);
            completions.fetch_add(1);
            co_return n;
        });
        // Mostly aim at a read that is parking or parked; every 4th round, at a task that may
        // not have started yet.
        if (i % 4 != 0) REQUIRE(tp_test::eventually([&] { return reading.load(); }));
        sync.arrive_and_wait();  // the sender sends while we cancel
        if (i % 2 == 0)  // aim: in even rounds cancel as the byte goes out, in odd ones at once
            while (sending.load() != i) std::this_thread::yield();
        f.cancel();
        try {
            std::size_t n = f.get();
            REQUIRE(n > 0);
            received += static_cast<long>(n);
            ++got_data;
        } catch (const std::system_error& e) {
            REQUIRE(e.code() == std::errc::operation_canceled);
            ++cancelled;
            received += drain_one(rt, p.client);  // this round's byte
        }
        REQUIRE(completions.load() <= 1);
    }
    sender.join();
    leave.finished = true;
    p.server.shutdown_write();
    long rest = tp_test::run(rt, [](io::tcp_stream& s) -> task<long> {
        long total = 0;
        std::array<std::byte, 4096> b;
        for (;;) {
            std::size_t n = co_await s.read_some(b);
            if (n == 0) co_return total;
            total += static_cast<long>(n);
        }
    }(p.client));
    CHECK(got_data + cancelled == iters);
    CHECK(received + rest == iters);  // every byte sent arrived exactly once
    CHECK(rest == 0);                 // each round's byte was read in its round
    WARN("future::cancel race: " << got_data << " got data, " << cancelled << " cancelled");
}

// ---------------------------------------------------------------------------------------------
// Shutdown with I/O parked
// ---------------------------------------------------------------------------------------------

TEST_CASE("faults: shutdown with thousands of operations parked aborts each once, leaks no fd",
          "[faults][shutdown]") {
    const int conns = 600;         // 1200 parked reads (both ends of each connection)
    const int timers = 700;        // long sleeps
    const int cb_reads = 100;      // callback reads on sockets the test thread owns
    const int total = 2 * conns + timers + cb_reads;

    // 1,400 sockets: raise the soft descriptor limit if it is lower (1024 is common), up to the
    // hard limit; restored on the way out.
#if !defined(_WIN32)  // Windows: no such limit (16 million handles per process)
    rlimit old_lim{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old_lim) == 0);
    const rlim_t need = 2 * (conns + cb_reads) + 256;
    struct restore_lim {
        rlimit lim;
        ~restore_lim() { ::setrlimit(RLIMIT_NOFILE, &lim); }
    } restore{old_lim};
    if (old_lim.rlim_cur != RLIM_INFINITY && old_lim.rlim_cur < need) {
        rlimit lim = old_lim;
        lim.rlim_cur = old_lim.rlim_max == RLIM_INFINITY ? need : std::min(need, old_lim.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &lim);
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
        if (lim.rlim_cur < need) FAIL("needs " << need << " descriptors; the hard limit is " << lim.rlim_max);
    }
#endif
    const long fds_before = tp_test::open_fds();

    std::atomic<int> ok{0}, aborted_n{0}, other{0}, started{0};
    std::vector<future<void>> tasks;
    std::vector<io::tcp_stream> owned;  // streams with a callback read pending, owned here
    std::vector<std::array<std::byte, 16>> cb_bufs(cb_reads);
    std::atomic<int> cb_calls{0};
    {
        runtime rt(tp_test::workers(2));
        auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
        auto count = [&](std::error_code ec) {
            if (!ec)
                ok.fetch_add(1);
            else if (ec == aborted)
                aborted_n.fetch_add(1);
            else
                other.fetch_add(1);
        };
        // Each reader owns its stream: the socket closes when the task's frame goes.
        auto reader = [&](io::tcp_stream s) -> task<void> {
            started.fetch_add(1);
            count(co_await read_outcome(s));
        };
        auto sleeper = [&](int i) -> task<void> {
            started.fetch_add(1);
            try {
                co_await taskport::sleep_for(std::chrono::hours(1) + std::chrono::milliseconds(i));
                count({});
            } catch (const std::system_error& e) {
                count(e.code());
            }
        };
        {
            tp_test::watchdog wd("setting up parked operations");
            for (int i = 0; i < conns; ++i) {
                auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
                tasks.push_back(rt.spawn(reader(std::move(p.client))));
                tasks.push_back(rt.spawn(reader(std::move(p.server))));
            }
            for (int i = 0; i < timers; ++i) tasks.push_back(rt.spawn(sleeper(i)));
            for (int i = 0; i < cb_reads; ++i) {
                auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
                p.client.async_read_some(cb_bufs[static_cast<std::size_t>(i)], [&](std::error_code ec, std::size_t) {
                    cb_calls.fetch_add(1);
                    count(ec);
                });
                owned.push_back(std::move(p.client));
                owned.push_back(std::move(p.server));
            }
            REQUIRE(tp_test::eventually([&] { return started.load() == 2 * conns + timers; }));
        }
        CHECK(ok.load() + aborted_n.load() + other.load() == 0);  // nothing could finish yet
        {
            tp_test::watchdog wd("runtime shutdown with parked operations");
            rt.shutdown();
        }
        CHECK(aborted_n.load() == total);
        CHECK(cb_calls.load() == cb_reads);
        for (auto& t : tasks) CHECK(t.is_ready());
        owned.clear();  // sockets closed after shutdown, before the runtime is destroyed
        l.close();
    }
    for (auto& t : tasks) CHECK_NOTHROW(t.get());
    CHECK(ok.load() == 0);
    CHECK(other.load() == 0);
    CHECK(aborted_n.load() == total);  // still: nothing completed twice
    CHECK(tp_test::open_fds() == fds_before);
}

TEST_CASE("faults: after shutdown, new I/O is refused with a clear error", "[faults][shutdown]") {
    runtime rt(tp_test::workers(1));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    rt.shutdown();
    try {
        auto l2 = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
        FAIL("bound after shutdown");
    } catch (const std::system_error& e) {
        CHECK(e.code() == aborted);
        CHECK_THAT(e.what(), Contains("shut down"));
    }
    CHECK_THROWS_AS(rt.spawn([] {}), runtime_closed);
    // A callback operation started from outside on a socket of a shut-down runtime: refused like
    // post() (runtime_closed), or run once with operation_aborted — never silently dropped (it
    // used to be queued for workers that had already left, and never ran).
    tp_test::counter_latch calls;
    std::error_code got;
    bool refused = false;
    try {
        l.async_accept([&](std::error_code ec, io::tcp_stream) {
            got = ec;
            calls.arrive();
        });
    } catch (const runtime_closed&) {
        refused = true;
    }
    if (!refused) {
        REQUIRE(calls.wait_for(1));
        CHECK(got == aborted);
    }
    CHECK(calls.count() == (refused ? 0 : 1));
}

TEST_CASE("faults: a socket that outlives its runtime can still be closed", "[faults][shutdown]") {
    const long fds_before = tp_test::open_fds();
    io::tcp_stream survivor;
    io::tcp_listener listener;
    {
        runtime rt(tp_test::workers(1));
        listener = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
        survivor = tp_test::run(rt, tp_test::connect_pair(rt, listener)).client;
    }
    CHECK(survivor.is_open());
    const auto fd = survivor.native_handle();
    survivor.close();  // must only close the descriptor: the runtime and its reactor are gone
    CHECK_FALSE(survivor.is_open());
#if !defined(_WIN32)
    CHECK(::fcntl(fd, F_GETFD) == -1);  // closed by close(), not later
#else
    (void)fd;
#endif
    // The service's own descriptors (poller, wake-up) go with the last object that used it.
    survivor = io::tcp_stream();
    listener = io::tcp_listener();
    CHECK(tp_test::open_fds() == fds_before);
}

TEST_CASE("faults: an I/O backend that cannot be had fails the call; the runtime goes on", "[faults]") {
    runtime_options o;
    o.workers = 2;
    // A backend this system does not have: creating the I/O service must fail.
    const char* missing = tp_test::on_windows ? "epoll" : "iocp";
    o.io = tp_test::on_windows ? io_backend::epoll : io_backend::iocp;
    runtime rt(o);
    for (int attempt = 0; attempt < 2; ++attempt) {  // and fail again, not find a half-made one
        try {
            auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
            FAIL("bound a listener through " << missing);
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::function_not_supported);
            CHECK_THAT(e.what(), Contains(missing));
        }
    }
    // The workers keep looking for work, completion queue included: a queue left attached by the
    // failed construction would be read after it was destroyed (AddressSanitizer shows it).
    std::atomic<int> n{0};
    tp_test::watchdog wd("runtime after a failed backend");
    for (int i = 0; i < 1000; ++i) rt.post([&] { n.fetch_add(1); });
    CHECK(rt.spawn([] { return 7; }).get() == 7);
    rt.shutdown();
    CHECK(n.load() == 1000);
}

// ---------------------------------------------------------------------------------------------
// Lifetimes: close() and cancel() from other threads, objects that outlive their runtime
// ---------------------------------------------------------------------------------------------

namespace {

// Installs a test hook for the scope (taskport/io/detail/test_hooks.hpp).
struct hook_scope {
    explicit hook_scope(io::detail::test_hook_fn f) noexcept { io::detail::set_test_hook(f); }
    ~hook_scope() { io::detail::set_test_hook(nullptr); }
};

// What the hooks of the tests below act on (one test at a time).
struct hook_ctx {
    runtime* rt = nullptr;
    io::tcp_stream* to_close = nullptr;
    tp_test::counter_latch parked;
    std::atomic<int> cancels_hooked{0};
    std::atomic<bool> armed{false};
    std::atomic<int> widen{0};  // stress: how many yields each hooked point spends
};
hook_ctx* g_hook = nullptr;

task<void> two_timer_cycles() {
    // Each expiry is handled by a poll cycle; the second cycle began after the first expiry
    // was delivered, so it began after anything done before this task started.
    co_await taskport::sleep_for(std::chrono::milliseconds(1));
    co_await taskport::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace

TEST_CASE("faults: future::cancel that has found a read parked, then close() retires its descriptor",
          "[faults][race][hook]") {
    // The canceller reads the operation's place (the descriptor's state), then — held there by
    // the hook — close() runs and the reactor polls twice, which is when it used to free a closed
    // descriptor's state; then the canceller locks that state.
    runtime rt(tp_test::workers(3));
    auto p = tp_test::connect_pair(rt);
    hook_ctx ctx;
    ctx.rt = &rt;
    ctx.to_close = &p.server;
    g_hook = &ctx;
    hook_scope hs([](io::detail::hook_point at, void*) {
        if (at == io::detail::hook_point::parked) g_hook->parked.arrive();
        if (at != io::detail::hook_point::cancel_before_lock || !g_hook->armed.exchange(false)) return;
        g_hook->cancels_hooked.fetch_add(1);
        g_hook->to_close->close();
        g_hook->rt->spawn(two_timer_cycles()).get();
    });
    auto reader = rt.spawn(read_outcome(p.server));
    REQUIRE(ctx.parked.wait_for(1));
    ctx.armed = true;
    {
        tp_test::watchdog w("future::cancel while close() retires the descriptor");
        reader.cancel();
    }
    CHECK(ctx.cancels_hooked.load() == 1);
    tp_test::watchdog w("reader after cancel + close");
    CHECK(reader.get() == aborted);
}

TEST_CASE("faults: cancel, close, a racing completion and a move, in every order: one outcome each",
          "[faults][race][hook]") {
    // Per round: a task parks a read on a stream; then, from three threads at once, the task's
    // future is cancelled, the peer sends a byte (the completion), and the stream is moved and
    // the moved-to object closed. The hooks widen the windows between a cancel finding the
    // operation and locking its descriptor, and at the start of close().
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    hook_ctx ctx;
    g_hook = &ctx;
    hook_scope hs([](io::detail::hook_point at, void*) {
        if (at == io::detail::hook_point::parked) {
            g_hook->parked.arrive();
            return;
        }
        for (int i = g_hook->widen.load(std::memory_order_relaxed); i > 0; --i) std::this_thread::yield();
    });
    const int rounds = static_cast<int>(tp_test::scaled(300));
    int outcomes_ok = 0, outcomes_aborted = 0, outcomes_other = 0;
    for (int r = 0; r < rounds; ++r) {
        auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
        const long parked_before = ctx.parked.count();
        auto reader = rt.spawn(read_outcome(p.server));
        REQUIRE(ctx.parked.wait_for(parked_before + 1));
        ctx.widen = r % 4 == 0 ? 0 : 50 * (r % 4);
        tp_test::barrier go(3);
        std::thread canceller([&] {
            go.arrive_and_wait();
            reader.cancel();
        });
        std::thread sender([&] {
            go.arrive_and_wait();
            tp_test::raw_send_all(p.client.native_handle(), bytes_of("x"));
        });
        go.arrive_and_wait();
        io::tcp_stream moved = std::move(p.server);
        if (r % 2) moved.close();
        canceller.join();
        sender.join();
        tp_test::watchdog w("reader in the cancel/close/move stress");
        const std::error_code ec = reader.get();
        (ec == std::error_code() ? outcomes_ok : ec == aborted ? outcomes_aborted : outcomes_other)++;
    }
    ctx.widen = 0;
    CHECK(outcomes_other == 0);
    CHECK(outcomes_ok + outcomes_aborted == rounds);
}

TEST_CASE("faults: close() from another task aborts every pending operation with operation_aborted",
          "[faults][close]") {
    // One worker: once the four operations' tasks have started, each ran until it parked.
    runtime rt(tp_test::workers(1));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
    auto u = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    const auto big = tp_test::pattern(std::size_t{64} << 20, 4);  // parks: more than the buffers hold
    std::atomic<int> started{0};
    auto result = tp_test::run(rt, [&]() -> task<std::vector<std::error_code>> {
        auto catching = [&](auto body) -> task<std::error_code> {
            started.fetch_add(1);
            try {
                co_await body();
            } catch (const std::system_error& e) {
                co_return e.code();
            }
            co_return std::error_code();
        };
        std::vector<future<std::error_code>> ops;
        ops.push_back(rt.spawn(catching([&]() -> task<void> {
            std::array<std::byte, 64> b;
            co_await p.server.read_some(b);
        })));
        ops.push_back(rt.spawn(catching([&]() -> task<void> { co_await p.server.write_all(big); })));
        ops.push_back(rt.spawn(catching([&]() -> task<void> { co_await l.accept(); })));
        ops.push_back(rt.spawn(catching([&]() -> task<void> {
            std::array<std::byte, 64> b;
            co_await u.receive_from(b);
        })));
        while (started.load() < 4) co_await taskport::yield();
        co_await rt.spawn([&] {  // another task closes them
            p.server.close();
            l.close();
            u.close();
        });
        std::vector<std::error_code> out;
        for (auto& f : ops) out.push_back(co_await std::move(f));
        co_return out;
    }());
    CHECK(result == std::vector<std::error_code>(4, aborted));
}

TEST_CASE("faults: close() from another thread while a task keeps starting operations", "[faults][close][race]") {
    // The rule (tcp.hpp): close() and cancel() may be called from any thread, even while another
    // starts operations on the same object; those then fail (bad_file_descriptor or
    // operation_aborted) or run on the still-open socket — never on another descriptor.
    runtime rt(tp_test::workers(2));
    const int rounds = static_cast<int>(tp_test::scaled(50));
    for (int r = 0; r < rounds; ++r) {
        auto p = tp_test::connect_pair(rt);
        std::atomic<bool> writing{false};
        auto writer = rt.spawn([&]() -> task<std::error_code> {
            std::array<std::byte, 1> one{};
            for (;;) {
                writing.store(true);
                try {
                    co_await p.client.write_some(one);
                } catch (const std::system_error& e) {
                    co_return e.code();
                }
            }
        });
        while (!writing.load()) std::this_thread::yield();
        p.client.close();
        tp_test::watchdog w("writer after a concurrent close");
        const std::error_code ec = writer.get();
        CHECK((ec == aborted || ec == std::errc::bad_file_descriptor));
    }
}

TEST_CASE("faults: sockets that outlive their runtime: operations fail with operation_aborted, close works",
          "[faults][shutdown]") {
    const long fds_before = tp_test::open_fds();
    io::tcp_stream stream;
    io::tcp_listener listener;
    io::udp_socket udp;
    io::endpoint udp_ep;
    {
        runtime rt(tp_test::workers(1));
        listener = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
        stream = tp_test::run(rt, tp_test::connect_pair(rt, listener)).client;
        udp = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
        udp_ep = udp.local_endpoint();
    }
    REQUIRE(stream.is_open());
    std::array<std::byte, 16> buf{};
    // Callback forms: nothing is left to run them but the caller: once each, inside the call.
    std::vector<std::error_code> got;
    auto cb = [&](std::error_code ec, std::size_t) { got.push_back(ec); };
    stream.async_read_some(buf, cb);
    stream.async_write_some(bytes_of("x"), cb);
    listener.async_accept([&](std::error_code ec, io::tcp_stream) { got.push_back(ec); });
    udp.async_send_to(bytes_of("x"), udp_ep, cb);
    udp.async_receive_from(buf, [&](std::error_code ec, std::size_t, io::endpoint) { got.push_back(ec); });
    CHECK(got == std::vector<std::error_code>(5, aborted));
    // Coroutine forms, awaited on another runtime.
    runtime other(tp_test::workers(1));
    CHECK(tp_test::run(other, read_outcome(stream)) == aborted);
    auto accept_outcome = [](io::tcp_listener& l) -> task<std::error_code> {
        try {
            co_await l.accept();
        } catch (const std::system_error& e) {
            co_return e.code();
        }
        co_return std::error_code();
    };
    CHECK(tp_test::run(other, accept_outcome(listener)) == aborted);
    stream.close();
    listener.close();
    udp.close();
    CHECK_FALSE(stream.is_open());
    CHECK_FALSE(listener.is_open());
    CHECK_FALSE(udp.is_open());
    stream = io::tcp_stream();  // the last objects of the runtime's service: it goes now
    listener = io::tcp_listener();
    udp = io::udp_socket();
    CHECK(tp_test::open_fds() == fds_before);
}
