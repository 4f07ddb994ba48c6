// http.hpp — taskport-fetch's HTTP/1.1 client logic without any I/O: URLs (parsing, redirect
// targets, the file name a URL is saved under), the request it sends, and the response parser
// (Debian's http-parser) fed the bytes as they arrive, with what to do once a response is whole.
//
// fetch.cpp does the I/O around these; tests/fuzz/ feeds the very same code the byte streams a
// server could send, whole and split at every byte boundary. Invariant: nothing here depends on
// how the bytes were split into reads, and every malformed input ends in an error with a reason
// (a std::runtime_error or a returned message), never in undefined behaviour.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace samples::http {

// ---- URLs --------------------------------------------------------------------------------

struct url_parts {
    bool tls = false;         // https://
    std::string host;         // without brackets
    std::uint16_t port = 80;  // 443 by default for https://
    std::string target;       // path and query: what goes on the request line
    std::string path;         // path only
    std::string key;          // "host:port": which connections may serve it (with tls)
    std::string host_header;  // "host" or "host:port" (port not the scheme's), IPv6 in brackets

    const char* scheme() const noexcept { return tls ? "https" : "http"; }
    std::uint16_t default_port() const noexcept { return tls ? 443 : 80; }
};

bool iequals(std::string_view a, std::string_view b);

// Fills u from an absolute http:// or https:// URL; otherwise returns why not (a URL holding a blank or a
// control character is not valid).
std::optional<std::string> parse_url(const std::string& url, url_parts& u);

// RFC 3986 5.2.4: "/a/b/../c/./d" -> "/a/c/d".
std::string remove_dot_segments(std::string_view in);

// A Location header's target, resolved against the URL that answered with it (RFC 3986 5.2).
std::string resolve_location(const url_parts& base, const std::string& loc);

// The file name a URL's body is saved under: the URL's last path segment (query dropped;
// characters other than letters, digits and ._-~+=,% become '_'; at most 200 characters;
// "index.html" when empty, "." or ".."). Never holds a '/'.
std::string name_from_url(const std::string& url);

// The GET request for u, keeping the connection alive; extra: more header lines, each ending
// in CRLF (a Range and If-Range for --continue).
std::string request_text(const url_parts& u, const std::string& extra = {});

// "Range: bytes=N-" (and "If-Range: V" when validator is not empty) for resuming at offset n.
std::string range_headers(std::uint64_t n, const std::string& validator);

// A Content-Range "bytes FIRST-LAST/TOTAL" (TOTAL may be '*'), or "bytes */TOTAL" (416).
struct content_range {
    bool unsatisfied = false;  // "bytes */TOTAL"
    std::uint64_t first = 0, last = 0;
    std::optional<std::uint64_t> total;
};
std::optional<content_range> parse_content_range(std::string_view v);

// ---- responses ---------------------------------------------------------------------------

// The body bytes parsed and not yet taken: a growable byte buffer that the caller may also read
// the connection's bytes into directly (room(), then response::receive_in_place), so that body
// bytes are never copied in user space: the parser leaves them where they arrived and only the
// headers before them (and a chunked body's framing) are skipped. Invariant: data()..data()+size()
// are the body bytes in order; room() is free space right after them.
class body_buffer {
public:
    const char* data() const noexcept { return base_.get() + off_; }
    char* data() noexcept { return base_.get() + off_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    char* begin() noexcept { return data(); }
    char* end() noexcept { return data() + size_; }
    const char* begin() const noexcept { return data(); }
    const char* end() const noexcept { return data() + size_; }
    operator std::string_view() const noexcept { return {data(), size_}; }
    void clear() noexcept { off_ = size_ = 0; }
    void swap(body_buffer& o) noexcept {
        base_.swap(o.base_);
        std::swap(cap_, o.cap_);
        std::swap(off_, o.off_);
        std::swap(size_, o.size_);
    }
    // Appends n bytes; `at` may lie in this buffer's free space (a byte read in place).
    void append(const char* at, std::size_t n);
    // At least `want` writable bytes right after the body (grows or compacts; never shrinks).
    std::span<char> room(std::size_t want);
    // The body becomes [at, at + n): `at` lies in the free space that room() gave, the body is
    // empty (zero-copy: the body starts where it arrived, after the headers).
    void adopt(const char* at, std::size_t n) noexcept {
        off_ = static_cast<std::size_t>(at - base_.get());
        size_ = n;
    }
    // Whether [at, at + n) lies in this buffer's storage.
    bool holds(const char* at, std::size_t n) const noexcept {
        return base_ && at >= base_.get() && at + n <= base_.get() + cap_;
    }

private:
    std::unique_ptr<char[]> base_;  // not initialised: bytes beyond the body are garbage
    std::size_t cap_ = 0, off_ = 0, size_ = 0;
};

// One response being parsed. The parser's callbacks only record; the caller does the I/O
// (writing the body) between calls to receive(). Interim 1xx responses before it (100
// Continue, 103 Early Hints) are skipped: complete() means the final response.
class response {
public:
    response() { reset(); }
    response(const response&) = delete;  // the parser points back at its response
    response& operator=(const response&) = delete;

    void reset();

    // Parses n bytes. Returns how many belong to this response (the rest would be a response
    // nobody asked for), or throws std::runtime_error for a malformed one.
    std::size_t feed(const char* data, std::size_t n);
    // The peer closed the connection: lets a body that runs until the close complete; throws
    // std::runtime_error when the response is not complete even so.
    void feed_eof();
    // One read's worth: n > 0 bytes (feed), or the peer's close (n == 0: feed_eof). Returns how
    // many bytes belong to this response; bytes after its end set extra(). Throws as feed and
    // feed_eof do.
    std::size_t receive(const char* data, std::size_t n);
    // As receive, for the n bytes just read into body().room() (n == 0: the peer's close): body
    // bytes stay where they are (no copy, except a chunked body's pieces, moved together).
    std::size_t receive_in_place(std::size_t n);

    bool headers_done() const noexcept { return headers_done_; }
    bool complete() const noexcept { return complete_; }
    bool extra() const noexcept { return extra_; }  // bytes followed the response
    unsigned status() const noexcept { return parser_.status_code; }
    bool keep_alive() const noexcept { return keep_alive_; }
    const std::string& location() const noexcept { return location_; }
    const std::string& etag() const noexcept { return etag_; }
    const std::string& last_modified() const noexcept { return last_modified_; }
    const std::string& content_range() const noexcept { return content_range_; }
    body_buffer& body() noexcept { return body_; }  // body bytes parsed and not yet taken

private:
    static const http_parser_settings& settings();
    static response& self(http_parser* p) { return *static_cast<response*>(p->data); }
    static int on_header_field(http_parser* p, const char* at, std::size_t n);
    static int on_header_value(http_parser* p, const char* at, std::size_t n);
    static int on_headers_complete(http_parser* p);
    static int on_body(http_parser* p, const char* at, std::size_t n);
    static int on_message_complete(http_parser* p);
    void end_header();

    http_parser parser_;
    std::string field_, value_, location_;
    body_buffer body_;
    std::string etag_, last_modified_, content_range_;
    std::string error_;  // why a callback stopped the parser (a malformed response)
    bool in_value_ = false;
    bool headers_done_ = false;
    bool complete_ = false;
    bool keep_alive_ = false;
    bool extra_ = false;
};

// What a whole response means for the URL it answered.
struct outcome {
    enum kind_t { done, redirect, fail } kind = done;
    std::string url;          // redirect: the next URL (resolved against the one that answered)
    std::string reason;       // fail: why
    bool permanent = false;   // fail: retrying cannot help (4xx, too many redirects)
};

// After a complete response to u: 2xx is done; 301, 302, 303, 307 and 308 with a Location are
// followed while redirects (counted here) stay within max_redirects; anything else fails.
outcome after_response(const url_parts& u, const response& r, unsigned& redirects, unsigned max_redirects);

}  // namespace samples::http
