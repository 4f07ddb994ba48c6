// uring_none.cpp — built without liburing: io_uring is never chosen.
#include "uring_backend.hpp"

namespace taskport::io::detail {
std::unique_ptr<uring_backend> uring_backend::try_create(completion_queue&, std::chrono::milliseconds,
                                                         std::error_code& why) {
    why = std::make_error_code(std::errc::function_not_supported);
    return nullptr;
}
}  // namespace taskport::io::detail
