// interrupt.hpp — Ctrl-C (SIGINT) and SIGTERM for taskport-hash and taskport-fetch.
//
// Invariant: the tool's work runs as the tasks of one taskport::async_scope. The first SIGINT or
// SIGTERM cancels that scope (every task stops at its next co_await, pending I/O aborts) and is
// remembered, so the tool can tidy up, print its summary so far and exit with 128 + the
// signal's number (130 for SIGINT, 143 for SIGTERM, what a shell reports for a program the
// signal ended). A second signal ends the process at once with the same status (std::_Exit:
// nothing more is tidied). The signals are caught through io::signal_set, created before any
// work starts, so there is no moment when a signal kills the tool half way through its work.
// Where io::signal_set is not supported the tool runs without it (the default action applies).
#pragma once

#include <taskport/async_scope.hpp>
#include <taskport/io/signal.hpp>
#include <taskport/taskport.hpp>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include <unistd.h>

namespace samples {

/// Ctrl-C (SIGINT) and SIGTERM for a tool whose work runs in one async_scope: the first signal
/// cancels the scope, a second ends the process at once (see the file comment). Not copyable.
class interrupt {
public:
    /// Catches SIGINT and SIGTERM from now on (on rt's readiness core). Never throws for lack of
    /// support: where io::signal_set is not available the default action stays.
    explicit interrupt(taskport::runtime& rt) {
        try {
            sigs_ = taskport::io::signal_set(rt, {SIGINT, SIGTERM});
        } catch (const std::system_error&) {
            // not supported here: no tidy Ctrl-C, the default action stays
        }
    }

    /// Waits for the first signal, then cancels `scope`; waits for a second one, then ends the
    /// process (std::_Exit(128 + signo)). Run it as a task of its own beside the scope, and
    /// cancel it once the scope is done (the wait then throws operation_canceled).
    taskport::task<void> watch(taskport::async_scope& scope, const char* prog) {
        if (!sigs_.is_open()) co_return;
        const int first = co_await sigs_.wait();
        signo_.store(first, std::memory_order_relaxed);  // read after the scope's join (ordered by it)
        scope.cancel();
        const int second = co_await sigs_.wait();
        const std::string msg = std::string(prog) + ": " + name(second) + " again: exiting at once\n";
        (void)!::write(STDERR_FILENO, msg.data(), msg.size());
        std::_Exit(128 + second);
    }

    /// The first signal received (0: none). Read it after the scope's join.
    int signal() const noexcept { return signo_.load(std::memory_order_relaxed); }
    /// The exit status for it: 128 + its number (130 for SIGINT, 143 for SIGTERM).
    int exit_status() const noexcept { return 128 + signal(); }

    /// "SIGINT", "SIGTERM" (or "a signal").
    static const char* name(int signo) noexcept {
        return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal";
    }

private:
    taskport::io::signal_set sigs_;
    std::atomic<int> signo_{0};  // written by watch(), read by the tool after its scope ended
};

}  // namespace samples
