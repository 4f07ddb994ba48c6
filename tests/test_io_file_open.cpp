// test_io_file_open.cpp — io::file::open on whichever backend TASKPORT_IO_BACKEND names. Under
// io_uring the open is an IORING_OP_OPENAT request (io/src/uring_backend.cpp; the blocking pool
// is not used: checked by its thread count); under epoll/kqueue/IOCP a call on the blocking pool.
// Both must agree: modes and the create-exclusive-first steps, O_CLOEXEC, errors naming the path
// (ENOENT, EACCES, ENOTDIR, EISDIR), a cancel before the open starts (nothing created), a cancel
// while it is under way (completes at once; the late open is closed and the file it created
// removed), many opens cancelled or cut off by the runtime's shutdown, and no descriptor leaked
// (counted in /proc/self/fd before and after).
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include "service.hpp"  // io's private header: the pool's test hook and thread count

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif
#if defined(__linux__)
#include <linux/fuse.h>
#include <poll.h>
#include <sys/mount.h>
#endif

using namespace taskport;
namespace io = taskport::io;
namespace fs = std::filesystem;
using tp_test::run;
using tp_test::catching;
using tp_test::error_in;

namespace {

struct temp_dir : tp_test::temp_dir {
    temp_dir() : tp_test::temp_dir("open") {}
};

// The gate every hooked "open" waits on (the library's test hook: on the pool thread before the
// call; under io_uring on the worker that took the kernel's result, before it is handed over).
struct call_gate {
    std::mutex mu;
    std::condition_variable cv;
    long entered = 0;
    long finished = 0;
    bool open = false;

    void on_call(const char* call, bool done) {
        std::unique_lock<std::mutex> g(mu);
        if (std::strcmp(call, "open") != 0) return;
        if (done) {
            ++finished;
            cv.notify_all();
            return;
        }
        ++entered;
        cv.notify_all();
        cv.wait_for(g, tp_test::hang_deadline, [&] { return open; });
    }
    template <class Pred>
    bool wait(Pred p) {
        std::unique_lock<std::mutex> g(mu);
        return cv.wait_for(g, tp_test::hang_deadline, p);
    }
    long finished_now() {
        std::lock_guard<std::mutex> g(mu);
        return finished;
    }
    void release() {
        std::lock_guard<std::mutex> g(mu);
        open = true;
        cv.notify_all();
    }
    void hold_again() {
        std::lock_guard<std::mutex> g(mu);
        open = false;
    }
};

call_gate* the_gate = nullptr;

struct hooked {
    call_gate gate;
    hooked() {
        the_gate = &gate;
        io::detail::set_blocking_call_hook([](const char* c, bool done) { the_gate->on_call(c, done); });
    }
    ~hooked() {
        gate.release();
        gate.wait([&] { return gate.finished >= gate.entered; });
        io::detail::set_blocking_call_hook(nullptr);
        the_gate = nullptr;
    }
};

task<io::file> open_file(runtime& rt, fs::path p, io::open_mode m) { co_return co_await io::file::open(rt, p, m); }

// Opens once the test has cancelled this very task (it waits on `go` after saying `started`):
// the open then finds its task cancelled before it starts (operation_aborted, nothing opened).
// The latches are tp_test::counter_latch (a mutex and a condition variable), not std::latch:
// with std::latch this test hung in about 1 of 4 runs under Wine (mingw-w64's libstdc++ 12,
// whose atomic wait has no futex there and uses its own fallback; GCC bug 106183 describes a
// lost wake-up in that fallback), and in none of 35 runs without. The mechanism was not traced.
task<std::error_code> open_after_cancel(runtime& rt, fs::path p, io::open_mode m,
                                        tp_test::counter_latch& started, tp_test::counter_latch& go) {
    started.arrive();
    go.wait_for(1);  // blocks this worker briefly: the test thread cancels, then opens the latch
    try {
        io::file f = co_await io::file::open(rt, p, m);
    } catch (const std::system_error& e) {
        co_return e.code();
    }
    co_return std::error_code();
}

task<std::size_t> write_at(io::file& f, std::uint64_t off, std::span<const std::byte> b) {
    co_return co_await f.write_at(off, b);
}
task<std::size_t> read_at(io::file& f, std::uint64_t off, std::span<std::byte> b) {
    co_return co_await f.read_at(off, b);
}


// The OPENAT path is opt-in (TASKPORT_URING_OPEN=1): this file tests it wherever io_uring is the
// backend, unless the environment already chose (TASKPORT_URING_OPEN=0 tests the pool instead).
#ifndef _WIN32
[[maybe_unused]] const bool uring_open_enabled = [] {
    ::setenv("TASKPORT_URING_OPEN", "1", 0);
    return true;
}();
#endif

// True when this runtime's opens go to io_uring (the backend in use and TASKPORT_URING_OPEN=1).
bool uring_opens(runtime& rt) {
    const char* e = std::getenv("TASKPORT_URING_OPEN");
    return io::detail::service_of(rt).uring != nullptr && e && std::strcmp(e, "1") == 0;
}

std::vector<std::byte> bytes(const char* s) {
    std::vector<std::byte> v;
    for (; *s; ++s) v.push_back(static_cast<std::byte>(*s));
    return v;
}

}  // namespace

TEST_CASE("open: modes, the create-exclusive-first steps, close-on-exec; io_uring needs no pool thread") {
    temp_dir dir;
    const long before = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        const auto abc = bytes("abc");
        {  // create: a new file, empty
            io::file f = run(rt, open_file(rt, dir / "new", io::open_mode::write | io::open_mode::create));
            REQUIRE(fs::exists(dir / "new"));
            REQUIRE(f.size() == 0);
            REQUIRE(run(rt, write_at(f, 0, abc)) == 3);
#if !defined(_WIN32)
            const int fdfl = ::fcntl(f.native_handle(), F_GETFD);
            CHECK((fdfl & FD_CLOEXEC) != 0);
            const int fl = ::fcntl(f.native_handle(), F_GETFL);
            CHECK((fl & O_NONBLOCK) == 0);  // a regular file: cleared again
            CHECK((fl & O_ACCMODE) == O_WRONLY);
#endif
        }
        {  // create on an existing file keeps its content (the O_EXCL step fails, the plain open decides)
            io::file f = run(rt, open_file(rt, dir / "new", io::open_mode::read_write | io::open_mode::create));
            REQUIRE(f.size() == 3);
            std::vector<std::byte> buf(8);
            REQUIRE(run(rt, read_at(f, 0, buf)) == 3);
            CHECK(buf[2] == std::byte{'c'});
        }
        {  // create | truncate cuts it
            io::file f = run(rt, open_file(rt, dir / "new", io::open_mode::create | io::open_mode::truncate));
            CHECK(f.size() == 0);
        }
        {  // append: writes go to the end
            io::file f = run(rt, open_file(rt, dir / "new", io::open_mode::append));
            REQUIRE(run(rt, write_at(f, 0, abc)) == 3);
            REQUIRE(run(rt, write_at(f, 0, abc)) == 3);
            CHECK(f.size() == 6);
        }
#if !defined(_WIN32)
        {  // create through a symbolic link to nothing: O_EXCL refuses it, the plain O_CREAT makes the target
            fs::create_symlink(dir / "target", dir / "dangling");
            io::file f = run(rt, open_file(rt, dir / "dangling", io::open_mode::write | io::open_mode::create));
            CHECK(fs::exists(dir / "target"));
        }
#endif
        if (uring_opens(rt)) {
            INFO("io_uring: every open above was an OPENAT request");
            CHECK(io::detail::service_of(rt).pool.threads() == 0);
        }
    }
    CHECK(tp_test::eventually([&] { return tp_test::open_fds() == before; }));
}

TEST_CASE("open: errors carry the OS's code and name the path") {
    temp_dir dir;
    const long before = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        std::string what;
        SECTION("ENOENT") {
            REQUIRE(error_in(rt, open_file(rt, dir / "missing", io::open_mode::read), &what) ==
                    std::errc::no_such_file_or_directory);
            CHECK(what.find((dir / "missing").string()) != std::string::npos);
            REQUIRE(error_in(rt, open_file(rt, dir / "no" / "such", io::open_mode::write | io::open_mode::create)) ==
                    std::errc::no_such_file_or_directory);
            CHECK_FALSE(fs::exists(dir / "no"));
        }
#if !defined(_WIN32)
        SECTION("ENOTDIR, EISDIR") {
            { std::ofstream(dir / "plain") << "x"; }
            REQUIRE(error_in(rt, open_file(rt, dir / "plain" / "x", io::open_mode::read), &what) ==
                    std::errc::not_a_directory);
            CHECK(what.find("plain") != std::string::npos);
            REQUIRE(error_in(rt, open_file(rt, dir.path, io::open_mode::read), &what) == std::errc::is_a_directory);
            CHECK(what.find(dir.path.string()) != std::string::npos);
            REQUIRE(error_in(rt, open_file(rt, dir.path, io::open_mode::write | io::open_mode::create)) ==
                    std::errc::is_a_directory);
        }
        SECTION("EACCES") {
            { std::ofstream(dir / "locked") << "secret"; }
            fs::permissions(dir / "locked", fs::perms::owner_read | fs::perms::owner_write);
            if (::geteuid() != 0) {
                fs::permissions(dir / "locked", fs::perms::none);
                REQUIRE(error_in(rt, open_file(rt, dir / "locked", io::open_mode::read), &what) ==
                        std::errc::permission_denied);
                CHECK(what.find("locked") != std::string::npos);
            } else if (tp_test::tsan) {
                WARN("EACCES not checked: running as root, and TSan cannot fork a threaded process");
            } else {
                // root reads every file: a child that is nobody opens it (its own runtime, after fork).
                const fs::path p = dir / "locked";
                ::chmod(dir.path.c_str(), 0755);
                const pid_t pid = ::fork();
                REQUIRE(pid >= 0);
                if (pid == 0) {
                    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
                    int code = 3;
                    {
                        runtime child(tp_test::workers(2));
                        std::string w;
                        const std::error_code ec = error_in(child, open_file(child, p, io::open_mode::read), &w);
                        code = ec == std::errc::permission_denied && w.find("locked") != std::string::npos ? 0 : 1;
                    }
                    ::_exit(code);
                }
                int status = 0;
                REQUIRE(::waitpid(pid, &status, 0) == pid);
                REQUIRE(WIFEXITED(status));
                INFO("child: 0 EACCES naming the path, 1 another result, 2 setuid failed");
                CHECK(WEXITSTATUS(status) == 0);
            }
        }
#endif
    }
    CHECK(tp_test::eventually([&] { return tp_test::open_fds() == before; }));
}

TEST_CASE("open: a cancel before the open starts creates nothing") {
    temp_dir dir;
    const long before = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        for (int i = 0; i < 3; ++i) {
            tp_test::counter_latch started, go;
            auto f = rt.spawn(open_after_cancel(rt, dir / "new", io::open_mode::write | io::open_mode::create,
                                                started, go));
            REQUIRE(started.wait_for(1));
            f.cancel();
            go.arrive();
            tp_test::watchdog w("an open in a cancelled task");
            std::error_code ec = io::operation_aborted();
            try {
                ec = f.get();
            } catch (const std::exception&) {  // the future reports its task's cancel itself
            }
            REQUIRE(ec == io::operation_aborted());
            CHECK_FALSE(fs::exists(dir / "new"));
        }
    }
    CHECK(tp_test::eventually([&] { return tp_test::open_fds() == before; }));
    CHECK_FALSE(fs::exists(dir / "new"));
}

TEST_CASE("open: a cancel while the open is under way completes at once; the late open is undone") {
    temp_dir dir;
    { std::ofstream(dir / "existing") << "keep"; }
    hooked h;
    const long before = tp_test::open_fds();
    {
        // Two workers: under io_uring the hook holds the worker that took the kernel's result.
        runtime rt(tp_test::workers(2));
        long calls = 0;
        for (const char* name : {"new", "existing"}) {
            INFO("file: " << name);
            auto f = rt.spawn(catching(open_file(rt, dir / name, io::open_mode::write | io::open_mode::create)));
            ++calls;
            REQUIRE(h.gate.wait([&] { return h.gate.entered >= calls; }));  // the open is under way
            f.cancel();
            {
                tp_test::watchdog w("future::get of a cancelled open still under way");
                REQUIRE(f.get() == io::operation_aborted());
            }
            REQUIRE(h.gate.finished_now() == calls - 1);  // it did not wait for the open
            h.gate.release();                              // the open finishes after its operation
            REQUIRE(h.gate.wait([&] { return h.gate.finished >= calls; }));
            h.gate.hold_again();
        }
        CHECK_FALSE(fs::exists(dir / "new"));  // created late (or not at all), then removed
        std::string kept;
        std::ifstream(dir / "existing") >> kept;
        CHECK(kept == "keep");
        if (uring_opens(rt)) CHECK(io::detail::service_of(rt).pool.threads() == 0);
    }
    CHECK(tp_test::eventually([&] { return tp_test::open_fds() == before; }));
}

TEST_CASE("open: many opens, some cancelled, the rest cut off by shutdown: no descriptor or stray file left") {
    temp_dir dir;
    const long before = tp_test::open_fds();
    const int n = static_cast<int>(tp_test::scaled(300));
    std::vector<future<std::error_code>> results;
    std::vector<bool> aborted;
    {
        runtime rt(tp_test::workers(2));
        // Round 1: every third cancelled at once; each completes once, with a file or aborted.
        for (int i = 0; i < n; ++i) {
            const fs::path p = dir.path / ("a" + std::to_string(i));
            results.push_back(rt.spawn(catching(open_file(rt, p, io::open_mode::write | io::open_mode::create))));
            if (i % 3 == 0) results.back().cancel();
        }
        for (int i = 0; i < n; ++i) {
            tp_test::watchdog w("an open's future");
            std::error_code ec;
            try {
                ec = results[static_cast<std::size_t>(i)].get();
            } catch (const std::exception&) {  // cancelled before its task ran: no open at all
                REQUIRE(i % 3 == 0);
                ec = io::operation_aborted();
            }
            aborted.push_back(ec == io::operation_aborted());
            INFO("open " << i << ": " << ec.message());
            REQUIRE((!ec || ec == io::operation_aborted()));
            if (i % 3 != 0) REQUIRE(!ec);
        }
        // Round 2: left in flight when the runtime goes.
        results.clear();
        for (int i = 0; i < n; ++i) {
            const fs::path p = dir.path / ("b" + std::to_string(i));
            results.push_back(rt.spawn(catching(open_file(rt, p, io::open_mode::write | io::open_mode::create))));
        }
    }
    // Every open that did not deliver its file left none behind; every descriptor is closed.
    CHECK(tp_test::eventually([&] { return tp_test::open_fds() == before; }));
    for (int i = 0; i < n; ++i) {
        INFO("open a" << i);
        // Delivered: the file stays (closed with its task); aborted: removed again, if made at all.
        const fs::path p = dir.path / ("a" + std::to_string(i));
        if (aborted[static_cast<std::size_t>(i)])
            CHECK(tp_test::eventually([&] { return !fs::exists(p); }));
        else
            CHECK(fs::exists(p));
    }
}

#if defined(__linux__)
namespace {

// A FUSE file system served by this test through /dev/fuse (no libfuse): the one way to hold an
// open inside the kernel for as long as the test wants, as a hung FUSE or NFS server does. A
// FIFO does not: native_open's O_NONBLOCK opens it at once, and io_uring's OPENAT opens one
// at once even without it (its first, inline attempt adds O_NONBLOCK itself). The open waits
// for the reply to its LOOKUP in a killable wait, which io_uring's ASYNC_CANCEL does not stop
// (checked on Linux 6.18: ASYNC_CANCEL answers -EALREADY, the OPENAT stays).
// Needs root (mount) and /dev/fuse; ok() false (why() says) where either is missing.
class fuse_fs {
public:
    explicit fuse_fs(const fs::path& dir) : dir_(dir) {
        fd_ = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
        if (fd_ < 0) {
            why_ = std::string("/dev/fuse: ") + std::strerror(errno);
            return;
        }
        const std::string opts = "fd=" + std::to_string(fd_) + ",rootmode=40000,user_id=0,group_id=0";
        if (::mount("taskport-test", dir.c_str(), "fuse.taskport-test", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
            why_ = std::string("mount fuse: ") + std::strerror(errno);
            return;
        }
        mounted_ = true;
    }
    ~fuse_fs() { close(); }
    bool ok() const { return mounted_; }
    const std::string& why() const { return why_; }

    // The next request (its header in h, what follows in body); false after the hang deadline.
    bool next(fuse_in_header& h, std::vector<char>& body) {
        std::vector<char> buf(1 << 20);  // at least max_write + a header, as the protocol asks
        for (;;) {
            pollfd p{fd_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(tp_test::hang_deadline.count() * 1000));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return false;
            const ssize_t n = ::read(fd_, buf.data(), buf.size());
            if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ENOENT)) continue;  // ENOENT: request gone
            if (n < static_cast<ssize_t>(sizeof h)) return false;
            std::memcpy(&h, buf.data(), sizeof h);
            body.assign(buf.data() + sizeof h, buf.data() + n);
            return true;
        }
    }
    void reply(std::uint64_t unique, int error, const void* out = nullptr, std::size_t len = 0) {
        std::vector<char> buf(sizeof(fuse_out_header) + (error ? 0 : len));
        fuse_out_header h{};
        h.len = static_cast<std::uint32_t>(buf.size());
        h.error = error;
        h.unique = unique;
        std::memcpy(buf.data(), &h, sizeof h);
        if (!error && len) std::memcpy(buf.data() + sizeof h, out, len);
        [[maybe_unused]] ssize_t w = ::write(fd_, buf.data(), buf.size());
    }
    // Answers INIT (the kernel sends it at mount).
    bool init() {
        fuse_in_header h{};
        std::vector<char> body;
        if (!next(h, body) || h.opcode != FUSE_INIT) return false;
        fuse_init_out o{};
        o.major = FUSE_KERNEL_VERSION;
        o.minor = FUSE_KERNEL_MINOR_VERSION;
        o.max_background = 16;
        o.congestion_threshold = 12;
        o.max_write = 4096;
        reply(h.unique, 0, &o, sizeof o);
        return true;
    }
    // The one file there: "x", a regular file, node 2, attributes valid for a minute.
    static fuse_attr file_attr() {
        fuse_attr a{};
        a.ino = 2;
        a.mode = S_IFREG | 0644;
        a.nlink = 1;
        a.blksize = 4096;
        return a;
    }
    void reply_entry(std::uint64_t unique) {
        fuse_entry_out e{};
        e.nodeid = 2;
        e.generation = 1;
        e.entry_valid = e.attr_valid = 60;
        e.attr = file_attr();
        reply(unique, 0, &e, sizeof e);
    }
    // Unmounts (lazily: nothing waits for this file system) and closes the device, which aborts
    // whatever still waits for an answer (ENOTCONN).
    void close() {
        if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
        mounted_ = false;
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    fs::path dir_;
    int fd_ = -1;
    bool mounted_ = false;
    std::string why_;
};

}  // namespace

// The blocking pool has always given up after shutdown_timeout on an open that does not return;
// io_uring's OPENAT had shutdown wait for the kernel (in_flight_ == 0) for ever. Now both: the
// runtime's destruction returns, the open's task got operation_aborted, and when the file system
// finally answers, the late descriptor is closed (the file system sees FLUSH and RELEASE) and
// nothing is left open (/proc/self/fd, the ring's descriptor included).
TEST_CASE("open: shutdown gives up on an open the file system never answers (a hung FUSE server)") {
    temp_dir dir;
    const fs::path mnt = dir / "mnt";
    fs::create_directory(mnt);
    const long before = tp_test::open_fds();
    {
        fuse_fs fuse(mnt);
        if (!fuse.ok()) {
            WARN("not checked: no FUSE here (" << fuse.why() << ")");
            return;
        }
        REQUIRE(fuse.init());
        runtime_options o = tp_test::workers(2);
        o.shutdown_timeout = std::chrono::milliseconds(200);
        auto rt = std::make_unique<runtime>(o);
        const bool uring = uring_opens(*rt);
        INFO((uring ? "io_uring OPENAT" : "blocking pool"));
        auto f = rt->spawn(catching(open_file(*rt, mnt / "x", io::open_mode::read)));
        // The open is in the kernel once its LOOKUP reaches the file system; it is held there.
        fuse_in_header h{};
        std::vector<char> body;
        std::uint64_t lookup = 0;
        while (!lookup) {
            REQUIRE(fuse.next(h, body));
            if (h.opcode == FUSE_LOOKUP && std::strcmp(body.data(), "x") == 0)
                lookup = h.unique;
            else if (h.opcode != FUSE_INTERRUPT && h.opcode != FUSE_FORGET)
                fuse.reply(h.unique, -ENOSYS);
        }
        // The runtime goes, in a thread of its own so that a hang fails here rather than hangs.
        std::mutex mu;
        std::condition_variable cv;
        bool gone = false;
        std::thread destroyer([&] {
            rt.reset();
            std::lock_guard<std::mutex> g(mu);
            gone = true;
            cv.notify_all();
        });
        bool returned;
        {
            std::unique_lock<std::mutex> g(mu);
            returned = cv.wait_for(g, tp_test::hang_deadline, [&] { return gone; });
        }
        CHECK(returned);  // before: io_uring's shutdown waited here for the kernel, for ever
        if (!returned) fuse.close();  // lets the open fail (ENOTCONN), so the thread can be joined
        destroyer.join();
        {
            tp_test::watchdog w("the future of an open cut off by shutdown");
            CHECK(f.get() == io::operation_aborted());
        }
        // The file system answers now: the late open succeeds, and what it opened must be closed.
        bool released = false;
        if (returned) {
            fuse.reply_entry(lookup);
            while (!released) {
                REQUIRE(fuse.next(h, body));
                switch (h.opcode) {
                    case FUSE_OPEN: {
                        fuse_open_out out{};
                        out.fh = 7;
                        fuse.reply(h.unique, 0, &out, sizeof out);
                        break;
                    }
                    case FUSE_GETATTR: {
                        fuse_attr_out out{};
                        out.attr_valid = 60;
                        out.attr = fuse_fs::file_attr();
                        fuse.reply(h.unique, 0, &out, sizeof out);
                        break;
                    }
                    case FUSE_FLUSH: fuse.reply(h.unique, 0); break;
                    case FUSE_RELEASE:
                        fuse.reply(h.unique, 0);
                        released = true;
                        break;
                    case FUSE_INTERRUPT:  // the kernel's cancel tried to stop the LOOKUP: not answered
                    case FUSE_FORGET: break;
                    default: fuse.reply(h.unique, -ENOSYS); break;
                }
            }
        }
        CHECK(released);  // the late descriptor was closed (by the abandoned ring's thread, or the pool's)
    }
    CHECK(tp_test::eventually([&] { return tp_test::open_fds() == before; }));
}
#endif
