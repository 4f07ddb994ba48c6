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
};

std::unique_ptr<poller> make_epoll_poller();   // null where epoll does not exist
std::unique_ptr<poller> make_kqueue_poller();  // null where kqueue does not exist

}  // namespace taskport::io::detail
