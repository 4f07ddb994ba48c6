// kqueue_poller.cpp — poller on kqueue (FreeBSD, macOS, NetBSD, OpenBSD; Linux through
// libkqueue), written against the kqueue(2) manual page. Built wherever <sys/event.h> exists
// (io/meson.build); picked by TASKPORT_IO_BACKEND=kqueue, or by auto where epoll is absent.
//
// Each descriptor gets two filters, EVFILT_READ and EVFILT_WRITE, added once with EV_CLEAR:
// edge-triggered, like EPOLLET, so the readiness core (reactor.cpp) is the same for both.
// A descriptor's two filters report separately; each event says one direction. EV_EOF (the
// peer shut its side, or the connection failed) is reported as readiness of the filter's own
// direction; the operation then finds out what happened from its own system call — except
// the socket's error: kqueue reports it in EV_EOF's fflags, and libkqueue takes it from the
// socket with getsockopt(SO_ERROR), which clears it (src/linux/read.c:116-127,
// src/linux/write.c:59-70 of mheily/libkqueue), so the operation's own call would see
// end-of-stream, EPIPE or no error. So on EV_EOF this poller hands the readiness core the
// error (poll_event::error: fflags, or what SO_ERROR still holds, taken here so that a later
// kevent() cannot take it unseen) and whether the socket is hung up (poll_event::hup, by
// poll(): reset, refused, or closed both ways; checked before SO_ERROR, and a reset sets the
// error before the hang-up, so once hup is seen its error has been taken by this event or an
// earlier one). The core keeps the error (descriptor_state::event_error) and the operations
// report it once (tcp.cpp). FreeBSD and macOS leave so_error in place (filt_soread copies
// it); taking it here is then what libkqueue does, and the result is the same.
//
// libkqueue does not report EV_EOF for a peer's FIN that arrives with data still unread when
// both filters are on one descriptor: the second filter's registration rebuilds the epoll
// mask from EPOLLIN|EPOLLOUT only and drops EPOLLRDHUP (src/linux/platform.c:1752-1753 and
// 1932; seen in /proc/<pid>/fdinfo: events 0x8000001d instead of 0x80002019). So nothing here
// waits for an EV_EOF that a plain end-of-stream may never get; only a hung-up socket's
// (POLLHUP: EPOLLHUP is always in the mask) is waited for.
//
// libkqueue closes a kqueue's own descriptors (its epoll fd, a pipe end, eventfds) on its
// monitoring thread after it sees the kqueue's descriptor closed (src/linux/platform.c:47-58,
// 207-212): the destructor asks it to finish that before returning
// (libkqueue_drain_pending_close, src/linux/platform.c:546), so a runtime's descriptors are
// all closed when its destructor returns, as on epoll.
//
// Child processes (process_watch.hpp): a negative "descriptor" given to add() is a process
// watch; add() registers EVFILT_PROC NOTE_EXIT (EV_ONESHOT) for its pid with the tag, wait()
// reports that event as read readiness (no probe: there is no socket), remove() deletes the
// knote if the registry says it is still there. The registry (pid, kqueue, registered) is
// process-wide under one mutex, so that process.cpp can suspend a knote before its reap.
// libkqueue 2.7.0 implements EVFILT_PROC on Linux with a pidfd in its epoll set
// (src/linux/proc.c), and reports the exit with waitid(WNOWAIT), leaving the reap to us.
//
// wake(): EVFILT_USER with NOTE_TRIGGER where the system has it (FreeBSD, macOS, NetBSD 10,
// libkqueue), else a non-blocking pipe whose read end is registered for EVFILT_READ (OpenBSD).
//
// Not built or run on this project's CI machines (Linux, and Debian 12 has no libkqueue
// package): README's platform table says how it is tested.
#include "poller.hpp"

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "process_watch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

// libkqueue's Linux backend exports this without declaring it in <sys/event.h>; io/meson.build
// checks that it links (TASKPORT_HAVE_LIBKQUEUE_DRAIN). It returns once the monitoring thread
// has freed every kqueue whose descriptor was closed.
#if defined(TASKPORT_HAVE_LIBKQUEUE_DRAIN) && TASKPORT_HAVE_LIBKQUEUE_DRAIN
extern "C" void libkqueue_drain_pending_close(void);
#endif

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

// ---- process watches (process_watch.hpp) ----

struct watch_entry {
    long pid;
    int kq = -1;           // the poller's kqueue once added (then alive until remove())
    void* tag = nullptr;   // the readiness core's tag for the watch
    bool registered = false;  // a knote is (or may be, if it fired) in kq
};
std::mutex watches_mu;
std::unordered_map<int, watch_entry> watches;  // guarded by watches_mu
int next_watch = -2;                            // guarded by watches_mu; counts down

// EV_ADD of the entry's knote. errno-style result (ESRCH: the process has exited).
int add_proc_knote(const watch_entry& w) noexcept {
    struct kevent ev;
    EV_SET(&ev, static_cast<uintptr_t>(w.pid), EVFILT_PROC, EV_ADD | EV_ONESHOT, NOTE_EXIT, 0, to_udata(w.tag));
    return ::kevent(w.kq, &ev, 1, nullptr, 0, nullptr) < 0 ? errno : 0;
}
void delete_proc_knote(const watch_entry& w) noexcept {
    struct kevent ev;
    EV_SET(&ev, static_cast<uintptr_t>(w.pid), EVFILT_PROC, EV_DELETE, 0, 0, to_udata(nullptr));
    ::kevent(w.kq, &ev, 1, nullptr, 0, nullptr);  // ENOENT: it fired (EV_ONESHOT) already
}

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
#if defined(TASKPORT_HAVE_LIBKQUEUE_DRAIN) && TASKPORT_HAVE_LIBKQUEUE_DRAIN
        libkqueue_drain_pending_close();  // libkqueue's descriptors for kq_ are closed after this
#endif
    }

    void add(int fd, void* tag) override {
        if (is_process_watch(fd)) {
            std::lock_guard g(watches_mu);
            auto it = watches.find(fd);
            if (it == watches.end()) fail(EBADF, "kevent(EVFILT_PROC)");
            watch_entry& w = it->second;
            w.kq = kq_;
            w.tag = tag;
            const int e = add_proc_knote(w);
            // ESRCH: the child has exited already (BSD refuses the knote of a zombie): it
            // stays a zombie until process.cpp reaps it, and the wait's first attempt does.
            if (e != 0 && e != ESRCH) fail(e, "kevent(EVFILT_PROC)");
            w.registered = e == 0;
            return;
        }
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
        if (is_process_watch(fd)) {
            std::lock_guard g(watches_mu);
            auto it = watches.find(fd);
            if (it == watches.end()) return;
            if (it->second.registered) delete_proc_knote(it->second);
            it->second.registered = false;
            it->second.kq = -1;
            return;
        }
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
#if defined(TASKPORT_LIBKQUEUE) && TASKPORT_LIBKQUEUE
        lost_ = n == max;  // see poller::lost_events
#endif
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
            if (evs[i].filter == EVFILT_PROC) {  // a watched child exited: its wait may reap
                out[k++] = poll_event{tag, true, false};
                continue;
            }
            const bool read_side = evs[i].filter == EVFILT_READ;
            const bool write_side = evs[i].filter == EVFILT_WRITE;
            if (!read_side && !write_side) continue;
            poll_event& pe = out[k++];
            pe = poll_event{tag, read_side, write_side};
            if (evs[i].flags & EV_EOF) {
                pe.closed = true;
                pe.error = static_cast<int>(evs[i].fflags);
                probe(static_cast<int>(evs[i].ident), pe);
            }
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
    bool events_carry_errors() const noexcept override { return true; }
#if defined(TASKPORT_LIBKQUEUE) && TASKPORT_LIBKQUEUE
    bool short_io_drains() const noexcept override { return false; }  // poller.hpp
#endif
    bool lost_events() noexcept override { return std::exchange(lost_, false); }
    // Hung up (poll() first: a reset sets the error before the hang-up, so once the hang-up
    // is seen the error is on the socket or was taken already), then the error still on the
    // socket if the event brought none (taken here, so that a later kevent() cannot take it
    // unseen).
    void probe(int fd, poll_event& pe) noexcept override {
        pollfd p{fd, 0, 0};
        pe.hup = ::poll(&p, 1, 0) > 0 && (p.revents & POLLHUP) != 0;
        if (pe.error == 0) {
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0) pe.error = err;
        }
    }

private:
    int kq_ = -1;
    bool lost_ = false;  // the role holder's: set by wait(), read by lost_events()
#if defined(EVFILT_USER)
    static constexpr std::uintptr_t wake_ident = 1;  // EVFILT_USER identifiers are ours to pick
#else
    int pipe_[2] = {-1, -1};
#endif
};

}  // namespace

std::unique_ptr<poller> make_kqueue_poller() { return std::make_unique<kqueue_poller>(); }

int process_watch_open(long pid) {
    std::lock_guard g(watches_mu);
    for (;;) {
        const int n = next_watch;
        next_watch = n == -2147483647 - 1 ? -2 : n - 1;  // wraps only after 2^31 children
        if (watches.find(n) != watches.end()) continue;
        watches.emplace(n, watch_entry{pid});
        return n;
    }
}

void process_watch_close(int number) noexcept {
    std::lock_guard g(watches_mu);
    auto it = watches.find(number);
    if (it == watches.end()) return;
    if (it->second.registered) delete_proc_knote(it->second);  // not attached/detached normally
    watches.erase(it);
}

void process_watch_suspend(int number) noexcept {
    std::lock_guard g(watches_mu);
    auto it = watches.find(number);
    if (it == watches.end() || !it->second.registered) return;
    delete_proc_knote(it->second);
    it->second.registered = false;
}

int process_watch_resume(int number) noexcept {
    std::lock_guard g(watches_mu);
    auto it = watches.find(number);
    if (it == watches.end() || it->second.kq < 0 || it->second.registered) return 0;
    const int e = add_proc_knote(it->second);
    it->second.registered = e == 0;
    return e;
}

bool process_watch_available() noexcept { return true; }

}  // namespace taskport::io::detail
