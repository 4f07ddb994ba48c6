// taskport-echo — a TCP echo server: every byte a client sends comes back to it.
//
//   taskport-echo [ADDRESS:PORT] [--workers N]      (default 127.0.0.1:7777; port 0: any free)
//
// One coroutine per connection (read_some, then write_all what was read, until the client
// closes), and one accept loop that spawns them. What a server built on taskport needs besides:
//   - the accept loop survives running out of descriptors (EMFILE): it reports it, keeps serving
//     the connections it has, and retries on a timer backing off from 1 ms to 100 ms (not at
//     once: that spins a core), so it accepts again soon after descriptors free up — the waiting
//     clients stay queued (accept_loop.hpp);
//   - SIGINT/SIGTERM stop it cleanly: main waits for the signal with sigwait (no handler runs
//     on a worker), cancels the accept loop, and shuts the runtime down, which ends every
//     connection's pending read with operation_aborted.
// Public API only (<taskport/...>). Try it with taskport-echo-client, or `nc 127.0.0.1 7777`.
#include "accept_loop.hpp"

#include <taskport/io/io.hpp>
#include <taskport/taskport.hpp>

#include <CLI/CLI.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <span>
#include <string>
#include <system_error>

#include <pthread.h>
#include <unistd.h>

namespace io = taskport::io;

namespace {

std::atomic<std::uint64_t> accepted{0};  // connections accepted so far
std::atomic<std::uint64_t> open_now{0};  // connections being served now
std::atomic<bool> failed{false};         // the accept loop stopped on an error

// One connection: echo until the client closes its side (read_some returns 0).
taskport::task<void> echo(io::tcp_stream s) {
    open_now.fetch_add(1, std::memory_order_relaxed);
    std::array<std::byte, 4096> buf;
    try {
        for (;;) {
            const std::size_t n = co_await s.read_some(buf);
            if (n == 0) break;
            co_await s.write_all(std::span(buf).first(n));
        }
    } catch (const std::system_error&) {
        // Reset by the peer, or the runtime shutting down (operation_aborted): either way this
        // connection is over; the stream closes when the frame goes.
    }
    open_now.fetch_sub(1, std::memory_order_relaxed);
}

taskport::task<void> serve(taskport::runtime& rt, io::tcp_listener& listener) {
    bool starved = false;
    auto on_accept = [&](io::tcp_stream s) {
        if (starved) {
            std::fprintf(stderr, "taskport-echo: accepting again\n");
            starved = false;
        }
        s.set_nodelay(true);  // small replies go out at once
        accepted.fetch_add(1, std::memory_order_relaxed);
        (void)rt.spawn(echo(std::move(s)));  // runs on its own: nobody waits for its result
    };
    // Out of descriptors: said once per episode, not once per attempt.
    auto on_starved = [&](const std::error_code& ec, std::chrono::milliseconds, unsigned long failures) {
        if (failures == 1) {
            std::fprintf(stderr,
                         "taskport-echo: accept: %s; still serving the open connections, retrying "
                         "after 1 ms, backing off to 100 ms (%llu accepted so far)\n",
                         ec.message().c_str(),
                         static_cast<unsigned long long>(accepted.load(std::memory_order_relaxed)));
            starved = true;
        }
    };
    try {
        co_await echo_sample::accept_loop(listener, on_accept, on_starved);  // ends when cancelled
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "taskport-echo: accept failed: %s\n", e.what());
        failed = true;
        ::kill(::getpid(), SIGTERM);  // wakes main's sigwait: stop
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string address = "127.0.0.1:7777";
    std::size_t workers = 0;
    CLI::App app{"taskport-echo: a TCP echo server on taskport coroutines"};
    app.allow_windows_style_options(false);  // paths such as /tmp/x are arguments, not options
    app.add_option("address", address, "where to listen, ADDRESS:PORT (\"[::1]:7777\" for IPv6)")
        ->capture_default_str();
    app.add_option("-w,--workers", workers, "worker threads (0: one per hardware thread)");
    CLI11_PARSE(app, argc, argv);

    // Block the stop signals before any thread starts, so every thread inherits the mask and
    // sigwait() below is the one place they arrive.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    taskport::runtime_options opts;
    opts.workers = workers;
    taskport::runtime rt{opts};
    io::tcp_listener listener;
    try {
        listener = io::tcp_listener::bind(rt, io::endpoint::parse(address));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "taskport-echo: %s\n", e.what());
        return 1;
    }
    std::printf("taskport-echo: listening on %s with %zu workers\n",
                listener.local_endpoint().to_string().c_str(), rt.workers());
    std::fflush(stdout);

    taskport::future<void> server = rt.spawn(serve(rt, listener));

    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!failed) std::printf("taskport-echo: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");

    server.cancel();  // aborts the pending accept
    try {
        server.get();
    } catch (const std::system_error&) {
        // cancelled_error / operation_aborted: what cancel() asked for
    }
    listener.close();
    const std::uint64_t still_open = open_now.load();
    rt.shutdown();  // pending reads end with operation_aborted; each echo() returns
    std::printf("taskport-echo: served %llu connections (%llu open at shutdown)\n",
                static_cast<unsigned long long>(accepted.load()),
                static_cast<unsigned long long>(still_open));
    return failed ? 1 : 0;
}
