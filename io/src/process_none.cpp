// process_none.cpp — io::process where it is not built (Windows, the completion port): start()
// throws function_not_supported, so no process object ever holds a child there and the other
// members only see an empty one.
#include <taskport/io/process.hpp>

#include <string>

namespace taskport::io {

std::string exit_status::to_string() const {
    if (exited()) return "exit code " + std::to_string(code_);
    return "signal " + std::to_string(signal_);
}

namespace detail {

struct child_state {};

[[noreturn]] static void no_child(const char* what) {
    throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what);
}

process_wait_op::process_wait_op(const socket_core& watch, std::shared_ptr<child_state> c) noexcept
    : socket_op(watch, &perform_wait, 0), child(std::move(c)) {}
bool process_wait_op::await_ready() noexcept {
    ec = std::make_error_code(std::errc::bad_file_descriptor);
    return true;
}
exit_status process_wait_op::await_resume() const {
    throw_if(ec, "taskport::io::process::wait");
    return {};
}
bool process_wait_op::perform_wait(operation* op) noexcept {
    op->ec = std::make_error_code(std::errc::function_not_supported);
    return true;
}

}  // namespace detail

process::process() noexcept = default;
process::process(process&&) noexcept = default;
process& process::operator=(process&& o) noexcept {
    in_ = std::move(o.in_);
    out_ = std::move(o.out_);
    err_ = std::move(o.err_);
    return *this;
}
process::~process() = default;
void process::drop() noexcept {}
long process::pid() const noexcept { return -1; }
detail::process_wait_op process::wait() noexcept {
    static const detail::socket_core none;
    return detail::process_wait_op(none, nullptr);
}
std::optional<exit_status> process::try_wait() { detail::no_child("taskport::io::process::try_wait"); }
void process::kill(int) { detail::no_child("taskport::io::process::kill"); }
void process::kill() { detail::no_child("taskport::io::process::kill"); }
void process::terminate() { detail::no_child("taskport::io::process::terminate"); }

process process::start(runtime&, const process_options&) {
    throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                            "taskport::io::process::start: not supported on this platform yet");
}

}  // namespace taskport::io
