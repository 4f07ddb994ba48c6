// fork_client.hpp — a client in a child process, for the soak tests (test_soak_echo,
// test_soak_emfile): forked before this process starts any thread (a runtime), it talks to the
// test over two pipes, one byte or one line at a time, every read bounded by a deadline that only
// fails a hung test. The child is killed and reaped if the test leaves early. POSIX only.
#pragma once

#include "io_test_util.hpp"

#if !defined(_WIN32)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <string>

namespace tp_test {

// Writes all of s; false on an error or a closed pipe.
inline bool write_all_fd(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t k = ::write(fd, s.data() + off, s.size() - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        off += static_cast<std::size_t>(k);
    }
    return true;
}

// One byte from fd within `within`; '\0' on timeout, end of file or error.
inline char read_byte(int fd, std::chrono::milliseconds within =
                                  std::chrono::duration_cast<std::chrono::milliseconds>(hang_deadline)) {
    pollfd p{fd, POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, static_cast<int>(within.count()));
    while (r < 0 && errno == EINTR);
    char c = '\0';
    if (r <= 0 || ::read(fd, &c, 1) != 1) return '\0';
    return c;
}

// One line (without its '\n', at most max bytes), each byte within `within`.
inline std::string read_line(int fd, std::size_t max = 1024,
                             std::chrono::milliseconds within =
                                 std::chrono::duration_cast<std::chrono::milliseconds>(hang_deadline)) {
    std::string line;
    for (char c; line.size() < max && (c = read_byte(fd, within)) != '\0' && c != '\n';) line += c;
    return line;
}

// The child process and this side's ends of its pipes. The constructor forks; the child runs
// body(from_parent, to_parent), which must not return ([[noreturn]]: it _exit()s).
class forked_client {
public:
    template <class Body>
    explicit forked_client(Body&& body) {
        int down[2], up[2];
        if (::pipe2(down, O_CLOEXEC) != 0) return;
        if (::pipe2(up, O_CLOEXEC) != 0) {
            ::close(down[0]);
            ::close(down[1]);
            return;
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(down[1]);
            ::close(up[0]);
            body(down[0], up[1]);
            ::_exit(1);  // not reached: body exits
        }
        ::close(down[0]);
        ::close(up[1]);
        to_child_ = raw_fd(down[1]);
        from_child_ = raw_fd(up[0]);
        if (pid_ < 0) {
            to_child_.reset();
            from_child_.reset();
        }
    }
    forked_client(const forked_client&) = delete;
    forked_client& operator=(const forked_client&) = delete;
    ~forked_client() {
        if (pid_ > 0 && !done_) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }

    bool started() const noexcept { return pid_ > 0; }
    int to_child() const noexcept { return to_child_.get(); }
    int from_child() const noexcept { return from_child_.get(); }
    // Ends the child now (a test that gave up on it).
    void kill() noexcept {
        if (pid_ > 0 && !done_) ::kill(pid_, SIGKILL);
    }
    // The child's wait status (waitpid), once it has exited.
    int wait() {
        if (!done_ && ::waitpid(pid_, &status_, 0) == pid_) done_ = true;
        return status_;
    }

private:
    pid_t pid_ = -1;
    int status_ = -1;
    bool done_ = false;
    raw_fd to_child_, from_child_;
};

}  // namespace tp_test
#endif
