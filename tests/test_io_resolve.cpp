// test_io_resolve.cpp — io::resolve: names and numbers that resolve without a network (the
// hosts file, literals), and failures that getaddrinfo reports without asking a name server
// (an unknown service, a name no DNS query can carry), in the gai category.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <algorithm>
#include <string>
#include <vector>

using namespace taskport;
namespace io = taskport::io;
using tp_test::run;
using tp_test::error_in;

namespace {

task<std::vector<io::endpoint>> resolve(runtime& rt, std::string host, std::string service) {
    co_return co_await io::resolve(rt, host, service);
}

std::error_code failure(runtime& rt, std::string host, std::string service, std::string* what = nullptr) {
    return error_in(rt, resolve(rt, host, service), what);
}

bool is_loopback(const io::endpoint& e) {
    return e.is_v4() ? e.address().rfind("127.", 0) == 0 : e.address() == "::1";
}

}  // namespace

TEST_CASE("resolve: localhost") {
    runtime rt(tp_test::workers(2));
    auto addrs = run(rt, resolve(rt, "localhost", "8080"));
    REQUIRE_FALSE(addrs.empty());
    for (const auto& e : addrs) {
        REQUIRE(e.port() == 8080);
        REQUIRE(is_loopback(e));
    }
    // Each address once, though getaddrinfo lists it per socket type.
    for (std::size_t i = 0; i < addrs.size(); ++i)
        for (std::size_t j = i + 1; j < addrs.size(); ++j) REQUIRE_FALSE(addrs[i] == addrs[j]);
}

TEST_CASE("resolve: literals, service names, empty parts") {
    runtime rt(tp_test::workers(2));
    auto v4 = run(rt, resolve(rt, "127.0.0.1", "80"));
    REQUIRE(v4.size() == 1);
    REQUIRE(v4[0] == io::endpoint::parse("127.0.0.1:80"));
    auto v6 = run(rt, resolve(rt, "::1", "443"));
    REQUIRE(v6.size() == 1);
    REQUIRE(v6[0] == io::endpoint::parse("[::1]:443"));
    auto no_port = run(rt, resolve(rt, "127.0.0.1", ""));
    REQUIRE(no_port.at(0).port() == 0);
    auto no_host = run(rt, resolve(rt, "", "9"));
    REQUIRE_FALSE(no_host.empty());
    for (const auto& e : no_host) REQUIRE(is_loopback(e));
}

TEST_CASE("resolve: failures are system_errors in the getaddrinfo category") {
    runtime rt(tp_test::workers(2));
    std::string what;
    std::error_code ec = failure(rt, "localhost", "no-such-service-taskport", &what);
    REQUIRE(ec);
    REQUIRE(ec.category() == io::gai_category());
    REQUIRE(std::string(ec.category().name()) == "taskport.getaddrinfo");
    REQUIRE_FALSE(ec.message().empty());
    REQUIRE(what.find("no-such-service-taskport") != std::string::npos);

    // An empty label cannot go into a DNS query: refused locally, whatever the network.
    ec = failure(rt, "bad..name", "80", &what);
    REQUIRE(ec);
    REQUIRE(ec.category() == io::gai_category());
    REQUIRE(what.find("bad..name") != std::string::npos);

    ec = failure(rt, "", "");
    REQUIRE(ec);
    REQUIRE(ec.category() == io::gai_category());
}

TEST_CASE("resolve: many at once, and cancelled") {
    runtime rt(tp_test::workers(2));
    const int n = static_cast<int>(tp_test::scaled(64));
    std::vector<future<std::vector<io::endpoint>>> futs;
    for (int i = 0; i < n; ++i) futs.push_back(rt.spawn(resolve(rt, "localhost", std::to_string(1000 + i))));
    for (int i = 0; i < n; i += 2) futs[i].cancel();
    tp_test::watchdog w("resolves");
    int done = 0, cancelled = 0;
    for (int i = 0; i < n; ++i) {
        try {
            auto addrs = futs[i].get();
            REQUIRE_FALSE(addrs.empty());
            REQUIRE(addrs[0].port() == 1000 + i);
            ++done;
        } catch (const std::system_error& e) {
            REQUIRE(i % 2 == 0);
            REQUIRE(e.code() == std::errc::operation_canceled);
            ++cancelled;
        }
    }
    REQUIRE(done + cancelled == n);
}
