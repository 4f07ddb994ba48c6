// io_test_util.hpp — what the I/O tests (test_io_*.cpp) share on top of test_util.hpp: connected
// stream pairs, plain blocking POSIX peers for the test thread, descriptor counting, byte spans,
// and the check behind io_test_main.cpp that skips an io_uring run where io_uring is unavailable.
//
// Every I/O test executable runs once per backend (meson registers it as <name>-epoll and
// <name>-io_uring with TASKPORT_IO_BACKEND set); the tests themselves never name a backend.
#pragma once

#include "test_util.hpp"

#include <taskport/taskport.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace tp_test {

namespace io = taskport::io;

#if defined(_WIN32)
inline constexpr bool on_windows = true;
#else
inline constexpr bool on_windows = false;
#endif

// True when the Windows build runs under Wine (its ntdll exports wine_get_version). Wine 8
// differs from Windows in a few socket details the fault tests need (see their skips).
inline bool under_wine() {
#if defined(_WIN32)
    HMODULE ntdll = ::GetModuleHandleA("ntdll.dll");
    return ntdll && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
#else
    return false;
#endif
}

// Why this run cannot use the backend TASKPORT_IO_BACKEND asks for (empty: it can). Only an
// io_uring request is ever excused, and only when the same probe succeeds on epoll — so a broken
// reactor still fails the tests instead of skipping them.
inline std::string io_backend_unavailable() {
    const char* env = std::getenv("TASKPORT_IO_BACKEND");
    if (!env || std::strcmp(env, "io_uring") != 0) return {};
    auto probe = [](taskport::io_backend b) -> std::string {
        try {
            taskport::runtime_options o;
            o.workers = 1;
            o.io = b;
            taskport::runtime rt(o);
            auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
            return {};
        } catch (const std::exception& e) {
            return e.what();
        }
    };
    std::string why = probe(taskport::io_backend::io_uring);
    if (why.empty()) return {};
    if (!probe(taskport::io_backend::epoll).empty()) return {};  // not io_uring's fault: run, fail
    return why;
}

// Descriptors open in this process now (Linux: /proc/self/fd; Windows: the process's handle
// count, -1 where neither exists).
inline long open_fds() {
#if defined(_WIN32)
    DWORD n = 0;
    return ::GetProcessHandleCount(::GetCurrentProcess(), &n) ? static_cast<long>(n) : -1;
#else
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    while (::readdir(d)) ++n;
    ::closedir(d);
    return n - 3;  // ".", ".." and the directory's own descriptor
#endif
}

inline std::span<const std::byte> bytes_of(std::string_view s) noexcept {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}
inline std::span<std::byte> bytes_of(std::string& s) noexcept {
    return std::as_writable_bytes(std::span<char>(s.data(), s.size()));
}
inline std::string_view text_of(std::span<const std::byte> b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A deterministic, position-dependent pattern (so a dropped or duplicated chunk shows).
inline std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (std::size_t i = 0; i < n; ++i) {
        x = x * 1664525u + 1013904223u;
        v[i] = static_cast<std::byte>(x >> 24);
    }
    return v;
}

// Runs a coroutine to completion from the test thread; a hang fails the test run loudly.
template <class T>
T run(taskport::runtime& rt, taskport::task<T> t, const char* what = "block_on") {
    watchdog w(what);
    return rt.block_on(std::move(t));
}

// The error a coroutine throws, caught inside the runtime: the exception object then never
// crosses threads (ThreadSanitizer cannot see libstdc++'s exception reference counts, and
// reports the worker's release of a rethrown exception as a race with the test thread's read).
// A coroutine that throws nothing gives an empty error_code; what, when given, gets what().
template <class T>
taskport::task<std::error_code> catching(taskport::task<T> t, std::string* what = nullptr) {
    try {
        co_await std::move(t);
    } catch (const std::system_error& e) {
        if (what) *what = e.what();
        co_return e.code();
    }
    co_return std::error_code();
}
// Runs t from the test thread and returns the error it threw (see catching()).
template <class T>
std::error_code error_in(taskport::runtime& rt, taskport::task<T> t, std::string* what = nullptr) {
    return run(rt, catching(std::move(t), what));
}

struct stream_pair {
    io::tcp_stream client;  // connected
    io::tcp_stream server;  // accepted
};

// A connected pair over loopback (the kernel completes the handshake into the backlog, so connect
// then accept in one coroutine does not deadlock).
inline taskport::task<stream_pair> connect_pair(taskport::runtime& rt, io::tcp_listener& l) {
    stream_pair p;
    p.client = co_await io::tcp_stream::connect(rt, l.local_endpoint());
    p.server = co_await l.accept();
    co_return p;
}
inline stream_pair connect_pair(taskport::runtime& rt) {
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    return run(rt, connect_pair(rt, l), "connect_pair");
}

// ---- plain peers, driven by the test thread (blocking BSD sockets, Winsock on Windows) ----

using raw_socket = io::tcp_stream::native_handle_type;  // int; SOCKET on Windows

// The calling thread's last socket error: errno, or WSAGetLastError() on Windows.
inline int last_socket_error() noexcept {
#if defined(_WIN32)
    return ::WSAGetLastError();
#else
    return errno;
#endif
}

inline void check_posix(bool ok, const char* what) {
    if (!ok) throw std::system_error(last_socket_error(), std::system_category(), what);
}

#if defined(_WIN32)
// Throws std::system_error with GetLastError()'s code unless ok.
inline void check_win32(bool ok, const char* what) {
    if (!ok) throw std::system_error(static_cast<int>(::GetLastError()), std::system_category(), what);
}
#endif

inline void raw_close(raw_socket s) noexcept {
#if defined(_WIN32)
    ::closesocket(s);
#else
    ::close(s);
#endif
}

// A blocking TCP socket of the given family (IPv4 by default), not yet bound or connected
// (SOCK_CLOEXEC).
inline raw_socket raw_tcp_socket(int family = AF_INET) {
#if defined(_WIN32)
    WSADATA wsa;
    ::WSAStartup(MAKEWORD(2, 2), &wsa);  // counted; the runtime has started Winsock already anyway
    raw_socket fd = ::socket(family, SOCK_STREAM, IPPROTO_TCP);
    check_posix(fd != INVALID_SOCKET, "socket");
#else
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check_posix(fd >= 0, "socket");
#endif
    return fd;
}

// A blocking TCP socket connected to ep (SOCK_CLOEXEC).
inline raw_socket raw_connect(const io::endpoint& ep) {
    raw_socket fd = raw_tcp_socket(ep.data()->sa_family);
    if (::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
        int e = last_socket_error();
        raw_close(fd);
        throw std::system_error(e, std::system_category(), "connect");
    }
    return fd;
}

// Closing fd then sends RST instead of FIN.
inline void set_linger0(raw_socket fd) {
    ::linger lg{1, 0};
    check_posix(::setsockopt(fd, SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&lg), sizeof lg) == 0,
                "SO_LINGER");
}

inline void raw_send_all(raw_socket fd, std::span<const std::byte> b) {
    while (!b.empty()) {
#if defined(_WIN32)
        int n = ::send(fd, reinterpret_cast<const char*>(b.data()), static_cast<int>(b.size()), 0);
        check_posix(n >= 0, "send");
#else
        ssize_t n = ::send(fd, b.data(), b.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        check_posix(n >= 0, "send");
#endif
        b = b.subspan(static_cast<std::size_t>(n));
    }
}

// Owns a raw socket.
class raw_fd {
public:
    static constexpr raw_socket none = static_cast<raw_socket>(-1);
    raw_fd() noexcept = default;
    explicit raw_fd(raw_socket fd) noexcept : fd_(fd) {}
    raw_fd(raw_fd&& o) noexcept : fd_(std::exchange(o.fd_, none)) {}
    raw_fd& operator=(raw_fd&& o) noexcept {
        reset(std::exchange(o.fd_, none));
        return *this;
    }
    ~raw_fd() { reset(); }
    raw_socket get() const noexcept { return fd_; }
    void reset(raw_socket fd = none) noexcept {
        if (fd_ != none) raw_close(fd_);
        fd_ = fd;
    }

private:
    raw_socket fd_ = none;
};

// The error code an exception_ptr carries (system_error), or a marker for anything else.
inline std::error_code code_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& x) {
        return x.code();
    } catch (...) {
        return std::make_error_code(std::errc::state_not_recoverable);
    }
}

// A future's outcome as an error code: empty when it returned normally.
template <class T>
std::error_code outcome(taskport::future<T>& f) {
    try {
        f.get();
        return {};
    } catch (...) {
        return code_of(std::current_exception());
    }
}

inline const std::error_code aborted = taskport::io::operation_aborted();

// A fresh directory under the system's temporary one, named taskport-test-<tag>-<pid>-<n>, removed
// with everything in it.
struct temp_dir {
    std::filesystem::path path;
    explicit temp_dir(const char* tag) {
        static std::atomic<int> n{0};
#if defined(_WIN32)
        const unsigned long pid = ::GetCurrentProcessId();
#else
        const long pid = ::getpid();
#endif
        path = std::filesystem::temp_directory_path() /
               ("taskport-test-" + std::string(tag) + "-" + std::to_string(pid) + "-" + std::to_string(n++));
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    std::filesystem::path operator/(const char* name) const { return path / name; }
};

}  // namespace tp_test
