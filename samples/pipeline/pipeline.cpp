// pipeline.cpp — a producer, N workers and a writer joined by taskport::channel: a parallel
// `grep -n`. The shape to copy for any line-by-line job whose work per line is worth a core.
//
//   taskport-pipeline [--workers N] [--batch LINES] [--window BATCHES] PATTERN [FILE]
//
// Prints "NUMBER:LINE" for every line of FILE (or stdin) in which the ECMAScript regular
// expression PATTERN matches (std::regex_search), in input order — what `grep -n -E PATTERN`
// prints for the patterns both dialects read alike. Exit status 0 if a line matched, 1 if none
// did, 2 on an error (bad pattern, unreadable file), as grep's.
//
// The pipe:
//   producer  the main thread: reading is blocking I/O, so it stays off the runtime's workers.
//             It cuts the input into batches of --batch lines (one channel hand-off costs more
//             than matching one short line) and sends them to `work` with send_blocking.
//   workers   --workers tasks in one async_scope: each receives a batch, matches its lines and
//             sends what matched, tagged with the batch's number, to `done`.
//   writer    one task: receives from `done` in whatever order the workers finish, and prints in
//             input order, holding back a batch that arrives before the ones ahead of it.
// Bounded memory: `window`, an async_semaphore of --window permits, is taken by the producer for
// each batch it reads and given back by the writer once it has printed that batch, so at most
// --window batches are between reading and printing, wherever they are (queued in `work`, being
// matched, queued in `done`, held back by the writer). Both channels hold --window batches, so
// no send into them ever waits for long: the window is the one place the producer waits.
// End of stream travels down the pipe: at the end of the input the producer closes `work`; the
// workers drain it and end; when all have ended (the scope's join) `done` is closed; the writer
// drains it and ends. An error on the way (a write error; a worker's exception, such as the
// regex_error std::regex throws on a line too complex for it) closes both channels, which stops
// the producer (send_blocking throws) and the rest, and is reported (line_pipe::abort).
#include <taskport/taskport.hpp>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace {

struct batch {
    std::uint64_t seq = 0;         // 0, 1, 2, ... in input order
    std::uint64_t first_line = 0;  // the number of its first line (from 1)
    std::vector<std::string> lines;
};

struct findings {
    std::uint64_t seq = 0;
    std::string text;  // "NUMBER:LINE\n" for each matching line, in order
    std::uint64_t matches = 0;
};

struct line_pipe {
    explicit line_pipe(std::size_t w) : work(w), done(w), window_permits(w), window(w) {}
    taskport::channel<batch> work;
    taskport::channel<findings> done;
    taskport::async_semaphore window_permits;
    std::size_t window;

    // An error: everything stops. The producer's next send throws (work is closed); permits
    // are given so that it cannot stay waiting for a window no writer will open again.
    void abort() noexcept {
        work.close();
        done.close();
        window_permits.release(window);
    }
};

findings match(const batch& b, const std::regex& re) {
    findings f;
    f.seq = b.seq;
    for (std::size_t i = 0; i < b.lines.size(); ++i) {
        if (!std::regex_search(b.lines[i], re)) continue;
        f.text += std::to_string(b.first_line + i);
        f.text += ':';
        f.text += b.lines[i];
        f.text += '\n';
        ++f.matches;
    }
    return f;
}

taskport::task<void> worker(line_pipe& p, const std::regex& re) {
    for (;;) {
        std::optional<batch> b = co_await p.work.receive();
        if (!b) co_return;  // closed and drained: the input is done
        findings f = match(*b, re);
        try {
            co_await p.done.send(std::move(f));
        } catch (const std::system_error&) {
            if (p.done.is_closed()) co_return;  // the writer failed (it says why)
            throw;
        }
    }
}

// The workers in one scope; `done` is closed when the last has ended (or one failed).
taskport::task<void> run_workers(taskport::runtime& rt, line_pipe& p, const std::regex& re, std::size_t n) {
    taskport::async_scope scope(rt);
    for (std::size_t k = 0; k < n; ++k) scope.spawn(worker(p, re));
    std::exception_ptr err;
    try {
        co_await scope.join();
    } catch (...) {
        err = std::current_exception();
        p.abort();
    }
    p.done.close();
    if (err) std::rethrow_exception(err);
}

// Prints in input order; returns the number of matching lines.
taskport::task<std::uint64_t> writer(line_pipe& p) {
    std::map<std::uint64_t, findings> early;  // arrived before a batch ahead of them
    std::uint64_t next = 0, matches = 0;
    for (;;) {
        std::optional<findings> f = co_await p.done.receive();
        if (!f) break;
        const std::uint64_t seq = f->seq;
        early.emplace(seq, std::move(*f));
        for (auto it = early.begin(); it != early.end() && it->first == next; it = early.erase(it), ++next) {
            const std::string& t = it->second.text;
            if (!t.empty() && std::fwrite(t.data(), 1, t.size(), stdout) != t.size()) {
                const int e = errno;
                p.abort();
                throw std::system_error(e, std::system_category(), "write error");
            }
            matches += it->second.matches;
            p.window_permits.release();
        }
    }
    co_return matches;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"taskport-pipeline: print the lines matching an ECMAScript regular expression, with their numbers, "
                 "in input order (as grep -n -E), matched by N worker tasks; a sample of taskport::channel."};
    app.allow_windows_style_options(false);
    std::string pattern, file;
    std::size_t workers = 4, batch_lines = 256, window = 64;
    app.add_option("PATTERN", pattern, "the regular expression (ECMAScript, std::regex)")->required();
    app.add_option("FILE", file, "the input (none or '-': stdin)");
    app.add_option("-w,--workers", workers, "worker tasks matching lines")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--batch", batch_lines, "lines per batch")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--window", window, "batches between reading and printing, at most")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    std::regex re;
    try {
        re = std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
        std::fprintf(stderr, "taskport-pipeline: bad pattern '%s': %s\n", pattern.c_str(), e.what());
        return 2;
    }
    std::ifstream in_file;
    std::istream* in = &std::cin;
    if (!file.empty() && file != "-") {
        in_file.open(file, std::ios::binary);
        if (!in_file) {
            std::fprintf(stderr, "taskport-pipeline: %s: %s\n", file.c_str(), std::strerror(errno));
            return 2;
        }
        in = &in_file;
    }

    taskport::runtime rt;
    line_pipe p(window);
    taskport::future<void> matching = rt.spawn(run_workers(rt, p, re, workers));
    taskport::future<std::uint64_t> printing = rt.spawn(writer(p));

    // The producer, on this thread.
    bool stopped = false;  // the pipe closed early (an error downstream)
    std::uint64_t line_no = 1, seq = 0;
    batch b;
    b.first_line = 1;
    std::string line;
    auto send = [&] {
        p.window_permits.acquire_blocking();
        b.seq = seq++;
        p.work.send_blocking(std::move(b));
        b = batch{};
        b.first_line = line_no;
    };
    try {
        while (std::getline(*in, line)) {
            b.lines.push_back(std::move(line));
            ++line_no;
            if (b.lines.size() == batch_lines) send();
        }
        if (!b.lines.empty()) send();
    } catch (const std::system_error&) {
        stopped = true;  // `work` was closed: the error comes from below
    }
    const bool read_error = in->bad();
    p.work.close();

    std::uint64_t matches = 0;
    int status = 0;
    try {
        matching.get();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "taskport-pipeline: %s\n", e.what());
        status = 2;
    }
    try {
        matches = printing.get();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "taskport-pipeline: %s\n", e.what());
        status = 2;
    }
    if (std::fflush(stdout) != 0) {
        std::fprintf(stderr, "taskport-pipeline: write error: %s\n", std::strerror(errno));
        status = 2;
    }
    if (read_error) {
        std::fprintf(stderr, "taskport-pipeline: %s: read error\n", file.empty() ? "stdin" : file.c_str());
        status = 2;
    }
    if (status == 0 && stopped) status = 2;
    if (status != 0) return status;
    return matches > 0 ? 0 : 1;
}
