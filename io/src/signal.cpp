// signal.cpp — signal_set on POSIX (see signal.hpp): one process-wide handler table, a pipe
// per set, the set's waits reading its pipe on the readiness core.
//
// The handler's table and its protocol with add/close: signal_table.hpp.
#include <taskport/io/signal.hpp>
#include <taskport/runtime.hpp>

#include "service.hpp"
#include "signal_pipe.hpp"
#include "signal_table.hpp"
#include "socket_ops.hpp"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <mutex>

#include <fcntl.h>
#include <unistd.h>

namespace taskport::io {
namespace detail {

namespace {

constexpr int max_sets = 256;
constexpr int max_signal = NSIG - 1 < 64 ? NSIG - 1 : 64;  // fits the 64-bit mask

// Written under table_lock; read by the handler on any thread (signal_table.hpp).
constinit basic_signal_table<taskport::detail::std_atomics, max_sets> table;

std::mutex table_lock;  // guards the writers' side of table, users and saved
int users[max_signal + 1] = {};               // sets holding each signal
struct sigaction saved[max_signal + 1] = {};  // the disposition before the first set took it

void on_signal(int signo) noexcept {
    const int saved_errno = errno;
    table.deliver(signo, [](int fd, int n) noexcept {
        const unsigned char b = static_cast<unsigned char>(n);
        (void)!::write(fd, &b, 1);  // a full pipe: dropped (see signal.hpp)
    });
    errno = saved_errno;
}

[[noreturn]] void fail(int e, const char* what) { throw std::system_error(e, std::system_category(), what); }

void check_signal(int signo, const char* what) {
    if (signo < 1 || signo > max_signal || signo == SIGKILL || signo == SIGSTOP)
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                std::string(what) + ": signal " + std::to_string(signo) + " cannot be waited for");
}

// Under table_lock: one more set holds signo (installs the handler for the first).
void take_signal(int signo, const char* what) {
    if (users[signo] == 0) {
        struct sigaction sa{};
        sa.sa_handler = &on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (::sigaction(signo, &sa, &saved[signo]) < 0) fail(errno, what);
    }
    ++users[signo];
}

// Under table_lock: one set fewer holds signo (the last puts the old disposition back).
void drop_signal(int signo) noexcept {
    if (--users[signo] == 0) ::sigaction(signo, &saved[signo], nullptr);
}

int open_pipe(int fds[2]) noexcept {
#if defined(__linux__)
    return ::pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
    if (::pipe(fds) < 0) return -1;
    for (int i = 0; i < 2; ++i) {  // the fork window of posix_socket.cpp's fallback applies
        ::fcntl(fds[i], F_SETFL, ::fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        ::fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
#endif
}

}  // namespace

bool signal_wait_op::perform_wait(operation* o) noexcept {
    auto* op = static_cast<signal_wait_op*>(o);
    for (;;) {
        unsigned char b = 0;
        const ssize_t n = ::read(op->st.get()->fd, &b, 1);
        if (n == 1) {
            op->bytes = b;
            op->ec.clear();
            return true;
        }
        // End of file: the write end is closed, which only the set's own close() does, just
        // before it closes this end and so aborts the wait (operation_aborted). Stay parked
        // until then: the reactor may see the end of file first (it did: a close() from
        // another task completed the wait with broken_pipe, TSan, epoll-nopoll, 1 run in 26).
        if (n == 0) return false;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        op->ec = std::error_code(errno, std::system_category());
        return true;
    }
}

int open_signal_pipe(int signo, int& slot, const char* what) {
    check_signal(signo, what);
    int fds[2];
    if (open_pipe(fds) < 0) fail(errno, what);
    std::lock_guard g(table_lock);
    slot = table.claim(fds[1]);
    if (slot < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::system_error(std::make_error_code(std::errc::too_many_files_open),
                                std::string(what) + ": more than 256 signal sets and SIGCHLD watches at once");
    }
    try {
        take_signal(signo, what);
    } catch (...) {
        int fd = -1;
        table.release(slot, fd);
        slot = -1;
        if (fd >= 0) ::close(fd);
        ::close(fds[0]);
        throw;
    }
    table.want(slot, std::uint64_t{1} << (signo - 1));
    return fds[0];
}

void close_signal_pipe(int slot) noexcept {
    if (slot < 0) return;
    std::lock_guard g(table_lock);
    int fd = -1;
    const std::uint64_t m = table.release(slot, fd);
    for (int signo = 1; signo <= max_signal; ++signo)
        if (m & (std::uint64_t{1} << (signo - 1))) drop_signal(signo);
    if (fd >= 0) ::close(fd);
}

}  // namespace detail

signal_set::signal_set(runtime& rt, std::initializer_list<int> signals) {
    const char* what = "taskport::io::signal_set";
    for (int s : signals) detail::check_signal(s, what);
    detail::service& svc = detail::service_of(rt);
    int fds[2];
    if (detail::open_pipe(fds) < 0) detail::fail(errno, what);
    {
        std::lock_guard g(detail::table_lock);
        slot_ = detail::table.claim(fds[1]);
    }
    if (slot_ < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::system_error(std::make_error_code(std::errc::too_many_files_open),
                                std::string(what) + ": more than 256 signal sets at once");
    }
    try {
        core_ = detail::socket_core(&svc, fds[0]);  // closes fds[0] if it throws
        for (int s : signals) add(s);
    } catch (...) {
        close();  // frees the slot (and its write end), drops the signals taken so far
        throw;
    }
}

void signal_set::add(int signo) {
    const char* what = "taskport::io::signal_set::add";
    detail::check_signal(signo, what);
    if (slot_ < 0 || !core_.is_open())
        throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what);
    std::lock_guard g(detail::table_lock);
    const std::uint64_t bit = std::uint64_t{1} << (signo - 1);
    const std::uint64_t m = detail::table.wanted(slot_);
    if (m & bit) return;
    detail::take_signal(signo, what);
    detail::table.want(slot_, m | bit);
}

// The write end goes first (no handler can write to it any more once release() returns), then
// the read end: the other way round, a handler writing to a pipe without a reader would raise
// SIGPIPE. A wait that sees the end of file in between stays parked (perform_wait).
void signal_set::close() noexcept {
    if (slot_ >= 0) {
        std::lock_guard g(detail::table_lock);
        int fd = -1;
        const std::uint64_t m = detail::table.release(slot_, fd);
        for (int signo = 1; signo <= detail::max_signal; ++signo)
            if (m & (std::uint64_t{1} << (signo - 1))) detail::drop_signal(signo);
        if (fd >= 0) ::close(fd);
        slot_ = -1;
    }
    core_.close();
}

}  // namespace taskport::io
