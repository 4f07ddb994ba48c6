// iocp_error.cpp — Win32 and Winsock error codes as std::error_code (Windows).
//
// The value is the system's code, the message the system's text (std::system_category's). What
// this category adds is the mapping to std::errc that libstdc++ 12's system_category lacks for
// Winsock codes (and a few Win32 ones the I/O paths produce), so that code written for POSIX —
// `e.code() == std::errc::connection_refused` — holds on Windows too.
#include "iocp_backend.hpp"

#include "socket_types.hpp"

#include <string>

namespace taskport::io::detail {

namespace {

std::errc to_errc(int code, bool& found) noexcept {
    found = true;
    switch (code) {
        case WSAEINTR: return std::errc::interrupted;
        case WSAEBADF: return std::errc::bad_file_descriptor;
        case WSAEACCES: return std::errc::permission_denied;
        case WSAEFAULT: return std::errc::bad_address;
        case WSAEINVAL: return std::errc::invalid_argument;
        case WSAEMFILE: return std::errc::too_many_files_open;
        case WSAEWOULDBLOCK: return std::errc::operation_would_block;
        case WSAEINPROGRESS: return std::errc::operation_in_progress;
        case WSAEALREADY: return std::errc::connection_already_in_progress;
        case WSAENOTSOCK: return std::errc::not_a_socket;
        case WSAEDESTADDRREQ: return std::errc::destination_address_required;
        case WSAEMSGSIZE: return std::errc::message_size;
        case WSAEPROTOTYPE: return std::errc::wrong_protocol_type;
        case WSAENOPROTOOPT: return std::errc::no_protocol_option;
        case WSAEPROTONOSUPPORT: return std::errc::protocol_not_supported;
        case WSAEOPNOTSUPP: return std::errc::operation_not_supported;
        case WSAEPFNOSUPPORT:
        case WSAEAFNOSUPPORT: return std::errc::address_family_not_supported;
        case WSAEADDRINUSE: return std::errc::address_in_use;
        case WSAEADDRNOTAVAIL: return std::errc::address_not_available;
        case WSAENETDOWN: return std::errc::network_down;
        case WSAENETUNREACH: return std::errc::network_unreachable;
        case WSAENETRESET: return std::errc::network_reset;
        case WSAECONNABORTED: return std::errc::connection_aborted;
        case WSAECONNRESET: return std::errc::connection_reset;
        case WSAENOBUFS: return std::errc::no_buffer_space;
        case WSAEISCONN: return std::errc::already_connected;
        case WSAENOTCONN: return std::errc::not_connected;
        case WSAESHUTDOWN: return std::errc::broken_pipe;  // a send after shutdown_write (EPIPE)
        case WSAETIMEDOUT: return std::errc::timed_out;
        case WSAECONNREFUSED: return std::errc::connection_refused;
        case WSAELOOP: return std::errc::too_many_symbolic_link_levels;
        case WSAENAMETOOLONG: return std::errc::filename_too_long;
        case WSAEHOSTUNREACH: return std::errc::host_unreachable;
        case WSA_OPERATION_ABORTED: return std::errc::operation_canceled;  // == ERROR_OPERATION_ABORTED
        case ERROR_NETNAME_DELETED: return std::errc::connection_reset;
        case ERROR_CONNECTION_REFUSED: return std::errc::connection_refused;
        case ERROR_CONNECTION_ABORTED: return std::errc::connection_aborted;
        case ERROR_NETWORK_UNREACHABLE: return std::errc::network_unreachable;
        case ERROR_HOST_UNREACHABLE: return std::errc::host_unreachable;
        case ERROR_SEM_TIMEOUT: return std::errc::timed_out;
        case ERROR_TOO_MANY_OPEN_FILES: return std::errc::too_many_files_open;
        case ERROR_INVALID_HANDLE: return std::errc::bad_file_descriptor;
        case ERROR_NEGATIVE_SEEK: return std::errc::invalid_argument;
        case ERROR_FILE_EXISTS:
        case ERROR_ALREADY_EXISTS: return std::errc::file_exists;
        case ERROR_DISK_FULL:
        case ERROR_HANDLE_DISK_FULL: return std::errc::no_space_on_device;
        case ERROR_DIRECTORY: return std::errc::not_a_directory;
        case ERROR_FILE_NOT_FOUND:
        case ERROR_PATH_NOT_FOUND: return std::errc::no_such_file_or_directory;
        case ERROR_ACCESS_DENIED: return std::errc::permission_denied;
        case ERROR_BAD_EXE_FORMAT: return std::errc::executable_format_error;
        case ERROR_BROKEN_PIPE:   // a named pipe's other end closed (process stdio pipes)
        case ERROR_NO_DATA:       // a write to a pipe whose reader has closed
        case ERROR_PIPE_NOT_CONNECTED: return std::errc::broken_pipe;
        default: found = false; return std::errc::invalid_argument;
    }
}

class win32_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "taskport.win32"; }
    std::string message(int code) const override { return std::system_category().message(code); }
    std::error_condition default_error_condition(int code) const noexcept override {
        bool found;
        std::errc e = to_errc(code, found);
        if (found) return std::make_error_condition(e);
        return std::system_category().default_error_condition(code);
    }
};

}  // namespace

std::error_code win32_error(int code) noexcept {
    static const win32_category_impl cat;
    if (code == ERROR_OPERATION_ABORTED) return operation_aborted();
    return {code, cat};
}

}  // namespace taskport::io::detail
