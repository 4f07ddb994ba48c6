// signal_pipe.hpp — signal_set's delivery mechanism without a signal_set (signal.cpp): a pipe
// the process's signal handler writes the signal's number into on every delivery. process.cpp's
// SIGCHLD fallback watches one per child (io/include/taskport/io/process.hpp).
//
// Invariant (as signal_set::close): close_signal_pipe() returns only once no handler can write
// to the pipe's write end any more, and closes it; the read end is the caller's, closed after.
#pragma once

namespace taskport::io::detail {

// Claims a slot of the handler table wanting `signo` and installs taskport's handler for it
// (as signal_set does). Returns the pipe's read end (non-blocking, close-on-exec) and sets
// slot. Throws std::system_error naming `what`: too_many_files_open (256 slots taken, or
// descriptors), invalid_argument (a signal that cannot be caught).
int open_signal_pipe(int signo, int& slot, const char* what);

// Releases slot (its signal's old disposition comes back with the last holder) and closes the
// write end. slot < 0: nothing.
void close_signal_pipe(int slot) noexcept;

}  // namespace taskport::io::detail
