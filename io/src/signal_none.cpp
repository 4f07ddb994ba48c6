// signal_none.cpp — signal_set where it is not built (Windows): the constructor throws
// function_not_supported, so no set is ever open and no wait runs.
#include <taskport/io/signal.hpp>

#include <string>

namespace taskport::io {

bool detail::signal_wait_op::perform_wait(operation* op) noexcept {
    op->ec = std::make_error_code(std::errc::function_not_supported);
    return true;
}

signal_set::signal_set(runtime&, std::initializer_list<int>) {
    throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                            "taskport::io::signal_set: not supported on this platform");
}

void signal_set::add(int) {
    throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                            "taskport::io::signal_set::add: not supported on this platform");
}

void signal_set::close() noexcept { core_.close(); }

}  // namespace taskport::io
