// test_io_file.cpp — io::file on whichever backend TASKPORT_IO_BACKEND names (io_uring, or the
// blocking pool under epoll): round trips, end of file, a missing file, open modes, zero-length
// and huge buffers, the callback forms, cancellation racing completion (every operation
// completes exactly once), shutdown with operations in flight, and — under io_uring — the
// backend's own cancel path on an operation that is certainly pending (a pipe with no writer).
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include "service.hpp"  // io's private header: the io_uring backend, for the pending-op tests

#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fstream>

#if defined(_WIN32)
#include <process.h>  // getpid
#else
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

using namespace taskport;
namespace io = taskport::io;
namespace fs = std::filesystem;
using tp_test::pattern;
using tp_test::run;
using tp_test::error_in;

namespace {

struct temp_dir : tp_test::temp_dir {
    temp_dir() : tp_test::temp_dir("file") {}
};

void write_plain(const fs::path& p, const std::vector<std::byte>& data) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    if (!f.flush()) throw std::runtime_error("write_plain: cannot write " + p.string());
}

std::vector<std::byte> read_plain(const fs::path& p) {
    std::vector<std::byte> out(fs::file_size(p));
    std::ifstream f(p, std::ios::binary);
    if (!f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size())))
        throw std::runtime_error("read_plain: cannot read " + p.string());
    return out;
}

task<io::file> open_file(runtime& rt, fs::path p, io::open_mode m) { co_return co_await io::file::open(rt, p, m); }

task<std::size_t> write_at(io::file& f, std::uint64_t off, std::span<const std::byte> b) {
    co_return co_await f.write_at(off, b);
}
task<std::size_t> read_at(io::file& f, std::uint64_t off, std::span<std::byte> b) {
    co_return co_await f.read_at(off, b);
}
task<void> sync(io::file& f) { co_await f.sync(); }

}  // namespace

TEST_CASE("file: write then read back, at offsets, through one runtime") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const auto data = pattern(100'000, 1);
    io::file f = run(rt, open_file(rt, dir / "a", io::open_mode::read_write | io::open_mode::create));
    REQUIRE(f.is_open());
    REQUIRE(f.size() == 0);

    REQUIRE(run(rt, write_at(f, 0, data)) == data.size());
    REQUIRE(f.size() == data.size());
    std::vector<std::byte> back(data.size());
    REQUIRE(run(rt, read_at(f, 0, back)) == data.size());
    REQUIRE(back == data);

    // A part in the middle, and an overwrite there.
    std::vector<std::byte> mid(1000);
    REQUIRE(run(rt, read_at(f, 12'345, mid)) == mid.size());
    REQUIRE(std::memcmp(mid.data(), data.data() + 12'345, mid.size()) == 0);
    const auto patch = pattern(777, 2);
    REQUIRE(run(rt, write_at(f, 50'000, patch)) == patch.size());
    run(rt, sync(f));
    f.close();
    REQUIRE_FALSE(f.is_open());

    auto expect = data;
    std::memcpy(expect.data() + 50'000, patch.data(), patch.size());
    REQUIRE(read_plain(dir / "a") == expect);

    // Writing past the end leaves a hole of zeros.
    io::file g = run(rt, open_file(rt, dir / "a", io::open_mode::read_write));
    const auto tail = pattern(10, 3);
    REQUIRE(run(rt, write_at(g, 200'000, tail)) == tail.size());
    REQUIRE(g.size() == 200'010);
    std::vector<std::byte> hole(100, std::byte{0xff});
    REQUIRE(run(rt, read_at(g, 150'000, hole)) == hole.size());
    for (std::byte b : hole) REQUIRE(b == std::byte{0});
}

TEST_CASE("file: end of file") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const auto data = pattern(4096 + 17, 4);
    write_plain(dir / "f", data);
    io::file f = run(rt, open_file(rt, dir / "f", io::open_mode::read));
    std::vector<std::byte> buf(10'000);
    // A read crossing the end stops there; at or past the end it reads nothing.
    REQUIRE(run(rt, read_at(f, 0, buf)) == data.size());
    REQUIRE(std::memcmp(buf.data(), data.data(), data.size()) == 0);
    REQUIRE(run(rt, read_at(f, data.size() - 5, buf)) == 5);
    REQUIRE(run(rt, read_at(f, data.size(), buf)) == 0);
    REQUIRE(run(rt, read_at(f, std::uint64_t{1} << 40, buf)) == 0);

    io::file empty = run(rt, open_file(rt, dir / "empty", io::open_mode::create | io::open_mode::read));
    REQUIRE(empty.size() == 0);
    REQUIRE(run(rt, read_at(empty, 0, buf)) == 0);
}

TEST_CASE("file: a missing file is a system_error naming ENOENT and the path") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const fs::path missing = dir / "no-such-file";
    for (io::open_mode m : {io::open_mode::read, io::open_mode::write, io::open_mode::read_write}) {
        std::string what;
        REQUIRE(error_in(rt, open_file(rt, missing, m), &what) == std::errc::no_such_file_or_directory);
        REQUIRE(what.find(missing.string()) != std::string::npos);
    }
    REQUIRE_FALSE(fs::exists(missing));
    // A directory that is not there: the same error, and nothing is created.
    REQUIRE(error_in(rt, open_file(rt, dir / "nodir" / "x", io::open_mode::create)) ==
            std::errc::no_such_file_or_directory);
    REQUIRE_THROWS_AS(io::file::open(rt, dir / "x", io::open_mode{}), std::invalid_argument);
}

TEST_CASE("file: open modes") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const auto abc = tp_test::bytes_of("abc");
    const auto def = tp_test::bytes_of("def");

    SECTION("create makes the file; without truncate it keeps what is there") {
        io::file f = run(rt, open_file(rt, dir / "c", io::open_mode::create));
        REQUIRE(run(rt, write_at(f, 0, abc)) == 3);
        f.close();
        io::file g = run(rt, open_file(rt, dir / "c", io::open_mode::create | io::open_mode::read));
        REQUIRE(g.size() == 3);
    }
    SECTION("truncate cuts the file to nothing") {
        write_plain(dir / "t", pattern(5000, 5));
        io::file f = run(rt, open_file(rt, dir / "t", io::open_mode::truncate));
        REQUIRE(f.size() == 0);
    }
    SECTION("append writes at the end whatever the offset") {
        io::file f = run(rt, open_file(rt, dir / "ap", io::open_mode::create | io::open_mode::append));
        REQUIRE(run(rt, write_at(f, 0, abc)) == 3);
        REQUIRE(run(rt, write_at(f, 0, def)) == 3);
        f.close();
        auto got = read_plain(dir / "ap");
        REQUIRE(tp_test::text_of(got) == "abcdef");
    }
    SECTION("a read-only file refuses writes, a write-only one reads") {
        write_plain(dir / "ro", pattern(10, 6));
        io::file r = run(rt, open_file(rt, dir / "ro", io::open_mode::read));
        REQUIRE(error_in(rt, write_at(r, 0, abc)) == std::errc::bad_file_descriptor);
        io::file w = run(rt, open_file(rt, dir / "ro", io::open_mode::write));
        std::vector<std::byte> buf(4);
        REQUIRE(error_in(rt, read_at(w, 0, buf)) == std::errc::bad_file_descriptor);
    }
    SECTION("a FIFO opens but has no positions, on every backend") {
#if defined(_WIN32)
        // No mkfifo: a named pipe is Windows' FIFO opened by path (\\.\pipe\...).
        const std::string name = "\\\\.\\pipe\\taskport-test-" + std::to_string(::getpid());
        HANDLE srv = ::CreateNamedPipeA(name.c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                        PIPE_TYPE_BYTE, 1, 4096, 4096, 0, nullptr);
        REQUIRE(srv != INVALID_HANDLE_VALUE);
        struct closer {
            HANDLE h;
            ~closer() { ::CloseHandle(h); }
        } close_srv{srv};
        io::file f = run(rt, open_file(rt, fs::path(name), io::open_mode::read_write));
        std::vector<std::byte> buf(4);
        REQUIRE(error_in(rt, read_at(f, 0, buf)) == std::errc::invalid_seek);
        REQUIRE(error_in(rt, write_at(f, 0, abc)) == std::errc::invalid_seek);
#else
        REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
        io::file f = run(rt, open_file(rt, dir / "fifo", io::open_mode::read_write));  // no wait
        std::vector<std::byte> buf(4);
        REQUIRE(error_in(rt, read_at(f, 0, buf)) == std::errc::invalid_seek);
        REQUIRE(error_in(rt, write_at(f, 0, abc)) == std::errc::invalid_seek);
#endif
    }
    SECTION("a closed or moved-from file") {
        io::file f = run(rt, open_file(rt, dir / "m", io::open_mode::create | io::open_mode::read_write));
        io::file g = std::move(f);
        REQUIRE_FALSE(f.is_open());
        REQUIRE(g.is_open());
        std::vector<std::byte> buf(4);
        REQUIRE(error_in(rt, read_at(f, 0, buf)) == std::errc::bad_file_descriptor);
        try {
            (void)f.size();
            FAIL("size() of a moved-from file");
        } catch (const std::system_error& e) {
            REQUIRE(e.code() == std::errc::bad_file_descriptor);
        }
        g.close();
        g.close();  // idempotent
        REQUIRE(error_in(rt, write_at(g, 0, abc)) == std::errc::bad_file_descriptor);
    }
}

TEST_CASE("file: zero-length and huge buffers") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    io::file f = run(rt, open_file(rt, dir / "h", io::open_mode::create | io::open_mode::read_write));

    std::vector<std::byte> none;
    REQUIRE(run(rt, write_at(f, 0, none)) == 0);
    REQUIRE(run(rt, read_at(f, 0, none)) == 0);
    REQUIRE(f.size() == 0);

    // Large enough to take many kernel-sized pieces on the pool and several pages of io_uring
    // work; read back into a larger buffer, so the read also meets the end of the file.
    const std::size_t n = static_cast<std::size_t>(tp_test::scaled(64L << 20));
    const auto big = pattern(n, 7);
    REQUIRE(run(rt, write_at(f, 3, big)) == n);
    REQUIRE(f.size() == n + 3);
    std::vector<std::byte> back(n + 4096);
    REQUIRE(run(rt, read_at(f, 3, back)) == n);
    REQUIRE(std::memcmp(back.data(), big.data(), n) == 0);
}

TEST_CASE("file: callback forms run as tasks with (error_code, bytes)") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    io::file f = run(rt, open_file(rt, dir / "cb", io::open_mode::create | io::open_mode::read_write));
    const int n = static_cast<int>(tp_test::scaled(200));
    const std::size_t piece = 4096;
    std::vector<std::vector<std::byte>> pieces;
    for (int i = 0; i < n; ++i) pieces.push_back(pattern(piece, static_cast<unsigned>(i)));

    tp_test::counter_latch wrote;
    std::atomic<int> write_errors{0}, off_worker{0};
    for (int i = 0; i < n; ++i)
        f.async_write_at(static_cast<std::uint64_t>(i) * piece, pieces[i], [&](std::error_code ec, std::size_t k) {
            if (ec || k != piece) ++write_errors;
            if (!taskport::detail::current_executor()) ++off_worker;
            wrote.arrive();
        });
    REQUIRE(wrote.wait_for(n));
    REQUIRE(write_errors == 0);
    REQUIRE(off_worker == 0);
    REQUIRE(f.size() == piece * static_cast<std::size_t>(n));

    std::vector<std::vector<std::byte>> back(n, std::vector<std::byte>(piece));
    tp_test::counter_latch read;
    std::atomic<int> read_errors{0};
    for (int i = 0; i < n; ++i)
        f.async_read_at(static_cast<std::uint64_t>(i) * piece, back[i], [&](std::error_code ec, std::size_t k) {
            if (ec || k != piece) ++read_errors;
            read.arrive();
        });
    REQUIRE(read.wait_for(n));
    REQUIRE(read_errors == 0);
    REQUIRE(back == pieces);

    // Errors come the same way: a closed file, from a worker (so the callback is still a task).
    io::file closed;
    tp_test::counter_latch done;
    std::error_code got;
    rt.post([&] {
        closed.async_read_at(0, back[0], [&](std::error_code ec, std::size_t) {
            got = ec;
            done.arrive();
        });
    });
    REQUIRE(done.wait_for(1));
    REQUIRE(got == std::errc::bad_file_descriptor);

    // The file object may go away while its operations are in flight: they hold the descriptor.
    tp_test::counter_latch last;
    std::error_code last_ec;
    std::size_t last_n = 0;
    f.async_read_at(0, back[0], [&](std::error_code ec, std::size_t k) {
        last_ec = ec;
        last_n = k;
        last.arrive();
    });
    f.close();
    REQUIRE(last.wait_for(1));
    REQUIRE_FALSE(last_ec);
    REQUIRE(last_n == piece);
    REQUIRE(back[0] == pieces[0]);
}

TEST_CASE("file: cancelling racing completion — every read completes exactly once") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const std::size_t piece = 64 * 1024;
    const int n = static_cast<int>(tp_test::scaled(400));
    const auto data = pattern(piece * 8, 8);
    write_plain(dir / "r", data);
    io::file f = run(rt, open_file(rt, dir / "r", io::open_mode::read));

    std::vector<std::vector<std::byte>> bufs(n, std::vector<std::byte>(piece));
    std::vector<future<std::size_t>> futs;
    for (int i = 0; i < n; ++i) futs.push_back(rt.spawn(read_at(f, (i % 8) * piece, bufs[i])));
    // Cancel every other one at once, the rest after their neighbour has finished.
    for (int i = 0; i < n; i += 2) futs[i].cancel();

    tp_test::watchdog w("cancelled file reads");
    int completed = 0, cancelled = 0;
    for (int i = 0; i < n; ++i) {
        if (i % 2 == 1) futs[i].cancel();
        std::error_code ec = tp_test::outcome(futs[i]);
        if (!ec) {
            ++completed;
            REQUIRE(std::memcmp(bufs[i].data(), data.data() + (i % 8) * piece, piece) == 0);
        } else {
            REQUIRE(ec == std::errc::operation_canceled);
            ++cancelled;
        }
    }
    REQUIRE(completed + cancelled == n);
}

TEST_CASE("file: shutdown with operations in flight completes each exactly once") {
    temp_dir dir;
    const std::size_t piece = 256 * 1024;
    const auto data = pattern(piece * 4, 9);
    write_plain(dir / "s", data);
    const int n = static_cast<int>(tp_test::scaled(200));
    std::vector<std::vector<std::byte>> bufs(2 * n, std::vector<std::byte>(piece));

    std::atomic<int> ok{0}, aborted{0}, other{0};
    std::vector<future<std::size_t>> futs;
    {
        runtime rt(tp_test::workers(2));
        io::file f = run(rt, open_file(rt, dir / "s", io::open_mode::read));
        io::file w = run(rt, open_file(rt, dir / "w", io::open_mode::create | io::open_mode::write));
        for (int i = 0; i < n; ++i) {
            f.async_read_at((i % 4) * piece, bufs[i], [&](std::error_code ec, std::size_t k) {
                if (!ec && k == piece)
                    ++ok;
                else if (ec == tp_test::aborted)
                    ++aborted;
                else
                    ++other;
            });
            futs.push_back(rt.spawn(write_at(w, static_cast<std::uint64_t>(i) * piece, bufs[n + i])));
        }
        tp_test::watchdog wd("shutdown with file operations in flight");
        rt.shutdown();
    }
    // Every callback ran before shutdown returned; every future is ready.
    REQUIRE(ok + aborted == n);
    REQUIRE(other == 0);
    for (auto& fu : futs) {
        REQUIRE(fu.is_ready());
        std::error_code ec = tp_test::outcome(fu);
        if (ec) REQUIRE(ec == std::errc::operation_canceled);
    }
}

// ---- io_uring's own cancel path, on an operation known to be pending --------------------------

namespace {

struct probe_op : io::detail::operation {
    explicit probe_op(tp_test::counter_latch& l) : operation(&probe_op::on_done, nullptr), latch(&l) {}
    static void on_done(taskport::detail::task_node* t) noexcept {
        auto* self = static_cast<probe_op*>(t);
        self->runs.fetch_add(1);
        self->latch->arrive();
    }
    tp_test::counter_latch* latch;
    std::atomic<int> runs{0};
};

// The stress race of each backend's cancel path: with every op pending, a second thread
// cancels them all while feed(i) gives the even-numbered ones a byte. Each completes exactly
// once, with operation_aborted, or (even ones only) with its byte.
template <class Op, class Feed>
void race_cancels_with_data(const std::vector<std::unique_ptr<Op>>& ops, tp_test::counter_latch& done,
                            Feed feed) {
    const int n = static_cast<int>(ops.size());
    std::thread canceller([&] {
        for (int i = 0; i < n; ++i) io::detail::cancel(ops[i].get());
    });
    for (int i = 0; i < n; i += 2) feed(i);
    canceller.join();
    REQUIRE(done.wait_for(n));
    for (int i = 0; i < n; ++i) {
        REQUIRE(ops[i]->runs.load() == 1);
        if (ops[i]->ec) {
            REQUIRE(ops[i]->ec == tp_test::aborted);
        } else {
            REQUIRE(i % 2 == 0);
            REQUIRE(ops[i]->bytes == 1);
        }
    }
}

#if !defined(_WIN32)
struct pipe_fds {
    int r = -1, w = -1;
    pipe_fds() {
        int p[2];
        tp_test::check_posix(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
        r = p[0];
        w = p[1];
    }
    ~pipe_fds() {
        ::close(r);
        ::close(w);
    }
};
#endif

}  // namespace

TEST_CASE("file: io_uring cancels a pending operation, which completes once with operation_aborted") {
#if defined(_WIN32)
    TP_SKIP("io_uring is Linux only");
#else
    runtime rt(tp_test::workers(2));
    auto& svc = io::detail::service_of(rt);
    if (!svc.uring) {
        SUCCEED("this run does not use io_uring");
        return;
    }
    pipe_fds p;  // nobody writes: a read stays pending in the kernel until cancelled
    tp_test::counter_latch done;
    std::array<std::byte, 16> buf{};

    probe_op a(done);
    a.svc = &svc;
    svc.uring->read_at(&a, p.r, buf.data(), buf.size(), 0);
    io::detail::cancel(&a);
    REQUIRE(done.wait_for(1));
    REQUIRE(a.ec == tp_test::aborted);
    REQUIRE(a.place.load() == nullptr);

    // Cancelled before it is submitted: refused at once, still exactly one completion.
    probe_op b(done);
    b.svc = &svc;
    io::detail::cancel(&b);
    svc.uring->read_at(&b, p.r, buf.data(), buf.size(), 0);
    REQUIRE(done.wait_for(2));
    REQUIRE(b.ec == tp_test::aborted);

    // A pending read that data arrives for completes with it, and a late cancel does nothing.
    probe_op c(done);
    c.svc = &svc;
    svc.uring->read_at(&c, p.r, buf.data(), buf.size(), 0);
    REQUIRE(::write(p.w, "xyz", 3) == 3);
    REQUIRE(done.wait_for(3));
    io::detail::cancel(&c);
    REQUIRE_FALSE(c.ec);
    REQUIRE(c.bytes == 3);

    // Pending at shutdown: aborted, and shutdown waits for it.
    probe_op d(done);
    d.svc = &svc;
    svc.uring->read_at(&d, p.r, buf.data(), buf.size(), 0);
    {
        tp_test::watchdog w("io_uring shutdown with a pending read");
        rt.shutdown();
    }
    REQUIRE(done.wait_for(4));
    REQUIRE(d.ec == tp_test::aborted);
    for (probe_op* op : {&a, &b, &c, &d}) REQUIRE(op->runs.load() == 1);
#endif
}

TEST_CASE("file: io_uring stress — many pending reads cancelled from other threads as data arrives") {
#if defined(_WIN32)
    TP_SKIP("io_uring is Linux only");
#else
    runtime rt(tp_test::workers(2));
    auto& svc = io::detail::service_of(rt);
    if (!svc.uring) {
        SUCCEED("this run does not use io_uring");
        return;
    }
    // More operations than the submission ring has entries, each on its own pipe, half of them
    // fed data while a second thread cancels all of them: each completes exactly once, with its
    // data or with operation_aborted.
    int n = static_cast<int>(tp_test::scaled(600));
    rlimit lim{};  // two descriptors per operation: ask for them, or do fewer
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        rlim_t want = static_cast<rlim_t>(2 * n + 256);
        if (lim.rlim_cur < want && lim.rlim_max >= want) {
            lim.rlim_cur = want;
            ::setrlimit(RLIMIT_NOFILE, &lim);
            ::getrlimit(RLIMIT_NOFILE, &lim);
        }
        if (lim.rlim_cur < want) n = static_cast<int>((lim.rlim_cur - 256) / 2);
    }
    std::vector<std::unique_ptr<pipe_fds>> pipes;
    std::vector<std::unique_ptr<probe_op>> ops;
    std::vector<std::array<std::byte, 8>> bufs(n);
    tp_test::counter_latch done;
    for (int i = 0; i < n; ++i) {
        pipes.push_back(std::make_unique<pipe_fds>());
        ops.push_back(std::make_unique<probe_op>(done));
        ops[i]->svc = &svc;
    }
    for (int i = 0; i < n; ++i) svc.uring->read_at(ops[i].get(), pipes[i]->r, bufs[i].data(), bufs[i].size(), 0);
    race_cancels_with_data(ops, done, [&](int i) { REQUIRE(::write(pipes[i]->w, "d", 1) == 1); });
#endif
}

// ---- the IOCP backend's own cancel path, on an operation known to be pending (Windows) ------
// What the two io_uring tests above check, on the completion port: an overlapped ReadFile on a
// named pipe that nobody writes to stays pending in the kernel until CancelIoEx or data.

#if defined(_WIN32)
namespace {

// A named pipe: `r`, the overlapped server end the backend reads, associated with the port;
// `w`, a plain client end the test writes to.
struct named_pipe {
    HANDLE r = INVALID_HANDLE_VALUE, w = INVALID_HANDLE_VALUE;
    io::detail::service* svc;
    explicit named_pipe(io::detail::service& s) : svc(&s) {
        static std::atomic<int> n{0};
        const std::string name = "\\\\.\\pipe\\taskport-test-iocp-" + std::to_string(::getpid()) + "-" +
                                 std::to_string(n++);
        r = ::CreateNamedPipeA(name.c_str(), PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED, PIPE_TYPE_BYTE, 1,
                               4096, 4096, 0, nullptr);
        tp_test::check_win32(r != INVALID_HANDLE_VALUE, "CreateNamedPipe");
        w = ::CreateFileA(name.c_str(), GENERIC_WRITE, 0, nullptr, OPEN_EXISTING, 0, nullptr);
        tp_test::check_win32(w != INVALID_HANDLE_VALUE, "CreateFile (pipe client)");
        svc->iocp->associate(reinterpret_cast<std::uintptr_t>(r));
    }
    ~named_pipe() {
        svc->iocp->forget(reinterpret_cast<std::uintptr_t>(r));
        ::CloseHandle(w);
        ::CloseHandle(r);
    }
    void write(const char* s) const {
        DWORD n = 0;
        tp_test::check_win32(::WriteFile(w, s, static_cast<DWORD>(std::strlen(s)), &n, nullptr), "WriteFile");
    }
};

struct pipe_read_op : probe_op {
    using probe_op::probe_op;
    std::array<std::byte, 8> buf{};

    static int issue(io::detail::operation* o) noexcept {
        auto* op = static_cast<pipe_read_op*>(o);
        auto* ov = reinterpret_cast<OVERLAPPED*>(op->plat.overlapped);
        if (::ReadFile(reinterpret_cast<HANDLE>(op->plat.handle), op->buf.data(),
                       static_cast<DWORD>(op->buf.size()), nullptr, ov)) {
            op->plat.transferred = static_cast<std::uint32_t>(ov->InternalHigh);
            return 0;
        }
        return static_cast<int>(::GetLastError());
    }
    static bool finish(io::detail::operation* op) noexcept {
        op->ec = op->plat.error ? io::detail::win32_error(op->plat.error) : std::error_code();
        op->bytes = op->plat.error ? 0 : op->plat.transferred;
        return true;
    }
    // Starts the read on p; finished at once (data already there, or refused): completed here.
    void start(io::detail::service& s, const named_pipe& p) {
        svc = &s;
        perform = &finish;
        if (!s.iocp->start(this, reinterpret_cast<std::uintptr_t>(p.r), &issue)) io::detail::complete(this);
    }
};

}  // namespace
#endif

TEST_CASE("file: IOCP cancels a pending operation, which completes once with operation_aborted") {
#if !defined(_WIN32)
    SUCCEED("the completion port is Windows only");
#else
    runtime rt(tp_test::workers(2));
    auto& svc = io::detail::service_of(rt);
    REQUIRE(svc.iocp);
    named_pipe p(svc);
    tp_test::counter_latch done;

    pipe_read_op a(done);
    a.start(svc, p);
    REQUIRE(a.place.load() != nullptr);  // nobody wrote: pending in the kernel
    io::detail::cancel(&a);
    REQUIRE(done.wait_for(1));
    REQUIRE(a.ec == tp_test::aborted);
    REQUIRE(a.place.load() == nullptr);

    // Cancelled before it is started: refused at once, still exactly one completion.
    pipe_read_op b(done);
    io::detail::cancel(&b);
    b.start(svc, p);
    REQUIRE(done.wait_for(2));
    REQUIRE(b.ec == tp_test::aborted);

    // A pending read that data arrives for completes with it, and a late cancel does nothing.
    pipe_read_op c(done);
    c.start(svc, p);
    p.write("xyz");
    REQUIRE(done.wait_for(3));
    io::detail::cancel(&c);
    REQUIRE_FALSE(c.ec);
    REQUIRE(c.bytes == 3);
    REQUIRE(tp_test::text_of(std::span(c.buf).first(3)) == "xyz");

    // Pending at shutdown: aborted, and shutdown waits for it.
    pipe_read_op d(done);
    d.start(svc, p);
    {
        tp_test::watchdog w("IOCP shutdown with a pending read");
        rt.shutdown();
    }
    REQUIRE(done.wait_for(4));
    REQUIRE(d.ec == tp_test::aborted);
    for (probe_op* op : {&a, &b, &c, &d}) REQUIRE(op->runs.load() == 1);
#endif
}

TEST_CASE("file: IOCP stress — many pending reads cancelled from another thread as data arrives") {
#if !defined(_WIN32)
    SUCCEED("the completion port is Windows only");
#else
    runtime rt(tp_test::workers(2));
    auto& svc = io::detail::service_of(rt);
    REQUIRE(svc.iocp);
    // Each read on its own pipe; half of them fed data while a second thread cancels all of
    // them: each completes exactly once, with its data or with operation_aborted.
    const int n = static_cast<int>(tp_test::scaled(600));
    std::vector<std::unique_ptr<named_pipe>> pipes;
    std::vector<std::unique_ptr<pipe_read_op>> ops;
    tp_test::counter_latch done;
    for (int i = 0; i < n; ++i) {
        pipes.push_back(std::make_unique<named_pipe>(svc));
        ops.push_back(std::make_unique<pipe_read_op>(done));
    }
    for (int i = 0; i < n; ++i) ops[i]->start(svc, *pipes[i]);
    race_cancels_with_data(ops, done, [&](int i) { pipes[i]->write("d"); });
#endif
}

// ---- the page-cache fast path (reads copy what is cached on the worker, preadv2 RWF_NOWAIT) ----
// Every test above reads files it has just written, which the fast path serves; here it is off,
// so the same reads go through io_uring or the blocking pool.

namespace {
struct fast_path_off {
    fast_path_off() { io::detail::set_file_fast_path(false); }
    ~fast_path_off() { io::detail::set_file_fast_path(true); }
};
}  // namespace

TEST_CASE("file: with the fast path off, reads go through the backend: bytes, end of file, cancel races") {
    fast_path_off off;
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const std::size_t piece = 64 * 1024;
    const auto data = pattern(piece * 8 + 100, 10);
    write_plain(dir / "b", data);
    io::file f = run(rt, open_file(rt, dir / "b", io::open_mode::read));

    std::vector<std::byte> all(data.size() + 50);
    REQUIRE(run(rt, read_at(f, 0, all)) == data.size());  // stops at end of file
    REQUIRE(std::memcmp(all.data(), data.data(), data.size()) == 0);
    REQUIRE(run(rt, read_at(f, data.size(), all)) == 0);

    const int n = static_cast<int>(tp_test::scaled(200));
    std::vector<std::vector<std::byte>> bufs(n, std::vector<std::byte>(piece));
    std::vector<future<std::size_t>> futs;
    for (int i = 0; i < n; ++i) futs.push_back(rt.spawn(read_at(f, (i % 8) * piece, bufs[i])));
    for (int i = 0; i < n; i += 2) futs[i].cancel();
    tp_test::watchdog w("cancelled file reads, fast path off");
    int completed = 0, cancelled = 0;
    for (int i = 0; i < n; ++i) {
        std::error_code ec = tp_test::outcome(futs[i]);
        if (!ec) {
            ++completed;
            REQUIRE(std::memcmp(bufs[i].data(), data.data() + (i % 8) * piece, piece) == 0);
        } else {
            REQUIRE(ec == std::errc::operation_canceled);
            ++cancelled;
        }
    }
    REQUIRE(completed + cancelled == n);
    REQUIRE(completed >= n / 2);  // only the even ones were cancelled
}

TEST_CASE("file: the fast path and the backend agree on a file read in odd-sized pieces") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const auto data = pattern(1'000'003, 11);
    write_plain(dir / "o", data);
    io::file f = run(rt, open_file(rt, dir / "o", io::open_mode::read));
    for (bool fast : {true, false}) {
        io::detail::set_file_fast_path(fast);
        std::vector<std::byte> back(data.size()), piece(40'961);
        std::uint64_t off = 0;
        for (;;) {
            const std::size_t k = run(rt, read_at(f, off, piece));
            std::memcpy(back.data() + off, piece.data(), k);
            off += k;
            if (k < piece.size()) break;
        }
        io::detail::set_file_fast_path(true);
        REQUIRE(off == data.size());
        REQUIRE(back == data);
    }
}

TEST_CASE("file: a file that outlives its runtime: operations fail with operation_aborted, close works") {
    temp_dir dir;
    write_plain(dir / "old", pattern(4096, 5));
    const long fds_before = tp_test::open_fds();
    io::file f;
    {
        runtime rt(tp_test::workers(1));
        f = run(rt, open_file(rt, dir / "old", io::open_mode::read_write));
    }
    REQUIRE(f.is_open());
    std::vector<std::byte> buf(4096);
    // Callback forms: no worker is left, so the callback runs inside the call, once, with the error.
    for (int kind = 0; kind < 2; ++kind) {
        int calls = 0;
        std::error_code got;
        auto cb = [&](std::error_code ec, std::size_t) {
            got = ec;
            ++calls;
        };
        if (kind == 0)
            f.async_read_at(0, buf, cb);
        else
            f.async_write_at(0, buf, cb);
        CHECK(calls == 1);
        CHECK(got == tp_test::aborted);
    }
    // Coroutine forms, awaited on another runtime: they throw operation_aborted naming the call.
    runtime other(tp_test::workers(1));
    std::string what;
    CHECK(error_in(other, read_at(f, 0, buf), &what) == tp_test::aborted);
    CHECK(what.find("read_at") != std::string::npos);
    CHECK(error_in(other, write_at(f, 0, buf)) == tp_test::aborted);
    CHECK(error_in(other, sync(f)) == tp_test::aborted);
    f.close();
    CHECK_FALSE(f.is_open());
    CHECK(tp_test::open_fds() == fds_before);
}

TEST_CASE("file: a file moved with a callback read in flight: the read completes") {
    runtime rt(tp_test::workers(2));
    temp_dir dir;
    const auto data = pattern(8192, 8);
    write_plain(dir / "mv", data);
    std::vector<io::file> v;
    v.push_back(run(rt, open_file(rt, dir / "mv", io::open_mode::read)));
    std::vector<std::byte> buf(8192);
    tp_test::counter_latch done;
    std::error_code got;
    std::size_t n = 0;
    v[0].async_read_at(0, buf, [&](std::error_code ec, std::size_t k) {
        got = ec;
        n = k;
        done.arrive();
    });
    for (int i = 0; i < 64; ++i) v.emplace_back();
    REQUIRE(done.wait_for(1));
    CHECK_FALSE(got);
    CHECK(n == data.size());
    CHECK(buf == data);
    CHECK(v[0].is_open());
}
