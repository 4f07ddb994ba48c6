// no_kqueue.cpp — built where <sys/event.h> does not exist.
#include "poller.hpp"

namespace taskport::io::detail {
std::unique_ptr<poller> make_kqueue_poller() { return nullptr; }
}  // namespace taskport::io::detail
