// http.cpp — taskport-fetch's URLs and response parsing (see http.hpp).
#include "http.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace samples::http {

// ---- URLs --------------------------------------------------------------------------------

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

std::optional<std::string> parse_url(const std::string& url, url_parts& u) {
    // http-parser, built not strict, lets a tab and a form feed through in a path or query:
    // the request line would carry them. No blank or control character is part of a URL.
    const bool blank_or_control = std::any_of(url.begin(), url.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) == 0x7f;
    });
    http_parser_url p;
    http_parser_url_init(&p);
    if (blank_or_control || url.size() > 65535 || http_parser_parse_url(url.data(), url.size(), 0, &p) != 0)
        return "not a valid URL";
    auto field = [&](int f) -> std::string_view {
        if (!(p.field_set & (1u << f))) return {};
        return std::string_view(url).substr(p.field_data[f].off, p.field_data[f].len);
    };
    const std::string_view scheme = field(UF_SCHEMA);
    if (scheme.empty()) return "not an absolute URL";
    if (iequals(scheme, "https"))
        u.tls = true;
    else if (iequals(scheme, "http"))
        u.tls = false;
    else
        return "unsupported scheme '" + std::string(scheme) + "' (only http:// and https:// are supported)";
    u.host = std::string(field(UF_HOST));
    if (u.host.empty()) return "no host in URL";
    // A host in brackets is an IPv6 address (RFC 3986 3.2.2); http-parser takes any hex digits
    // there ("[abc]"), which would then be looked up as a name.
    const bool bracketed = p.field_data[UF_HOST].off > 0 && url[p.field_data[UF_HOST].off - 1] == '[';
    if (bracketed && u.host.find(':') == std::string::npos) return "not a valid URL";
    u.port = (p.field_set & (1u << UF_PORT)) ? p.port : u.default_port();
    if (u.port == 0) return "port 0 in URL";
    u.path = std::string(field(UF_PATH));
    if (u.path.empty()) u.path = "/";
    u.target = u.path;
    if (p.field_set & (1u << UF_QUERY)) u.target += "?" + std::string(field(UF_QUERY));
    const std::string host = bracketed ? "[" + u.host + "]" : u.host;
    u.host_header = u.port == u.default_port() ? host : host + ":" + std::to_string(u.port);
    u.key = host + ":" + std::to_string(u.port);
    return std::nullopt;
}

std::string remove_dot_segments(std::string_view in) {
    std::string out;
    while (!in.empty()) {
        if (in.starts_with("../")) in.remove_prefix(3);
        else if (in.starts_with("./")) in.remove_prefix(2);
        else if (in.starts_with("/./")) in.remove_prefix(2);
        else if (in == "/.") in = "/";
        else if (in.starts_with("/../") || in == "/..") {
            in = in.size() == 3 ? std::string_view("/") : in.substr(3);
            const std::size_t cut = out.rfind('/');
            out.resize(cut == std::string::npos ? 0 : cut);
        } else if (in == "." || in == "..") {
            break;
        } else {
            const std::size_t next = in.find('/', 1);
            const std::size_t n = next == std::string_view::npos ? in.size() : next;
            out += in.substr(0, n);
            in.remove_prefix(n);
        }
    }
    return out;
}

std::string resolve_location(const url_parts& b, const std::string& loc) {
    const std::size_t colon = loc.find(':');
    const std::size_t stop = loc.find_first_of("/?#");
    if (colon != std::string::npos && (stop == std::string::npos || colon < stop)) return loc;  // has a scheme
    if (loc.starts_with("//")) return std::string(b.scheme()) + ":" + loc;
    // A relative reference: path, then "?query", then "#fragment" (never sent: dropped). Dot
    // segments are removed from the path alone; the query is the server's, byte for byte.
    const std::string origin = std::string(b.scheme()) + "://" + b.host_header;
    const std::string_view ref = std::string_view(loc).substr(0, loc.find('#'));
    const std::size_t q = ref.find('?');
    const std::string_view path = ref.substr(0, q);
    const std::string query(q == std::string_view::npos ? std::string_view() : ref.substr(q));  // with its '?'
    if (path.empty()) return origin + (q == std::string_view::npos ? b.target : b.path + query);  // "#f", "?q"
    if (path.starts_with('/')) return origin + remove_dot_segments(path) + query;
    return origin + remove_dot_segments(b.path.substr(0, b.path.rfind('/') + 1) + std::string(path)) + query;  // beside the base
}

std::string name_from_url(const std::string& url) {
    url_parts u;
    std::string seg;
    if (!parse_url(url, u)) {
        const std::size_t slash = u.path.rfind('/');
        seg = u.path.substr(slash == std::string::npos ? 0 : slash + 1);
    }
    std::string name;
    for (char c : seg) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::strchr("._-~+=,%", c) != nullptr;
        name += ok ? c : '_';
    }
    if (name.size() > 200) name.resize(200);
    if (name.empty() || name == "." || name == "..") name = "index.html";
    return name;
}

std::string request_text(const url_parts& u, const std::string& extra) {
    return "GET " + u.target + " HTTP/1.1\r\nHost: " + u.host_header +
           "\r\nUser-Agent: taskport-fetch/0.1\r\nAccept: */*\r\nConnection: keep-alive\r\n" + extra + "\r\n";
}

std::string range_headers(std::uint64_t n, const std::string& validator) {
    std::string h = "Range: bytes=" + std::to_string(n) + "-\r\n";
    // A validator with a CR or LF (from a damaged sidecar file) would inject a header: left out.
    if (!validator.empty() && validator.find_first_of("\r\n") == std::string::npos)
        h += "If-Range: " + validator + "\r\n";
    return h;
}

static std::optional<std::uint64_t> parse_u64(std::string_view& v) {
    std::uint64_t x = 0;
    std::size_t i = 0;
    for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
        if (x > (UINT64_MAX - 9) / 10) return std::nullopt;
        x = x * 10 + static_cast<unsigned>(v[i] - '0');
    }
    if (i == 0) return std::nullopt;
    v.remove_prefix(i);
    return x;
}

std::optional<content_range> parse_content_range(std::string_view v) {
    content_range r;
    if (!v.starts_with("bytes ")) return std::nullopt;
    v.remove_prefix(6);
    if (v.starts_with("*/")) {
        v.remove_prefix(2);
        r.unsatisfied = true;
        r.total = parse_u64(v);
        if (!r.total || !v.empty()) return std::nullopt;
        return r;
    }
    auto first = parse_u64(v);
    if (!first || !v.starts_with('-')) return std::nullopt;
    v.remove_prefix(1);
    auto last = parse_u64(v);
    if (!last || !v.starts_with('/') || *last < *first) return std::nullopt;
    v.remove_prefix(1);
    r.first = *first;
    r.last = *last;
    if (v == "*") return r;
    r.total = parse_u64(v);
    if (!r.total || !v.empty() || *r.total <= r.last) return std::nullopt;
    return r;
}

// ---- responses ---------------------------------------------------------------------------

void response::reset() {
    http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
    field_.clear();
    value_.clear();
    location_.clear();
    etag_.clear();
    last_modified_.clear();
    content_range_.clear();
    body_.clear();
    error_.clear();
    in_value_ = headers_done_ = complete_ = keep_alive_ = extra_ = false;
}

std::size_t response::feed(const char* data, std::size_t n) {
    const std::size_t used = http_parser_execute(&parser_, &settings(), data, n);
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) return used;  // complete: paused by on_message_complete
    if (!error_.empty()) throw std::runtime_error(error_);  // a callback refused the response
    if (err != HPE_OK) throw std::runtime_error(std::string("malformed response: ") + http_errno_description(err));
    if (parser_.upgrade) throw std::runtime_error("malformed response: unexpected protocol upgrade");
    return used;
}

void response::feed_eof() {
    http_parser_execute(&parser_, &settings(), nullptr, 0);
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err != HPE_OK && err != HPE_PAUSED) throw std::runtime_error("connection closed before the response was complete");
    if (!complete_) throw std::runtime_error("connection closed before the response was complete");
}

void body_buffer::append(const char* at, std::size_t n) {
    if (n == 0) return;
    if (holds(at, n)) {  // read in place: already in the free space after the body
        if (size_ == 0) {
            adopt(at, n);
        } else if (at != end()) {
            std::memmove(end(), at, n);  // a later chunk after its framing: moved down (at > end())
            size_ += n;
        } else {
            size_ += n;
        }
        return;
    }
    std::memcpy(room(n).data(), at, n);
    size_ += n;
}

std::span<char> body_buffer::room(std::size_t want) {
    if (cap_ - off_ - size_ >= want) return {end(), want};
    if (off_ > 0 && cap_ - size_ >= want && size_ <= off_) {  // compact: the body moves to the start
        std::memcpy(base_.get(), data(), size_);
        off_ = 0;
        return {end(), want};
    }
    std::size_t cap = std::max<std::size_t>(cap_ * 2, 4096);
    while (cap < size_ + want) cap *= 2;
    std::unique_ptr<char[]> b(new char[cap]);  // uninitialised on purpose: it is read into
    if (size_) std::memcpy(b.get(), data(), size_);
    base_ = std::move(b);
    cap_ = cap;
    off_ = 0;
    return {end(), want};
}

std::size_t response::receive_in_place(std::size_t n) {
    if (n == 0) {
        feed_eof();
        return 0;
    }
    const char* at = body_.end();  // where room() said: the parser's on_body finds its bytes there
    return receive(at, n);
}

std::size_t response::receive(const char* data, std::size_t n) {
    if (n == 0) {
        feed_eof();
        return 0;
    }
    const std::size_t used = feed(data, n);
    if (complete_ && used < n) extra_ = true;  // not ours: the connection goes
    return used;
}

const http_parser_settings& response::settings() {
    static const http_parser_settings s = [] {
        http_parser_settings st;
        http_parser_settings_init(&st);
        st.on_header_field = &on_header_field;
        st.on_header_value = &on_header_value;
        st.on_headers_complete = &on_headers_complete;
        st.on_body = &on_body;
        st.on_message_complete = &on_message_complete;
        return st;
    }();
    return s;
}

// Header names and values may arrive in pieces; a name piece after a value starts a new header.
int response::on_header_field(http_parser* p, const char* at, std::size_t n) {
    response& r = self(p);
    if (r.in_value_) {
        r.end_header();
        r.field_.clear();
    }
    r.in_value_ = false;
    r.field_.append(at, n);
    return 0;
}

int response::on_header_value(http_parser* p, const char* at, std::size_t n) {
    response& r = self(p);
    if (!r.in_value_) r.value_.clear();
    r.in_value_ = true;
    r.value_.append(at, n);
    return 0;
}

// An interim response (1xx other than 101 Switching Protocols: 100 Continue, 103 Early Hints...)
// comes before the answer and is not it (RFC 9110 15.2): it has no body, and what it said
// (a Location) is forgotten when it ends.
static bool interim(const http_parser* p) { return p->status_code / 100 == 1 && p->status_code != 101; }

int response::on_headers_complete(http_parser* p) {
    response& r = self(p);
    if (r.in_value_) r.end_header();
    if (p->status_code < 100) {  // http-parser takes 1 or 2 digits; RFC 9112 4: 3 digits
        r.error_ = "malformed response: status code " + std::to_string(p->status_code) + " has fewer than 3 digits";
        return -1;  // stops the parser: HPE_CB_headers_complete
    }
    if (interim(p)) return 1;  // no body, whatever it says
    r.headers_done_ = true;
    return 0;
}

int response::on_body(http_parser* p, const char* at, std::size_t n) {
    self(p).body_.append(at, n);
    return 0;
}

int response::on_message_complete(http_parser* p) {
    response& r = self(p);
    if (interim(p)) {  // the answer follows: parse on
        r.field_.clear();
        r.value_.clear();
        r.location_.clear();
        r.etag_.clear();
        r.last_modified_.clear();
        r.content_range_.clear();
        r.in_value_ = false;
        return 0;
    }
    r.complete_ = true;
    r.keep_alive_ = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);  // stop here: bytes after this response are not ours
    return 0;
}

void response::end_header() {
    if (iequals(field_, "location")) location_ = value_;
    else if (iequals(field_, "etag")) etag_ = value_;
    else if (iequals(field_, "last-modified")) last_modified_ = value_;
    else if (iequals(field_, "content-range")) content_range_ = value_;
}

outcome after_response(const url_parts& u, const response& r, unsigned& redirects, unsigned max_redirects) {
    const unsigned status = r.status();
    if (status / 100 == 2) return {};
    const bool redirect = status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    if (redirect && !r.location().empty()) {
        if (++redirects > max_redirects)
            return {outcome::fail, {}, "too many redirects (more than " + std::to_string(max_redirects) + ")", true};
        return {outcome::redirect, resolve_location(u, r.location()), {}, false};
    }
    return {outcome::fail, {},
            "HTTP " + std::to_string(status) + " " + http_status_str(static_cast<http_status>(status)),
            status / 100 == 4};
}

}  // namespace samples::http
