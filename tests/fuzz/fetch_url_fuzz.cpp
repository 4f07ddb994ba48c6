// fetch_url_fuzz.cpp — libFuzzer target for taskport-fetch's URL handling (samples/fetch/http.hpp):
// parse_url, request_text, name_from_url, remove_dot_segments and resolve_location.
//
// Input: "URL" or "URL\nLOCATION". Properties:
//   - an accepted URL has a host, a port other than 0, a path starting with '/'; its request is
//     one request line and headers, nothing a server could read as more (no whitespace or
//     control character in the target or the Host header); printed again as
//     "http://" + host_header + target it parses to the same parts;
//   - name_from_url gives a name that is safe in a folder: 1 to 200 characters, only
//     letters, digits and ._-~+=,%, never "." or "..";
//   - remove_dot_segments of an absolute path is absolute, has no "." or ".." segment, and is
//     a fixed point;
//   - resolve_location: an absolute Location stands as it is; a relative one keeps the base's
//     origin, its query is the Location's query untouched, and "#fragment" alone leads back to
//     the base's own target.
#include "http.hpp"

#include "fuzz_check.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace http = samples::http;

namespace {

bool safe_target_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;  // no space, no control character (bytes >= 0x80 pass through)
}

void check_parts(const std::string& url, const http::url_parts& u) {
    CHECK_PROP(!u.host.empty(), url);
    CHECK_PROP(u.port != 0, url);
    CHECK_PROP(u.path.starts_with('/'), url);
    CHECK_PROP(u.target.starts_with(u.path), url);
    for (char c : u.target) CHECK_PROP(safe_target_char(c), url);
    for (char c : u.host_header) CHECK_PROP(safe_target_char(c), url);
    const std::string req = http::request_text(u);
    CHECK_PROP(req.starts_with("GET " + u.target + " HTTP/1.1\r\nHost: " + u.host_header + "\r\n"), url);
    // Exactly the request line, three headers and the blank line: 5 CRLFs, no stray CR or LF.
    std::size_t crlf = 0, cr = 0, lf = 0;
    for (std::size_t i = 0; i < req.size(); ++i) {
        cr += req[i] == '\r';
        lf += req[i] == '\n';
        crlf += req[i] == '\r' && i + 1 < req.size() && req[i + 1] == '\n';
    }
    CHECK_PROP(crlf == 6 && cr == 6 && lf == 6, url);
    const bool v6 = u.host.find(':') != std::string::npos;
    CHECK_PROP(u.key == (v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port), url);

    // Printed back, it parses to the same parts.
    http::url_parts again;
    const std::string printed = std::string(u.scheme()) + "://" + u.host_header + u.target;
    CHECK_PROP(!http::parse_url(printed, again), printed);
    CHECK_PROP(again.host == u.host && again.port == u.port && again.target == u.target && again.path == u.path &&
                   again.tls == u.tls && again.key == u.key && again.host_header == u.host_header,
               printed);
}

void check_name(const std::string& url) {
    const std::string name = http::name_from_url(url);
    CHECK_PROP(!name.empty() && name.size() <= 200, url);
    CHECK_PROP(name != "." && name != "..", url);
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        (c != '\0' && std::strchr("._-~+=,%", c) != nullptr);
        CHECK_PROP(ok, url);
    }
}

void check_dot_segments(std::string_view path) {
    if (!path.starts_with('/')) return;
    const std::string out = http::remove_dot_segments(path);
    CHECK_PROP(out.starts_with('/'), path);
    std::size_t i = 0;
    while (i < out.size()) {  // every segment after a '/'
        const std::size_t next = out.find('/', i + 1);
        const std::string_view seg = std::string_view(out).substr(i + 1, (next == std::string::npos ? out.size() : next) - i - 1);
        CHECK_PROP(seg != "." && seg != "..", path);
        if (next == std::string::npos) break;
        i = next;
    }
    CHECK_PROP(http::remove_dot_segments(out) == out, path);
}

// The query of a reference: after the first '?' that comes before any '#', up to '#'.
std::optional<std::string_view> query_of(std::string_view ref) {
    const std::size_t hash = ref.find('#');
    const std::size_t q = ref.find('?');
    if (q == std::string_view::npos || (hash != std::string_view::npos && hash < q)) return std::nullopt;
    return ref.substr(q + 1, (hash == std::string_view::npos ? ref.size() : hash) - q - 1);
}

void check_location(const std::string& base, const http::url_parts& b, const std::string& loc) {
    if (loc.empty()) return;  // the tool follows no empty Location (after_response)
    const std::string r = http::resolve_location(b, loc);
    const std::size_t colon = loc.find(':');
    const std::size_t stop = loc.find_first_of("/?#");
    const bool absolute = colon != std::string::npos && (stop == std::string::npos || colon < stop);
    const std::string context = base + " + " + loc + " -> " + r;
    if (absolute) {
        CHECK_PROP(r == loc, context);
        return;
    }
    if (loc.starts_with("//")) {
        CHECK_PROP(r == std::string(b.scheme()) + ":" + loc, context);
        return;
    }
    CHECK_PROP(r.starts_with(std::string(b.scheme()) + "://" + b.host_header), context);
    http::url_parts u;
    if (http::parse_url(r, u)) return;  // rejected with a reason: nothing more to check
    check_parts(r, u);
    CHECK_PROP(u.key == b.key, context);
    if (loc.starts_with('#')) {
        CHECK_PROP(u.target == b.target, context);
        return;
    }
    const auto q = query_of(loc);
    if (q && !q->empty()) {  // (an empty query, "/p?", is dropped: parse_url keeps no empty query)
        CHECK_PROP(u.target.ends_with("?" + std::string(*q)), context);
    }
    if (!loc.starts_with('?')) {
        // The path part went through dot-segment removal, and only it.
        const std::size_t qpos = u.target.find('?');
        check_dot_segments(u.target.substr(0, qpos));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    const std::size_t nl = in.find('\n');
    const std::string url = in.substr(0, nl);

    check_name(url);
    check_dot_segments(url);
    http::url_parts u;
    if (http::parse_url(url, u)) return 0;  // rejected, with a reason
    check_parts(url, u);
    if (nl != std::string::npos) check_location(url, u, in.substr(nl + 1));
    return 0;
}
