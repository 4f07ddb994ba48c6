// taskport/sched/poll_role.hpp — the poll role: which one thread may wait on an I/O source's
// poller now, and how a worker about to sleep in it keeps the wake-up meant for it. The I/O half
// of the park protocol (sched/src/park_protocol.hpp, parker.hpp's park_polling): io's reactor
// (reactor::worker_poll, its backstop, its shutdown) calls these steps with its own cycle(), and
// tests/model/park_model.cpp runs this very code under Relacy with a modelled poller.
//
// The role word: free, held (a non-blocking look: a busy worker's, the backstop's, the dedicated
// polling thread's), blocking (a worker asleep in the poller), stopped (for good: shutdown).
// Only the holder waits on the poller and handles its events. While stop() waits for a holder,
// the holder's value carries the stop_requested bit (invariant 4).
//
// Invariants:
//   1. The interrupt token. A parked worker's wake-up (parker::unpark: set the token, then
//      interrupt the source: an eventfd, read by WHOEVER polls next) can be consumed by another
//      holder's poll just before this worker takes the role. So a blocking poll re-reads the
//      caller's token once it holds the role (an unpark() before that read shows in it; one after
//      finds this thread the only poller, and its interrupt ends this thread's wait), and again
//      after every non-blocking look of the spin (each look may itself drain an interrupt meant
//      for this thread). seq_cst: a Dekker pair with unpark(), which sets the token then reads
//      the parker's polling_ and interrupts. (Broken: before 12b6df5 the token was not re-read
//      once the role was held; the spin's re-read came with the spin, 1c67933.)
//   2. A worker about to block waits out a momentary `held` holder (a non-blocking look takes
//      microseconds) a bounded number of times instead of sleeping on its futex, which would leave
//      nobody in the poller until the backstop's next look. It never waits for a `blocking` one.
//   3. release() is a CAS from the value taken, not a store: a shutdown from inside the holder's
//      own cycle (a completion run inline that destroys the runtime) has made the word `stopped`
//      for good, and it must stay so.
//   4. stop() closes the door before it waits: it sets the stop_requested bit on the holder's
//      value, so no thread can take the role again (every taker CASes from `free`), and the
//      holder's release() then makes the word `stopped` itself. stop() ends after the holder's
//      current poll, whatever the threads' timing. (Broken before: stop() only retried a CAS
//      from `free` between interrupts; an idle worker whose search ends in one round, then
//      parks in the poller again, took the role back within a microsecond of each release, and
//      under CPU contention the shutting-down thread, yielding between tries, lost that race for
//      tens of seconds: test_io_tcp past CI's 180 s with echo13b's idle loop, fda80ad.)
#pragma once

#include <taskport/sched/atomics.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace taskport::detail {

// The spin before a blocking poll: look without blocking for `us` microseconds (0: not at all).
struct timed_spin {
    int us = 0;
    std::chrono::steady_clock::time_point until{};
    bool begin() noexcept {
        if (us <= 0) return false;
        until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
        return true;
    }
    bool again() const noexcept { return std::chrono::steady_clock::now() < until; }
};

// What recent spins of one poller's workers were worth (adaptive_spin), shared by them.
struct spin_account {
    // An average (weight 1/8 per spin) of what each spin saved, in nanoseconds: a spin that found
    // work saved a sleep in the poller and its wake-up (wake_cost_ns) less the time it spun; one
    // that found nothing cost the time it spun. Read and written by every spinning worker with
    // relaxed loads and stores: a heuristic, a lost update only delays the adaptation by a spin.
    std::atomic<std::int32_t> net_ns{0};
    // Blocking polls that did not spin since the account went negative: one in probe_every
    // spins anyway, so that a spin that would pay again is found. Relaxed, a counter only.
    std::atomic<std::uint32_t> skipped{0};
};

// The spin that pays for itself: it looks without blocking for up to `us` microseconds, but only
// while the account says recent spins saved more than they cost (else one blocking poll in
// probe_every spins, to relearn), and it stops at once, counting it as a loss, when a look finds
// this thread was descheduled (the machine is oversubscribed: a spinning thread there takes the
// core from the thread that would produce the event).
struct adaptive_spin {
    static constexpr std::int64_t wake_cost_ns = 8000;  // a sleep + wake-up in the poller, about
    static constexpr std::uint32_t probe_every = 16;
    int us = 0;
    spin_account* acct = nullptr;
    std::chrono::steady_clock::time_point start{}, last{}, until{};
    bool preempted = false;

    bool begin() noexcept {
        if (us <= 0 || !acct) return false;
        if (acct->net_ns.load(std::memory_order_relaxed) < 0 &&
            acct->skipped.fetch_add(1, std::memory_order_relaxed) % probe_every != probe_every - 1)
            return false;
        start = last = std::chrono::steady_clock::now();
        until = start + std::chrono::microseconds(us);
        return true;
    }
    bool again() noexcept {
        const auto now = std::chrono::steady_clock::now();
        // One empty look takes a microsecond or two; one that took longer than the whole spin
        // was descheduled.
        if (now - last > std::chrono::microseconds(us)) preempted = true;
        last = now;
        return !preempted && now < until;
    }
    // found: the spin ended because a look found work (or the wake-up token).
    void end(bool found) noexcept {
        const auto now = std::chrono::steady_clock::now();
        const std::int64_t spent = std::chrono::duration_cast<std::chrono::nanoseconds>(now - start).count();
        const std::int64_t benefit = found && !preempted ? wake_cost_ns - spent : -spent;
        const std::int64_t old = acct->net_ns.load(std::memory_order_relaxed);
        std::int64_t v = old - old / 8 + benefit / 8;
        if (v > 1'000'000) v = 1'000'000;
        if (v < -1'000'000) v = -1'000'000;
        acct->net_ns.store(static_cast<std::int32_t>(v), std::memory_order_relaxed);
    }
};

template <class A>
class basic_poll_role {
public:
    // stop_requested: a bit on role_held or role_blocking while stop() waits for that holder
    // (invariant 4); no other value carries it.
    enum : std::uint32_t {
        role_free = 0, role_held = 1, role_blocking = 2, role_stopped = 3, stop_requested = 4
    };
    using futex_word = typename A::futex_word;

    // wait_out_tries: how many times a worker about to block yields to a momentary holder
    // (invariant 2) before giving up (it then sleeps on its futex).
    explicit basic_poll_role(int wait_out_tries = 64) noexcept : wait_out_tries_(wait_out_tries) {}

    std::uint32_t load() const noexcept { return word_.load(A::seq_cst); }

    // A worker's poll (task_source::poll): take the role (blocking or held), then
    // cycle(bool block) -> std::size_t (the poller's wait and the handling of what it found: how
    // many completions it queued), spinning first (Spin: timed_spin's begin()/again()) when
    // blocking; after_cycle() runs while the role is still held. False when the role was not
    // available (another thread polls, or stopped).
    template <class Cycle, class Spin, class After>
    bool worker_poll(bool block, const futex_word* wake, Cycle&& cycle, Spin&& spin,
                     After&& after_cycle) noexcept {
        const std::uint32_t h = block ? role_blocking : role_held;
        for (int tries = 0;; ++tries) {
            // relaxed: a hint; the CAS below decides (seq_cst: see release()).
            std::uint32_t f = word_.load(A::relaxed);
            if (f == role_free) {
                if (word_.compare_exchange_strong(f, h, A::seq_cst)) break;
                continue;
            }
            if (!block || f != role_held || tries >= wait_out_tries_) return false;  // invariant 2
            A::yield();
        }
        // Invariant 1: the token, read only now that this thread holds the role.
        auto woken = [wake] { return wake && wake->load(A::seq_cst) != 0; };
#ifndef TASKPORT_PLANT_TOKEN_NOT_REREAD
        if (block && woken()) block = false;
#endif
        // The spin (Go's spinning threads): a reply that arrives within it is taken without a
        // sleeping CPU having to wake up. Each look re-reads the token (invariant 1).
        bool done = false;
        if (block && spin.begin()) {
            do {
                done = cycle(false) != 0;
#ifndef TASKPORT_PLANT_SPIN_NO_REREAD
                done = done || woken();
#endif
            } while (!done && spin.again());
            if constexpr (requires { spin.end(done); }) spin.end(done);
        }
        if (!done) cycle(block);
        after_cycle();
        release(h);
        return true;
    }

    // A non-blocking look's role (the backstop, the dedicated polling thread): taken if free.
    // seen: what the word held (blocking: a worker sleeps in the poller). acquire: the previous
    // holder's handling of events happens before this holder's.
    bool try_take(std::uint32_t& seen) noexcept {
        seen = role_free;
        return word_.compare_exchange_strong(seen, role_held, A::acquire);
    }

    // seq_cst: a worker's release is one side of a Dekker pair (the reactor's backstop sets its
    // `deep` flag, then reads the role; the worker releases, then reads the flag). A CAS:
    // invariant 3. When stop() has marked this holder's value (invariant 4), the role ends here:
    // the word becomes `stopped` (seq_cst, a release: the stopper's acquire load that sees it
    // has this holder's handling of events happen before what it frees next).
    void release(std::uint32_t h) noexcept {
        std::uint32_t f = h;
        if (word_.compare_exchange_strong(f, role_free, A::seq_cst)) return;
#ifndef TASKPORT_PLANT_STOP_RETRY_ONLY
        if (f == (h | stop_requested)) word_.compare_exchange_strong(f, role_stopped, A::seq_cst);
#endif
    }

    // Ends polling for good. holding: the caller holds the role itself (it is inside its own
    // cycle). Else: free, the word becomes `stopped` at once; held, it marks the holder's value
    // (stop_requested: nobody can take the role any more, and the holder's release() stops it,
    // invariant 4), then waits for that release, calling wake() (interrupt the poller) between
    // looks. One stopper at a time (the reactor's shutdown).
    template <class Wake>
    void stop(bool holding, Wake&& wake) noexcept {
        if (holding) {  // nobody else can poll meanwhile
            word_.store(role_stopped, A::release);
            return;
        }
        // acquire (each load and CAS): the last holder's handling of events happens before
        // whatever the caller does once the role is stopped.
        std::uint32_t f = word_.load(A::acquire);
        for (;;) {
            if (f == role_stopped) return;
            if (f == role_free) {
                if (word_.compare_exchange_strong(f, role_stopped, A::acq_rel)) return;
                continue;  // taken meanwhile: f holds the new value
            }
#ifndef TASKPORT_PLANT_STOP_RETRY_ONLY
            if ((f & stop_requested) == 0) {
                if (word_.compare_exchange_strong(f, f | stop_requested, A::acq_rel))
                    f |= stop_requested;
                continue;  // marked, or f holds what the word became
            }
#endif
            wake();
            A::yield();
            f = word_.load(A::acquire);
        }
    }

private:
    const int wait_out_tries_;
    // Written by every taker (CAS from free), by the holder's release (CAS back, or to stopped
    // when marked) and by stop() (its mark, or stopped);
    // read by would-be takers, the reactor's detach (stopped?) and its backstop (blocking?).
    typename A::template atomic<std::uint32_t> word_{role_free};
};

using poll_role = basic_poll_role<std_atomics>;

}  // namespace taskport::detail
