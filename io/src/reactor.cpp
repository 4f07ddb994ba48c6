// reactor.cpp — see reactor.hpp.
#include "reactor.hpp"

#include <taskport/detail/environment.hpp>
#include <taskport/io/detail/test_hooks.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace taskport::io::detail {

namespace {
// TASKPORT_POLL_SPIN_US: how long a worker about to sleep in the poller first looks without
// blocking (microseconds; 0: not at all).
int poll_spin_us() { return taskport::detail::env_poll_spin_us(); }
// set_backstop_paused (test_hooks.hpp): read by the backstop before each look (relaxed: a test
// pauses it after the runtime is up and waits for what only the workers' polls can deliver).
std::atomic<bool> backstop_paused{false};
}  // namespace

void set_backstop_paused(bool paused) noexcept { backstop_paused.store(paused, std::memory_order_relaxed); }

reactor::reactor(completion_queue& cq, std::unique_ptr<poller> p, bool workers_poll)
    : cq_(cq), poller_(std::move(p)), workers_poll_(workers_poll), spin_us_(poll_spin_us()) {
    thread_ = std::thread([this] { run(); });
}

reactor::~reactor() {
    shutdown();
    // Nothing is left attached: every state holds a reference to the service that owns this
    // reactor, so the service (and this) is destroyed only after the last state.
}

void reactor::attach(descriptor_state* st) {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stopped_.load(std::memory_order_acquire))
            throw std::system_error(operation_aborted(), "taskport: runtime is shut down");
        st->live_next = live_;
        if (live_) live_->live_prev = st;
        live_ = st;
    }
    try {
        poller_->add(st->fd, st);
    } catch (...) {
        std::lock_guard<std::mutex> g(mu_);
        unlink_live(st);
        throw;
    }
    descriptor_add_ref(st);  // the registration's
}

void reactor::unlink_live(descriptor_state* st) noexcept {
    if (st->live_prev)
        st->live_prev->live_next = st->live_next;
    else
        live_ = st->live_next;
    if (st->live_next) st->live_next->live_prev = st->live_prev;
    st->live_prev = st->live_next = nullptr;
}

void reactor::abort_queues(descriptor_state* st, op_batch& b) noexcept {
    for (int d = 0; d < 2; ++d) {
        while (operation* op = st->q[d].pop()) {
            op->place.store(nullptr, std::memory_order_seq_cst);
            op->ec = operation_aborted();
            b.push(op);
            parked_ops_.fetch_sub(1, std::memory_order_relaxed);
        }
        st->queued[d].store(0, std::memory_order_relaxed);
    }
}

void reactor::cancel_all(descriptor_state* st) noexcept {
    op_batch b;
    {
        std::lock_guard<std::mutex> g(st->mu);
        abort_queues(st, b);
    }
    cq_.push(b);
}

bool reactor::detach(descriptor_state* st, bool& drop_ref) noexcept {
    drop_ref = false;
    op_batch b;
    {
        std::lock_guard<std::mutex> g(st->mu);
        if (st->closed.load(std::memory_order_relaxed)) return false;
        st->closed.store(true, std::memory_order_release);
        abort_queues(st, b);
    }
    cq_.push(b);
    std::lock_guard<std::mutex> g(mu_);
    poller_->remove(st->fd);
    unlink_live(st);
    if (role_.load() == poll_role::role_stopped) {
        drop_ref = true;  // nobody polls any more: nobody can hold an event naming st
        return true;
    }
    retired_.push_back(st);  // the registration reference, dropped by the next cycle
    n_retired_.store(retired_.size(), std::memory_order_relaxed);
    if (retired_.size() >= 64) poller_->wake();
    return true;
}

bool reactor::start(descriptor_state* st, operation* op, int dir, const std::uint32_t* seen) noexcept {
    op->kind = place_kind::descriptor;
    op->dir = static_cast<unsigned char>(dir);
    std::lock_guard<std::mutex> g(st->mu);
    if (st->closed.load(std::memory_order_relaxed) || stopped_.load(std::memory_order_acquire)) {
        op->ec = operation_aborted();
        return false;
    }
    if (op->cancelled.load(std::memory_order_seq_cst)) {
        op->ec = operation_aborted();
        return false;
    }
    // Speculative, under the lock — unless the caller's own attempt just failed and no event
    // has been handled since: an edge that arrived after that attempt is handled after this
    // lock is released (it then finds the op queued), or was handled before (ready_seq moved).
    // The same for a caller that skipped its attempt (try_now: the side was known drained at
    // *seen): an event since, or one that made the descriptor no_skip, means try now.
#ifdef TASKPORT_PLANT_STALE_DRAINED  // planted (test_io_tcp [ready][race]): an edge handled since is lost
    const bool skip = seen != nullptr;
#elif defined(TASKPORT_PLANT_NO_STICKY_CLOSE)  // planted (test_io_tcp [ready]): a FIN seen is waited for
    const bool skip = seen && st->ready_seq[dir].load(std::memory_order_relaxed) == *seen;
#else
    const bool skip = seen && st->ready_seq[dir].load(std::memory_order_relaxed) == *seen &&
                      !st->no_skip.load(std::memory_order_relaxed);
#endif
    if (st->q[dir].empty() && !skip && op->perform(op)) return false;
    st->q[dir].push(op);
    st->queued[dir].fetch_add(1, std::memory_order_relaxed);
    parked_ops_.fetch_add(1, std::memory_order_relaxed);
    op->place.store(st, std::memory_order_seq_cst);
    if (op->cancelled.load(std::memory_order_seq_cst)) {  // Dekker pair with cancel()
        st->q[dir].remove(op);
        st->queued[dir].fetch_sub(1, std::memory_order_relaxed);
        parked_ops_.fetch_sub(1, std::memory_order_relaxed);
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
        return false;
    }
    run_test_hook(hook_point::parked, op);
    return true;
}

void reactor::cancel(operation* op, descriptor_state* st) noexcept {
    run_test_hook(hook_point::cancel_before_lock, op);
    {
        std::lock_guard<std::mutex> g(st->mu);
        if (op->place.load(std::memory_order_seq_cst) != st) return;  // finished meanwhile
        st->q[op->dir].remove(op);
        st->queued[op->dir].fetch_sub(1, std::memory_order_relaxed);
        parked_ops_.fetch_sub(1, std::memory_order_relaxed);
        op->place.store(nullptr, std::memory_order_seq_cst);
        op->ec = operation_aborted();
    }
    cq_.push(op);
}

// ---- timers: timer_queue.hpp (shared with the IOCP backend) ----

void reactor::wake_for_timer(void* self) noexcept { static_cast<reactor*>(self)->poller_->wake(); }

int reactor::next_timeout_ms() { return static_cast<int>(timers_.next_timeout_ms()); }

void reactor::expire_timers(op_batch& b) { timers_.expire(b); }

// ---- polling: the role's holder runs cycle() ----

namespace {
// Set while this thread runs cycle(): a completion run inline there (orphan mode) that shuts
// the reactor down must not wait for the role this very thread holds.
thread_local bool tl_in_cycle = false;
struct in_cycle_scope {
    in_cycle_scope() noexcept { tl_in_cycle = true; }
    ~in_cycle_scope() { tl_in_cycle = false; }
};
}  // namespace

// Under st->mu, by the role holder: one readiness event for st.
void reactor::handle_event(descriptor_state* st, const poll_event& e, op_batch& b) noexcept {
    if (st->closed.load(std::memory_order_relaxed)) return;
    // kqueue's EV_EOF: keep the error the event took from the socket, and retry both
    // directions (an operation of either may be waiting for it; poller.hpp, tcp.cpp).
    const bool carried = e.error != 0 || e.hup;
    if (carried) {
        if (e.error != 0) st->event_error.store(e.error, std::memory_order_relaxed);
        if (e.hup) st->hup_event.store(true, std::memory_order_release);
    }
    // Closed, hung up, failed or urgent: short reads prove nothing any more (descriptor.hpp).
    // Stored before the ready_seq bump; both are read under mu by start().
    if (e.closed && !st->no_skip.load(std::memory_order_relaxed)) st->no_skip.store(true, std::memory_order_relaxed);
    for (int d = 0; d < 2; ++d) {
        if (!(carried || (d == 0 ? e.readable : e.writable))) continue;
        const std::uint32_t seq = st->ready_seq[d].load(std::memory_order_relaxed) + 1;
        st->ready_seq[d].store(seq, std::memory_order_relaxed);  // writers hold st->mu
        while (operation* op = st->q[d].head) {
            if (!op->perform(op)) break;
            st->q[d].pop();
            st->queued[d].fetch_sub(1, std::memory_order_relaxed);
            parked_ops_.fetch_sub(1, std::memory_order_relaxed);
            op->place.store(nullptr, std::memory_order_seq_cst);
            b.push(op);
            // A short read or write drained the side at this very count: the next queued op
            // would only fail; it waits for the next edge, which every later arrival brings.
            if (st->known_drained(d, seq)) break;
        }
    }
}

std::size_t reactor::cycle(int timeout_ms, bool notify) noexcept {
    in_cycle_scope scope;
    // States retired before this cycle: every event naming them was handled by an earlier
    // holder (deregistered first, they cannot be reported again).
    if (n_retired_.load(std::memory_order_relaxed) != 0) {
        {
            std::lock_guard<std::mutex> g(mu_);
            to_free_.swap(retired_);
            n_retired_.store(0, std::memory_order_relaxed);
        }
        for (descriptor_state* st : to_free_) descriptor_release(st);
        to_free_.clear();
    }
    poll_event evs[256];
    int n;
    try {
        n = poller_->wait(evs, 256, timeout_ms);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "taskport: %s poller failed: %s\n", poller_->name(), e.what());
        std::terminate();
    }
    op_batch b;
    for (int i = 0; i < n; ++i) {
        auto* st = static_cast<descriptor_state*>(evs[i].tag);
        std::lock_guard<std::mutex> g(st->mu);
        handle_event(st, evs[i], b);
    }
    // libkqueue may have dropped events of a full batch (poller::lost_events): every live
    // descriptor is handled as if it had an event in both directions, with what an event
    // would have said of its error and hang-up. Only there, only after a full batch.
    if (poller_->lost_events()) {
        std::lock_guard<std::mutex> g(mu_);
        for (descriptor_state* st = live_; st; st = st->live_next) {
            std::lock_guard<std::mutex> g2(st->mu);
            if (st->closed.load(std::memory_order_relaxed)) continue;
            poll_event e{st, true, true};
            poller_->probe(st->fd, e);
            handle_event(st, e, b);
        }
    }
    expire_timers(b);
    const std::size_t queued = b.n;
    cq_.push(b, notify);
    return queued;
}

bool reactor::worker_poll(bool block, const std::atomic<std::uint32_t>* wake, bool may_spin) noexcept {
    // The role, the wake-up token's re-reads and the spin: poll_role.hpp (its invariants 1-3).
    // No spin unless the caller allows it (the other workers are asleep: parker.hpp).
    const bool polled = role_.worker_poll(
        block, wake,
        [this](bool blk) {
            if (blk) run_test_hook(hook_point::blocking_poll, this);
            return cycle(blk ? next_timeout_ms() : 0, /*notify=*/false);
        },
        taskport::detail::adaptive_spin{may_spin ? spin_us_ : 0, &spin_acct_},
        [this] { polls_.fetch_add(1, std::memory_order_relaxed); });
    if (!polled) return false;
    // Dekker pair with run_backstop(): it sets deep_, then checks that a blocking poller holds
    // the role; this released the role (seq_cst), then checks deep_.
    if (block && deep_.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> g(bs_mu_);
        deep_.store(false, std::memory_order_relaxed);
        bs_cv_.notify_one();
    }
    return true;
}

void reactor::run() {
    if (workers_poll_) {
        run_backstop();
        return;
    }
    // Nobody else polls: wait on the poller, as long as it takes.
    while (!stopped_.load(std::memory_order_acquire)) {
        std::uint32_t f;
        if (!role_.try_take(f)) break;  // stopped
        cycle(next_timeout_ms(), /*notify=*/true);
        role_.release(poll_role::role_held);
    }
}

// The backstop (see reactor.hpp). Its interval doubles from 1 ms up to 10 ms while its polls
// find nothing, and drops back to 1 ms when one finds events; after 20 looks at the cap in a
// row that found a worker asleep in the poller and no worker poll since the last look (the
// runtime is idle), it sleeps until that worker leaves the poller: an idle runtime makes no
// periodic wake-ups.
void reactor::run_backstop() {
    using std::chrono::milliseconds;
    constexpr milliseconds min_interval{1}, max_interval{10};
    constexpr int quiet_looks_before_deep = 20;
    milliseconds interval = min_interval;
    int quiet_looks = 0;
    std::uint64_t seen = polls_.load(std::memory_order_relaxed);
    std::unique_lock<std::mutex> lk(bs_mu_);
    while (!stopped_.load(std::memory_order_acquire)) {
        if (quiet_looks >= quiet_looks_before_deep) {
            deep_.store(true, std::memory_order_seq_cst);
            if (role_.load() == poll_role::role_blocking)
                bs_cv_.wait(lk, [&] {
                    return !deep_.load(std::memory_order_relaxed) || stopped_.load(std::memory_order_acquire);
                });
            deep_.store(false, std::memory_order_relaxed);
            quiet_looks = 0;
            interval = min_interval;
        } else {
            bs_cv_.wait_for(lk, interval, [&] { return stopped_.load(std::memory_order_acquire); });
        }
        if (stopped_.load(std::memory_order_acquire)) break;
        lk.unlock();
        const std::uint64_t now_polls = polls_.load(std::memory_order_relaxed);
        std::uint32_t f = poll_role::role_free;
        bool found = false;
        if (!backstop_paused.load(std::memory_order_relaxed) && role_.try_take(f)) {
            found = cycle(0, /*notify=*/true) != 0;
            role_.release(poll_role::role_held);
        }
        if (found) {
            interval = min_interval;
            quiet_looks = 0;
        } else {
            interval = std::min(interval * 2, max_interval);
            if (interval == max_interval && f == poll_role::role_blocking && now_polls == seen)
                ++quiet_looks;
            else
                quiet_looks = 0;
        }
        seen = now_polls;
        lk.lock();
    }
}

void reactor::shutdown() noexcept {
    {
        std::lock_guard<std::mutex> g(mu_);
        if (stopped_.exchange(true, std::memory_order_acq_rel)) {
            // second call: fall through to join if needed
        }
    }
    {
        std::lock_guard<std::mutex> g(bs_mu_);
        deep_.store(false, std::memory_order_relaxed);
    }
    bs_cv_.notify_all();
    poller_->wake();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    // A worker's poll in progress ends (the wake-up above, once per try), then nobody polls
    // again: events naming a descriptor can no longer be handled after this.
    role_.stop(/*holding=*/tl_in_cycle, [this] { poller_->wake(); });
    // Nobody polls now: the retired states' registration references can go. (The runtime still
    // holds the service, so no state's last release can destroy it here.)
    std::vector<descriptor_state*> retired;
    {
        std::lock_guard<std::mutex> g(mu_);
        retired.swap(retired_);
        n_retired_.store(0, std::memory_order_relaxed);
    }
    for (descriptor_state* st : retired) descriptor_release(st);
    op_batch b;
    {
        std::lock_guard<std::mutex> g(mu_);
        for (descriptor_state* st = live_; st; st = st->live_next) {
            std::lock_guard<std::mutex> g2(st->mu);
            abort_queues(st, b);
        }
    }
    timers_.abort_all(b);
    cq_.push(b);
}

}  // namespace taskport::io::detail
