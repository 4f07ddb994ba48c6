// taskport/io/signal.hpp — waiting for POSIX signals (SIGINT, SIGTERM, SIGHUP, ...) in a task.
//
//   io::signal_set sigs(rt, {SIGINT, SIGTERM});
//   int signo = co_await sigs.wait();          // or with_timeout(5s, sigs.wait())
//
// How (POSIX, every backend): while a set holds a signal, taskport's handler is installed for
// it (sigaction, SA_RESTART; the previous disposition is saved and put back when the last set
// holding that signal goes). The handler writes the signal's number into a pipe of each set
// that holds it; a set's wait() is a read of its pipe on the readiness core (the same
// descriptor state and operations as a socket: tcp.hpp). So:
// - every set holding a signal sees each delivery of it (several sets, several runtimes);
// - no thread needs the signal blocked, and no rule binds when sets are made: whichever thread
//   the kernel picks runs the handler (signalfd, by contrast, needs the signal blocked in every
//   thread of the process — the runtime's, the blocking pool's, TBB's and the user's — or the
//   default action, for SIGINT death, happens on the thread that has it unblocked);
// - deliveries arriving while nobody waits are kept (up to the pipe's 64 KiB, in order) and the
//   next wait() takes the oldest; POSIX may merge two deliveries of one signal into one, as always;
// - a handler the program set with sigaction/signal for that signal does not run while a set
//   holds it. A delivery that arrives while the last set holding it is being destroyed may be
//   dropped. SIGKILL, SIGSTOP and numbers out of range: std::errc::invalid_argument.
//
// Threads, close(), cancel(), moving and cancellation are as for a socket (tcp.hpp): close()
// or destruction completes a pending wait with operation_aborted; future::cancel and
// with_timeout apply to wait().
//
// Windows (io/src/signal_win.cpp): console control events stand for signals: Ctrl-C
// (CTRL_C_EVENT) is SIGINT; Ctrl-Break and the close of the console, logoff and shutdown
// (CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT) are SIGTERM. Only
// SIGINT and SIGTERM can be held (others: invalid_argument). An event no set holds goes on to
// the next handler (by default the process ends). After a close, logoff or shutdown event the
// system ends the process after its timeout (about 5 s for a close) whatever the program does. A set's pipe is a loopback socket
// pair; everything else above holds as on POSIX.
#pragma once

#include <taskport/io/tcp.hpp>

#include <initializer_list>
#include <type_traits>
#include <utility>

namespace taskport::io {

namespace detail {

struct signal_wait_op : socket_op {
    explicit signal_wait_op(const socket_core& s) noexcept : socket_op(s, &perform_wait, 0) {}
    int await_resume() const {
        throw_if(ec, "taskport::io::signal_set::wait");
        return static_cast<int>(bytes);
    }
    static bool perform_wait(operation* op) noexcept;  // reads one signal number from the pipe
};

}  // namespace detail

/// A set of POSIX signals a task can wait for (see the file comment for how deliveries are kept
/// and shared). Move-only. Threads: as a socket's (cancel() and close() from any thread; one
/// wait at a time). Windows: the constructor throws function_not_supported.
class signal_set {
public:
    signal_set() noexcept = default;
    // Holds each of `signals` from now on (deliveries before this are not seen). Throws
    // std::system_error: invalid_argument (SIGKILL, SIGSTOP, out of range; on Windows any but
    // SIGINT and SIGTERM), too_many_files_open.
    signal_set(runtime& rt, std::initializer_list<int> signals);
    /// Takes over o's signals and pending wait; o is left closed.
    signal_set(signal_set&& o) noexcept : core_(std::move(o.core_)), slot_(std::exchange(o.slot_, -1)) {}
    /// Closes this set, then takes over o's signals and pending wait; o is left closed.
    signal_set& operator=(signal_set&& o) noexcept {
        if (this != &o) {
            close();
            core_ = std::move(o.core_);
            slot_ = std::exchange(o.slot_, -1);
        }
        return *this;
    }
    ~signal_set() { close(); }

    // Adds a signal to the set. Throws as the constructor.
    void add(int signo);

    // The next signal delivered (its number). Throws std::system_error: operation_aborted when
    // closed or cancelled while waiting, bad_file_descriptor when closed before.
    detail::signal_wait_op wait() noexcept { return detail::signal_wait_op(core_); }
    /// Callback form of wait(): f(std::error_code, int signo) runs as a task on a worker. The set
    /// must outlive the operation.
    template <class F>  // f(std::error_code, int signo), run as a task on a worker
    void async_wait(F&& f) {
        // callback_op calls f(ec, bytes): bytes is the signal's number (it converts to int).
        (new detail::callback_op<detail::signal_wait_op, std::decay_t<F>>(std::forward<F>(f), core_))->go();
    }

    void cancel() noexcept { core_.cancel(); }  // aborts a pending wait; the set stays
    void close() noexcept;                       // stops holding its signals, aborts waits
    /// True until close() (or a move from this object).
    bool is_open() const noexcept { return core_.is_open(); }

private:
    detail::socket_core core_;  // the pipe's read end
    int slot_ = -1;             // its place in the process's handler table (signal.cpp)
};

}  // namespace taskport::io
