// process_common.cpp — the part of io::process (process.hpp) that is the same on every system:
// exit_status's text, the wait awaiter's constructor, and the process object's moves,
// destruction and drop. What a drop does to the child is the platform's (release_child:
// process.cpp, process_win.cpp).
//
// Invariant: a process object owns its child_state reference and pipes until drop(); drop()
// runs exactly once per owned child (the destructor, or a move assignment over it) and leaves
// the object empty, so a moved-from object's destruction does nothing.
#include "process_common.hpp"

#include <string>
#include <utility>

namespace taskport::io {

std::string exit_status::to_string() const {
    if (exited()) return "exit code " + std::to_string(code_);
    return "signal " + std::to_string(signal_);
}

namespace detail {

process_wait_op::process_wait_op(const socket_core& watch, std::shared_ptr<child_state> c) noexcept
    : socket_op(watch, &perform_wait, 0), child(std::move(c)) {}

}  // namespace detail

process::process() noexcept = default;
process::process(process&&) noexcept = default;
process& process::operator=(process&& o) noexcept {
    if (this != &o) {
        drop();
        child_ = std::move(o.child_);
        in_ = std::move(o.in_);
        out_ = std::move(o.out_);
        err_ = std::move(o.err_);
    }
    return *this;
}
process::~process() { drop(); }

void process::drop() noexcept {
    in_.close();
    out_.close();
    err_.close();
    detail::release_child(std::move(child_));
}

}  // namespace taskport::io
