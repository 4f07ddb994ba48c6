// taskport-fetch — many http:// and https:// downloads at once.
//
//   taskport-fetch [OPTIONS] [URL...]      (no URL: one per line from stdin; '#' starts a comment)
//
// How it runs, on taskport's public API only:
//   - --concurrency lanes (coroutines) take the URLs in turn; each request is HTTP/1.1 GET,
//     parsed with Debian's http-parser (Content-Length, chunked, or until close), following up
//     to --max-redirects redirects (301, 302, 303, 307, 308);
//   - https:// runs TLS over the same TCP connection with io::tls_stream: the server's certificate
//     is verified against the system's CA store (or only --cacert FILE) and must name the URL's
//     host (or IP address); -k/--insecure turns verification off and says so once on stderr. A
//     verification failure is not retried. A TLS close without close_notify that would end a body
//     running until the close is an error (the body may be truncated);
//   - connections are kept per scheme and host (scheme://host:port) and reused while the server keeps them alive:
//     a lane takes an idle connection to the host if there is one, else resolves the name with
//     io::resolve (once per host, then cached) and connects. A reused connection that the server
//     closed before answering is replaced once, without counting as a retry;
//   - --timeout bounds every single wait (connect, send, each read, each file write) through
//     with_timeout, so a stalled server fails the attempt and a slow but moving download does not;
//   - --max-time bounds one attempt in all (a server sending a byte a second cannot keep a URL
//     alive for ever), --max-filesize the body's size (an endless body cannot fill the disk: the
//     attempt fails, is not retried, and what arrived is removed);
//   - --report FILE writes one JSON line per URL (url, file, ok, status, bytes, seconds,
//     attempts, error) for a pipeline to act on;
//   - a failed attempt is retried --retries times, after --backoff seconds, doubling each time
//     (sleep_for). Not retried: a bad URL or one that is neither http nor https, a TLS
//     certificate verification failure, HTTP 4xx, too many redirects, a local file error. Any
//     status other than 2xx at the end of the redirects is a failure;
//   - the body goes to a hidden temporary file in --output-dir (".NAME.<pid>.<n>.part"), written with
//     io::file::write_at, and is renamed to NAME only once it is complete, so a partial body is
//     never left under the final name (the temporary file of a failed attempt is removed);
//   - -C/--continue: the temporary file an earlier run left (".NAME.*.part", the largest) is
//     resumed with "Range: bytes=N-" and If-Range (the ETag or Last-Modified saved beside it in
//     ".part.meta"); a 206 must carry a Content-Range starting at N; a 200 (range ignored, or the
//     resource changed) starts again from byte 0; 416 "bytes */N" means the file was complete.
//     With --continue a failed attempt keeps its partial file, so the retries resume it too.
//   - SIGINT (Ctrl-C) or SIGTERM (samples/common/interrupt.hpp): no URL starts after it, the ones
//     in flight are abandoned through the runtime's cancellation (the lanes are the tasks of one
//     async_scope) and their temporary files removed — with --continue they are kept instead, a
//     prefix of the body for the next run to resume; --report gets an "interrupted" line for each.
//     The summary so far is printed (and "interrupted by SIGINT: N in flight abandoned, M not
//     started" on stderr); the exit status is 128 + the signal (130, 143). A second signal exits
//     at once, with the same status, tidying nothing.
// NAME is the URL's last path segment (query dropped; characters other than letters, digits
// and ._-~+=,% become '_'; "index.html" when empty); a name used twice in one run gets ".1", ".2"... in
// input order. Every failure is reported on stderr with its URL and reason; a summary follows
// (succeeded, failed, bytes, time) on stdout; the exit status is 1 if any URL failed.
// The URL handling and the response parser are in http.hpp (no I/O there: tests/fuzz/ feeds
// them the byte streams a server could send); this file does the I/O around them.
#include <taskport/io/file.hpp>
#include <taskport/io/resolve.hpp>
#include <taskport/io/tcp.hpp>
#include <taskport/io/timer.hpp>
#include <taskport/io/tls.hpp>
#include <taskport/taskport.hpp>

#include "console.hpp"
#include "interrupt.hpp"
#include "shard.hpp"
#include "http.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <unistd.h>

namespace io = taskport::io;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* prog = "taskport-fetch";

using samples::http::url_parts;

// ---- the fetcher -------------------------------------------------------------------------

struct job {
    std::string url;
    std::string name;  // final file name in the output folder
};

// Why an attempt failed, and whether trying again could help.
struct failure {
    std::string reason;
    bool permanent = false;
};

// A connection to one host: plain TCP (http://) or TLS over it (https://).
struct connection {
    bool secure = false;
    io::tcp_stream tcp;  // http
    io::tls_stream tls;  // https (it owns its socket)
    bool truncated = false;  // the TLS peer closed without close_notify
    void close() noexcept {
        tcp.close();
        tls.close();
    }
};

struct options {
    fs::path out_dir = ".";
    std::optional<io::tls_context> tls;  // https: verification settings (--cacert, --insecure)
    bool resume = false;                 // --continue
    // --continue: for a final name, the largest temporary file an earlier run left (".NAME.*.part").
    std::unordered_map<std::string, fs::path> partials;
    std::size_t concurrency = 64;
    double timeout = 30;
    unsigned retries = 2;
    double backoff = 0.5;
    unsigned max_redirects = 5;
    double max_time = 0;              // --max-time: seconds one attempt may take in all (0: no limit)
    std::uint64_t max_filesize = 0;   // --max-filesize: bytes a body may have (0: no limit)
    std::FILE* report = nullptr;      // --report: one JSON line per URL (stdout: through the console)
    bool report_stdout = false;
};

// A body over --max-filesize: the attempt fails and is not retried.
struct too_large : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What one attempt saw, for --report.
struct attempt_info {
    unsigned status = 0;       // the last HTTP status received (0: none)
    std::uint64_t bytes = 0;   // the body's size on disk when the attempt ended
};

// s as a JSON string (quotes, backslashes and control characters escaped; other bytes as they are).
std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char ch : s) {
        const unsigned char c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

// The hidden temporary file the body of jobs[index] is written to: ".NAME.<pid>.<index>.part".
// The process id is read once (glibc does not cache getpid: one system call per file otherwise).
fs::path temp_path_of(const fs::path& out_dir, const std::string& name, std::size_t index) {
    static const std::string pid = std::to_string(::getpid());
    return out_dir / ("." + name + "." + pid + "." + std::to_string(index) + ".part");
}

// A body is written in pieces of this size (the last one smaller), read from the connection
// straight into the buffer the piece is written from; a read asks for at least min_read.
constexpr std::size_t write_chunk = 512 * 1024;
constexpr std::size_t min_read = 16 * 1024;

class fetcher {
public:
    fetcher(taskport::runtime& rt, samples::console& con, const options& o, std::vector<job>& jobs)
        : rt_(rt), con_(con), opt_(o), jobs_(jobs) {}

    // Runs every job: the lanes are the tasks of one async_scope, which the first SIGINT or
    // SIGTERM (intr) cancels: no lane starts another URL, the URLs in flight are abandoned
    // (their temporary files removed, or kept for --continue) and run() returns.
    taskport::task<void> run(bool bar, samples::interrupt& intr) {
        taskport::future<void> tick;
        if (bar) tick = rt_.spawn(ticker());
        taskport::async_scope lanes(rt_);
        intr_ = &intr;
        taskport::future<void> watch = rt_.spawn(intr.watch(lanes, prog));
        const std::size_t n = std::min(opt_.concurrency, std::max<std::size_t>(jobs_.size(), 1));
        for (std::size_t k = 0; k < n; ++k) lanes.spawn(lane());
        std::exception_ptr err;
        try {
            co_await lanes.join();
        } catch (...) {
            err = std::current_exception();
        }
        for (taskport::future<void>* f : {&tick, &watch}) {
            if (!f->valid()) continue;
            f->cancel();
            try {
                co_await std::move(*f);
            } catch (const std::system_error&) {
                // it stopped, as asked
            }
        }
        if (err) std::rethrow_exception(err);
    }

    std::uint64_t succeeded() const noexcept { return ok_.load(); }
    std::uint64_t failed() const noexcept { return failed_.load(); }
    std::uint64_t connections() const noexcept { return connects_.load(); }
    // Interrupted: URLs abandoned in flight, and URLs never started.
    std::uint64_t abandoned() const noexcept { return abandoned_.load(); }
    std::uint64_t not_started() const noexcept { return jobs_.size() - std::min(next_.load(), jobs_.size()); }

private:
    using clock = std::chrono::steady_clock;

    taskport::task<void> ticker() {
        for (;;) {
            con_.draw();
            co_await taskport::sleep_for(200ms);
        }
    }

    bool interrupted() const noexcept { return intr_ && intr_->signal() != 0; }

    taskport::task<void> lane() {
        samples::http::body_buffer spare;  // the lane's body buffer, lent to each response in turn
        for (;;) {
            if (interrupted()) co_return;  // nothing new after a signal
            const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
            if (i >= jobs_.size()) co_return;
            co_await fetch(jobs_[i], i, spare);
            con_.add_item();
        }
    }

    // One URL, with its retries.
    taskport::task<void> fetch(const job& j, std::size_t index, samples::http::body_buffer& spare) {
        failure last;
        unsigned attempts = 0;
        attempt_info info;
        const clock::time_point start = clock::now();
        bool ok = false;
        bool stopped = false;  // a signal ended it
        for (unsigned a = 0; a <= opt_.retries; ++a) {
            if (a > 0) {
                const double delay = opt_.backoff * std::ldexp(1.0, static_cast<int>(a) - 1);
                try {
                    co_await taskport::sleep_for(std::chrono::duration<double>(delay));
                } catch (const std::system_error&) {  // cancelled: only a signal cancels a lane
                }
            }
            if (interrupted()) {
                stopped = true;
                last = failure{std::string("interrupted by ") + samples::interrupt::name(intr_->signal()), true};
                break;
            }
            ++attempts;
            info = attempt_info{};
            std::optional<failure> f = co_await attempt(j, index, info, spare);
            if (!f) {
                ok = true;
                break;
            }
            last = std::move(*f);
            if (interrupted()) {  // the attempt was cut short by the signal
                stopped = true;
                last = failure{std::string("interrupted by ") + samples::interrupt::name(intr_->signal()), true};
                break;
            }
            if (last.permanent) break;
        }
        if (stopped) {
            abandoned_.fetch_add(1, std::memory_order_relaxed);
        } else if (ok) {
            ok_.fetch_add(1, std::memory_order_relaxed);
        } else {
            failed_.fetch_add(1, std::memory_order_relaxed);
            last.reason += attempts > 1 ? " (after " + std::to_string(attempts) + " attempts)" : "";
            con_.err(std::string(prog) + ": " + j.url + ": " + last.reason + "\n");
        }
        if (opt_.report) report(j, ok, info, std::chrono::duration<double>(clock::now() - start).count(), attempts,
                                ok ? std::string_view{} : std::string_view(last.reason));
    }

    // One line of --report: {"url", "file", "ok", "status", "bytes", "seconds", "attempts", "error"}.
    void report(const job& j, bool ok, const attempt_info& info, double seconds, unsigned attempts,
                std::string_view error) {
        char nums[160];
        std::snprintf(nums, sizeof nums, ",\"status\":%u,\"bytes\":%llu,\"seconds\":%.6f,\"attempts\":%u,\"error\":",
                      info.status, static_cast<unsigned long long>(info.bytes), seconds, attempts);
        const std::string line = "{\"url\":" + json_string(j.url) + ",\"file\":" + json_string(j.name) +
                                 ",\"ok\":" + (ok ? "true" : "false") + nums +
                                 (ok ? std::string("null") : json_string(error)) + "}\n";
        if (opt_.report_stdout) {
            con_.out(line);
        } else {
            std::lock_guard<std::mutex> g(report_mu_);
            std::fwrite(line.data(), 1, line.size(), opt_.report);
        }
    }

    // op, bounded by --timeout and by what is left of the attempt's --max-time (deadline).
    template <class Op>
    auto timed(Op&& op, clock::time_point deadline) {
        std::chrono::duration<double> d(opt_.timeout);
        if (deadline != clock::time_point::max())
            d = std::max(std::chrono::duration<double>::zero(), std::min<std::chrono::duration<double>>(d, deadline - clock::now()));
        return taskport::with_timeout(d, std::forward<Op>(op));
    }
    static std::string seconds_text(double secs) {
        char s[32];
        std::snprintf(s, sizeof s, "%g s", secs);
        return s;
    }
    std::string timeout_text() const { return seconds_text(opt_.timeout); }

    static std::string pool_key(const url_parts& u) { return std::string(u.scheme()) + "://" + u.key; }

    // Plaintext or TLS, the same calls (each bounded by --timeout). A TLS connection that ends
    // without close_notify reads as the end (truncated is set: the caller decides).
    taskport::task<std::size_t> read_some(connection& c, std::span<std::byte> b, clock::time_point dl) {
        if (!c.secure) co_return co_await timed(c.tcp.read_some(b), dl);
        std::size_t n = 0;
        try {
            n = co_await timed(c.tls.read_some(b), dl);
        } catch (const std::system_error& e) {
            if (e.code() != io::tls_errc::stream_truncated) throw;
            c.truncated = true;
        }
        co_return n;
    }
    taskport::task<void> write_all(connection& c, std::span<const std::byte> b, clock::time_point dl) {
        if (c.secure)
            co_await timed(c.tls.write_all(b), dl);
        else
            co_await timed(c.tcp.write_all(b), dl);
    }

    // A connected stream to u's host: an idle kept-alive one if there is one (reused = true);
    // for https:// the TLS handshake is done (certificate and host name verified unless --insecure).
    taskport::task<connection> connect(const url_parts& u, bool allow_reuse, bool& reused, std::string& step,
                                       clock::time_point dl) {
        reused = false;
        if (allow_reuse) {
            std::lock_guard<std::mutex> g(mu_);
            auto it = idle_.find(pool_key(u));
            if (it != idle_.end() && !it->second.empty()) {
                connection c = std::move(it->second.back());
                it->second.pop_back();
                reused = true;
                co_return c;
            }
        }
        connection c;
        c.secure = u.tls;
        c.tcp = co_await connect_tcp(u, step, dl);
        if (c.secure) {
            c.tls = io::tls_stream(std::move(c.tcp), *opt_.tls);
            c.tls.set_host(u.host);
            step = "TLS handshake with " + u.host;
            co_await timed(c.tls.handshake(), dl);
        }
        co_return c;
    }

    taskport::task<io::tcp_stream> connect_tcp(const url_parts& u, std::string& step, clock::time_point dl) {
        std::vector<io::endpoint> addrs;
        {
            std::lock_guard<std::mutex> g(mu_);
            auto it = resolved_.find(u.key);
            if (it != resolved_.end()) addrs = it->second;
        }
        if (addrs.empty()) {
            step = "resolve " + u.host;
            addrs = co_await timed(io::resolve(rt_, u.host, std::to_string(u.port)), dl);
            step = "connect";
            std::lock_guard<std::mutex> g(mu_);
            resolved_[u.key] = addrs;
        }
        // Every address in turn; the last one's error stands for all.
        std::exception_ptr last;
        for (const io::endpoint& ep : addrs) {
            try {
                io::tcp_stream s = co_await timed(io::tcp_stream::connect(rt_, ep), dl);
                s.set_nodelay(true);
                connects_.fetch_add(1, std::memory_order_relaxed);
                co_return s;
            } catch (const std::system_error&) {
                last = std::current_exception();
            }
        }
        if (!last) throw std::system_error(std::make_error_code(std::errc::host_unreachable), "no address");
        std::rethrow_exception(last);
    }

    void keep(const url_parts& u, connection c) {
        std::lock_guard<std::mutex> g(mu_);
        idle_[pool_key(u)].push_back(std::move(c));
    }

    // One attempt: the request and its redirects. nullopt on success (the file is in place).
    taskport::task<std::optional<failure>> attempt(const job& j, std::size_t index, attempt_info& info,
                                                   samples::http::body_buffer& spare) {
        const clock::time_point dl =
            opt_.max_time > 0 ? clock::now() + std::chrono::duration_cast<clock::duration>(
                                                   std::chrono::duration<double>(opt_.max_time))
                              : clock::time_point::max();
        const fs::path final_path = opt_.out_dir / j.name;
        const fs::path temp_path = temp_path_of(opt_.out_dir, j.name, index);
        io::file out;
        std::uint64_t written = 0;
        std::optional<failure> result;
        std::string url = j.url;
        unsigned redirects = 0;
        // --continue: the body so far (an earlier run's or attempt's) and what identified it.
        const fs::path meta_path = fs::path(temp_path) += ".meta";
        std::uint64_t have = 0;
        std::string validator;
        if (opt_.resume) have = claim_partial(j.name, temp_path, meta_path, validator);
        const std::uint64_t resumed_at = have;
        bool part_complete = false;  // 416 for a range at the end: the part was all of it
        bool stopped = false;        // a signal cancelled this attempt
        std::string request;

        for (;;) {  // one pass per URL of the redirect chain
            url_parts u;
            if (auto why = samples::http::parse_url(url, u)) {
                result = failure{*why + (url == j.url ? "" : " (redirected to " + url + ")"), true};
                break;
            }
            request = samples::http::request_text(u, have > 0 ? samples::http::range_headers(have, validator) : "");
            samples::http::response resp;
            struct lend {  // the lane's buffer serves this response (no allocation per URL), and goes back
                samples::http::body_buffer& a;
                samples::http::body_buffer& b;
                ~lend() {
                    b.clear();
                    a.swap(b);
                }
            } lent{spare, resp.body()};
            spare.swap(resp.body());
            bool allow_reuse = true;
            std::optional<failure> fail;
            bool too_big = false;  // over --max-filesize: what arrived is not kept, even with --continue
            std::string step = "connect";
            connection s;
            for (;;) {  // a stale kept-alive connection is replaced once
                bool reused = false, retry_fresh = false;
                std::size_t received = 0;
                fail.reset();
                try {
                    step = "connect";
                    s = co_await connect(u, allow_reuse, reused, step, dl);
                    step = "send the request";
                    co_await write_all(s, std::as_bytes(std::span(request)), dl);
                    step = "read the response";
                    while (!resp.complete()) {
                        // Read straight into the body's buffer, up to a write's worth: the parser
                        // leaves body bytes where they arrived, so no byte is copied in user space.
                        const std::size_t have_body = resp.body().size();
                        const std::span<char> room =
                            resp.body().room(std::max<std::size_t>(min_read, write_chunk > have_body ? write_chunk - have_body : 0));
                        const std::size_t n = co_await read_some(s, std::as_writable_bytes(room), dl);
                        received += n;
                        if (n == 0 && reused && received == 0) {
                            retry_fresh = true;
                            break;
                        }
                        resp.receive_in_place(n);  // n == 0: the close; bytes after the response: extra()
                        if (resp.headers_done()) info.status = resp.status();
                        if (n == 0 && s.truncated)  // a body that ends at the close: the end is not proven
                            throw std::runtime_error("the server closed the TLS connection without close_notify: "
                                                     "the body may be truncated");
                        if (resp.headers_done() && resp.status() / 100 == 2 && !out.is_open()) {
                            // 206: the rest of the body we have the start of (Content-Range must
                            // say so); any other 2xx: the whole body, from byte 0 (the server
                            // ignored the range, or If-Range found the resource changed).
                            bool append = false;
                            if (resp.status() == 206 && have > 0) {
                                auto cr = samples::http::parse_content_range(resp.content_range());
                                if (!cr || cr->unsatisfied || cr->first != have) {
                                    drop_partial(temp_path, meta_path);
                                    have = 0;
                                    throw std::runtime_error("206 response with Content-Range '" + resp.content_range() +
                                                             "' does not continue at byte " + std::to_string(resumed_at));
                                }
                                append = true;
                            }
                            step = "create " + temp_path.string();
                            out = co_await timed(io::file::open(rt_, temp_path,
                                                                io::open_mode::write | io::open_mode::create |
                                                                    (append ? io::open_mode{} : io::open_mode::truncate)),
                                                 dl);
                            written = append ? have : 0;
                            if (!append) have = 0;
                            if (opt_.resume && !append) save_validator(meta_path, resp);
                            step = "read the response";
                        }
                        if (out.is_open() && opt_.max_filesize > 0 && written + resp.body().size() > opt_.max_filesize)
                            throw too_large("the body is larger than --max-filesize (" +
                                            std::to_string(opt_.max_filesize) + " bytes)");
                        // Write what has gathered once it is worth a system call, and at the end.
                        if (out.is_open() && (resp.body().size() >= write_chunk || (resp.complete() && !resp.body().empty()))) {
                            step = "write " + temp_path.string();
                            co_await timed(out.write_at(written, std::as_bytes(std::span(resp.body()))), dl);
                            written += resp.body().size();
                            con_.add_bytes(resp.body().size());
                            resp.body().clear();
                            step = "read the response";
                        } else if (!out.is_open()) {
                            resp.body().clear();  // a redirect's or an error's body: not kept
                        }
                    }
                } catch (const std::system_error& e) {
                    if (interrupted()) {  // cancelled by a signal: no retry, no write (it would throw)
                        fail = failure{"interrupted", true};
                        stopped = true;
                    } else if (reused && received == 0 && e.code() != std::errc::timed_out) {
                        retry_fresh = true;
                    } else if (e.code() == std::errc::timed_out && clock::now() >= dl) {
                        fail = failure{"exceeded --max-time " + seconds_text(opt_.max_time) + " (" + step + ")"};
                    } else if (e.code() == std::errc::timed_out) {
                        fail = failure{"timed out after " + timeout_text() + " (" + step + ")"};
                    } else if (io::is_verify_error(e.code())) {  // retrying cannot help
                        fail = failure{step + ": " + e.code().message(), true};
                    } else {
                        fail = failure{step + ": " + e.code().message(), step.starts_with("create") || step.starts_with("write")};
                    }
                } catch (const too_large& e) {
                    fail = failure{e.what(), true};
                    too_big = true;
                } catch (const std::runtime_error& e) {
                    fail = failure{e.what()};
                }
                if (retry_fresh) {
                    s.close();
                    allow_reuse = false;
                    resp.reset();
                    continue;
                }
                break;
            }
            if (fail) {
                s.close();
                // --continue: keep every byte of the body that arrived, for the next attempt or run.
                // (Interrupted: what is on disk is kept as it is, a prefix of the body: a write
                // under way when the signal came finished before the write's co_await returned.)
                bool saved = !too_big && (!opt_.resume || !out.is_open() || resp.body().empty() || stopped);
                if (!saved && !too_big) {
                    try {
                        co_await timed(out.write_at(written, std::as_bytes(std::span(resp.body()))), dl);
                        written += resp.body().size();
                        saved = true;
                    } catch (const std::system_error&) {
                    }
                }
                if (!saved) {  // a partial file we could not complete: not a safe start
                    out.close();
                    drop_partial(temp_path, meta_path);
                }
                result = std::move(fail);
                break;
            }
            // A whole response. Keep the connection if the server keeps it (and sent nothing more).
            if (resp.keep_alive() && !resp.extra())
                keep(u, std::move(s));
            else
                s.close();
            if (resp.status() == 416 && have > 0) {  // nothing after byte `have`: complete, or changed
                auto cr = samples::http::parse_content_range(resp.content_range());
                if (cr && cr->unsatisfied && cr->total == have) {
                    part_complete = true;
                    written = have;
                } else {
                    drop_partial(temp_path, meta_path);
                    result = failure{"HTTP 416 for the rest from byte " + std::to_string(have) +
                                     " (the resource changed): starting again"};
                }
                break;
            }
            const samples::http::outcome next = samples::http::after_response(u, resp, redirects, opt_.max_redirects);
            if (next.kind == samples::http::outcome::redirect) {
                url = next.url;
                continue;
            }
            if (next.kind == samples::http::outcome::fail) result = failure{next.reason, next.permanent};
            break;  // done (result stays empty) or failed
        }

        // Finish: the body goes under its name only when all of it is there.
        // (A 2xx response opens the file as soon as its headers are in, so on success it exists.)
        const bool had_file = out.is_open() || part_complete;
        out.close();
        std::error_code ec;
        if (!result) {
            fs::rename(temp_path, final_path, ec);
            if (ec) result = failure{"cannot rename " + temp_path.string() + " to " + final_path.string() + ": " + ec.message(), true};
            else bytes_.fetch_add(written - std::min(written, resumed_at), std::memory_order_relaxed);
            if (!ec && opt_.resume) fs::remove(meta_path, ec);
        }
        info.bytes = written;
        // A failed attempt's partial body stays for --continue (the next attempt or run resumes it).
        if (result && had_file && !opt_.resume) fs::remove(temp_path, ec);
        co_return result;
    }

    // --continue: the size of the partial body for `name`, moved to temp_path if an earlier run
    // left it under its own temporary name; its validator (ETag or Last-Modified) from meta_path.
    std::uint64_t claim_partial(const std::string& name, const fs::path& temp_path, const fs::path& meta_path,
                                std::string& validator) {
        std::error_code ec;
        if (!fs::exists(temp_path, ec)) {
            std::lock_guard<std::mutex> g(mu_);
            auto it = opt_.partials.find(name);
            if (it == opt_.partials.end()) return 0;
            fs::rename(it->second, temp_path, ec);
            if (ec) return 0;
            fs::rename(fs::path(it->second) += ".meta", meta_path, ec);
        }
        const std::uint64_t n = fs::file_size(temp_path, ec);
        if (ec) return 0;
        std::ifstream m(meta_path);
        std::getline(m, validator);
        return n;
    }
    static void drop_partial(const fs::path& temp_path, const fs::path& meta_path) {
        std::error_code ec;
        fs::remove(temp_path, ec);
        fs::remove(meta_path, ec);
    }
    static void save_validator(const fs::path& meta_path, const samples::http::response& r) {
        std::ofstream m(meta_path, std::ios::trunc);
        m << (!r.etag().empty() ? r.etag() : r.last_modified()) << "\n";
    }

    taskport::runtime& rt_;
    samples::console& con_;
    const options& opt_;
    std::vector<job>& jobs_;
    std::atomic<std::size_t> next_{0};
    std::atomic<std::uint64_t> ok_{0}, failed_{0}, bytes_{0}, connects_{0}, abandoned_{0};

    std::mutex report_mu_;  // one --report line at a time
    std::mutex mu_;  // guards idle_ and resolved_
    std::unordered_map<std::string, std::vector<connection>> idle_;  // by scheme://host:port
    std::unordered_map<std::string, std::vector<io::endpoint>> resolved_;
    samples::interrupt* intr_ = nullptr;       // set by run()

public:
    std::uint64_t bytes() const noexcept { return bytes_.load(); }
};

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"taskport-fetch: download http:// and https:// URLs concurrently (from the arguments, or one per line on "
                 "stdin) into --output-dir. Exit status 1 if any URL failed. Ctrl-C (SIGINT) or SIGTERM stops it: nothing new "
                 "starts, downloads in flight are abandoned and their temporary files removed (kept with --continue, "
                 "to be resumed), the summary so far is printed and the exit status is 130 (SIGINT) or 143 (SIGTERM); "
                 "a second signal exits at once."};
    app.allow_windows_style_options(false);  // paths such as /tmp/x are arguments, not options
    std::vector<std::string> urls;
    options o;
    std::string out_dir = ".";
    std::size_t workers = 0;
    bool quiet = false, progress = false, no_progress = false;
    app.set_version_flag("--version", "taskport " TASKPORT_TOOL_VERSION);
    app.add_option("URL", urls, "http:// or https:// URLs (none: read them from stdin)");
    app.add_option("-o,--output-dir", out_dir, "folder the files are written to (must exist)")->capture_default_str();
    app.add_option("-c,--concurrency", o.concurrency, "requests in flight at once")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    app.add_option("--timeout", o.timeout, "seconds any one step (connect, send, each read or write) may take")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--retries", o.retries, "attempts after the first for a URL that failed")
        ->check(CLI::Range(0, 100))
        ->capture_default_str();
    app.add_option("--backoff", o.backoff, "seconds before the first retry; doubles for each next one")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--max-redirects", o.max_redirects, "redirects followed per URL")->capture_default_str();
    app.add_option("--max-time", o.max_time,
                   "seconds one attempt at a URL may take in all, however slowly its bytes arrive (0: no limit)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--max-filesize", o.max_filesize,
                   "bytes a body may have (K, M, G suffixes; 0: no limit); a larger one fails and is not kept")
        ->transform(CLI::AsSizeValue(false))
        ->capture_default_str();
    std::string report_path;
    app.add_option("--report", report_path,
                   "FILE ('-': stdout, the summary then goes to stderr): one JSON line per URL with url, file, ok, "
                   "status, bytes, seconds, attempts, error");
    app.add_option("-j,--workers", workers, "worker threads (0: one per hardware thread)");
    app.add_flag("-q,--quiet", quiet, "no summary");
    std::string shard_text;
    app.add_option("--shard", shard_text,
                   "I/N: fetch only shard I (0 to N-1) of N, split by output name; N runs with I = 0..N-1 "
                   "fetch every URL exactly once");
    std::string cacert;
    bool insecure = false;
    app.add_flag("-C,--continue", o.resume,
                 "resume the partial body an earlier interrupted run left in --output-dir (a Range request, "
                 "checked with If-Range and Content-Range; restarted when the server ignores ranges), "
                 "and keep a failed attempt's partial body for the next attempt or run");
    app.add_option("--cacert", cacert,
                   "https: trust the CA certificates in this PEM file instead of the system's store");
    app.add_flag("-k,--insecure", insecure,
                 "https: do not verify the server's certificate or host name (still encrypted, not authenticated)");
    auto* p_on = app.add_flag("--progress", progress, "draw the progress bar even when stderr is not a terminal");
    app.add_flag("--no-progress", no_progress, "never draw the progress bar")->excludes(p_on);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    const std::optional<samples::shard> shard_opt = samples::shard::from_option(shard_text, prog);
    if (!shard_opt) return 2;
    const samples::shard sh = *shard_opt;
    o.out_dir = out_dir;
    try {
        o.tls.emplace(io::tls_role::client);  // the system's CA store, host names checked
        if (!cacert.empty()) o.tls->load_verify_file(cacert, true);
        if (insecure) {
            o.tls->set_verify_peer(false);
            std::fprintf(stderr, "%s: --insecure: https server certificates and host names are not verified "
                                 "(connections are encrypted but the server is not authenticated)\n", prog);
        }
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s: %s: %s\n", prog, cacert.empty() ? "TLS setup" : ("--cacert " + cacert).c_str(),
                     e.code().message().c_str());
        return 2;
    }
    std::error_code ec;
    struct file_closer {
        void operator()(std::FILE* f) const noexcept { std::fclose(f); }
    };
    std::unique_ptr<std::FILE, file_closer> report_file;
    if (report_path == "-") {
        o.report = stdout;
        o.report_stdout = true;
    } else if (!report_path.empty()) {
        report_file.reset(std::fopen(report_path.c_str(), "w"));
        if (!report_file) {
            std::fprintf(stderr, "%s: --report %s: %s\n", prog, report_path.c_str(), std::strerror(errno));
            return 2;
        }
        o.report = report_file.get();
    }
    if (!fs::is_directory(o.out_dir, ec)) {
        std::fprintf(stderr, "%s: %s: %s\n", prog, out_dir.c_str(),
                     ec ? ec.message().c_str() : "not a folder");
        return 2;
    }
    if (urls.empty()) {
        std::string line;
        while (std::getline(std::cin, line)) {
            const std::size_t a = line.find_first_not_of(" \t\r");
            if (a == std::string::npos || line[a] == '#') continue;
            const std::size_t b = line.find_last_not_of(" \t\r");
            urls.push_back(line.substr(a, b - a + 1));
        }
    }

    if (o.resume) {  // the partial bodies earlier runs left: ".NAME.PID.INDEX.part"
        for (const auto& e : fs::directory_iterator(o.out_dir, ec)) {
            std::string f = e.path().filename().string();
            if (f.size() < 7 || f[0] != '.' || !f.ends_with(".part") || !e.is_regular_file(ec)) continue;
            f.resize(f.size() - 5);
            std::size_t d2 = f.rfind('.'), d1 = d2 == std::string::npos || d2 == 0 ? std::string::npos : f.rfind('.', d2 - 1);
            auto digits = [](std::string_view v) {
                return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
            };
            if (d1 == std::string::npos || d1 == 0 || !digits(std::string_view(f).substr(d1 + 1, d2 - d1 - 1)) ||
                !digits(std::string_view(f).substr(d2 + 1)))
                continue;
            const std::string name = f.substr(1, d1 - 1);
            auto it = o.partials.find(name);
            if (it == o.partials.end() || fs::file_size(e.path(), ec) > fs::file_size(it->second, ec))
                o.partials[name] = e.path();
        }
        ec.clear();
    }

    // Names, decided up front in input order so that the same input always gives the same files
    // (with --shard too: every shard names the whole list, then keeps the names of its shard).
    std::vector<job> jobs;
    std::unordered_set<std::string> taken;
    std::unordered_map<std::string, unsigned> next_suffix;  // base name -> the next suffix to try
    for (const std::string& u : urls) {
        const std::string base = samples::http::name_from_url(u);
        std::string name = base;
        while (taken.count(name)) name = base + "." + std::to_string(++next_suffix[base]);
        taken.insert(name);
        if (sh.contains(name)) jobs.push_back({u, name});
    }

    const bool bar = !no_progress && (progress || samples::console::stderr_is_terminal());
    samples::console con("URLs", bar);
    con.set_totals(jobs.size(), 0);
    taskport::runtime_options ro;
    ro.workers = workers;
    std::uint64_t ok = 0, failed = 0, bytes = 0, conns = 0, abandoned = 0, not_started = 0;
    int signo = 0, status_on_signal = 0;
    double secs = 0;
    {
        taskport::runtime rt(ro);
        samples::interrupt intr(rt);  // SIGINT/SIGTERM caught from here on
        fetcher f(rt, con, o, jobs);
        con.start_clock();
        rt.block_on(f.run(bar, intr));
        secs = con.elapsed();
        ok = f.succeeded();
        failed = f.failed();
        bytes = f.bytes();
        conns = f.connections();
        signo = intr.signal();
        status_on_signal = intr.exit_status();
        abandoned = f.abandoned();
        not_started = f.not_started();
    }
    con.finish();
    if (signo != 0) {
        char line[256];
        std::snprintf(line, sizeof line, "%s: interrupted by %s: %llu in flight abandoned%s, %llu not started\n", prog,
                      samples::interrupt::name(signo), static_cast<unsigned long long>(abandoned),
                      o.resume ? " (partial bodies kept for --continue)" : "",
                      static_cast<unsigned long long>(not_started));
        con.err(line);
    }
    if (!quiet) {
        char line[256];
        std::snprintf(line, sizeof line, "%s: %llu succeeded, %llu failed, %s in %.2f s (%s/s), %llu connection%s\n",
                      prog, static_cast<unsigned long long>(ok), static_cast<unsigned long long>(failed),
                      samples::human_bytes(static_cast<double>(bytes)).c_str(), secs,
                      samples::human_bytes(static_cast<double>(bytes) / std::max(secs, 1e-6)).c_str(),
                      static_cast<unsigned long long>(conns), conns == 1 ? "" : "s");
        if (o.report_stdout)
            con.err(line);
        else
            con.out(line);
    }
    if (report_file && (std::fflush(report_file.get()) != 0 || std::ferror(report_file.get()))) {
        std::fprintf(stderr, "%s: --report %s: %s\n", prog, report_path.c_str(), std::strerror(errno));
        return 1;
    }
    std::fflush(stdout);
    if (signo != 0) return status_on_signal;
    return failed ? 1 : 0;
}
