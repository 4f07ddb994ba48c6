// taskport/io/resolve.hpp — name resolution (getaddrinfo on the runtime's blocking pool).
//
//   std::vector<io::endpoint> addrs = co_await io::resolve(rt, "localhost", "8080");
//   io::tcp_stream s = co_await io::tcp_stream::connect(rt, addrs.front());
//
// Every address the system knows for host (IPv4 and IPv6, in the order getaddrinfo sorts them,
// each once), with service's port — a number ("8080") or a name from the services database
// ("http"). An empty host means the loopback addresses; an empty service means port 0.
// Failure throws std::system_error: a getaddrinfo error in gai_category() (its message from
// gai_strerror), or the system error behind EAI_SYSTEM.
//
// getaddrinfo cannot be interrupted, so it runs on its own heap context on the blocking pool:
// a cancel (future::cancel, with_timeout, shutdown) completes the resolve at once with
// operation_aborted (with_timeout: timed_out) while the call may still wait for a name server;
// the pool thread frees its late answer when it comes. Shutdown does not wait for such a call.
#pragma once

#include <taskport/io/detail/operation.hpp>
#include <taskport/io/endpoint.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace taskport::io {

// The category of getaddrinfo's EAI_* codes; name() is "taskport.getaddrinfo".
const std::error_category& gai_category() noexcept;

namespace detail {

struct resolve_op : coro_operation {
    resolve_op(service* s, std::string host, std::string service_name) noexcept;
    resolve_op(resolve_op&& o) noexcept;

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        capture(h);
        return start();
    }
    std::vector<endpoint> await_resume();

    bool start() noexcept;
    static bool perform_resolve(operation* o) noexcept;

    std::string host;
    std::string service_name;
    std::vector<endpoint> result;  // written by the pool thread, read after completion
};

}  // namespace detail

// co_await resolve(rt, host, service) -> std::vector<endpoint> (never empty on success).
detail::resolve_op resolve(runtime& rt, std::string_view host, std::string_view service);

}  // namespace taskport::io
