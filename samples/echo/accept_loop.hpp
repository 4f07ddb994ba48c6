// accept_loop.hpp — an accept loop that survives running out of descriptors (EMFILE), for
// taskport-echo and for any server to copy. Public API only (<taskport/...>).
//
// When accept fails with EMFILE, ENFILE, ENOBUFS or ENOMEM, the waiting connection stays in the
// listener's backlog and the listener stays readable, so retrying at once fails again at once:
// a loop that "just accepts again" burns a core on failed system calls until a descriptor frees
// up (an independent test measured 112-114% CPU, 2.5M failed accepts in 9 s, with the limit at 64
// and 200 clients). So this loop backs off instead, as Go's net/http Server and Tokio's examples
// do: it sleeps on a taskport timer (co_await sleep_for: the worker runs other tasks meanwhile,
// no thread sleeps), 1 ms after the first failure, doubling up to 100 ms, and the first success
// resets the delay. The connections it already has keep being served; the waiting clients stay
// queued and are accepted as soon as descriptors are back (within the current delay).
//
// Ends normally when the listener is closed or cancelled, or the loop's future is cancelled
// (operation_aborted / operation_canceled); any other accept error is thrown to the caller.
#pragma once

#include <taskport/io/io.hpp>
#include <taskport/taskport.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <system_error>
#include <utility>

namespace echo_sample {

// Descriptors or kernel memory ran out: worth waiting for, not a reason to stop serving.
inline bool out_of_resources(const std::error_code& ec) {
    return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
           ec == std::errc::no_buffer_space || ec == std::errc::not_enough_memory;
}

// The delays between failed attempts: first, then doubled up to max. {0, 0} retries at once
// (the loop without back-off, kept to measure what back-off saves).
struct accept_backoff {
    std::chrono::milliseconds first{1};
    std::chrono::milliseconds max{100};
};

inline bool is_stop(const std::error_code& ec) {
    return ec == taskport::io::operation_aborted() || ec == std::errc::operation_canceled;
}

// on_accept(tcp_stream&&): called for each connection (spawn its session there).
// on_starved(const std::error_code&, std::chrono::milliseconds delay, unsigned long failures):
// called for each failed attempt, before sleeping `delay`; failures counts this episode's
// failed attempts so far (1 on the first).
template <class OnAccept, class OnStarved>
taskport::task<void> accept_loop(taskport::io::tcp_listener& listener, OnAccept on_accept,
                                 OnStarved on_starved, accept_backoff backoff = {}) {
    std::chrono::milliseconds delay{0};  // 0: not starved
    unsigned long failures = 0;
    for (;;) {
        std::optional<taskport::io::tcp_stream> s;
        std::error_code ec;
        try {
            s.emplace(co_await listener.accept());
        } catch (const std::system_error& e) {
            ec = e.code();
        }
        if (s) {
            delay = std::chrono::milliseconds{0};
            failures = 0;
            on_accept(std::move(*s));
            continue;
        }
        if (is_stop(ec)) co_return;
        if (!out_of_resources(ec)) throw std::system_error(ec, "accept");
        delay = failures == 0 ? backoff.first : std::min(2 * delay, backoff.max);
        on_starved(ec, delay, ++failures);
        if (delay.count() == 0) continue;
        try {
            co_await taskport::sleep_for(delay);  // a timer: the worker runs other tasks meanwhile
        } catch (const std::system_error& e) {
            if (is_stop(e.code())) co_return;
            throw;
        }
    }
}

}  // namespace echo_sample
