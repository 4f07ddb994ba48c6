// signal_win.cpp — signal_set on Windows (see signal.hpp): the console control handler stands
// for the signal handler, a loopback socket pair per set for its pipe.
//
// Windows has no asynchronous signals; a console program gets Ctrl-C, Ctrl-Break and the close
// of its console window as console control events, delivered by the system on a thread of
// their own to the handlers registered with SetConsoleCtrlHandler. They map to signals as
// Microsoft's C runtime maps Ctrl-C, and as portable code waits for them:
//   CTRL_C_EVENT                                   -> SIGINT
//   CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT,
//   CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT         -> SIGTERM
// so a program waiting for {SIGINT, SIGTERM} stops tidily on Ctrl-C, on Ctrl-Break and when its
// console is closed. For a close, logoff or shutdown the system ends the process as soon as the
// handler returns: the handler, having delivered SIGTERM, waits instead, and the program has
// until the system's timeout (about 5 s for a close) to tidy up and exit. Only SIGINT and
// SIGTERM can be held; any other number is invalid_argument.
//
// Invariant: `sets` (under table_lock) lists every open set's write socket and the signals it
// holds. The handler, registered once with the first set and never removed, runs on the
// system's thread (not in a signal context: it may lock), writes the signal's number as one
// byte to the write socket of each set holding it, and returns TRUE (handled) when one did;
// FALSE passes the event on to the next handler, in the end the default one (ExitProcess), as
// if no set existed. The write socket is non-blocking: a set whose 64 KiB of kept deliveries is
// full drops the new one, as a full pipe does on POSIX. A set's wait() is an overlapped 1-byte
// WSARecv on its read socket (iocp_socket.cpp: issue_byte_recv), so close(), cancel(),
// future::cancel and with_timeout behave as for a socket.
#include <taskport/io/signal.hpp>
#include <taskport/runtime.hpp>

#include "iocp_backend.hpp"
#include "service.hpp"
#include "socket_ops.hpp"
#include "socket_types.hpp"

#include <csignal>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace taskport::io {
namespace detail {

namespace {

constexpr int max_sets = 256;

struct set_entry {
    SOCKET wr = INVALID_SOCKET;  // the write end; INVALID_SOCKET: a free slot
    unsigned mask = 0;           // bit 0: SIGINT, bit 1: SIGTERM
};

std::mutex table_lock;                 // guards sets and installed
std::vector<set_entry>* sets = nullptr;  // by slot; made with the first set, never freed
bool installed = false;                // the handler is registered

unsigned bit_of(int signo) noexcept { return signo == SIGINT ? 1u : signo == SIGTERM ? 2u : 0u; }

int signal_of(DWORD event) noexcept {
    switch (event) {
        case CTRL_C_EVENT: return SIGINT;
        case CTRL_BREAK_EVENT:
        case CTRL_CLOSE_EVENT:
        case CTRL_LOGOFF_EVENT:
        case CTRL_SHUTDOWN_EVENT: return SIGTERM;
        default: return 0;
    }
}

BOOL WINAPI on_console_event(DWORD event) {
    const int signo = signal_of(event);
    if (signo == 0) return FALSE;
    const char b = static_cast<char>(signo);
    bool handled = false;
    {
        std::lock_guard g(table_lock);
        for (const set_entry& e : *sets) {
            if (e.wr == INVALID_SOCKET || !(e.mask & bit_of(signo))) continue;
            ::send(e.wr, &b, 1, 0);  // full (WSAEWOULDBLOCK): dropped (see above)
            handled = true;
        }
    }
    // Close, logoff, shutdown: the system ends the process as soon as this returns. Wait here
    // instead (as Go's runtime does), so that the program's tasks can tidy up and exit; the
    // system still ends it after its timeout (about 5 s for a close).
    if (handled && event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT) ::Sleep(INFINITE);
    return handled ? TRUE : FALSE;
}

[[noreturn]] void fail(const char* what, const std::string& step, int wsa) {
    throw std::system_error(win32_error(wsa), std::string(what) + ": " + step);
}

void check_signal(int signo, const char* what) {
    if (bit_of(signo) == 0)
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                std::string(what) + ": signal " + std::to_string(signo) +
                                    " cannot be waited for on Windows (only SIGINT and SIGTERM)");
}

}  // namespace

// A connected loopback TCP pair: rd (overlapped, for the completion port) and wr (non-blocking).
// The accepted end is checked to be wr's peer, so no other local program can take its place.
// Also process_win.cpp's (the child's exit is a byte on such a pair).
void socket_pair(SOCKET& rd, SOCKET& wr, const char* what) {
    std::error_code ec;
    SOCKET ls = open_socket(AF_INET, SOCK_STREAM, ec);
    if (ec) throw std::system_error(ec, std::string(what) + ": socket");
    rd = wr = INVALID_SOCKET;
    auto cleanup = [&] {
        ::closesocket(ls);
        if (rd != INVALID_SOCKET) ::closesocket(rd);
        if (wr != INVALID_SOCKET) ::closesocket(wr);
        rd = wr = INVALID_SOCKET;
    };
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int len = sizeof a;
    if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(ls, 1) != 0 ||
        ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        const int e = ::WSAGetLastError();
        cleanup();
        fail(what, "loopback listener", e);
    }
    wr = open_socket(AF_INET, SOCK_STREAM, ec);
    if (ec) {
        cleanup();
        throw std::system_error(ec, std::string(what) + ": socket");
    }
    sockaddr_in mine{}, peer{};
    int mlen = sizeof mine, plen = sizeof peer;
    if (::connect(wr, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(wr, reinterpret_cast<sockaddr*>(&mine), &mlen) != 0) {
        const int e = ::WSAGetLastError();
        cleanup();
        fail(what, "loopback connect", e);
    }
    for (;;) {  // the connection from wr (another program's is refused)
        rd = ::accept(ls, reinterpret_cast<sockaddr*>(&peer), &plen);
        if (rd == INVALID_SOCKET) {
            const int e = ::WSAGetLastError();
            cleanup();
            fail(what, "loopback accept", e);
        }
        if (peer.sin_port == mine.sin_port && peer.sin_addr.s_addr == mine.sin_addr.s_addr) break;
        ::closesocket(std::exchange(rd, INVALID_SOCKET));
        plen = sizeof peer;
    }
    ::closesocket(ls);
    u_long on = 1;
    ::ioctlsocket(wr, FIONBIO, &on);
    BOOL nodelay = TRUE;
    ::setsockopt(wr, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&nodelay), sizeof nodelay);
}

// The completion step of the 1-byte WSARecv (iocp_socket.cpp): the byte was received into the
// low byte of op->bytes, zeroed before the call (Windows runs little-endian only).
bool signal_wait_op::perform_wait(operation* o) noexcept {
    auto* op = static_cast<signal_wait_op*>(o);
    const int e = op->plat.error;
    if (e != 0 || op->plat.transferred == 0) {
        // transferred 0: the write end closed, which only close() does, on its way to abort
        // this wait: operation_aborted, as the abort itself would give.
        op->ec = e != 0 && !op->st.get()->closed.load(std::memory_order_acquire) ? win32_error(e) : operation_aborted();
        op->bytes = 0;
        return true;
    }
    op->ec.clear();
    op->bytes &= 0xff;
    return true;
}

}  // namespace detail

signal_set::signal_set(runtime& rt, std::initializer_list<int> signals) {
    const char* what = "taskport::io::signal_set";
    for (int s : signals) detail::check_signal(s, what);
    detail::service& svc = detail::service_of(rt);
    detail::net_init();
    SOCKET rd = INVALID_SOCKET, wr = INVALID_SOCKET;
    detail::socket_pair(rd, wr, what);
    {
        std::lock_guard g(detail::table_lock);
        if (!detail::sets) detail::sets = new std::vector<detail::set_entry>();
        for (std::size_t i = 0; i < detail::sets->size(); ++i) {
            if ((*detail::sets)[i].wr == INVALID_SOCKET) {
                slot_ = static_cast<int>(i);
                break;
            }
        }
        if (slot_ < 0 && detail::sets->size() < detail::max_sets) {
            slot_ = static_cast<int>(detail::sets->size());
            detail::sets->emplace_back();
        }
        if (slot_ >= 0) {
            (*detail::sets)[slot_] = detail::set_entry{wr, 0};
            if (!detail::installed && ::SetConsoleCtrlHandler(&detail::on_console_event, TRUE))
                detail::installed = true;
        }
    }
    if (slot_ < 0) {
        ::closesocket(rd);
        ::closesocket(wr);
        throw std::system_error(std::make_error_code(std::errc::too_many_files_open),
                                std::string(what) + ": more than 256 signal sets at once");
    }
    try {
        core_ = detail::socket_core(&svc, rd);  // closes rd if it throws
        for (int s : signals) add(s);
    } catch (...) {
        close();  // frees the slot and its write end
        throw;
    }
}

void signal_set::add(int signo) {
    const char* what = "taskport::io::signal_set::add";
    detail::check_signal(signo, what);
    if (slot_ < 0 || !core_.is_open())
        throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what);
    std::lock_guard g(detail::table_lock);
    (*detail::sets)[slot_].mask |= detail::bit_of(signo);
}

// The write end leaves the table (no handler can write to it once the lock is released) and
// closes, then the read end, which aborts a pending wait.
void signal_set::close() noexcept {
    if (slot_ >= 0) {
        SOCKET wr = INVALID_SOCKET;
        {
            std::lock_guard g(detail::table_lock);
            wr = std::exchange((*detail::sets)[slot_], detail::set_entry{}).wr;
        }
        if (wr != INVALID_SOCKET) ::closesocket(wr);
        slot_ = -1;
    }
    core_.close();
}

}  // namespace taskport::io
