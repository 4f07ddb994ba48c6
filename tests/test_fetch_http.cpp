// test_fetch_http.cpp — taskport-fetch's URL and response handling (samples/fetch/http.hpp), the
// code tests/fuzz/fetch_url and fetch_response fuzz: what the fuzzers found stays fixed here.
#include <catch2/catch.hpp>

#include "http.hpp"

#include <string>
#include <vector>

namespace http = samples::http;

namespace {

http::url_parts parts(const std::string& url) {
    http::url_parts u;
    const auto why = http::parse_url(url, u);
    INFO(url << ": " << why.value_or(""));
    REQUIRE_FALSE(why);
    return u;
}

}  // namespace

TEST_CASE("fetch http: relative Locations resolve as RFC 3986 5.2 says", "[fetch]") {
    const auto b = parts("http://a.example/dir/page?q=1");
    CHECK(http::resolve_location(b, "http://b.example/x") == "http://b.example/x");
    CHECK(http::resolve_location(b, "//c.example:81/n") == "http://c.example:81/n");
    CHECK(http::resolve_location(b, "/x/./y/../z") == "http://a.example/x/z");
    CHECK(http::resolve_location(b, "other") == "http://a.example/dir/other");
    CHECK(http::resolve_location(b, "../up") == "http://a.example/up");
    CHECK(http::resolve_location(b, "?only=query") == "http://a.example/dir/page?only=query");
}

// Found by fetch_url: "#frag" resolved to the base's folder ("http://a.example/dir/#frag").
TEST_CASE("fetch http: a Location of only a fragment is the URL itself", "[fetch]") {
    const auto b = parts("http://a.example/dir/page?q=1");
    CHECK(http::resolve_location(b, "#frag") == "http://a.example/dir/page?q=1");
    CHECK(http::resolve_location(b, "#") == "http://a.example/dir/page?q=1");
    CHECK(http::resolve_location(b, "?x=2#frag") == "http://a.example/dir/page?x=2");
}

// Found by fetch_url: dot segments were removed from the query too ("/s?q=a/../b" became "/b").
TEST_CASE("fetch http: dot segments are removed from a Location's path only", "[fetch]") {
    const auto b = parts("http://a.example/dir/page");
    CHECK(http::resolve_location(b, "/s?q=a/../b") == "http://a.example/s?q=a/../b");
    CHECK(http::resolve_location(b, "s/./t?q=./x/..#f/..") == "http://a.example/dir/s/t?q=./x/..");
    CHECK(http::resolve_location(b, "../s?../..") == "http://a.example/s?../..");
}
