// no_epoll.cpp — built where <sys/epoll.h> does not exist.
#include "poller.hpp"

namespace taskport::io::detail {
std::unique_ptr<poller> make_epoll_poller() { return nullptr; }
}  // namespace taskport::io::detail
