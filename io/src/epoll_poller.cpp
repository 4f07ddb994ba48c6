// epoll_poller.cpp — poller on Linux epoll: EPOLLET registration once per descriptor, an
// eventfd to wake the waiting thread.
#include "poller.hpp"

#include <cerrno>
#include <cstdint>
#include <system_error>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace taskport::io::detail {
namespace {

class epoll_poller final : public poller {
public:
    epoll_poller() {
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) throw std::system_error(errno, std::system_category(), "epoll_create1");
        wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_ < 0) {
            int e = errno;
            ::close(ep_);
            throw std::system_error(e, std::system_category(), "eventfd");
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.ptr = this;  // the wake-up tag
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev) < 0) {
            int e = errno;
            ::close(wake_);
            ::close(ep_);
            throw std::system_error(e, std::system_category(), "epoll_ctl(eventfd)");
        }
    }
    ~epoll_poller() override {
        ::close(wake_);
        ::close(ep_);
    }

    void add(int fd, void* tag) override {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
        ev.data.ptr = tag;
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) < 0)
            throw std::system_error(errno, std::system_category(), "epoll_ctl(ADD)");
    }

    void remove(int fd) noexcept override {
        epoll_event ev{};
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, &ev);
    }

    int wait(poll_event* out, int max, int timeout_ms) override {
        epoll_event evs[256];
        if (max > 256) max = 256;
        int n = ::epoll_wait(ep_, evs, max, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) return 0;
            throw std::system_error(errno, std::system_category(), "epoll_wait");
        }
        int k = 0;
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.ptr == this) {
                std::uint64_t v;
                while (::read(wake_, &v, sizeof v) > 0) {
                }
                continue;
            }
            const std::uint32_t e = evs[i].events;
            const bool err = e & (EPOLLERR | EPOLLHUP);
            out[k] = poll_event{evs[i].data.ptr, err || (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)),
                                err || (e & EPOLLOUT)};
            out[k++].closed = err || (e & (EPOLLRDHUP | EPOLLPRI));
        }
        return k;
    }

    void wake() noexcept override {
        std::uint64_t one = 1;
        ssize_t r = ::write(wake_, &one, sizeof one);
        (void)r;  // EAGAIN: the counter is already non-zero, a wake-up is pending anyway
    }

    const char* name() const noexcept override { return "epoll"; }

private:
    int ep_ = -1;
    int wake_ = -1;
};

}  // namespace

std::unique_ptr<poller> make_epoll_poller() { return std::make_unique<epoll_poller>(); }

}  // namespace taskport::io::detail
