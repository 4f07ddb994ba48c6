// process_common.hpp — what process_common.cpp (the platform-neutral half of io::process) needs
// from the platform's half (process.cpp on POSIX, process_win.cpp on Windows).
#pragma once

#include <taskport/io/process.hpp>

#include <memory>

namespace taskport::io::detail {

// process::drop's platform part, after the pipes were closed: lets go of a child nobody will
// wait for through this object any more (POSIX: a pending wait aborted, the child reaped now or
// in the background; Windows: the watch closed, the child left running). c may be null.
void release_child(std::shared_ptr<child_state> c) noexcept;

}  // namespace taskport::io::detail
