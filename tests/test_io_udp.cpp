// test_io_udp.cpp — io::udp_socket: datagram round trips (coroutines and callbacks), the
// sender's address, empty and cut datagrams, a pending receive cancelled or closed under it,
// closed sockets, an address in use, and shutdown with receives parked.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <array>
#include <atomic>
#include <string>
#include <vector>

using namespace taskport;
namespace io = taskport::io;
using tp_test::bytes_of;
using tp_test::run;
using tp_test::error_in;
using tp_test::text_of;

namespace {

task<std::size_t> send_to(io::udp_socket& s, std::span<const std::byte> b, io::endpoint to) {
    co_return co_await s.send_to(b, to);
}
task<io::udp_receive_result> receive_from(io::udp_socket& s, std::span<std::byte> b) {
    co_return co_await s.receive_from(b);
}

// Receives n datagrams and sends each back to its sender.
task<int> echo(io::udp_socket& s, int n) {
    std::array<std::byte, 2048> buf;
    for (int i = 0; i < n; ++i) {
        auto [k, from] = co_await s.receive_from(buf);
        co_await s.send_to(std::span<const std::byte>(buf.data(), k), from);
    }
    co_return n;
}

task<int> ping(io::udp_socket& s, io::endpoint server, int n) {
    std::array<std::byte, 2048> buf;
    int good = 0;
    for (int i = 0; i < n; ++i) {
        std::string msg = "ping " + std::to_string(i);
        co_await s.send_to(bytes_of(msg), server);
        auto r = co_await s.receive_from(buf);
        if (r.from == server && text_of(std::span<const std::byte>(buf.data(), r.bytes)) == msg) ++good;
    }
    co_return good;
}

}  // namespace

TEST_CASE("udp: round trip between two sockets, with the sender's address") {
    runtime rt(tp_test::workers(2));
    auto a = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    auto b = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    REQUIRE(a.is_open());
    REQUIRE(a.local_endpoint().port() != 0);

    REQUIRE(run(rt, send_to(a, bytes_of("hello"), b.local_endpoint())) == 5);
    std::array<std::byte, 64> buf;
    auto r = run(rt, receive_from(b, buf));
    REQUIRE(r.bytes == 5);
    REQUIRE(text_of(std::span<const std::byte>(buf.data(), r.bytes)) == "hello");
    REQUIRE(r.from == a.local_endpoint());

    // Ping-pong: the receiver parks first (nothing has been sent when it starts).
    const int n = static_cast<int>(tp_test::scaled(500));
    auto server = rt.spawn(echo(b, n));
    REQUIRE(run(rt, ping(a, b.local_endpoint(), n)) == n);
    tp_test::watchdog w("udp echo");
    REQUIRE(server.get() == n);
}

TEST_CASE("udp: empty and cut datagrams") {
    runtime rt(tp_test::workers(2));
    auto a = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    auto b = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    std::array<std::byte, 4> small;

    // An empty datagram is a datagram.
    REQUIRE(run(rt, send_to(a, {}, b.local_endpoint())) == 0);
    auto r = run(rt, receive_from(b, small));
    REQUIRE(r.bytes == 0);
    REQUIRE(r.from == a.local_endpoint());

    // A datagram longer than the buffer is cut to it; the rest is gone, the next one intact.
    REQUIRE(run(rt, send_to(a, bytes_of("0123456789"), b.local_endpoint())) == 10);
    REQUIRE(run(rt, send_to(a, bytes_of("ab"), b.local_endpoint())) == 2);
    r = run(rt, receive_from(b, small));
    REQUIRE(r.bytes == 4);
    REQUIRE(text_of(small) == "0123");
    r = run(rt, receive_from(b, small));
    REQUIRE(r.bytes == 2);
    REQUIRE(text_of(std::span<const std::byte>(small.data(), 2)) == "ab");

    // Larger than any one buffer the socket layer keeps in a page.
    const auto big = tp_test::pattern(60'000, 3);
    std::vector<std::byte> back(65'536);
    REQUIRE(run(rt, send_to(a, big, b.local_endpoint())) == big.size());
    r = run(rt, receive_from(b, back));
    REQUIRE(r.bytes == big.size());
    REQUIRE(std::equal(big.begin(), big.end(), back.begin()));
}

TEST_CASE("udp: IPv6 loopback, where the machine has it") {
    runtime rt(tp_test::workers(2));
    io::udp_socket a, b;
    try {
        a = io::udp_socket::bind(rt, io::endpoint::loopback_v6(0));
        b = io::udp_socket::bind(rt, io::endpoint::loopback_v6(0));
    } catch (const std::system_error& e) {
        SUCCEED(std::string("no IPv6 loopback here: ") + e.what());
        return;
    }
    REQUIRE(run(rt, send_to(a, bytes_of("six"), b.local_endpoint())) == 3);
    std::array<std::byte, 8> buf;
    auto r = run(rt, receive_from(b, buf));
    REQUIRE(r.bytes == 3);
    REQUIRE(r.from.is_v6());
    REQUIRE(r.from == a.local_endpoint());
}

TEST_CASE("udp: callback forms run as tasks") {
    runtime rt(tp_test::workers(2));
    auto a = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    auto b = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    std::array<std::byte, 16> buf;
    tp_test::counter_latch got;
    std::error_code rec_ec;
    std::size_t rec_n = 0;
    io::endpoint rec_from;
    bool on_worker = false;
    b.async_receive_from(buf, [&](std::error_code ec, std::size_t n, io::endpoint from) {
        rec_ec = ec;
        rec_n = n;
        rec_from = from;
        on_worker = taskport::detail::current_executor() != nullptr;
        got.arrive();
    });
    tp_test::counter_latch sent;
    std::error_code send_ec;
    a.async_send_to(bytes_of("cb"), b.local_endpoint(), [&](std::error_code ec, std::size_t n) {
        send_ec = ec;
        if (n != 2) send_ec = std::make_error_code(std::errc::message_size);
        sent.arrive();
    });
    REQUIRE(sent.wait_for(1));
    REQUIRE_FALSE(send_ec);
    REQUIRE(got.wait_for(1));
    REQUIRE_FALSE(rec_ec);
    REQUIRE(rec_n == 2);
    REQUIRE(text_of(std::span<const std::byte>(buf.data(), 2)) == "cb");
    REQUIRE(rec_from == a.local_endpoint());
    REQUIRE(on_worker);
}

TEST_CASE("udp: a pending receive is cancelled, closed under, or aborted by shutdown — once") {
    std::array<std::byte, 16> buf;

    SECTION("future::cancel") {
        runtime rt(tp_test::workers(2));
        auto s = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
        auto f = rt.spawn(receive_from(s, buf));  // nothing is ever sent
        f.cancel();
        tp_test::watchdog w("cancelled receive");
        REQUIRE(tp_test::outcome(f) == std::errc::operation_canceled);
        // The socket is still usable.
        REQUIRE(run(rt, send_to(s, bytes_of("self"), s.local_endpoint())) == 4);
        REQUIRE(run(rt, receive_from(s, buf)).bytes == 4);
    }
    SECTION("cancel() and close() abort the callbacks parked on the socket") {
        runtime rt(tp_test::workers(2));
        auto s = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
        tp_test::counter_latch done;
        std::atomic<int> aborted{0};
        auto cb = [&](std::error_code ec, std::size_t, io::endpoint) {
            if (ec == tp_test::aborted) ++aborted;
            done.arrive();
        };
        s.async_receive_from(buf, cb);
        s.cancel();
        REQUIRE(done.wait_for(1));
        s.async_receive_from(buf, cb);
        s.close();
        REQUIRE(done.wait_for(2));
        REQUIRE(aborted == 2);
        REQUIRE_FALSE(s.is_open());
        // A closed socket: bad_file_descriptor, still delivered as a task.
        REQUIRE(error_in(rt, send_to(s, bytes_of("x"), io::endpoint::loopback_v4(9))) ==
                std::errc::bad_file_descriptor);
        REQUIRE_THROWS_AS(s.local_endpoint(), std::system_error);
    }
    SECTION("shutdown with receives parked") {
        const int n = static_cast<int>(tp_test::scaled(200));
        std::atomic<int> aborted{0}, calls{0};
        std::vector<io::udp_socket> socks;
        {
            runtime rt(tp_test::workers(2));
            for (int i = 0; i < n; ++i) {
                socks.push_back(io::udp_socket::bind(rt, io::endpoint::loopback_v4(0)));
                socks.back().async_receive_from(buf, [&](std::error_code ec, std::size_t, io::endpoint) {
                    if (ec == tp_test::aborted) ++aborted;
                    ++calls;
                });
            }
            tp_test::watchdog w("shutdown with parked receives");
            rt.shutdown();
        }
        REQUIRE(calls == n);
        REQUIRE(aborted == n);
        socks.clear();  // closing sockets whose runtime is gone only closes descriptors
    }
}

TEST_CASE("udp: bind errors") {
    runtime rt(tp_test::workers(2));
    auto a = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    try {
        auto b = io::udp_socket::bind(rt, a.local_endpoint());
        FAIL("bound the same address twice");
    } catch (const std::system_error& e) {
        REQUIRE(e.code() == std::errc::address_in_use);
        REQUIRE(std::string(e.what()).find(a.local_endpoint().to_string()) != std::string::npos);
    }
}

TEST_CASE("udp: a socket moved (a vector growing) with a callback receive pending: it gets the datagram") {
    runtime rt(tp_test::workers(2));
    std::vector<io::udp_socket> v;
    v.push_back(io::udp_socket::bind(rt, io::endpoint::loopback_v4(0)));
    const io::endpoint to = v[0].local_endpoint();
    auto sender = io::udp_socket::bind(rt, io::endpoint::loopback_v4(0));
    std::array<std::byte, 32> buf{};
    tp_test::counter_latch done;
    std::error_code got;
    std::size_t n = 0;
    io::endpoint from;
    v[0].async_receive_from(buf, [&](std::error_code ec, std::size_t k, io::endpoint f) {
        got = ec;
        n = k;
        from = f;
        done.arrive();
    });
    for (int i = 0; i < 64; ++i) v.emplace_back();
    io::udp_socket moved = std::move(v[0]);
    CHECK(run(rt, send_to(sender, bytes_of("datagram"), to)) == 8);
    REQUIRE(done.wait_for(1));
    CHECK(got == std::error_code());
    REQUIRE(n == 8);
    CHECK(text_of(std::span<const std::byte>(buf.data(), n)) == "datagram");
    CHECK(from == sender.local_endpoint());
    CHECK(moved.is_open());
}
