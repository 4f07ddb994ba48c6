// test_io_endpoint.cpp — io::endpoint: parsing good and bad text (every rejection names the text
// and what is wrong with it), printing, the factories, and binding what was parsed.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#if defined(_WIN32)
#include <iphlpapi.h>  // if_nametoindex (winsock2.h comes with io_test_util.hpp)
#else
#include <net/if.h>
#include <netinet/in.h>
#endif

#include <string>

using namespace taskport;
using Catch::Matchers::Contains;
namespace io = taskport::io;

TEST_CASE("endpoint: IPv4 text parses and prints back", "[endpoint]") {
    auto e = io::endpoint::parse("127.0.0.1:8080");
    CHECK(e.is_v4());
    CHECK_FALSE(e.is_v6());
    CHECK(e.port() == 8080);
    CHECK(e.address() == "127.0.0.1");
    CHECK(e.to_string() == "127.0.0.1:8080");
    CHECK(e == io::endpoint::loopback_v4(8080));
    CHECK(e.size() == sizeof(sockaddr_in));
    CHECK(e.data()->sa_family == AF_INET);

    CHECK(io::endpoint::parse("0.0.0.0:0") == io::endpoint::any_v4(0));
    CHECK(io::endpoint::parse("255.255.255.255:65535").port() == 65535);
    CHECK(io::endpoint::parse("10.1.2.3:1").to_string() == "10.1.2.3:1");
}

TEST_CASE("endpoint: IPv6 text in brackets parses and prints back", "[endpoint]") {
    auto e = io::endpoint::parse("[::1]:80");
    CHECK(e.is_v6());
    CHECK(e.port() == 80);
    CHECK(e.address() == "::1");
    CHECK(e.to_string() == "[::1]:80");
    CHECK(e == io::endpoint::loopback_v6(80));
    CHECK(e.size() == sizeof(sockaddr_in6));

    CHECK(io::endpoint::parse("[::]:0") == io::endpoint::any_v6(0));
    CHECK(io::endpoint::parse("[2001:db8::42]:443").to_string() == "[2001:db8::42]:443");
    CHECK(io::endpoint::parse("[::ffff:10.0.0.1]:5").is_v6());

    // A numeric scope, and an interface name (loopback exists everywhere we run).
    auto s = io::endpoint::parse("[fe80::1%7]:443");
    CHECK(reinterpret_cast<const sockaddr_in6*>(s.data())->sin6_scope_id == 7);
    CHECK(s.to_string() == "[fe80::1%7]:443");
    CHECK(io::endpoint::parse(s.to_string()) == s);
    // The largest scope id there is.
    auto m = io::endpoint::parse("[fe80::1%4294967295]:1");
    CHECK(reinterpret_cast<const sockaddr_in6*>(m.data())->sin6_scope_id == 4294967295u);
    CHECK(io::endpoint::parse(m.to_string()) == m);
    unsigned lo = ::if_nametoindex("lo");
    if (lo != 0) {
        auto n = io::endpoint::parse("[fe80::1%lo]:443");
        CHECK(reinterpret_cast<const sockaddr_in6*>(n.data())->sin6_scope_id == lo);
    }
}

TEST_CASE("endpoint: from(address, port), port(p), defaults", "[endpoint]") {
    CHECK(io::endpoint::from("10.0.0.1", 7).to_string() == "10.0.0.1:7");
    CHECK(io::endpoint::from("::1", 9) == io::endpoint::loopback_v6(9));

    io::endpoint d;
    CHECK(d.is_v4());
    CHECK(d.to_string() == "0.0.0.0:0");

    auto e = io::endpoint::parse("[::1]:1");
    e.port(65535);
    CHECK(e.to_string() == "[::1]:65535");
    auto f = io::endpoint::parse("1.2.3.4:1");
    f.port(0);
    CHECK(f.to_string() == "1.2.3.4:0");
    CHECK_FALSE(e == f);

    CHECK_THROWS_AS(io::endpoint::from("nonsense", 1), std::invalid_argument);
}

TEST_CASE("endpoint: bad text is rejected with a message naming it and the problem", "[endpoint]") {
    struct bad_case {
        std::string text;
        const char* why;  // a fragment of the message
    };
    const bad_case cases[] = {
        {"", "empty"},
        {"host", "expected host:port"},
        {"127.0.0.1", "expected host:port"},
        {"127.0.0.1:65536", "out of range"},
        {"127.0.0.1:99999", "out of range"},
        {"127.0.0.1:123456", "out of range"},
        {"127.0.0.1:", "missing port"},
        {"127.0.0.1:8o", "not a number"},
        {"127.0.0.1:-1", "not a number"},
        {"127.0.0.1: 80", "not a number"},
        {":80", "missing host"},
        {"[::1", "missing ']'"},
        {"[::1]", "expected ':port'"},
        {"[::1]80", "expected ':port'"},
        {"[::1]:", "missing port"},
        {"[]:80", "missing host"},
        {"::1:80", "brackets"},
        {"localhost:80", "not an IPv4 or IPv6 address"},
        {"256.1.1.1:80", "not an IPv4 or IPv6 address"},
        {"1.2.3:80", "not an IPv4 or IPv6 address"},
        {"[fe80::1%no-such-if0]:1", "unknown IPv6 scope"},
        {"[fe80::1%]:1", "unknown IPv6 scope"},
        // Found by tests/fuzz/endpoint: strtoul took a sign, leading blanks and numbers past
        // 32 bits, so these parsed (scope 4294967289, 7, 7, 0 and 4294967295).
        {"[fe80::1%-7]:1", "unknown IPv6 scope"},
        {"[fe80::1% 7]:1", "unknown IPv6 scope"},
        {"[fe80::1%+7]:1", "unknown IPv6 scope"},
        {"[fe80::1%4294967296]:1", "scope id out of range"},
        {"[fe80::1%99999999999999999999]:1", "scope id out of range"},
        {std::string(100, '1') + ":80", "too long"},
        // An embedded NUL must not cut the address short ("127.0.0.1" followed by garbage).
        {std::string("127.0.0.1\0junk:80", 17), "NUL"},
    };
    for (const auto& c : cases) {
        INFO("text: '" << c.text << "'");
        const bool has_nul = c.text.find('\0') != std::string::npos;  // what() would stop there
        try {
            auto e = io::endpoint::parse(c.text);
            FAIL("parsed as " << e.to_string());
        } catch (const std::invalid_argument& e) {
            if (!has_nul) CHECK_THAT(e.what(), Contains("'" + c.text + "'") && Contains(c.why));
        }
        std::error_code ec;
        auto e = io::endpoint::parse(c.text, ec);
        CHECK(ec == std::errc::invalid_argument);
        CHECK(e == io::endpoint());
    }
}

TEST_CASE("endpoint: the error_code overload clears ec on success", "[endpoint]") {
    std::error_code ec = std::make_error_code(std::errc::io_error);
    auto e = io::endpoint::parse("[::1]:8080", ec);
    CHECK_FALSE(ec);
    CHECK(e == io::endpoint::loopback_v6(8080));
}

TEST_CASE("endpoint: from_sockaddr adopts v4/v6 and refuses other families", "[endpoint]") {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    v4.sin_port = htons(99);
    v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::error_code ec;
    auto e = io::endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&v4), sizeof v4, ec);
    CHECK_FALSE(ec);
    CHECK(e.to_string() == "127.0.0.1:99");

    // Too short for its family.
    e = io::endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&v4), sizeof v4 - 1, ec);
    CHECK(ec == std::errc::address_family_not_supported);

    sockaddr_storage un{};
    un.ss_family = AF_UNIX;
    io::endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&un), sizeof un, ec);
    CHECK(ec == std::errc::address_family_not_supported);
}

TEST_CASE("endpoint: a parsed endpoint binds, and local_endpoint reports the port", "[endpoint]") {
    runtime rt(tp_test::workers(1));
    auto l = io::tcp_listener::bind(rt, io::endpoint::parse("127.0.0.1:0"));
    auto le = l.local_endpoint();
    CHECK(le.is_v4());
    CHECK(le.address() == "127.0.0.1");
    CHECK(le.port() != 0);

    // IPv6 loopback may be disabled in a container; only then is the v6 half skipped.
    try {
        auto l6 = io::tcp_listener::bind(rt, io::endpoint::parse("[::1]:0"));
        CHECK(l6.local_endpoint().is_v6());
        CHECK(l6.local_endpoint().port() != 0);
        auto pair = tp_test::run(rt, tp_test::connect_pair(rt, l6));
        CHECK(pair.client.remote_endpoint() == l6.local_endpoint());
        CHECK(pair.server.remote_endpoint() == pair.client.local_endpoint());
    } catch (const std::system_error& e) {
        if (e.code() != std::errc::address_not_available &&
            e.code() != std::errc::address_family_not_supported)
            throw;
        WARN("IPv6 loopback unavailable here: " << e.what());
    }

    // Binding a port that is taken reports the address.
    try {
        auto again = io::tcp_listener::bind(rt, le);
        FAIL("bound a port already listening");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::address_in_use);
        CHECK_THAT(e.what(), Contains(le.to_string()));
    }
}
