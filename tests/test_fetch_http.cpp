// test_fetch_http.cpp — taskport-fetch's URL and response handling (samples/fetch/http.hpp), the
// code tests/fuzz/fetch_url and fetch_response fuzz: what the fuzzers found stays fixed here.
#include <catch2/catch.hpp>

#include "http.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <optional>
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

// Found by fetch_url: http-parser (not strict) lets a tab and a form feed through in a URL's
// path, so "http://h/a\tb" went out as the request line "GET /a\tb HTTP/1.1".
TEST_CASE("fetch http: a URL with a blank or a control character is not a valid URL", "[fetch]") {
    const std::vector<std::string> bads = {"http://h/a\tb", "http://h/a\fb", "http://h/a b", "http://h/?q=\tx",
                                           std::string("http://h/a\0b", 12), "http://h/a\x7f"};
    for (const std::string& bad : bads) {
        http::url_parts u;
        const auto why = http::parse_url(bad, u);
        INFO("URL: " << bad);
        REQUIRE(why);
        CHECK(*why == "not a valid URL");
    }
    // A redirect to such a URL fails on that URL, with the reason.
    const auto b = parts("http://a.example/dir/page");
    http::url_parts u;
    CHECK(http::parse_url(http::resolve_location(b, "/x\ty"), u) == std::optional<std::string>("not a valid URL"));
    // Bytes above ASCII (a UTF-8 path) still pass, as they did.
    CHECK(parts("http://h/caf\xc3\xa9").target == "/caf\xc3\xa9");
}

// Found by fetch_url: http-parser takes any hex digits in brackets for an IPv6 address, and the
// brackets were dropped, so "http://[abc]/p" was host "abc" (looked up by name, "Host: abc").
TEST_CASE("fetch http: a host in brackets is an IPv6 address", "[fetch]") {
    for (const std::string bad : {"http://[abc]/p", "http://[fe81%25l0]/p", "http://[1]:81/", "http://[1.2.3.4]/"}) {
        http::url_parts u;
        INFO("URL: " << bad);
        CHECK(http::parse_url(bad, u) == std::optional<std::string>("not a valid URL"));
    }
    const auto v6 = parts("http://[::1]:8080/x");
    CHECK(v6.host == "::1");
    CHECK(v6.host_header == "[::1]:8080");
    CHECK(v6.key == "[::1]:8080");
    CHECK(parts("http://[fe80::1%25lo]/p").host_header == "[fe80::1%25lo]");
}

namespace {

struct parsed {
    unsigned status = 0;
    std::string body, location;
    bool extra = false;
};

// Feeds a whole stream as reads of at most `piece` bytes, as the tool's read loop does.
parsed parse_stream(const std::string& s, std::size_t piece) {
    http::response r;
    parsed p;
    std::size_t pos = 0;
    while (!r.complete()) {
        const std::size_t n = std::min(piece, s.size() - pos);
        pos += r.receive(s.data() + pos, n);
        p.body += r.body();
        r.body().clear();
    }
    p.status = r.status();
    p.location = r.location();
    p.extra = r.extra();
    return p;
}

}  // namespace

// Found by fetch_response: an interim 1xx response was taken for the answer, so a server that
// sent "100 Continue" or "103 Early Hints" first failed the URL with "HTTP 100 Continue".
TEST_CASE("fetch http: interim 1xx responses before the answer are skipped", "[fetch]") {
    const std::string streams[] = {
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nLocation: /not-this\r\n\r\n"
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        // A 1xx has no body even if it says it has.
        "HTTP/1.1 102 Processing\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    };
    for (const std::string& s : streams) {
        for (std::size_t piece : {s.size(), std::size_t{1}, std::size_t{7}}) {
            INFO("stream: " << s << "\nread size: " << piece);
            const parsed p = parse_stream(s, piece);
            CHECK(p.status == 200);
            CHECK(p.body == "ok");
            CHECK(p.location.empty());
            CHECK_FALSE(p.extra);
        }
    }
}

// Found by fetch_response: http-parser takes a status code of one or two digits ("HTTP/1.1 2"),
// which then failed the URL as "HTTP 2 <unknown>" instead of a malformed response.
TEST_CASE("fetch http: a status code of fewer than 3 digits is a malformed response", "[fetch]") {
    for (const std::string s : {"HTTP/1.1 2 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 99 X\r\nContent-Length: 0\r\n\r\n",
                                "HTTP/1.1 20\r\n\r\n"}) {
        INFO("stream: " << s);
        http::response r;
        CHECK_THROWS_WITH(r.receive(s.data(), s.size()), Catch::Matchers::StartsWith("malformed response: status code"));
    }
    http::response ok;
    const std::string s = "HTTP/1.1 599 Custom\r\nContent-Length: 0\r\n\r\n";
    ok.receive(s.data(), s.size());
    CHECK(ok.complete());
    CHECK(ok.status() == 599);
}

// taskport-fetch reads the connection straight into the body's buffer (body().room(), then
// receive_in_place) so that body bytes are never copied in user space: what it parses must be
// exactly what receive() of the same bytes gives, for every way the stream can be split, with
// the body taken at every read or left to gather over several reads, for a Content-Length body
// (no copy at all), a chunked one (the pieces moved together over the framing), and a response
// followed by bytes that are not its own.
TEST_CASE("fetch http: parsing in place equals parsing a copy", "[fetch]") {
    std::string big;
    for (int i = 0; i < 5000; ++i) big += static_cast<char>('a' + i % 26);
    const std::string streams[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + big,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n7d0\r\n" + big.substr(0, 2000) +
            "\r\n0\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nokayHTTP/1.1 200 OK\r\n",
        "HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 3\r\n\r\nabc",
    };
    for (const std::string& s : streams) {
        for (std::size_t piece : {s.size(), std::size_t{1}, std::size_t{7}, std::size_t{100}, std::size_t{4096}}) {
            const parsed want = parse_stream(s, piece);  // the same reads, copied
            for (std::size_t take_at : {std::size_t{0}, std::size_t{1000}, std::size_t{1} << 20}) {
                INFO("stream: " << s.substr(0, 80) << "\nread size: " << piece << "\ntake at: " << take_at);
                http::response r;
                std::string body;
                std::size_t pos = 0;
                while (!r.complete() && pos < s.size()) {
                    const std::size_t n = std::min(piece, s.size() - pos);
                    std::span<char> room = r.body().room(n);
                    REQUIRE(room.size() >= n);
                    std::memcpy(room.data(), s.data() + pos, n);  // what a read into it would do
                    pos += r.receive_in_place(n);
                    if (r.body().size() >= take_at || r.complete()) {
                        body += r.body();
                        r.body().clear();
                    }
                }
                CHECK(r.complete());
                CHECK(r.status() == want.status);
                CHECK(body == want.body);
                CHECK(r.location() == want.location);
                CHECK(r.extra() == want.extra);
            }
        }
    }
}
