// poller.hpp — the readiness system calls, behind one small interface.
//
// The readiness core (reactor.cpp) is the same for every readiness API; a poller only
// registers descriptors (edge-triggered, read and write, once per descriptor), waits for
// events, and can be woken from another thread. epoll_poller.cpp implements it with
// epoll + eventfd; kqueue_poller.cpp with kqueue + EVFILT_USER. Nothing else differs.
#pragma once

#include <memory>

namespace taskport::io::detail {

struct poll_event {
    void* tag;      // what add() was given
    bool readable;  // read side ready, or error/hang-up (let the operation find out which)
    bool writable;  // write side ready, or error/hang-up
    // Pollers whose events carry the socket's error (events_carry_errors(): kqueue's EV_EOF):
    // error: the socket's pending error that came with the event (EV_EOF's fflags, or what
    // SO_ERROR still held; 0 if none); hup: the socket was hung up (POLLHUP: reset, failed,
    // or closed both ways) when the event was taken, so every error it can have has been
    // taken by now. Always 0/false on epoll.
    int error = 0;
    bool hup = false;
    // The socket is closed for reading, hung up, failed or has urgent data (epoll: RDHUP, HUP,
    // ERR, PRI; kqueue: EV_EOF): the readiness core stops trusting short reads as proof of a
    // drained socket (descriptor_state::no_skip).
    bool closed = false;
};

class poller {
public:
    virtual ~poller() = default;
    // Edge-triggered interest in both directions. Throws std::system_error.
    virtual void add(int fd, void* tag) = 0;
    virtual void remove(int fd) noexcept = 0;
    // Waits up to timeout_ms (-1: no limit). Returns the number of events stored (wake-ups
    // are consumed and not reported). Returns 0 on EINTR.
    virtual int wait(poll_event* out, int max, int timeout_ms) = 0;
    // Any thread: makes a wait() in progress (or the next one) return.
    virtual void wake() noexcept = 0;
    virtual const char* name() const noexcept = 0;
    // True where an event may carry a socket error that the socket itself no longer holds:
    // kqueue reports it in EV_EOF's fflags, and libkqueue (Linux) reads it with
    // getsockopt(SO_ERROR), which clears it (libkqueue src/linux/read.c:116-127,
    // src/linux/write.c:59-70), so a recv()/send()/SO_ERROR after the event sees EOF, EPIPE
    // or 0 instead. The readiness core then keeps the event's error for the operations
    // (descriptor_state::event_error; tcp.cpp). epoll: false, the system call sees the error.
    virtual bool events_carry_errors() const noexcept { return false; }
    // True where every arrival of data (or space, or a FIN, an error) after a system call on a
    // stream socket brings a new edge, and an event taken after a FIN says so (closed): then a
    // short read or write proves its side drained (descriptor_state::drained). epoll and native
    // kqueue: true. libkqueue: false (a FIN behind unread data comes without EV_EOF).
    virtual bool short_io_drains() const noexcept { return true; }
    // True if the last wait() may have lost events (the caller of wait() asks, right after):
    // libkqueue drops the rest of an epoll batch when the caller's event list fills (it asks
    // epoll_wait for as many events as the list holds and turns one epoll event into a read
    // and a write kevent: src/linux/platform.c:1116, 1304-1308, 1336, 1347), and edge-triggered
    // events are not reported again. The readiness core then re-checks every descriptor.
    virtual bool lost_events() noexcept { return false; }
    // What an event for fd would say of its error and hang-up (poll_event::error, ::hup), for
    // that re-check. Nothing where events carry no error.
    virtual void probe(int fd, poll_event& e) noexcept { (void)fd, (void)e; }
};

std::unique_ptr<poller> make_epoll_poller();   // null where epoll does not exist
std::unique_ptr<poller> make_kqueue_poller();  // null where kqueue does not exist

}  // namespace taskport::io::detail
