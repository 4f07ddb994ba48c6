// taskport/io/detail/test_hooks.hpp — points inside io/ where a test can widen a race window.
//
// Off (null) unless a test installs a function; the library then pays one relaxed load of a
// global on the cold paths that call it (parking an operation, cancelling one, closing a
// descriptor), never on a fast path. Tests use it to make a rare interleaving certain: e.g. a
// cancel that has read an operation's place and is about to lock it, while close() runs.
#pragma once

#include <cstddef>

namespace taskport::io::detail {

enum class hook_point {
    parked,              // an operation was queued on its descriptor (arg: the operation)
    cancel_before_lock,  // a cancel found the operation parked, before it locks the place (arg: the operation)
    close_before_abort,  // close() of a socket, before it marks the descriptor closed (arg: its state)
    would_block,         // readiness core: a read or write system call failed with EAGAIN (arg: its
                         // descriptor state); called on that failure only
    drained_skip,        // readiness core: a read or write parks without its system call, its side
                         // known drained (descriptor_state::drained) (arg: the descriptor state)
    next_step,           // IOCP: a multi-step operation is about to issue its next step, on the
                         // completion thread under the op's lock (arg: the operation)
    blocking_poll,       // readiness core: a worker holding the poll role is about to block in the
                         // poller (arg: the reactor); called on the role's holder thread
};

using test_hook_fn = void (*)(hook_point, void* arg);

// Installs f (null: none). Tests only: install before starting the I/O it should see, remove
// after. A function, not an inline variable, so that a test and a DLL share one hook.
void set_test_hook(test_hook_fn f) noexcept;
// Calls the hook if one is installed (service.cpp).
void run_test_hook(hook_point p, void* arg) noexcept;

// Readiness core: while paused, the reactor's backstop thread (reactor.cpp, run_backstop) makes
// no polls, so that a test sees what the workers' own polls deliver (an event nobody polls for
// then waits for ever). Tests only: pause after the runtime is up, resume before it shuts down.
// Costs one relaxed load per backstop look (every 1-10 ms), nothing elsewhere.
void set_backstop_paused(bool paused) noexcept;

// IOCP: each step of a write_all sends at most n bytes (0: no limit but the backend's own), so
// that a test gets several steps out of a small buffer. Tests only; other backends ignore it.
// Costs one relaxed load per write_all step on IOCP.
void set_write_all_step_limit(std::size_t n) noexcept;

}  // namespace taskport::io::detail
