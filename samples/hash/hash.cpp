// taskport-hash — the SHA-256 of every regular file under the given paths, in sha256sum's format.
//
//   taskport-hash [OPTIONS] PATH...      "<sha256>  <path>" per file, sorted by path
//   taskport-hash -c [OPTIONS] [LIST...] check lists the way `sha256sum -c` does ("-": stdin)
//
// How it runs, on taskport's public API only:
//   1. main walks the paths (readdir + fstatat) and sorts the files by path, byte by byte
//      (the order of `LC_ALL=C sort`), so the output is the same on every run;
//   2. 8 x --jobs lanes (coroutines) run on a runtime of --jobs workers. A lane takes the next
//      file, opens it with io::file::open (the blocking pool), reserves its buffer from a byte
//      budget (--max-memory: the limit on file bytes in flight, shared by all lanes), reads it
//      with read_at (io_uring, else the blocking pool) — a large file in --chunk-size pieces,
//      the next piece read while this one is hashed — and hashes on the worker with OpenSSL's
//      EVP SHA-256;
//   3. each line is printed as soon as every file before it in the order is done.
// A lane reserves a file's whole buffer at once and holds nothing while it waits, so the budget
// cannot deadlock; waiters are served first come, first served.
//
// Symbolic links are followed, as sha256sum follows the files it is given and `find -L` walks:
// a link to a file is hashed under the link's path, a link to a folder is walked. A link that
// leads back to a folder being walked (a loop) is reported with ELOOP and not walked again.
// Every problem — a path that does not exist or vanished mid-walk, a dangling link, a folder or
// file that cannot be read, a loop, a device, FIFO or socket (never opened: reading one could
// block forever) — is reported on stderr with the path and the system's message; everything
// else is still hashed, and the exit status is 1. Nothing is skipped silently.
// SIGINT (Ctrl-C) or SIGTERM (samples/common/interrupt.hpp): no file starts after it, the ones in
// flight are abandoned through the runtime's cancellation (the lanes are the tasks of one
// async_scope), what is printed stays a prefix of the full output (in order), a line on stderr
// says how far it got, and the exit status is 128 + the signal (130, 143); a second signal exits
// at once. Tests only: TASKPORT_HASH_TEST_HOLD=SUFFIX makes the file whose path ends with SUFFIX
// wait, once open, until a signal cancels it (so a test knows the tool is mid-work).
// The checksum line format (writing it, and reading -c's lists) is in checksum_list.hpp.
#include <taskport/io/file.hpp>
#include <taskport/io/timer.hpp>
#include <taskport/taskport.hpp>

#include "checksum_list.hpp"
#include "console.hpp"
#include "interrupt.hpp"
#include "shard.hpp"

#include <CLI/CLI.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace io = taskport::io;
using namespace std::chrono_literals;

namespace {

constexpr const char* prog = "taskport-hash";

// One file to hash (and, with -c, the digest it should have).
struct item {
    std::string path;
    std::uint64_t size = 0;  // from the walk: for the progress bar only
    std::string expect;      // -c: the listed digest, lower case
    std::string hex;         // the digest, once hashed
    std::error_code error;   // why it could not be hashed
    bool done = false;       // guarded by engine::print_mu
};

std::string os_message(int err) { return std::error_code(err, std::system_category()).message(); }

// ---- walking -----------------------------------------------------------------------------

class walker {
public:
    // Walks everything, keeps the files of `sh` and reports the problems whose path is in `sh`,
    // so that N shards together report each problem once.
    walker(samples::console& con, std::vector<item>& out, const samples::shard& sh)
        : con_(con), out_(out), shard_(sh) {}

    void root(const std::string& path) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            const int err = errno;
            struct stat lst {};
            report(path, err, ::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode));
            return;
        }
        std::vector<dir_id> stack;
        visit(path, st, stack);
    }

    bool failed() const noexcept { return failed_; }

private:
    struct dir_id {
        dev_t dev;
        ino_t ino;
        std::string path;
    };

    void visit(const std::string& path, const struct stat& st, std::vector<dir_id>& stack) {
        if (S_ISREG(st.st_mode)) {
            if (!shard_.contains(path)) return;
            item it;
            it.path = path;
            it.size = static_cast<std::uint64_t>(st.st_size);
            out_.push_back(std::move(it));
        } else if (S_ISDIR(st.st_mode)) {
            for (const dir_id& d : stack) {
                if (d.dev == st.st_dev && d.ino == st.st_ino) {
                    fail(path, path + ": " + os_message(ELOOP) + " (leads back to " + d.path + "): not walked again");
                    return;
                }
            }
            stack.push_back({st.st_dev, st.st_ino, path});
            walk_dir(path, stack);
            stack.pop_back();
        } else {
            const char* what = S_ISFIFO(st.st_mode)   ? "a FIFO"
                               : S_ISSOCK(st.st_mode) ? "a socket"
                               : S_ISCHR(st.st_mode)  ? "a character device"
                               : S_ISBLK(st.st_mode)  ? "a block device"
                                                      : "of an unknown type";
            fail(path, path + ": not a regular file (" + what + "): not hashed");
        }
    }

    void walk_dir(const std::string& path, std::vector<dir_id>& stack) {
        DIR* d = ::opendir(path.c_str());
        if (!d) {
            report(path, errno, false);
            return;
        }
        // Stat everything first and close the folder before going down, so the depth of the
        // tree never costs more than one descriptor.
        struct entry {
            std::string name;
            struct stat st;
            int err;           // fstatat's errno, 0 when st is valid
            bool dangling;     // err is about a symbolic link's target
        };
        std::vector<entry> entries;
        const int dfd = ::dirfd(d);
        for (;;) {
            errno = 0;
            const dirent* de = ::readdir(d);
            if (!de) {
                if (errno != 0) report(path, errno, false);
                break;
            }
            if (std::strcmp(de->d_name, ".") == 0 || std::strcmp(de->d_name, "..") == 0) continue;
            entry e{de->d_name, {}, 0, false};
            if (::fstatat(dfd, de->d_name, &e.st, 0) != 0) {
                e.err = errno;
                struct stat lst {};
                e.dangling = ::fstatat(dfd, de->d_name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode);
            }
            entries.push_back(std::move(e));
        }
        ::closedir(d);
        // In name order, so that the walk's messages come out the same way every time.
        std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) { return a.name < b.name; });
        const std::string prefix = path.ends_with('/') ? path : path + '/';
        for (const entry& e : entries) {
            const std::string child = prefix + e.name;
            if (e.err != 0)
                report(child, e.err, e.dangling);
            else
                visit(child, e.st, stack);
        }
    }

    void report(const std::string& path, int err, bool dangling_link) {
        fail(path, path + ": " + os_message(err) + (dangling_link && err == ENOENT ? " (dangling symbolic link)" : ""));
    }
    void fail(const std::string& path, const std::string& msg) {
        if (!shard_.contains(path)) return;
        failed_ = true;
        con_.err(std::string(prog) + ": " + msg + "\n");
    }

    samples::console& con_;
    std::vector<item>& out_;
    const samples::shard& shard_;
    bool failed_ = false;
};

// ---- hashing -----------------------------------------------------------------------------

// One EVP context per lane, reused from file to file.
class hasher {
public:
    explicit hasher(const EVP_MD* md) : md_(md), ctx_(EVP_MD_CTX_new()) {
        if (!ctx_) throw std::bad_alloc();
    }
    ~hasher() { EVP_MD_CTX_free(ctx_); }
    hasher(const hasher&) = delete;
    hasher& operator=(const hasher&) = delete;

    void init() { check(EVP_DigestInit_ex(ctx_, md_, nullptr)); }
    void update(std::span<const std::byte> b) {
        if (!b.empty()) check(EVP_DigestUpdate(ctx_, b.data(), b.size()));
    }
    std::string final_hex() {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        check(EVP_DigestFinal_ex(ctx_, d, &n));
        static const char digits[] = "0123456789abcdef";
        std::string s(2 * n, '0');
        for (unsigned i = 0; i < n; ++i) {
            s[2 * i] = digits[d[i] >> 4];
            s[2 * i + 1] = digits[d[i] & 15];
        }
        return s;
    }

private:
    static void check(int ok) {
        if (ok != 1) throw std::runtime_error("OpenSSL's SHA-256 failed");
    }
    const EVP_MD* md_;
    EVP_MD_CTX* ctx_;
};

struct engine {
    engine(taskport::runtime& r, samples::console& c, std::vector<item>& it, const EVP_MD* m, std::uint64_t ch,
           std::uint64_t max_memory, bool check, bool q)
        : rt(r), con(c), items(it), md(m), chunk(ch), budget_limit(max_memory),
          budget(static_cast<std::size_t>(max_memory)), check_mode(check), quiet(q) {}

    taskport::runtime& rt;
    samples::console& con;
    std::vector<item>& items;
    const EVP_MD* md;
    std::uint64_t chunk;
    // The limit on file bytes in flight: a lane acquires a file's whole buffer as permits (one
    // per byte). taskport::async_semaphore serves waiters first come, first served, and a large
    // request at the head is not starved by small ones behind it.
    std::uint64_t budget_limit;
    taskport::async_semaphore budget;
    bool check_mode;
    bool quiet;

    std::atomic<std::size_t> next{0};  // the next item a lane takes
    samples::interrupt* intr = nullptr;  // set by run_all
    std::atomic<std::uint64_t> abandoned{0};  // files a signal cut short
    std::string hold;  // TASKPORT_HASH_TEST_HOLD (tests only): a path whose hashing waits for a signal

    bool interrupted() const noexcept { return intr && intr->signal() != 0; }
    // Items printed so far (all of them, in order, when nothing was interrupted).
    std::size_t printed() {
        std::lock_guard<std::mutex> g(print_mu);
        return next_print;
    }

    std::mutex print_mu;
    std::size_t next_print = 0;  // guarded by print_mu: items before it are printed
    std::uint64_t failed = 0, unreadable = 0, mismatched = 0;  // guarded by print_mu

    // Item i is done: print every finished item from next_print on, in order.
    void finished(std::size_t i) {
        con.add_item();
        std::lock_guard<std::mutex> g(print_mu);
        items[i].done = true;
        std::string out;
        while (next_print < items.size() && items[next_print].done) {
            emit(items[next_print], out);
            items[next_print] = item{};  // frees the strings; the slot is never read again
            items[next_print].done = true;
            ++next_print;
        }
        if (!out.empty()) con.out(out);
    }

    void emit(const item& it, std::string& out) {
        if (it.error) {
            if (!out.empty()) {  // what is due on stdout goes first: the two streams stay in order
                con.out(out);
                out.clear();
            }
            con.err(std::string(prog) + ": " + it.path + ": " + it.error.message() + "\n");
            ++failed;
            if (check_mode) {
                ++unreadable;
                append_check_line(out, it.path, "FAILED open or read");
            }
            return;
        }
        if (!check_mode) {
            samples::checksum::append_sum_line(out, it.hex, it.path);
        } else if (it.hex != it.expect) {
            ++failed;
            ++mismatched;
            append_check_line(out, it.path, "FAILED");
        } else if (!quiet) {
            append_check_line(out, it.path, "OK");
        }
    }

    static void append_check_line(std::string& out, const std::string& path, const char* verdict) {
        samples::checksum::append_check_line(out, path, verdict);
    }
};

// A file being read and its buffer, shared with the read-ahead task: when a signal cancels the
// lane, hash_one leaves at once while a read it started may still be under way (that task is
// not the lane's, and awaiting it is what the cancellation cut short); the read keeps the file
// and the buffer alive until it is done.
struct open_file {
    io::file f;
    std::unique_ptr<std::byte[]> buf;
};

// Reads buf (inside of->buf) at off as a task of its own, so the next piece is read while this
// one is hashed.
taskport::future<std::size_t> read_ahead(engine& e, std::shared_ptr<open_file> of, std::uint64_t off,
                                         std::span<std::byte> buf) {
    return e.rt.spawn([of = std::move(of), off, buf]() -> taskport::task<std::size_t> {
        co_return co_await of->f.read_at(off, buf);
    });
}

taskport::task<void> hash_one(engine& e, hasher& h, item& it) {
    std::uint64_t reserved = 0;
    try {
        auto of = std::make_shared<open_file>();
        of->f = co_await io::file::open(e.rt, it.path, io::open_mode::read);
        io::file& f = of->f;
        if (!e.hold.empty() && it.path.ends_with(e.hold)) {  // the tests' hook: wait here for a signal
            e.con.err(std::string(prog) + ": test hook: holding " + it.path + "\n");
            co_await taskport::sleep_for(std::chrono::hours(1));
        }
        const std::uint64_t size = f.size();
        const bool large = size >= e.chunk;
        // A small file: its size + 1, so one read both fills and finds the end. A large one:
        // two pieces, one being read while the other is hashed.
        const std::uint64_t want = std::min(e.budget_limit, large ? 2 * e.chunk : size + 1);
        co_await e.budget.acquire(static_cast<std::size_t>(want));
        reserved = want;
        of->buf.reset(new std::byte[reserved]);
        std::byte* const buf = of->buf.get();
        h.init();
        std::uint64_t off = 0;
        if (!large || reserved < 2 * e.chunk) {
            const std::span<std::byte> piece(buf, reserved);
            for (;;) {
                const std::size_t n = co_await f.read_at(off, piece);
                h.update(piece.first(n));
                e.con.add_bytes(n);
                off += n;
                if (n < piece.size()) break;  // the end (read_at is short only at the end)
            }
        } else {
            std::span<std::byte> cur(buf, e.chunk), other(buf + e.chunk, e.chunk);
            taskport::future<std::size_t> pending = read_ahead(e, of, off, cur);
            for (;;) {
                const std::size_t n = co_await std::move(pending);  // at most one read in flight
                const bool more = n == cur.size();
                if (more) pending = read_ahead(e, of, off + n, other);
                h.update(cur.first(n));
                e.con.add_bytes(n);
                off += n;
                if (!more) break;
                std::swap(cur, other);
            }
        }
        it.hex = h.final_hex();
    } catch (const std::system_error& ex) {
        it.error = ex.code();
    }
    if (reserved) e.budget.release(static_cast<std::size_t>(reserved));
}

taskport::task<void> lane(engine& e) {
    hasher h(e.md);
    for (;;) {
        if (e.interrupted()) co_return;  // nothing new after a signal
        const std::size_t i = e.next.fetch_add(1, std::memory_order_relaxed);
        if (i >= e.items.size()) co_return;
        co_await hash_one(e, h, e.items[i]);
        if (e.interrupted() && e.items[i].error) {  // cut short by the signal: not a result
            e.abandoned.fetch_add(1, std::memory_order_relaxed);
            co_return;
        }
        e.finished(i);
    }
}

taskport::task<void> ticker(samples::console& con) {
    for (;;) {
        con.draw();
        co_await taskport::sleep_for(200ms);
    }
}

// The lanes are the tasks of one async_scope, which the first SIGINT or SIGTERM cancels (intr).
taskport::task<void> run_all(engine& e, std::size_t lanes, bool bar, samples::interrupt& intr) {
    taskport::future<void> tick;
    if (bar) tick = e.rt.spawn(ticker(e.con));
    taskport::async_scope scope(e.rt);
    e.intr = &intr;
    taskport::future<void> watch = e.rt.spawn(intr.watch(scope, prog));
    for (std::size_t k = 0; k < lanes; ++k) scope.spawn(lane(e));
    std::exception_ptr err;
    try {
        co_await scope.join();
    } catch (...) {
        err = std::current_exception();
    }
    for (taskport::future<void>* f : {&tick, &watch}) {
        if (!f->valid()) continue;
        f->cancel();
        try {
            co_await std::move(*f);
        } catch (const std::system_error&) {
            // operation_aborted / cancelled: it stopped, as asked
        }
    }
    if (err) std::rethrow_exception(err);
}

// Reads the lists of -c; returns false when a list cannot be read.
// With --shard, the entries whose file is in the shard are kept, and a list's own problems (it
// cannot be read, it has no checksum line, its badly formatted lines) belong to the shard of the
// list's name.
bool read_lists(const std::vector<std::string>& lists, std::vector<item>& items, std::uint64_t& bad_lines,
                samples::console& con, const samples::shard& sh) {
    bool ok = true;
    for (const std::string& list : lists) {
        const bool mine = sh.contains(list);
        std::ifstream file;
        std::istream* in = &std::cin;
        if (list != "-") {
            file.open(list, std::ios::binary);
            if (!file) {
                if (!mine) continue;
                con.err(std::string(prog) + ": " + list + ": " + os_message(errno) + "\n");
                ok = false;
                continue;
            }
            in = &file;
        }
        const samples::checksum::list_counts counts =
            samples::checksum::read_list(*in, [&](const std::string& hex, const std::string& name) {
                if (!sh.contains(name)) return;
                item it;
                it.path = name;
                it.expect = hex;
                struct stat st {};
                if (::stat(name.c_str(), &st) == 0 && S_ISREG(st.st_mode))
                    it.size = static_cast<std::uint64_t>(st.st_size);
                items.push_back(std::move(it));
            });
        const std::size_t found = counts.entries, bad = counts.bad;
        if (!mine) continue;
        if (in->bad()) {
            con.err(std::string(prog) + ": " + list + ": read error\n");
            ok = false;
        } else if (found == 0) {
            con.err(std::string(prog) + ": " + list + ": no properly formatted checksum lines found\n");
            ok = false;
        } else {
            bad_lines += bad;  // as sha256sum: no warning about the lines of a list found useless
        }
    }
    return ok;
}

std::string plural(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"taskport-hash: SHA-256 of every regular file under PATHs, in sha256sum's format, sorted by "
                 "path; or, with -c, check lists of sums the way `sha256sum -c` does. Symbolic links are "
                 "followed (loops are reported). Exit status 1 if any file could not be hashed or checked. Ctrl-C (SIGINT) or SIGTERM "
                 "stops it: nothing new starts, files in flight are abandoned, the output so far stays in order, and the "
                 "exit status is 130 (SIGINT) or 143 (SIGTERM); a second signal exits at once."};
    app.allow_windows_style_options(false);  // paths such as /tmp/x are arguments, not options
    std::vector<std::string> paths;
    bool check = false, quiet = false, progress = false, no_progress = false;
    std::size_t jobs = std::max(1u, std::thread::hardware_concurrency());
    std::uint64_t max_memory = 64ull << 20, chunk = 1ull << 20;
    app.set_version_flag("--version", "taskport " TASKPORT_TOOL_VERSION);
    app.add_option("PATH", paths, "files and folders to hash (with -c: lists to check, '-' for stdin)");
    app.add_flag("-c,--check", check, "read SHA-256 sums from the lists and check them");
    app.add_flag("--quiet", quiet, "with -c: print no OK lines");
    std::string shard_text;
    app.add_option("--shard", shard_text,
                   "I/N: do only shard I (0 to N-1) of N, split by path; N runs with I = 0..N-1 do the job "
                   "exactly once");
    app.add_option("-j,--jobs", jobs, "worker threads hashing in parallel (8 files in flight per worker)")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    app.add_option("--max-memory", max_memory, "limit on file bytes in flight (K, M, G suffixes)")
        ->transform(CLI::AsSizeValue(false))
        ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 40))
        ->capture_default_str();
    app.add_option("--chunk-size", chunk, "read size for large files (K, M suffixes)")
        ->transform(CLI::AsSizeValue(false))
        ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 30))
        ->capture_default_str();
    auto* p_on = app.add_flag("--progress", progress, "draw the progress bar even when stderr is not a terminal");
    app.add_flag("--no-progress", no_progress, "never draw the progress bar")->excludes(p_on);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (!check && paths.empty()) {
        std::fprintf(stderr, "%s: no PATH given (try --help)\n", prog);
        return 2;
    }
    if (check && paths.empty()) paths.push_back("-");
    const std::optional<samples::shard> shard_opt = samples::shard::from_option(shard_text, prog);
    if (!shard_opt) return 2;
    const samples::shard sh = *shard_opt;
    if (quiet && !check) {
        std::fprintf(stderr, "%s: --quiet is for -c only\n", prog);
        return 2;
    }

    static char outbuf[1 << 16];
    if (::isatty(STDOUT_FILENO) != 1) std::setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    const bool bar = !no_progress && (progress || samples::console::stderr_is_terminal());
    samples::console con("files", bar);

    std::vector<item> items;
    bool failed = false;
    std::uint64_t bad_lines = 0;
    if (check) {
        failed = !read_lists(paths, items, bad_lines, con, sh);
    } else {
        walker w(con, items, sh);
        for (const std::string& p : paths) w.root(p);
        failed = w.failed();
        std::stable_sort(items.begin(), items.end(), [](const item& a, const item& b) { return a.path < b.path; });
    }
    std::uint64_t total_bytes = 0;
    for (const item& it : items) total_bytes += it.size;
    con.set_totals(items.size(), total_bytes);

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // once, not per file
    const EVP_MD* md = fetched;
#else
    const EVP_MD* md = EVP_sha256();
#endif
    if (!md) {
        std::fprintf(stderr, "%s: OpenSSL has no SHA-256\n", prog);
        return 1;
    }

    taskport::runtime_options opts;
    opts.workers = jobs;
    std::uint64_t hash_failed = 0, unreadable = 0, mismatched = 0, abandoned = 0, printed = 0;
    int signo = 0, status_on_signal = 0;
    {
        taskport::runtime rt(opts);
        samples::interrupt intr(rt);  // SIGINT/SIGTERM caught from here on
        engine e(rt, con, items, md, chunk, max_memory, check, quiet);
        if (const char* hold = std::getenv("TASKPORT_HASH_TEST_HOLD")) e.hold = hold;
        con.start_clock();
        rt.block_on(run_all(e, std::min<std::size_t>(8 * jobs, std::max<std::size_t>(items.size(), 1)), bar, intr));
        hash_failed = e.failed;
        unreadable = e.unreadable;
        mismatched = e.mismatched;
        signo = intr.signal();
        status_on_signal = intr.exit_status();
        abandoned = e.abandoned.load();
        printed = e.printed();
    }
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(fetched);
#endif
    con.finish();
    if (check) {
        std::string warn;
        if (bad_lines) warn += std::string(prog) + ": WARNING: " + plural(bad_lines, "line is", "lines are") + " improperly formatted\n";
        if (unreadable) warn += std::string(prog) + ": WARNING: " + plural(unreadable, "listed file", "listed files") + " could not be read\n";
        if (mismatched) warn += std::string(prog) + ": WARNING: " + plural(mismatched, "computed checksum", "computed checksums") + " did NOT match\n";
        if (!warn.empty()) con.err(warn);
    }
    if (signo != 0) {
        const std::uint64_t total = items.size();
        con.err(std::string(prog) + ": interrupted by " + samples::interrupt::name(signo) + ": " +
                std::to_string(printed) + " of " + plural(total, "file", "files") + (check ? " checked" : " hashed") +
                " (printed in order), " + std::to_string(abandoned) + " in flight abandoned, " +
                std::to_string(total - printed) + " not printed\n");
    }
    std::fflush(stdout);
    if (std::ferror(stdout)) {
        std::fprintf(stderr, "%s: write error: %s\n", prog, os_message(errno).c_str());
        return 1;
    }
    if (signo != 0) return status_on_signal;
    return failed || hash_failed ? 1 : 0;
}
