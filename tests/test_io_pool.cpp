// test_io_pool.cpp — the blocking pool (io/src/blocking_pool.*): a call that does not return
// (getaddrinfo with no answer, open of a FIFO with no writer) never holds up its caller past a
// with_timeout deadline or a cancel, nor the runtime's destruction past shutdown_timeout; the
// pool grows past 16 threads when that many calls block at once, and idle threads leave; opens of
// special files never wait. A call "that does not return" is held on a gate the test controls
// (the pool's test hook, run on the pool thread just before the call), not a real DNS server.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include "service.hpp"  // io's private header: the pool's test hook and thread count

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#if defined(_WIN32)
#include <io.h>
#include <process.h>
#else
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

using namespace taskport;
using namespace std::chrono_literals;
namespace io = taskport::io;
namespace fs = std::filesystem;
using tp_test::run;

namespace {

// The gate every hooked blocking call named `held` waits on (until open() or the hang deadline).
struct call_gate {
    std::mutex mu;
    std::condition_variable cv;
    std::string held;
    long entered = 0;
    long finished = 0;
    bool open = false;

    void on_call(const char* call, bool done) {
        std::unique_lock<std::mutex> g(mu);
        if (held != call) return;
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
    bool wait_entered(long n) {
        return wait([&] { return entered >= n; });
    }
    bool wait_finished(long n) {
        return wait([&] { return finished >= n; });
    }
    long entered_now() {
        std::lock_guard<std::mutex> g(mu);
        return entered;
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
};

call_gate* the_gate = nullptr;


// Sends this process's stderr to a temporary file until text() takes it back and returns it.
class stderr_capture {
public:
    stderr_capture() : file_(std::tmpfile()) {
        REQUIRE(file_);
        std::fflush(stderr);
        saved_ = ::dup(2);
        REQUIRE(saved_ >= 0);
        REQUIRE(::dup2(::fileno(file_), 2) >= 0);
    }
    ~stderr_capture() { restore(); }
    std::string text() {
        restore();
        std::string s;
        std::rewind(file_);
        char buf[512];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, file_)) > 0;) s.append(buf, n);
        return s;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    std::FILE* file_;
    int saved_ = -1;
};

// Installs the hook for one test; opens the gate and removes the hook when it ends.
struct hooked {
    call_gate gate;
    explicit hooked(const char* call) {
        gate.held = call;
        the_gate = &gate;
        io::detail::set_blocking_call_hook([](const char* c, bool done) { the_gate->on_call(c, done); });
    }
    ~hooked() {
        gate.release();
        // Calls still running leave the hook before the gate goes: wait for them.
        gate.wait([&] { return gate.finished >= gate.entered; });
        io::detail::set_blocking_call_hook(nullptr);
        the_gate = nullptr;
    }
};

runtime_options opts(std::chrono::milliseconds shutdown_timeout = 5000ms) {
#if !defined(_WIN32)
    ::setenv("TASKPORT_URING_OPEN", "0", 1);  // io_uring: opens stay on the pool this file tests
#endif
    runtime_options o = tp_test::workers(2);
    o.shutdown_timeout = shutdown_timeout;
    return o;
}

// The error a coroutine throws, caught inside the runtime (see test_io_resolve.cpp).
template <class T>
task<std::error_code> catching(task<T> t) {
    try {
        co_await std::move(t);
    } catch (const std::system_error& e) {
        co_return e.code();
    }
    co_return std::error_code();
}
template <class T>
std::error_code error_in(runtime& rt, task<T> t) {
    return run(rt, catching(std::move(t)));
}

task<std::vector<io::endpoint>> resolve(runtime& rt, std::string host) {
    co_return co_await io::resolve(rt, host, "80");
}
task<std::vector<io::endpoint>> resolve_within(runtime& rt, std::chrono::milliseconds d, std::string host) {
    co_return co_await with_timeout(d, io::resolve(rt, host, "80"));
}
task<io::file> open_within(runtime& rt, std::chrono::milliseconds d, fs::path p, io::open_mode m) {
    co_return co_await with_timeout(d, io::file::open(rt, p, m));
}
task<io::file> open_file(runtime& rt, fs::path p, io::open_mode m) {
    co_return co_await io::file::open(rt, p, m);
}
task<std::size_t> read_at(io::file& f, std::uint64_t off, std::span<std::byte> b) {
    co_return co_await f.read_at(off, b);
}
task<std::size_t> write_at(io::file& f, std::uint64_t off, std::span<const std::byte> b) {
    co_return co_await f.write_at(off, b);
}

// True when no handle to path is open in this process: POSIX counts the descriptors (the
// caller compares with a count taken before); Windows opens it exclusively (share mode 0), which
// fails with a sharing violation while any other handle to it is open.
bool exclusively_openable(const fs::path& p) {
#if defined(_WIN32)
    HANDLE h = ::CreateFileW(p.c_str(), GENERIC_READ, 0, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (h == INVALID_HANDLE_VALUE) return false;
    ::CloseHandle(h);
    return true;
#else
    (void)p;
    return true;
#endif
}

struct temp_dir : tp_test::temp_dir {
    temp_dir() : tp_test::temp_dir("pool") {}
};

}  // namespace

TEST_CASE("pool: with_timeout around a resolve that never answers returns at its deadline") {
    hooked h("getaddrinfo");
    {
        // Were the runtime's destruction to wait for the held call, the watchdog would end it.
        tp_test::watchdog w("with_timeout and the runtime's destruction with a cancelled resolve running");
        runtime rt(opts(std::chrono::hours(1)));
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(error_in(rt, resolve_within(rt, 300ms, "localhost")) == std::errc::timed_out);
        REQUIRE(std::chrono::steady_clock::now() - t0 >= 300ms);
        REQUIRE(h.gate.entered_now() <= 1);
        // The runtime goes while the call is still held: nothing waits for a call already given up.
    }
}

TEST_CASE("pool: cancelling a running resolve completes it with operation_aborted at once") {
    hooked h("getaddrinfo");
    runtime rt(opts());
    auto f = rt.spawn(catching(resolve(rt, "localhost")));
    REQUIRE(h.gate.wait_entered(1));  // the call is under way on a pool thread
    f.cancel();
    {
        tp_test::watchdog w("future::get of a cancelled running resolve");
        REQUIRE(f.get() == io::operation_aborted());
    }
    REQUIRE(h.gate.finished_now() == 0);  // the call itself is still held: the op did not wait for it
    h.gate.release();
    REQUIRE(h.gate.wait_finished(1));  // its late result was discarded (ASan: freed once)
    // The pool still works afterwards.
    REQUIRE_FALSE(run(rt, resolve(rt, "127.0.0.1")).empty());
}

TEST_CASE("pool: destroying the runtime abandons a call past shutdown_timeout and says so") {
    hooked h("getaddrinfo");
    std::error_code got;
    std::string diag;
    {
        auto rt = std::make_unique<runtime>(opts(200ms));
        auto f = rt->spawn(catching(resolve(*rt, "localhost")));
        REQUIRE(h.gate.wait_entered(1));
        stderr_capture cap;
        {
            tp_test::watchdog w("runtime destruction with a resolve held");
            rt.reset();
        }
        diag = cap.text();
        tp_test::watchdog w("future::get after the runtime was destroyed");
        got = f.get();
    }
    REQUIRE(got == io::operation_aborted());
    INFO(diag);
    REQUIRE(diag.find("abandoned 1 blocking call") != std::string::npos);
    h.gate.release();
    REQUIRE(h.gate.wait_finished(1));
}

TEST_CASE("pool: many calls blocked at once grow the pool past 16 threads and all complete") {
    constexpr long n = 40;
    hooked h("getaddrinfo");
    runtime rt(opts());
    std::vector<future<std::vector<io::endpoint>>> fs;
    for (long i = 0; i < n; ++i) fs.push_back(rt.spawn(resolve(rt, "127.0.0.1")));
    REQUIRE(h.gate.wait_entered(n));  // n calls in the kernel at once: n threads
    REQUIRE(io::detail::service_of(rt).pool.threads() >= static_cast<std::size_t>(n));
    h.gate.release();
    tp_test::watchdog w("the grown pool's calls");
    for (auto& f : fs) REQUIRE(f.get().size() == 1);
}

namespace {

// A bare operation whose completion counts, and a call the gate holds (named as getaddrinfo).
struct counted_op : io::detail::operation {
    explicit counted_op(tp_test::counter_latch* l) noexcept : operation(&on_done, nullptr), latch(l) {}
    static void on_done(taskport::detail::task_node* t) noexcept { static_cast<counted_op*>(t)->latch->arrive(); }
    tp_test::counter_latch* latch;
};
struct held_call final : io::detail::blocking_call {
    const char* name() const noexcept override { return "getaddrinfo"; }
    void run() noexcept override {}
    void deliver(io::detail::operation*) noexcept override {}
};

}  // namespace

TEST_CASE("pool: never more threads than its cap") {
    hooked h("getaddrinfo");
    tp_test::counter_latch done;                // outlive the runtime, which runs the ops'
    std::vector<std::unique_ptr<counted_op>> ops;  // completions (also after a failed REQUIRE)
    runtime rt(opts());
    auto& svc = io::detail::service_of(rt);
    {
        io::detail::blocking_pool pool(svc.cq, 4, 5000ms);  // a pool of its own, capped at 4
        for (int i = 0; i < 10; ++i) {
            ops.push_back(std::make_unique<counted_op>(&done));
            ops.back()->svc = &svc;
            pool.submit(ops.back().get(), new held_call);
        }
        REQUIRE(h.gate.wait_entered(4));
        // Threads start inside submit(): had the cap not held, they would all exist by now.
        REQUIRE(pool.threads() == 4);
        h.gate.release();
        REQUIRE(done.wait_for(10));  // the 6 queued behind the cap ran too
        pool.shutdown();
    }
    REQUIRE(done.count() == 10);
}

TEST_CASE("pool: idle threads leave after the keep-alive") {
    hooked h("getaddrinfo");
    runtime rt(opts());
    auto& pool = io::detail::service_of(rt).pool;
    pool.set_keep_alive(20ms);
    std::vector<future<std::vector<io::endpoint>>> fs;
    for (int i = 0; i < 20; ++i) fs.push_back(rt.spawn(resolve(rt, "127.0.0.1")));
    REQUIRE(h.gate.wait_entered(20));
    REQUIRE(pool.threads() >= 20);
    h.gate.release();
    {
        tp_test::watchdog w("the calls");
        for (auto& f : fs) REQUIRE(f.get().size() == 1);
    }
    REQUIRE(tp_test::eventually([&] { return pool.threads() == 0; }));
    // And a new call starts a thread again.
    REQUIRE(run(rt, resolve(rt, "127.0.0.1")).size() == 1);
}

// Every system: the open is a detachable call there too (io/src/file_open.cpp).
TEST_CASE("pool: a held open under with_timeout returns at its deadline and its late descriptor is closed") {
    temp_dir dir;
    { std::ofstream(dir / "plain") << "x"; }
    REQUIRE(exclusively_openable(dir / "plain"));
    hooked h("open");
    runtime rt(opts());
    (void)io::detail::service_of(rt);  // the I/O service's own descriptors come first
#if !defined(_WIN32)
    const long before = tp_test::open_fds();
#endif
    REQUIRE(error_in(rt, open_within(rt, 300ms, dir / "plain", io::open_mode::read)) == std::errc::timed_out);
    h.gate.release();
    if (h.gate.entered_now() == 1) REQUIRE(h.gate.wait_finished(1));  // the open happened, late
#if !defined(_WIN32)
    REQUIRE(tp_test::open_fds() == before);  // and its descriptor was closed
#endif
    REQUIRE(exclusively_openable(dir / "plain"));  // Windows: and its handle was closed
}

// A cancelled open that goes on to create its file (the call was already in the kernel) must not
// leave that file behind: the caller gave up, so to them the open never happened. The late
// descriptor is closed and the file the call created is removed; a file that existed before the
// call is left (closed, not removed).
TEST_CASE("pool: a cancelled open that creates its file late: the file is closed and removed") {
    temp_dir dir;
    { std::ofstream(dir / "existing") << "keep"; }
    hooked h("open");
    runtime rt(opts());
    (void)io::detail::service_of(rt);
#if !defined(_WIN32)
    const long before = tp_test::open_fds();
#endif
    long calls = 0;
    for (const char* name : {"new", "existing"}) {
        INFO("file: " << name);
        auto f = rt.spawn(catching(open_file(rt, dir / name, io::open_mode::write | io::open_mode::create)));
        REQUIRE(h.gate.wait_entered(++calls));  // the open is under way (held before the call)
        f.cancel();
        {
            tp_test::watchdog w("future::get of a cancelled running open");
            REQUIRE(f.get() == io::operation_aborted());
        }
        REQUIRE(h.gate.finished_now() == calls - 1);  // the op did not wait for the call
        REQUIRE_FALSE(fs::exists(dir / "new"));
        h.gate.release();  // the open now happens: after its operation completed without it
        REQUIRE(h.gate.wait_finished(calls));
        {
            std::lock_guard<std::mutex> g(h.gate.mu);
            h.gate.open = false;  // hold the next one again
        }
    }
    CHECK_FALSE(fs::exists(dir / "new"));  // created late, then removed
    REQUIRE(fs::exists(dir / "existing"));
    std::string kept;
    std::ifstream(dir / "existing") >> kept;
    CHECK(kept == "keep");
#if !defined(_WIN32)
    CHECK(tp_test::open_fds() == before);  // both late descriptors closed
#endif
    CHECK(exclusively_openable(dir / "existing"));  // Windows: its handle was closed
}

#if !defined(_WIN32)

TEST_CASE("pool: opening a FIFO with no writer does not wait and neither does the runtime") {
    temp_dir dir;
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    {
        tp_test::watchdog w("FIFO opens and the runtime's destruction");
        runtime rt(opts(200ms));
        // Reading: opens at once (O_NONBLOCK), but a FIFO has no positions.
        io::file f = run(rt, open_within(rt, 500ms, dir / "fifo", io::open_mode::read));
        std::vector<std::byte> buf(4);
        REQUIRE(error_in(rt, read_at(f, 0, buf)) == std::errc::invalid_seek);
        f.close();
        // Writing with no reader: the system's ENXIO, at once.
        REQUIRE(error_in(rt, open_within(rt, 500ms, dir / "fifo", io::open_mode::write)) ==
                std::errc::no_such_device_or_address);
    }
}

TEST_CASE("pool: special files open as documented") {
    temp_dir dir;
    runtime rt(opts());
    SECTION("a directory is refused, naming the type") {
        std::string what;
        try {
            tp_test::watchdog w("open of a directory");
            (void)rt.block_on(open_file(rt, dir.path, io::open_mode::read));
            FAIL("a directory opened");
        } catch (const std::system_error& e) {
            REQUIRE(e.code() == std::errc::is_a_directory);
            what = e.what();
        }
        REQUIRE(what.find(dir.path.string()) != std::string::npos);
    }
    SECTION("/dev/null reads nothing and takes every write") {
        io::file f = run(rt, open_file(rt, "/dev/null", io::open_mode::read_write));
        std::vector<std::byte> buf(8);
        REQUIRE(run(rt, read_at(f, 0, buf)) == 0);
        REQUIRE(run(rt, write_at(f, 0, buf)) == 8);
    }
}

#endif
