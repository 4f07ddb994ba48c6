// environment.cpp — see taskport/detail/environment.hpp.
#include <taskport/detail/environment.hpp>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace taskport::detail {

namespace {

// The value, or null when unset or empty.
const char* get(const char* name) noexcept {
    const char* v = std::getenv(name);
    return v && *v ? v : nullptr;
}

[[noreturn]] void bad(const char* name, const char* accepted, const char* got) {
    throw std::invalid_argument(std::string("taskport: ") + name + " must be " + accepted +
                                ", got '" + got + "'");
}

// Decimal digits only (strtoul alone would also take " 3", "+3", and "-1" as a huge number).
unsigned long number(const char* name, unsigned long lo, unsigned long hi, const char* accepted,
                     unsigned long dflt) {
    const char* v = get(name);
    if (!v) return dflt;
    unsigned long n = 0;
    for (const char* p = v; *p; ++p) {
        if (*p < '0' || *p > '9' || n > hi) bad(name, accepted, v);
        n = n * 10 + static_cast<unsigned long>(*p - '0');
    }
    if (n < lo || n > hi) bad(name, accepted, v);
    return n;
}

bool flag(const char* name, bool dflt) {
    const char* v = get(name);
    if (!v) return dflt;
    if (std::strcmp(v, "0") == 0) return false;
    if (std::strcmp(v, "1") == 0) return true;
    bad(name, "0 or 1", v);
}

}  // namespace

std::size_t env_workers() {
    return number("TASKPORT_WORKERS", 1, 4096, "an integer from 1 to 4096", 0);
}

bool env_worker_poll() { return flag("TASKPORT_WORKER_POLL", true); }

const char* env_io_backend() {
    const char* v = get("TASKPORT_IO_BACKEND");
    if (!v) return nullptr;
    for (const char* name : {"auto", "epoll", "io_uring", "kqueue", "iocp"})
        if (std::strcmp(v, name) == 0) return v;
    bad("TASKPORT_IO_BACKEND", "one of auto, epoll, io_uring, kqueue, iocp", v);
}

int env_poll_spin_us() {
    return static_cast<int>(
        number("TASKPORT_POLL_SPIN_US", 0, 1'000'000, "an integer from 0 to 1000000", 20));
}

bool env_file_fast_path() { return flag("TASKPORT_FILE_FAST_PATH", true); }

bool env_iocp_skip_on_success() { return flag("TASKPORT_IOCP_SKIP_ON_SUCCESS", true); }

void check_environment() {
    (void)env_workers();
    (void)env_worker_poll();
    (void)env_io_backend();
    (void)env_poll_spin_us();
    (void)env_file_fast_path();
    (void)env_iocp_skip_on_success();
}

}  // namespace taskport::detail
