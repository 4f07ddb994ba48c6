// no_kqueue.cpp — built where <sys/event.h> does not exist.
#include "poller.hpp"
#include "process_watch.hpp"

#include <cerrno>

namespace taskport::io::detail {
std::unique_ptr<poller> make_kqueue_poller() { return nullptr; }
// No kqueue: process.cpp never opens a watch (process_watch_available() is false).
int process_watch_open(long) { return -1; }
void process_watch_close(int) noexcept {}
void process_watch_suspend(int) noexcept {}
int process_watch_resume(int) noexcept { return ENOSYS; }
bool process_watch_available() noexcept { return false; }
}  // namespace taskport::io::detail
