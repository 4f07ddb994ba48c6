// socket_types.hpp — the system's socket headers, for the io/ sources that are shared between
// POSIX and Windows (endpoint.cpp, resolve.cpp). Which set is decided by config.hpp.
#pragma once

#include <taskport/io/detail/config.hpp>

#include <string>
#include <system_error>

#if TASKPORT_IO_WINDOWS
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <iphlpapi.h>  // if_nametoindex
#include <mswsock.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#endif

namespace taskport::io::detail {

// Winsock wants WSAStartup before its first call in a process (once; never undone, so sockets
// may outlive every runtime). Nothing to do elsewhere.
inline void net_init() noexcept {
#if TASKPORT_IO_WINDOWS
    static const int started = [] {
        WSADATA d;
        return ::WSAStartup(MAKEWORD(2, 2), &d);
    }();
    (void)started;
#endif
}

// The text of a getaddrinfo error (an EAI_* code; on Windows a Winsock code, whose text is the
// system's: mingw's gai_strerror returns an empty string).
inline std::string gai_message(int code) {
#if TASKPORT_IO_WINDOWS
    return std::system_category().message(code);
#else
    return ::gai_strerror(code);
#endif
}

}  // namespace taskport::io::detail
