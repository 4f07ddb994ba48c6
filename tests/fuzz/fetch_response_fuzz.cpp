// fetch_response_fuzz.cpp — libFuzzer target for taskport-fetch's HTTP response handling
// (samples/fetch/http.hpp): the input is the whole byte stream a server sends on a connection,
// status lines, headers, Content-Length / chunked / until-close bodies, redirects.
//
// It runs the tool's own steps: response::receive for each read (a read of 0 bytes is the
// server's close, at the end of the stream), then after_response; a redirect is resolved
// against the URL that answered and parsed as the next URL, and the bytes after the response
// (a server that answers ahead) are the next response, as far as the chain goes (5 redirects).
// Each read is also parsed in place (body().room() + receive_in_place, the tool's read path).
// Properties:
//   - the stream read whole, one byte at a time, and split in two at every byte boundary (at
//     8 boundaries drawn from the input when it is longer than 64 bytes) gives the same chain: the same
//     statuses, bodies, Location headers, keep-alive decisions, errors and outcomes, with each
//     response ending at the same byte;
//   - a read that does not complete the response uses all of its bytes (none dropped silently);
//     extra() is set exactly when a read held bytes after the response;
//   - a complete response has its headers; 2xx is done, a redirect only from 301/302/303/307/308
//     with a Location, never more than 5 followed; an interim 1xx response is not the answer.
#include "http.hpp"

#include "fuzz_check.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace http = samples::http;

namespace {

constexpr unsigned max_redirects = 5;
const std::string base_url = "http://example.com/dir/page?q=1";

// One response of the chain, as the tool would see it.
struct step {
    bool error = false;
    std::string what;  // the error's message
    unsigned status = 0;
    bool keep_alive = false;
    std::string location;
    std::string body;
    std::size_t end = 0;  // where in the stream the response ended
    http::outcome::kind_t kind = http::outcome::done;
    std::string next_url, reason;
    bool permanent = false;
    bool operator==(const step&) const = default;
};

// Reads the stream in pieces of at most `piece` bytes that never cross `split`.
// in_place: each read goes into body().room() and is parsed there (receive_in_place), as the
// tool reads; the body is taken only every 3rd read (the tool lets it gather), else every read.
std::vector<step> run_chain(std::string_view stream, std::size_t split, std::size_t piece, bool in_place = false) {
    std::vector<step> chain;
    http::url_parts u;
    CHECK_PROP(!http::parse_url(base_url, u), base_url);
    unsigned redirects = 0;
    std::size_t pos = 0;
    for (;;) {
        step s;
        http::response resp;
        unsigned reads = 0;
        try {
            while (!resp.complete()) {
                if (pos == stream.size()) {  // the server closed the connection
                    CHECK_PROP(in_place ? resp.receive_in_place(0) == 0 : resp.receive(nullptr, 0) == 0, stream);
                    s.body += resp.body();  // what gathered until the close (in place: not taken yet)
                    resp.body().clear();
                    break;
                }
                std::size_t len = std::min(piece, stream.size() - pos);
                if (pos < split) len = std::min(len, split - pos);
                std::size_t used;
                if (in_place) {
                    std::span<char> room = resp.body().room(len);
                    CHECK_PROP(room.size() >= len, stream);
                    std::memcpy(room.data(), stream.data() + pos, len);
                    used = resp.receive_in_place(len);
                } else {
                    used = resp.receive(stream.data() + pos, len);
                }
                CHECK_PROP(used <= len, stream);
                CHECK_PROP(resp.complete() || used == len, stream);  // nothing dropped
                CHECK_PROP(resp.extra() == (resp.complete() && used < len), stream);
                pos += used;
                if (!in_place || ++reads % 3 == 0 || resp.complete()) {
                    s.body += resp.body();
                    resp.body().clear();
                }
            }
        } catch (const std::runtime_error& e) {
            s.error = true;
            // A failed response's body is thrown away (with its temporary file), and how much
            // of it came out before the error depends on the reads (http-parser hands body bytes
            // over at the end of each read): only the error is compared. s.end stays 0 too.
            s.what = e.what();
            s.body.clear();
            chain.push_back(std::move(s));
            return chain;
        }
        CHECK_PROP(resp.complete() && resp.headers_done(), stream);
        s.status = resp.status();
        s.keep_alive = resp.keep_alive();
        s.location = resp.location();
        s.end = pos;
        // An interim response (100 Continue, 103 Early Hints) is never the answer.
        CHECK_PROP(s.status >= 200 || s.status == 101, stream);
        const unsigned before = redirects;
        const http::outcome o = http::after_response(u, resp, redirects, max_redirects);
        s.kind = o.kind;
        s.next_url = o.url;
        s.reason = o.reason;
        s.permanent = o.permanent;
        const bool redirect_status = s.status == 301 || s.status == 302 || s.status == 303 || s.status == 307 || s.status == 308;
        CHECK_PROP((o.kind == http::outcome::done) == (s.status / 100 == 2), stream);
        if (o.kind == http::outcome::redirect) {
            CHECK_PROP(redirect_status && !s.location.empty(), stream);
            CHECK_PROP(redirects == before + 1 && redirects <= max_redirects, stream);
        }
        if (o.kind == http::outcome::fail) CHECK_PROP(!o.reason.empty(), stream);
        chain.push_back(std::move(s));
        if (o.kind != http::outcome::redirect) return chain;
        http::url_parts next;
        if (http::parse_url(o.url, next)) return chain;  // a bad Location: the URL's failure
        u = next;
    }
}

void check_same(const std::vector<step>& a, const std::vector<step>& b, std::string_view stream) {
    CHECK_PROP(a.size() == b.size(), stream);
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK_PROP(a[i].error == b[i].error, stream);
        CHECK_PROP(a[i].what == b[i].what, stream);
        CHECK_PROP(a[i].status == b[i].status, stream);
        CHECK_PROP(a[i].body == b[i].body, stream);
        CHECK_PROP(a[i].location == b[i].location, stream);
        CHECK_PROP(a[i].keep_alive == b[i].keep_alive, stream);
        CHECK_PROP(a[i].end == b[i].end, stream);
        CHECK_PROP(a[i] == b[i], stream);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view stream(reinterpret_cast<const char*>(data), size);
    constexpr std::size_t all = std::numeric_limits<std::size_t>::max();

    const std::vector<step> whole = run_chain(stream, all, all);
    check_same(whole, run_chain(stream, all, 1), stream);
    check_same(whole, run_chain(stream, all, all, true), stream);  // the tool's way: parsed in place
    check_same(whole, run_chain(stream, all, 7, true), stream);
    if (size <= 64) {
        for (std::size_t k = 1; k < size; ++k) check_same(whole, run_chain(stream, k, all), stream);
    } else {
        // 8 boundaries drawn from the input itself (so a finding reproduces): over the run's
        // millions of inputs every boundary of every shape of stream comes up.
        std::uint64_t h = 1469598103934665603ull;  // FNV-1a
        for (unsigned char c : stream) h = (h ^ c) * 1099511628211ull;
        for (int j = 0; j < 8; ++j) {
            h = h * 6364136223846793005ull + 1442695040888963407ull;
            check_same(whole, run_chain(stream, 1 + (h >> 33) % (size - 1), all), stream);
        }
    }
    return 0;
}
