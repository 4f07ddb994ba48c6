// taskport/detail/environment.hpp — every TASKPORT_* environment variable taskport reads, read
// here and nowhere else, with one rule for a bad value.
//
// Each reader returns the variable's value, or its default when it is unset or empty; any other
// value outside the accepted ones throws std::invalid_argument naming the variable, the
// accepted values and what it got. runtime's constructor calls check_environment() first, so a
// bad value is refused there, before any thread starts, whichever component reads it later.
//
//   TASKPORT_WORKERS               1..4096               (unset: the CPUs the process may use)
//   TASKPORT_WORKER_POLL           0 | 1                 (1: idle workers poll the I/O core)
//   TASKPORT_IO_BACKEND            auto | epoll | io_uring | kqueue | iocp
//   TASKPORT_POLL_SPIN_US          0..1000000            (default 20)
//   TASKPORT_FILE_FAST_PATH        0 | 1                 (default 1)
//   TASKPORT_IOCP_SKIP_ON_SUCCESS  0 | 1                 (default 1)
#pragma once

#include <cstddef>

namespace taskport::detail {

std::size_t env_workers();            // 0 when unset
bool env_worker_poll();
const char* env_io_backend();         // the validated name, or null when unset
int env_poll_spin_us();
bool env_file_fast_path();
bool env_iocp_skip_on_success();

// Reads every variable above; throws std::invalid_argument for the first bad one.
void check_environment();

}  // namespace taskport::detail
