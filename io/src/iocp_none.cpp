// iocp_none.cpp — built where there is no I/O completion port: iocp is never chosen.
#include "iocp_backend.hpp"

namespace taskport::io::detail {
std::unique_ptr<iocp_backend> iocp_backend::try_create(completion_queue&, std::error_code& why) {
    why = std::make_error_code(std::errc::function_not_supported);
    return nullptr;
}
}  // namespace taskport::io::detail
