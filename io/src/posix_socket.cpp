// posix_socket.cpp — see posix_socket.hpp. Which branch is built is decided by io/meson.build's
// configure checks: TASKPORT_HAVE_SOCK_FLAGS (SOCK_NONBLOCK and SOCK_CLOEXEC), _ACCEPT4,
// _MSG_NOSIGNAL, _SO_NOSIGPIPE; -Dforce_posix_fallbacks=true sets the first three to 0.
//
// Close-on-exec without SOCK_CLOEXEC/accept4: the descriptor is made close-on-exec by fcntl
// right after socket()/accept() returns it. A fork() by another thread between the two calls
// gives the child the descriptor without FD_CLOEXEC, and an exec() there keeps it open. That
// window is accepted, not closed: closing it needs every fork in the process to wait for it
// (a process-wide lock held shared around socket+fcntl and exclusively around fork), and the
// forks that matter are the user's (fork, posix_spawn, popen, a library's), which taskport
// cannot make take its lock; a pthread_atfork handler cannot take it either without blocking
// a fork from inside a locked region's thread. Where it matters, a program spawns with
// posix_spawn and POSIX_SPAWN_CLOEXEC_DEFAULT (macOS), which closes every descriptor the
// child is not given. Linux and the BSDs have the atomic calls and take them.
//
// SIGPIPE: MSG_NOSIGNAL on each send where it exists; else SO_NOSIGPIPE set once per socket
// (macOS); else (neither: only a forced build on Linux) SIGPIPE is blocked in the calling
// thread around the send and a SIGPIPE that send raised is taken back with sigtimedwait
// before the mask is restored (one that was pending before is left alone).
#include "posix_socket.hpp"
#include "socket_ops.hpp"

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

#if !TASKPORT_HAVE_MSG_NOSIGNAL && !TASKPORT_HAVE_SO_NOSIGPIPE
#include <csignal>
#include <ctime>

#include <pthread.h>
#endif

namespace taskport::io::detail {

namespace {

#if !TASKPORT_HAVE_SOCK_FLAGS || !TASKPORT_HAVE_ACCEPT4
// O_NONBLOCK and FD_CLOEXEC on a new descriptor; closes it and returns -1 (errno set) if
// either fails.
int make_nonblocking_cloexec(int fd) noexcept {
    const int fl = ::fcntl(fd, F_GETFL);
    const int fdf = fl < 0 ? -1 : ::fcntl(fd, F_GETFD);
    if (fdf < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || ::fcntl(fd, F_SETFD, fdf | FD_CLOEXEC) < 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
#endif

// SO_NOSIGPIPE where SIGPIPE is a socket option rather than a send flag.
int no_sigpipe_option(int fd) noexcept {
#if !TASKPORT_HAVE_MSG_NOSIGNAL && TASKPORT_HAVE_SO_NOSIGPIPE
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
#endif
    return fd;
}

}  // namespace

int open_socket(int family, int type, std::error_code& ec) noexcept {
#if TASKPORT_HAVE_SOCK_FLAGS
    int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
    int fd = ::socket(family, type, 0);
    if (fd >= 0) fd = make_nonblocking_cloexec(fd);  // see the file comment: the fork window
#endif
    if (fd >= 0) fd = no_sigpipe_option(fd);
    if (fd < 0) ec = std::error_code(errno, std::system_category());
    return fd;
}

int accept_socket(int listen_fd, sockaddr* addr, socklen_t* len) noexcept {
#if TASKPORT_HAVE_ACCEPT4 && TASKPORT_HAVE_SOCK_FLAGS
    int fd = ::accept4(listen_fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = ::accept(listen_fd, addr, len);
    if (fd >= 0) fd = make_nonblocking_cloexec(fd);  // see the file comment: the fork window
#endif
    if (fd >= 0) fd = no_sigpipe_option(fd);
    return fd;
}

ssize_t send_nosignal(int fd, const void* data, std::size_t n, const sockaddr* to, socklen_t to_len) noexcept {
#if TASKPORT_HAVE_MSG_NOSIGNAL
    constexpr int flags = MSG_NOSIGNAL;
#else
    constexpr int flags = 0;  // SO_NOSIGPIPE is set on the socket, or SIGPIPE is blocked below
#endif
#if !TASKPORT_HAVE_MSG_NOSIGNAL && !TASKPORT_HAVE_SO_NOSIGPIPE
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
#endif
    const ssize_t r = to ? ::sendto(fd, data, n, flags, to, to_len) : ::send(fd, data, n, flags);
#if !TASKPORT_HAVE_MSG_NOSIGNAL && !TASKPORT_HAVE_SO_NOSIGPIPE
    const int e = errno;
    if (r < 0 && e == EPIPE && !was_pending) {
        const timespec zero{};
        while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    errno = e;
#endif
    return r;
}

}  // namespace taskport::io::detail
