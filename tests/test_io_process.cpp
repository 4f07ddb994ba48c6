// test_io_process.cpp — io::process (taskport/io/process.hpp): exit codes and signals, pipes
// (round trip through cat, 2-3 MiB each way with no deadlock, stderr, the null device), the
// errors start() throws (missing program, not executable, missing working directory), cwd and
// environment, kill and terminate while a wait is pending, with_timeout and cancel on a wait,
// try_wait, dropped processes reaped (no zombie left: /proc), 50 at once, no descriptor leaked
// into the child or left in the parent. Runs once per backend (epoll: pidfd; kqueue:
// EVFILT_PROC; -Dforce_posix_fallbacks on epoll: the SIGCHLD path). Windows (the _WIN32 part):
// exit codes through the completion port, errors, quoting, cwd, environment, named-pipe stdio
// (round trip, cancel, close, broken pipe), kill, cancel, with_timeout, drops.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <taskport/io/process.hpp>
#include <taskport/io/timer.hpp>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(_WIN32)
#include <winsock2.h>
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

using namespace taskport;
using namespace std::chrono_literals;
namespace io = taskport::io;
namespace fs = std::filesystem;

// The start-and-wait scaffold both halves use.
namespace {

// Everything the pipe gives until end of file.
task<std::string> read_all(io::pipe_stream& s) {
    std::string got;
    std::array<std::byte, 16384> buf;
    for (;;) {
        std::size_t n = co_await s.read_some(buf);
        if (n == 0) break;
        got.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return got;
}

// Waits for p's end on rt.
io::exit_status run_to_end(runtime& rt, io::process& p) {
    return tp_test::run(rt, [&]() -> task<io::exit_status> {
        io::exit_status st = co_await p.wait();
        co_return st;
    }());
}

task<io::exit_status> await_exit(io::detail::process_wait_op op) {
    io::exit_status st = co_await std::move(op);
    co_return st;
}

task<std::error_code> wait_error(io::detail::process_wait_op op) {
    try {
        io::exit_status st = co_await std::move(op);
        (void)st;
    } catch (const std::system_error& e) {
        co_return e.code();
    }
    co_return std::error_code();
}

std::error_code start_error(runtime& rt, const io::process_options& o) {
    try {
        io::process::start(rt, o);
    } catch (const std::system_error& e) {
        return e.code();
    }
    return {};
}

}  // namespace

#if defined(_WIN32)

// Windows (process_win.cpp): no sh, cat or /proc there (Wine neither); the child is cmd.exe or
// tp_proc_child.exe (tests/proc_child_win.cpp, built beside this test), which reports what it
// was asked to in a file or copies stdin to stdout. POSIX-only cases (signals, zombies, /proc,
// descriptors) are in the #else part: Windows has no signals, zombies or /proc.

namespace {

std::string child_exe() {
    wchar_t self[MAX_PATH * 4];
    const DWORD n = ::GetModuleFileNameW(nullptr, self, MAX_PATH * 4);
    std::wstring dir(self, n);
    dir.resize(dir.find_last_of(L"\\/") + 1);
    return fs::path(dir + L"tp_proc_child.exe").string();
}

io::process_options child(std::initializer_list<std::string_view> args) {
    return io::process_options(child_exe()).arguments(args);
}

// How many handles this process has open: GetProcessHandleCount, or where that is a stub
// reporting 0 (Wine 8) the entries of this process in NtQuerySystemInformation's
// SystemHandleInformation (class 16; its layout declared here: mingw's winternl.h lacks it).
// 0 when neither works.
long own_handle_count() {
    DWORD n = 0;
    if (::GetProcessHandleCount(::GetCurrentProcess(), &n) && n > 0) return static_cast<long>(n);
    struct entry {
        ULONG pid;
        UCHAR type, flags;
        USHORT handle;
        PVOID object;
        ACCESS_MASK access;
    };
    struct table {
        ULONG count;
        entry e[1];
    };
    using query_fn = LONG(WINAPI*)(int, PVOID, ULONG, PULONG);
    auto query = reinterpret_cast<query_fn>(
        reinterpret_cast<void*>(::GetProcAddress(::GetModuleHandleW(L"ntdll.dll"), "NtQuerySystemInformation")));
    if (!query) return 0;
    std::vector<unsigned char> buf(1 << 16);
    for (int i = 0; i < 12; ++i) {
        ULONG need = 0;
        const LONG st = query(16, buf.data(), static_cast<ULONG>(buf.size()), &need);
        if (st == 0) {
            const auto* t = reinterpret_cast<const table*>(buf.data());
            long mine = 0;
            for (ULONG k = 0; k < t->count; ++k) mine += t->e[k].pid == ::GetCurrentProcessId();
            return mine;
        }
        buf.resize(std::max<std::size_t>(buf.size() * 2, need));
    }
    return 0;
}

fs::path temp_file(const char* tag) {
    return fs::temp_directory_path() / ("tp-proc-" + std::to_string(::GetCurrentProcessId()) + "-" + tag + ".txt");
}

// Runs o (which writes `out`), checks it succeeded, and gives what it wrote.
std::string run_report(runtime& rt, const io::process_options& o, const fs::path& out) {
    auto p = io::process::start(rt, o);
    const auto st = run_to_end(rt, p);
    INFO(st.to_string());
    CHECK(st.success());
    std::ifstream f(out, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    f.close();
    fs::remove(out);
    return ss.str();
}

}  // namespace

TEST_CASE("process (Windows): exit codes through the port; waiting again; try_wait", "[process]") {
    runtime rt(tp_test::workers(2));
    auto c = io::process::start(rt, io::process_options("cmd.exe").arg("/c").arg("exit 3"));
    CHECK(c.pid() > 0);
    auto st = run_to_end(rt, c);
    CHECK(st == io::exit_status::from_code(3));
    CHECK(st.exited());
    CHECK(st.to_string() == "exit code 3");
    CHECK(run_to_end(rt, c) == io::exit_status::from_code(3));  // again: at once, the same
    CHECK(c.try_wait() == io::exit_status::from_code(3));

    auto ok = io::process::start(rt, child({"exit", "0"}));
    CHECK(run_to_end(rt, ok).success());
    auto big = io::process::start(rt, child({"exit", "259"}));  // STILL_ACTIVE's value: a real exit
    CHECK(run_to_end(rt, big).code() == 259);
}

TEST_CASE("process (Windows): start() throws the system's error; bad options", "[process]") {
    runtime rt(tp_test::workers(1));
    const auto enoent = std::errc::no_such_file_or_directory;
    CHECK(start_error(rt, io::process_options("taskport-no-such-program-xyz")) == enoent);
    CHECK(start_error(rt, io::process_options("C:\\nonexistent\\taskport-no-such-program.exe")) == enoent);
    // Looked up in the child's PATH when the options change it.
    CHECK(start_error(rt, io::process_options("cmd").env("PATH", "C:\\nonexistent")) == enoent);
    CHECK(start_error(rt, child({"exit", "0"}).cwd("C:\\nonexistent\\dir")) == enoent);
    CHECK(start_error(rt, io::process_options("")) == std::errc::invalid_argument);
    CHECK(start_error(rt, child({"exit", "0"}).arg(std::string("a\0b", 3))) == std::errc::invalid_argument);
    CHECK(start_error(rt, child({"exit", "0"}).env("A=B", "c")) == std::errc::invalid_argument);
    // With pipes asked for: a failed start leaves none open (the pipe_streams close with it).
    CHECK(start_error(rt, io::process_options("C:\\nonexistent\\x.exe").std_in(io::stdio::pipe)
                              .std_out(io::stdio::pipe).std_err(io::stdio::pipe)) == enoent);
    CHECK(start_error(rt, child({"exit", "0"}).std_out(io::stdio::pipe).cwd("C:\\nonexistent")) == enoent);
    // Failing in CreateProcessW itself, after the three pipes were made (a file that is not a
    // program: ERROR_BAD_EXE_FORMAT): every handle made for it is closed again (the process's
    // handle count is back: own_handle_count).
    const fs::path not_exe = temp_file("not-a-program");
    std::ofstream(not_exe) << "not a program\n";
    const auto bad = io::process_options(not_exe.string()).std_in(io::stdio::pipe).std_out(io::stdio::pipe)
                         .std_err(io::stdio::pipe);
    const std::error_code first = start_error(rt, bad);  // the first may set up lasting things
    CHECK(first);
    const long before = own_handle_count();
    for (int i = 0; i < 5; ++i) CHECK(start_error(rt, bad) == first);
    const long after = own_handle_count();
    if (before == 0)
        WARN("no handle count on this system: the handles of a failed start are not counted");
    else
        CHECK(after == before);
    fs::remove(not_exe);
    // A program found through PATH with ".exe" added: cmd.
    auto p = io::process::start(rt, io::process_options("cmd").arg("/c").arg("exit 7"));
    CHECK(run_to_end(rt, p).code() == 7);
}

TEST_CASE("process (Windows): arguments quoted for the C runtime, working directory, environment", "[process]") {
    runtime rt(tp_test::workers(1));
    const fs::path out = temp_file("report");
    const std::vector<std::string> args = {"plain", "two words", "", "quote\"inside", "trailing\\",
                                           "back\\\\slashes\\\"q", "tab\there", "\xc3\xa9t\xc3\xa9"};
    auto o = child({"args"}).arg(out.string());
    std::string expect;
    for (const auto& a : args) {
        o.arg(a);
        expect += a + "\n";
    }
    CHECK(run_report(rt, o, out) == expect);

    const fs::path dir = fs::temp_directory_path();
    const std::string cwd = run_report(rt, child({"cwd"}).arg(out.string()).cwd(dir.string()), out);
    std::string want = dir.string();
    if (want.size() > 3 && (want.back() == '\\' || want.back() == '/')) want.pop_back();  // "C:\\dir\\"
    CHECK(cwd == want + "\n");

    ::SetEnvironmentVariableW(L"TP_PROC_INHERITED", L"yes");
    ::SetEnvironmentVariableW(L"TP_PROC_REMOVED", L"no");
    auto env = run_report(rt, child({"env"}).arg(out.string()).arguments({"TP_PROC_FOO", "TP_PROC_INHERITED", "TP_PROC_REMOVED"})
                                  .env("TP_PROC_FOO", "bar").env_remove("tp_proc_removed"), out);
    CHECK(env == "TP_PROC_FOO=bar\nTP_PROC_INHERITED=yes\nTP_PROC_REMOVED unset\n");
    // A cleared environment: only what the options set (SystemRoot kept, the C runtime needs it).
    const char* root = std::getenv("SystemRoot");
    auto clean = run_report(rt, child({"env"}).arg(out.string()).arguments({"A", "B", "TP_PROC_INHERITED"}).env_clear()
                                    .env("SystemRoot", root ? root : "C:\\windows").env("A", "1").env("B", "2").env("a", "3"),
                            out);
    CHECK(clean == "A=3\nB=2\nTP_PROC_INHERITED unset\n");
    // stdin from the null device: end of file at once.
    auto n = io::process::start(rt, child({"stdin"}).std_in(io::stdio::null).std_out(io::stdio::null));
    CHECK(run_to_end(rt, n).success());
}

TEST_CASE("process (Windows): kill and terminate while a wait is pending (exit code 1)", "[process]") {
    runtime rt(tp_test::workers(2));
    for (int which = 0; which < 2; ++which) {
        auto p = io::process::start(rt, child({"sleep"}));
        CHECK_FALSE(p.try_wait().has_value());
        auto st = tp_test::run(rt, [&]() -> task<io::exit_status> {
            auto w = rt.spawn(await_exit(p.wait()));
            if (which == 0)
                p.kill();
            else
                p.terminate();
            io::exit_status s = co_await std::move(w);
            co_return s;
        }());
        CHECK(st == io::exit_status::from_code(1));
        p.kill();  // ended: nothing happens, nothing thrown
        CHECK(p.try_wait() == io::exit_status::from_code(1));
    }
    io::process none;
    CHECK(none.pid() == -1);
    CHECK_THROWS_AS(none.kill(), std::system_error);
    CHECK_THROWS_AS(none.try_wait(), std::system_error);
    auto bad = tp_test::run(rt, wait_error(none.wait()));
    CHECK(bad == std::errc::bad_file_descriptor);
}

TEST_CASE("process (Windows): with_timeout and cancel abort a wait once, the child runs on", "[process]") {
    runtime rt(tp_test::workers(2));
    auto p = io::process::start(rt, child({"sleep"}));
    auto timed = tp_test::run(rt, [&]() -> task<std::error_code> {
        try {
            co_await with_timeout(30ms, p.wait());  // sleeps forever: cannot end by itself
        } catch (const std::system_error& e) {
            co_return e.code();
        }
        co_return std::error_code();
    }());
    CHECK(timed == std::errc::timed_out);
    for (int i = 0; i < 20; ++i) {
        auto cancelled = tp_test::run(rt, [&]() -> task<std::error_code> {
            auto w = rt.spawn(wait_error(p.wait()));
            w.cancel();  // before or after the wait parks: aborted either way
            std::error_code ec;
            try {
                ec = co_await std::move(w);
            } catch (const std::system_error& e) {  // cancelled before it ran
                ec = e.code();
            }
            co_return ec;
        }());
        CHECK(cancelled == io::operation_aborted());
    }
    CHECK_FALSE(p.try_wait().has_value());  // still running
    // A wait after all that still gets the end.
    auto st = tp_test::run(rt, [&]() -> task<io::exit_status> {
        auto w = rt.spawn(await_exit(p.wait()));
        p.kill();
        io::exit_status s = co_await std::move(w);
        co_return s;
    }());
    CHECK(st.code() == 1);
}

TEST_CASE("process (Windows): dropped: not killed; a pending wait is aborted", "[process]") {
    DWORD pid = 0;
    {
        runtime rt(tp_test::workers(2));
        auto code = tp_test::run(rt, [&]() -> task<std::error_code> {
            auto p = std::make_unique<io::process>(io::process::start(rt, child({"sleep"})));
            pid = static_cast<DWORD>(p->pid());
            auto w = rt.spawn(wait_error(p->wait()));
            p.reset();
            std::error_code ec = co_await std::move(w);
            co_return ec;
        }());
        CHECK(code == io::operation_aborted());
    }
    // Still running: the drop closed our handle, it did not kill it.
    HANDLE h = ::OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE, FALSE, pid);
    REQUIRE(h != nullptr);
    CHECK(::WaitForSingleObject(h, 0) == WAIT_TIMEOUT);
    ::TerminateProcess(h, 5);
    CHECK(::WaitForSingleObject(h, 60000) == WAIT_OBJECT_0);
    ::CloseHandle(h);
}

TEST_CASE("process (Windows): an object that outlives its runtime still works", "[process]") {
    io::process q;
    {
        runtime rt(tp_test::workers(1));
        q = io::process::start(rt, child({"sleep"}));
    }
    CHECK_FALSE(q.try_wait().has_value());  // works without the runtime
    q.kill();
    REQUIRE(tp_test::eventually([&] { return q.try_wait().has_value(); }));
    CHECK(q.try_wait() == io::exit_status::from_code(1));
}

TEST_CASE("process (Windows): pipes: a round trip (2 MiB each way at once), stdout and stderr apart", "[process]") {
    runtime rt(tp_test::workers(2));
    auto p = io::process::start(rt, child({"cat"}).std_in(io::stdio::pipe).std_out(io::stdio::pipe));
    CHECK_FALSE(p.stderr_pipe().is_open());
    const auto data = tp_test::pattern(std::size_t{2} << 20, 7);
    auto r = tp_test::run(rt, [&]() -> task<std::pair<std::string, io::exit_status>> {
        auto writer = rt.spawn([&]() -> task<void> {
            co_await p.stdin_pipe().write_all(data);
            p.stdin_pipe().close();  // the child reads end of file
        });
        std::string got = co_await read_all(p.stdout_pipe());
        co_await std::move(writer);
        io::exit_status st = co_await p.wait();
        co_return std::make_pair(std::move(got), st);
    }());
    CHECK(r.second.success());
    REQUIRE(r.first.size() == data.size());
    CHECK(std::memcmp(r.first.data(), data.data(), data.size()) == 0);

    auto b = io::process::start(rt, child({"both"}).std_out(io::stdio::pipe).std_err(io::stdio::pipe));
    auto both = tp_test::run(rt, [&]() -> task<std::string> {
        auto err = rt.spawn(read_all(b.stderr_pipe()));
        std::string out = co_await read_all(b.stdout_pipe());
        std::string e = co_await std::move(err);
        io::exit_status st = co_await b.wait();
        co_return out + "|" + e + "|" + st.to_string();
    }());
    CHECK(both == "out|err|exit code 3");

    auto c = io::process::start(rt, io::process_options("cmd.exe").arg("/c").arg("echo hello").std_out(io::stdio::pipe));
    auto hello = tp_test::run(rt, read_all(c.stdout_pipe()));
    CHECK(hello == "hello\r\n");
    CHECK(run_to_end(rt, c).success());
}

// The stdio pipes are named pipes (this process holds the server end), not sockets; a read
// waiting for data that cannot come is aborted by with_timeout, cancel and close, the pipe
// staying usable after the first two; a write to a child that has exited is broken_pipe.
TEST_CASE("process (Windows): stdio pipes are named pipes; cancel, close, broken pipe", "[process]") {
    runtime rt(tp_test::workers(2));
    auto p = io::process::start(rt, child({"cat"}).std_in(io::stdio::pipe).std_out(io::stdio::pipe));
    for (io::pipe_stream* s : {&p.stdin_pipe(), &p.stdout_pipe()}) {
        int type = 0, len = sizeof type;
        CHECK(::getsockopt(s->native_handle(), SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) != 0);
        CHECK(::WSAGetLastError() == WSAENOTSOCK);  // not a socket
    }
    // The stdout end (the server's read end: GetNamedPipeInfo needs read access) is a named
    // pipe's server end.
    DWORD flags = 0;
    REQUIRE(::GetNamedPipeInfo(reinterpret_cast<HANDLE>(p.stdout_pipe().native_handle()), &flags, nullptr, nullptr,
                               nullptr));
    CHECK((flags & PIPE_SERVER_END) != 0);
    std::array<std::byte, 64> buf;
    auto read_error = [&](auto op) -> task<std::error_code> {
        try {
            std::size_t n = co_await std::move(op);
            (void)n;
        } catch (const std::system_error& e) {
            co_return e.code();
        }
        co_return std::error_code();
    };
    // cat has nothing to copy: the read cannot finish by itself.
    auto timed = tp_test::run(rt, [&]() -> task<std::error_code> {
        try {
            std::size_t n = co_await with_timeout(30ms, p.stdout_pipe().read_some(buf));
            (void)n;
        } catch (const std::system_error& e) {
            co_return e.code();
        }
        co_return std::error_code();
    }());
    CHECK(timed == std::errc::timed_out);
    for (int i = 0; i < 10; ++i) {
        auto cancelled = tp_test::run(rt, [&]() -> task<std::error_code> {
            auto r = rt.spawn(read_error(p.stdout_pipe().read_some(buf)));
            r.cancel();  // before or after the read parks: aborted either way
            std::error_code ec;
            try {
                ec = co_await std::move(r);
            } catch (const std::system_error& e) {
                ec = e.code();
            }
            co_return ec;
        }());
        CHECK(cancelled == io::operation_aborted());
    }
    // Still usable: a round trip through cat.
    const std::string hi = "hi there";
    auto echoed = tp_test::run(rt, [&]() -> task<std::string> {
        co_await p.stdin_pipe().write_all(std::as_bytes(std::span(hi)));
        std::string got;
        while (got.size() < hi.size()) {
            std::size_t n = co_await p.stdout_pipe().read_some(buf);
            if (n == 0) break;
            got.append(reinterpret_cast<const char*>(buf.data()), n);
        }
        co_return got;
    }());
    CHECK(echoed == hi);
    // close() from another task while a read is pending (or about to start): it fails, no hang.
    auto closed = tp_test::run(rt, [&]() -> task<std::error_code> {
        auto r = rt.spawn(read_error(p.stdout_pipe().read_some(buf)));
        p.stdout_pipe().close();
        std::error_code ec = co_await std::move(r);
        co_return ec;
    }());
    CHECK((closed == io::operation_aborted() || closed == std::errc::bad_file_descriptor));
    CHECK_FALSE(p.stdout_pipe().is_open());
    p.stdin_pipe().close();  // cat reads end of file, then fails to write (ignored) and exits
    CHECK(run_to_end(rt, p).exited());

    // A child that exits without reading its stdin: writing then is broken_pipe.
    auto q = io::process::start(rt, child({"exit", "0"}).std_in(io::stdio::pipe));
    CHECK(run_to_end(rt, q).success());
    const auto data = tp_test::pattern(std::size_t{1} << 20, 3);
    auto broken = tp_test::run(rt, read_error(q.stdin_pipe().write_all(data)));
    CHECK(broken == std::errc::broken_pipe);
}

TEST_CASE("process (Windows): 50 at once, each with its own status", "[process]") {
    runtime rt(tp_test::workers(4));
    constexpr int n = 50;
    auto good = tp_test::run(rt, [&]() -> task<int> {
        std::vector<future<bool>> all;
        for (int i = 0; i < n; ++i)
            all.push_back(rt.spawn([&rt, i]() -> task<bool> {
                auto p = io::process::start(rt, child({"exit", std::to_string(i)}));
                io::exit_status st = co_await p.wait();
                co_return st.code() == i;
            }));
        int ok = 0;
        for (auto& f : all) ok += (co_await std::move(f)) ? 1 : 0;
        co_return ok;
    }());
    CHECK(good == n);
}

#else

namespace {

io::process_options sh(std::string script) {
    return io::process_options("/bin/sh").arg("-c").arg(std::move(script));
}

// What the process's output and status were.
struct outcome {
    std::string out, err;
    io::exit_status status;
};

outcome run_capture(runtime& rt, const io::process_options& o) {
    auto p = io::process::start(rt, o);
    return tp_test::run(rt, [&]() -> task<outcome> {
        outcome r;
        if (p.stderr_pipe().is_open()) {
            auto err = rt.spawn(read_all(p.stderr_pipe()));
            if (p.stdout_pipe().is_open()) r.out = co_await read_all(p.stdout_pipe());
            r.err = co_await std::move(err);
        } else if (p.stdout_pipe().is_open()) {
            r.out = co_await read_all(p.stdout_pipe());
        }
        r.status = co_await p.wait();
        co_return r;
    }());
}

// 'R', 'S', 'Z', ... for a live or zombie pid; 0 once it is gone (reaped).
char proc_state(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return 0;
    auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() ? '?' : line[close + 2];
}

}  // namespace

TEST_CASE("process: exit codes and terminating signals", "[process]") {
    runtime rt(tp_test::workers(2));
    auto t = io::process::start(rt, io::process_options("/bin/true"));
    CHECK(t.pid() > 0);
    auto st = run_to_end(rt, t);
    CHECK(st.success());
    CHECK(st.exited());
    CHECK(st.code() == 0);
    CHECK(st.to_string() == "exit code 0");

    auto e = io::process::start(rt, sh("exit 42"));
    st = run_to_end(rt, e);
    CHECK(st == io::exit_status::from_code(42));
    CHECK_FALSE(st.success());
    // Waiting again gives the same status at once (the child is reaped once).
    CHECK(run_to_end(rt, e) == io::exit_status::from_code(42));
    CHECK(e.try_wait() == io::exit_status::from_code(42));

    auto k = io::process::start(rt, sh("kill -TERM $$"));
    st = run_to_end(rt, k);
    CHECK_FALSE(st.exited());
    CHECK(st.signal() == SIGTERM);
    CHECK(st.code() == -1);
    CHECK(st.to_string() == "signal " + std::to_string(SIGTERM));
}

TEST_CASE("process: pipes: a round trip through cat, 2 MiB each way at once, no deadlock", "[process]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        auto p = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe).std_out(io::stdio::pipe));
        CHECK_FALSE(p.stderr_pipe().is_open());  // inherited: no pipe here
        const auto data = tp_test::pattern(std::size_t{2} << 20, 7);
        auto r = tp_test::run(rt, [&]() -> task<std::pair<std::string, io::exit_status>> {
            // The writer must not wait for the reader: cat blocks on a full stdout otherwise.
            auto writer = rt.spawn([&]() -> task<void> {
                co_await p.stdin_pipe().write_all(data);
                p.stdin_pipe().close();  // cat sees end of file
            });
            std::string got = co_await read_all(p.stdout_pipe());
            co_await std::move(writer);
            io::exit_status st = co_await p.wait();
            co_return std::make_pair(std::move(got), st);
        }());
        CHECK(r.second.success());
        REQUIRE(r.first.size() == data.size());
        CHECK(std::memcmp(r.first.data(), data.data(), data.size()) == 0);
    }
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("process: large output (3 MiB) read while the child runs; stderr apart; the null device", "[process]") {
    runtime rt(tp_test::workers(2));
    auto big = run_capture(rt, io::process_options("head").arguments({"-c", "3145728", "/dev/zero"})
                                   .std_out(io::stdio::pipe).std_err(io::stdio::pipe));
    CHECK(big.status.success());
    CHECK(big.out.size() == 3145728);
    CHECK(big.out.find_first_not_of('\0') == std::string::npos);
    CHECK(big.err.empty());

    auto both = run_capture(rt, sh("echo out; echo err >&2; exit 3").std_out(io::stdio::pipe).std_err(io::stdio::pipe));
    CHECK(both.out == "out\n");
    CHECK(both.err == "err\n");
    CHECK(both.status.code() == 3);

    // stdin from the null device: cat ends at once; stderr to it: nothing arrives here.
    auto null = run_capture(rt, io::process_options("cat").std_in(io::stdio::null).std_out(io::stdio::pipe)
                                    .std_err(io::stdio::pipe));
    CHECK(null.out.empty());
    CHECK(null.status.success());
    auto quiet = run_capture(rt, sh("echo gone >&2; echo kept").std_out(io::stdio::pipe).std_err(io::stdio::null));
    CHECK(quiet.out == "kept\n");
}

TEST_CASE("process: start() throws the OS's error: missing program, not executable, bad cwd", "[process]") {
    runtime rt(tp_test::workers(1));
    auto first = io::process::start(rt, io::process_options("/bin/true"));
    CHECK(run_to_end(rt, first).success());  // the runtime's own descriptors exist now
    const long fds = tp_test::open_fds();
    const auto enoent = std::errc::no_such_file_or_directory;
    // A path: posix_spawn reports the child's failed exec (not an exit code 127).
    CHECK(start_error(rt, io::process_options("/nonexistent/taskport-no-such-program")) == enoent);
    // A name looked up in PATH.
    CHECK(start_error(rt, io::process_options("taskport-no-such-program-xyz")) == enoent);
    // Found in the child's PATH only: the child's PATH is the one searched.
    CHECK(start_error(rt, io::process_options("true").env("PATH", "/nonexistent")) == enoent);
    {
        auto ok = io::process::start(rt, io::process_options("true").env_clear().env("PATH", "/usr/bin:/bin"));
        CHECK(run_to_end(rt, ok).success());
    }
    // A file that is not executable.
    const fs::path plain = fs::temp_directory_path() / ("tp-proc-" + std::to_string(::getpid()) + ".txt");
    { std::ofstream(plain) << "not a program\n"; }
    CHECK(start_error(rt, io::process_options(plain.string())) == std::errc::permission_denied);
    fs::remove(plain);
    // A working directory that does not exist: the child's chdir fails, start() reports it.
    CHECK(start_error(rt, io::process_options("/bin/true").cwd("/nonexistent/dir")) == enoent);
    // Bad options.
    CHECK(start_error(rt, io::process_options("")) == std::errc::invalid_argument);
    CHECK(start_error(rt, io::process_options("/bin/echo").arg(std::string("a\0b", 3))) == std::errc::invalid_argument);
    CHECK(start_error(rt, io::process_options("/bin/true").env("A=B", "c")) == std::errc::invalid_argument);
    // With pipes asked for: none of them is left open after a failure.
    CHECK(start_error(rt, io::process_options("/nonexistent/x").std_in(io::stdio::pipe).std_out(io::stdio::pipe)
                              .std_err(io::stdio::pipe)) == enoent);
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("process: working directory, environment set, removed and cleared, argv[0]", "[process]") {
    runtime rt(tp_test::workers(1));
    const fs::path dir = fs::canonical(fs::temp_directory_path());
    ::setenv("TP_PROC_INHERITED", "yes", 1);
    ::setenv("TP_PROC_REMOVED", "no", 1);
    auto r = run_capture(rt, sh("pwd; echo \"[$TP_PROC_FOO][$TP_PROC_INHERITED][${TP_PROC_REMOVED-unset}]\"")
                                 .cwd(dir.string())
                                 .env("TP_PROC_FOO", "bar")
                                 .env_remove("TP_PROC_REMOVED")
                                 .std_out(io::stdio::pipe));
    CHECK(r.status.success());
    CHECK(r.out == dir.string() + "\n[bar][yes][unset]\n");

    auto clean = run_capture(rt, io::process_options("/usr/bin/env").env_clear().env("A", "1").env("B", "2")
                                     .env("A", "3").std_out(io::stdio::pipe));
    CHECK(clean.out == "B=2\nA=3\n");

    // A relative program path is taken from this process's working directory, not the child's.
    const fs::path here = fs::current_path();
    fs::current_path("/");
    auto rel = run_capture(rt, io::process_options("bin/sh").arg("-c").arg("pwd").cwd(dir.string()).std_out(io::stdio::pipe));
    fs::current_path(here);
    CHECK(rel.status.success());
    CHECK(rel.out == dir.string() + "\n");

    auto a0 = run_capture(rt, io::process_options("/bin/sh").argv0("my-name").arg("-c").arg("echo $0").std_out(io::stdio::pipe));
    CHECK(a0.out == "my-name\n");
}

TEST_CASE("process: kill and terminate while a wait is pending; kill after the reap does nothing", "[process]") {
    runtime rt(tp_test::workers(2));
    for (int signo : {SIGKILL, SIGTERM}) {
        auto p = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe));  // waits on stdin forever
        auto st = tp_test::run(rt, [&]() -> task<io::exit_status> {
            // The wait is made here, so it exists before the kill; it may park before or after.
            auto w = rt.spawn(await_exit(p.wait()));
            if (signo == SIGKILL)
                p.kill();
            else
                p.terminate();
            io::exit_status s = co_await std::move(w);
            co_return s;
        }());
        CHECK(st.signal() == signo);
        p.kill(SIGKILL);  // reaped: nothing is sent (the pid may be someone else's now)
        CHECK(p.pid() > 0);
    }
    io::process none;
    CHECK(none.pid() == -1);
    CHECK_THROWS_AS(none.kill(), std::system_error);
    auto bad = tp_test::run(rt, [&]() -> task<std::error_code> {
        try {
            co_await none.wait();
        } catch (const std::system_error& e) {
            co_return e.code();
        }
        co_return std::error_code();
    }());
    CHECK(bad == std::errc::bad_file_descriptor);
}

TEST_CASE("process: with_timeout and cancel abort a wait, the child runs on; try_wait", "[process]") {
    runtime rt(tp_test::workers(2));
    auto p = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe).std_out(io::stdio::pipe));
    CHECK_FALSE(p.try_wait().has_value());
    auto timed = tp_test::run(rt, [&]() -> task<std::error_code> {
        try {
            co_await with_timeout(30ms, p.wait());  // cat waits for stdin: cannot end by itself
        } catch (const std::system_error& e) {
            co_return e.code();
        }
        co_return std::error_code();
    }());
    CHECK(timed == std::errc::timed_out);
    auto cancelled = tp_test::run(rt, [&]() -> task<std::error_code> {
        auto w = rt.spawn(wait_error(p.wait()));
        w.cancel();  // before or after the wait parks: aborted either way
        std::error_code ec;
        try {
            ec = co_await std::move(w);
        } catch (const std::system_error& e) {  // cancelled before it ran
            ec = e.code();
        }
        co_return ec;
    }());
    CHECK(cancelled == io::operation_aborted());
    CHECK_FALSE(p.try_wait().has_value());  // still running
    // Still usable: the pipe works, then end of file ends it.
    auto r = tp_test::run(rt, [&]() -> task<std::string> {
        co_await p.stdin_pipe().write_all(tp_test::bytes_of("hello"));
        p.stdin_pipe().close();
        std::string s = co_await read_all(p.stdout_pipe());
        io::exit_status st = co_await p.wait();
        if (!st.success()) s += " (failed)";
        co_return s;
    }());
    CHECK(r == "hello");
    CHECK(p.try_wait() == io::exit_status::from_code(0));
}

TEST_CASE("process: a dropped process is reaped: at once when it has exited, in the background when not", "[process]") {
    runtime rt(tp_test::workers(2));
    SECTION("exited before the drop (a zombie then): reaped by the destructor") {
        long pid;
        {
            auto p = io::process::start(rt, io::process_options("/bin/true"));
            pid = p.pid();
            REQUIRE(tp_test::eventually([&] { return proc_state(pid) == 'Z'; }));
        }
        CHECK(proc_state(pid) == 0);
    }
    SECTION("running at the drop: reaped when it exits, nobody waiting") {
        io::pipe_stream in;
        long pid;
        {
            auto p = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe));
            pid = p.pid();
            in = std::move(p.stdin_pipe());
        }
        CHECK(proc_state(pid) != 0);
        CHECK(proc_state(pid) != 'Z');
        in.close();  // cat ends
        CHECK(tp_test::eventually([&] { return proc_state(pid) == 0; }));
    }
    SECTION("a pending wait is aborted by the drop") {
        long pid = -1;
        auto code = tp_test::run(rt, [&]() -> task<std::error_code> {
            auto p = std::make_unique<io::process>(
                io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe)));
            pid = p->pid();
            auto w = rt.spawn(wait_error(p->wait()));  // the wait holds the child's state
            p.reset();  // stdin closes: cat ends, reaped in the background
            std::error_code ec = co_await std::move(w);
            co_return ec;
        }());
        // Parked before the drop: aborted by it. Parked after: the drop's cancel missed it, and
        // it completes with the status once the background reaper (or it) reaps the child.
        CHECK((code == io::operation_aborted() || !code));
        CHECK(tp_test::eventually([&] { return proc_state(pid) == 0; }));
    }
}

TEST_CASE("process: dropped after its runtime is gone: the next start() reaps it", "[process]") {
    io::pipe_stream in;
    long pid;
    {
        runtime rt(tp_test::workers(1));
        auto p = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe));
        pid = p.pid();
        in = std::move(p.stdin_pipe());
        // p goes with the runtime still there: its watch is aborted by the shutdown.
    }
    in.close();
    REQUIRE(tp_test::eventually([&] { return proc_state(pid) == 'Z'; }));  // nobody can reap it now
    runtime rt2(tp_test::workers(1));
    auto q = io::process::start(rt2, io::process_options("/bin/true"));
    CHECK(proc_state(pid) == 0);
    CHECK(run_to_end(rt2, q).success());
}

TEST_CASE("process: an object that outlives its runtime: destroyed later, its child still reaped", "[process]") {
    io::process p;
    io::pipe_stream in;
    {
        runtime rt(tp_test::workers(1));
        p = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe));
        in = std::move(p.stdin_pipe());
    }
    const long pid = p.pid();
    CHECK_FALSE(p.try_wait().has_value());  // still works without the runtime: cat waits on stdin
    { io::process gone = std::move(p); }    // the runtime is gone: the pid goes to the orphan list
    in.close();
    REQUIRE(tp_test::eventually([&] { return proc_state(pid) == 'Z'; }));
    runtime rt2(tp_test::workers(1));
    auto q = io::process::start(rt2, io::process_options("/bin/true"));  // sweeps the list
    CHECK(proc_state(pid) == 0);
    CHECK(run_to_end(rt2, q).success());
}

TEST_CASE("process: 50 at once, each with its own status and output", "[process]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(4));
        constexpr int n = 50;
        auto good = tp_test::run(rt, [&]() -> task<int> {
            std::vector<future<bool>> all;
            for (int i = 0; i < n; ++i)
                all.push_back(rt.spawn([&rt, i]() -> task<bool> {  // spawn keeps the closure
                    auto p = io::process::start(
                        rt, sh("echo " + std::to_string(i) + "; exit " + std::to_string(i)).std_out(io::stdio::pipe));
                    std::string out = co_await read_all(p.stdout_pipe());
                    io::exit_status st = co_await p.wait();
                    co_return st.code() == i && out == std::to_string(i) + "\n";
                }));
            int ok = 0;
            for (auto& f : all) ok += (co_await std::move(f)) ? 1 : 0;
            co_return ok;
        }());
        CHECK(good == n);
    }
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("process: 300 kept after their wait (more than the 256 SIGCHLD slots of the fallback)", "[process]") {
    runtime rt(tp_test::workers(2));
    std::vector<io::process> kept;
    for (int i = 0; i < 300; ++i) {
        kept.push_back(io::process::start(rt, io::process_options("/bin/true")));  // throws when out of slots
        REQUIRE(run_to_end(rt, kept.back()).success());
    }
    CHECK(kept.size() == 300);
}

TEST_CASE("process: the child gets no descriptor of ours; none is left here after the wait", "[process]") {
    runtime rt(tp_test::workers(2));
    (void)run_to_end(rt, *std::make_unique<io::process>(io::process::start(rt, io::process_options("/bin/true"))));
    const long fds = tp_test::open_fds();
    // A control: a descriptor without FD_CLOEXEC must show up in the child (the check can fail).
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    // Others that must not: taskport's own (poller, wake-up, the watch) and one made here.
    int hidden[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, hidden) == 0);
    auto other = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe));  // its pipe, its watch
    auto r = run_capture(rt, io::process_options("/bin/ls").arguments({"-l", "/proc/self/fd/"}).std_out(io::stdio::pipe)
                                 .std_err(io::stdio::pipe));
    REQUIRE(r.status.success());
    // "lr-x------ 1 u g 64 <date> 3 -> /proc/123/fd": descriptor number and target.
    std::map<int, std::string> seen;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        auto arrow = line.find(" -> ");
        if (arrow == std::string::npos) continue;
        auto sp = line.rfind(' ', arrow - 1);
        seen[std::stoi(line.substr(sp + 1, arrow - sp - 1))] = line.substr(arrow + 4);
    }
    CHECK(seen.count(0) == 1);
    CHECK(seen.count(1) == 1);
    CHECK(seen.count(sv[0]) == 1);  // the control is inherited
    for (const auto& [fd, target] : seen) {
        if (fd <= 2) continue;
        if (target.rfind("/proc/", 0) == 0) continue;  // ls's own directory
        const int flags = ::fcntl(fd, F_GETFD);
        INFO("the child has descriptor " << fd << " -> " << target);
        CHECK((flags >= 0 && !(flags & FD_CLOEXEC)));  // only what this process lets be inherited
    }
    CHECK(seen.count(hidden[0]) == 0);
    CHECK(seen.count(hidden[1]) == 0);
    for (int fd : {sv[0], sv[1], hidden[0], hidden[1]}) ::close(fd);
    other.stdin_pipe().close();
    CHECK(run_to_end(rt, other).success());
    { io::process gone = std::move(other); }
    CHECK(tp_test::open_fds() == fds);
}

// kqueue: the exit is an EVFILT_PROC event in the runtime's own kqueue; the SIGCHLD fallback
// (which installs a SIGCHLD handler for its pipes) is not used. Checked where the backend is
// kqueue (TASKPORT_IO_BACKEND, as tests/meson.build sets it); elsewhere only the waits run.
TEST_CASE("process: on kqueue the exit comes through EVFILT_PROC, not SIGCHLD", "[process][kqueue]") {
    const char* b = std::getenv("TASKPORT_IO_BACKEND");
    const bool kq = b && std::string(b) == "kqueue";
    if (kq) {  // nothing here uses SIGCHLD on kqueue: start from the default disposition
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        REQUIRE(::sigaction(SIGCHLD, &dfl, nullptr) == 0);
    }
    runtime rt(tp_test::workers(2));
    auto p = io::process::start(rt, sh("exit 5"));
    CHECK(run_to_end(rt, p) == io::exit_status::from_code(5));
    auto q = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe));
    if (kq) {  // while a child is watched (the fallback restores the default after the last reap)
        struct sigaction now {};
        REQUIRE(::sigaction(SIGCHLD, nullptr, &now) == 0);
        CHECK(now.sa_handler == SIG_DFL);  // nobody installed a SIGCHLD handler
    }
    q.kill();
    CHECK(run_to_end(rt, q).signal() == SIGKILL);
}

// A child reaped by try_wait (or a wait's first attempt) after it exited, while its exit
// registration (pidfd, EVFILT_PROC knote) may still be armed: the runtime's later I/O must not
// suffer. (libkqueue reports an EVFILT_PROC exit with waitid(WNOWAIT) on the pid: were the
// knote left armed past the reap, that call would fail and cut every event batch after it.)
TEST_CASE("process: reaped by try_wait after its exit; the runtime's I/O goes on", "[process]") {
    runtime rt(tp_test::workers(2));
    for (int i = 0; i < 20; ++i) {
        auto p = io::process::start(rt, sh("exit " + std::to_string(i)));
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (proc_state(p.pid()) != 'Z') {  // a zombie: exited, not reaped
            REQUIRE(std::chrono::steady_clock::now() < deadline);
            std::this_thread::yield();
        }
        auto st = p.try_wait();
        REQUIRE(st.has_value());
        CHECK(*st == io::exit_status::from_code(i));
        CHECK(proc_state(p.pid()) == 0);
        // Then a pipe round trip and a wait through the same poller.
        auto r = run_capture(rt, sh("read x; echo \"got $x\"").std_in(io::stdio::null).std_out(io::stdio::pipe));
        CHECK(r.out == "got \n");
        CHECK(r.status.success());
    }
}

#endif
