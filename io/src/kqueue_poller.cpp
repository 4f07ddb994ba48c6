// kqueue_poller.cpp — poller on kqueue (FreeBSD, macOS, NetBSD, OpenBSD; Linux through
// libkqueue), written against the kqueue(2) manual page. Built wherever <sys/event.h> exists
// (io/meson.build); picked by TASKPORT_IO_BACKEND=kqueue, or by auto where epoll is absent.
//
// Each descriptor gets two filters, EVFILT_READ and EVFILT_WRITE, added once with EV_CLEAR:
// edge-triggered, like EPOLLET, so the readiness core (reactor.cpp) is the same for both.
// A descriptor's two filters report separately; each event says one direction. EV_EOF (the
// peer shut its side, or the connection failed) is reported as readiness of the filter's own
// direction: the operation then finds out what happened from its own system call.
//
// wake(): EVFILT_USER with NOTE_TRIGGER where the system has it (FreeBSD, macOS, NetBSD 10,
// libkqueue), else a non-blocking pipe whose read end is registered for EVFILT_READ (OpenBSD).
//
// Not built or run on this project's CI machines (Linux, and Debian 12 has no libkqueue
// package): README's platform table says how it is tested.
#include "poller.hpp"

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

namespace taskport::io::detail {
namespace {

// struct kevent's udata is void* on FreeBSD, macOS and libkqueue, intptr_t on older NetBSD.
// (Templates, so that only the branch for the system's type is compiled.)
using udata_t = decltype(std::declval<struct kevent&>().udata);
template <class U = udata_t>
U to_udata(void* p) noexcept {
    if constexpr (std::is_pointer_v<U>)
        return static_cast<U>(p);
    else
        return reinterpret_cast<U>(p);
}
template <class U = udata_t>
void* from_udata(U u) noexcept {
    if constexpr (std::is_pointer_v<U>)
        return static_cast<void*>(u);
    else
        return reinterpret_cast<void*>(u);
}

[[noreturn]] void fail(int e, const char* what) { throw std::system_error(e, std::system_category(), what); }

void set_cloexec(int fd) noexcept { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

class kqueue_poller final : public poller {
public:
    kqueue_poller() {
        kq_ = ::kqueue();
        if (kq_ < 0) fail(errno, "kqueue");
        set_cloexec(kq_);  // kqueue() has no CLOEXEC flag everywhere (kqueue1 is not portable)
#if defined(EVFILT_USER)
        struct kevent ev;
        EV_SET(&ev, wake_ident, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, to_udata(this));
        if (::kevent(kq_, &ev, 1, nullptr, 0, nullptr) < 0) {
            int e = errno;
            ::close(kq_);
            fail(e, "kevent(EVFILT_USER)");
        }
#else
        if (::pipe(pipe_) < 0) {
            int e = errno;
            ::close(kq_);
            fail(e, "pipe");
        }
        for (int fd : pipe_) {
            set_cloexec(fd);
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        }
        struct kevent ev;
        EV_SET(&ev, pipe_[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, to_udata(this));
        if (::kevent(kq_, &ev, 1, nullptr, 0, nullptr) < 0) {
            int e = errno;
            ::close(pipe_[0]);
            ::close(pipe_[1]);
            ::close(kq_);
            fail(e, "kevent(pipe)");
        }
#endif
    }
    ~kqueue_poller() override {
#if !defined(EVFILT_USER)
        ::close(pipe_[0]);
        ::close(pipe_[1]);
#endif
        ::close(kq_);
    }

    void add(int fd, void* tag) override {
        struct kevent ev[2];
        EV_SET(&ev[0], fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, to_udata(tag));
        EV_SET(&ev[1], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, to_udata(tag));
        // No event list: a failed change makes kevent() return -1 with its errno.
        if (::kevent(kq_, ev, 2, nullptr, 0, nullptr) < 0) {
            int e = errno;
            remove(fd);  // the read filter may have been added before the write filter failed
            fail(e, "kevent(EV_ADD)");
        }
    }

    void remove(int fd) noexcept override {
        // One call per filter: a filter that is not there (ENOENT) must not keep the other.
        struct kevent ev;
        EV_SET(&ev, fd, EVFILT_READ, EV_DELETE, 0, 0, to_udata(nullptr));
        ::kevent(kq_, &ev, 1, nullptr, 0, nullptr);
        EV_SET(&ev, fd, EVFILT_WRITE, EV_DELETE, 0, 0, to_udata(nullptr));
        ::kevent(kq_, &ev, 1, nullptr, 0, nullptr);
    }

    int wait(poll_event* out, int max, int timeout_ms) override {
        struct kevent evs[256];
        if (max > 256) max = 256;
        timespec ts{};
        timespec* tsp = nullptr;
        if (timeout_ms >= 0) {
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1'000'000L;
            tsp = &ts;
        }
        int n = ::kevent(kq_, nullptr, 0, evs, max, tsp);
        if (n < 0) {
            if (errno == EINTR) return 0;
            fail(errno, "kevent(wait)");
        }
        int k = 0;
        for (int i = 0; i < n; ++i) {
            void* tag = from_udata(evs[i].udata);
            if (tag == this) {  // the wake-up
#if !defined(EVFILT_USER)
                char buf[64];
                while (::read(pipe_[0], buf, sizeof buf) > 0) {
                }
#endif
                continue;
            }
            if (evs[i].flags & EV_ERROR) continue;  // only for changes, and none are passed here
            const bool read_side = evs[i].filter == EVFILT_READ;
            const bool write_side = evs[i].filter == EVFILT_WRITE;
            if (!read_side && !write_side) continue;
            out[k++] = poll_event{tag, read_side, write_side};
        }
        return k;
    }

    void wake() noexcept override {
#if defined(EVFILT_USER)
        struct kevent ev;
        EV_SET(&ev, wake_ident, EVFILT_USER, 0, NOTE_TRIGGER, 0, to_udata(this));
        ::kevent(kq_, &ev, 1, nullptr, 0, nullptr);
#else
        char c = 1;
        ssize_t r = ::write(pipe_[1], &c, 1);
        (void)r;  // EAGAIN: the pipe is full, a wake-up is pending anyway
#endif
    }

    const char* name() const noexcept override { return "kqueue"; }

private:
    int kq_ = -1;
#if defined(EVFILT_USER)
    static constexpr std::uintptr_t wake_ident = 1;  // EVFILT_USER identifiers are ours to pick
#else
    int pipe_[2] = {-1, -1};
#endif
};

}  // namespace

std::unique_ptr<poller> make_kqueue_poller() { return std::make_unique<kqueue_poller>(); }

}  // namespace taskport::io::detail
