// idle.hpp — who is searching for work and who sleeps; the wake-up rule.
//
// Protocol (a two-phase wait, as an event count):
//   worker:   prepare  — list itself as a sleeper (num_sleepers_++), stop searching
//             re-check — seq_cst fence, then look at every queue (and its wait target)
//             commit   — park; or cancel if the re-check found something
//   producer: publish the task (seq_cst), seq_cst fence, then wake_one() if nobody is searching
//             and somebody sleeps.
// In the single total order either the producer's load sees the sleeper (and wakes one), or the
// sleeper's re-check sees the task. A producer skips the wake-up when a searcher exists; that
// searcher decrements num_searching_ before its own re-check (or, finding work, wakes a successor
// when it was the last searcher: Tokio's and Go's "spinning" rule), so it cannot miss the task.
//
// Invariants:
//   - num_sleepers_ == sleepers_.size() whenever mu_ is free; listed_[w] <=> w in sleepers_.
//   - A worker taken off the list by notify_one()/notify_all() is counted in num_searching_
//     from that moment (finish() returns true and the worker then owns that count).
//   - Whoever ends a search owns the work it may have made a producer skip: it re-checks (park),
//     takes it, or wakes another (park_protocol.hpp's leave_search and leave_wait).
//
// Who touches what: sleepers_ and each worker's `listed` flag under mu_; the counters are atomics
// read by producers without the lock. Written against the atomics policy (atomics.hpp) so that
// tests/model/park_model.cpp runs this very code under Relacy.
#pragma once

#include "parker.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace taskport::detail {

template <class A, class Source>
class basic_idle_set {
public:
    using parker_type = basic_parker<A, Source>;

    explicit basic_idle_set(std::size_t workers)
        : n_(workers), parkers_(new padded_parker[workers]), listed_(workers, false) {
        sleepers_.reserve(workers);
    }

    parker_type& parker_of(std::size_t w) noexcept { return parkers_[w].p; }

    // Producer side: after publishing work. Returns true if a worker was woken.
    bool notify_one() noexcept {
        A::fence(A::seq_cst);
        if (num_searching_.load(A::seq_cst) != 0) return false;
        if (num_sleepers_.load(A::seq_cst) == 0) return false;
        std::size_t w;
        {
            std::lock_guard<typename A::mutex> g(mu_);
            if (sleepers_.empty() || num_searching_.load(A::relaxed) != 0)
                return false;
            w = sleepers_.back();
            sleepers_.pop_back();
            listed_[w] = false;
            num_sleepers_.fetch_sub(1, A::seq_cst);
            // The woken worker starts out searching: further producers need not wake another.
            num_searching_.fetch_add(1, A::seq_cst);
        }
        parkers_[w].p.unpark();
        wakeups_.fetch_add(1, A::relaxed);
        return true;
    }

    void notify_all() noexcept {
        std::vector<std::size_t> woken;
        {
            std::lock_guard<typename A::mutex> g(mu_);
            woken.swap(sleepers_);
            for (std::size_t w : woken) {
                listed_[w] = false;
                num_sleepers_.fetch_sub(1, A::seq_cst);
                num_searching_.fetch_add(1, A::seq_cst);
            }
        }
        for (std::size_t w : woken) parkers_[w].p.unpark();
        // Workers not listed (running, or between phases) re-check the flags themselves.
        for (std::size_t i = 0; i < n_; ++i) parkers_[i].p.unpark();
    }

    // Worker side, phase 1.
    void prepare(std::size_t w) {
        std::lock_guard<typename A::mutex> g(mu_);
        sleepers_.push_back(w);
        listed_[w] = true;
        num_sleepers_.fetch_add(1, A::seq_cst);
    }

    // Worker side, after waking or cancelling. Returns true if the worker was woken by
    // notify_one()/notify_all() (it is then counted as searching).
    bool finish(std::size_t w) {
        std::lock_guard<typename A::mutex> g(mu_);
        if (!listed_[w]) return true;
        listed_[w] = false;
        auto it = std::find(sleepers_.begin(), sleepers_.end(), w);
        sleepers_.erase(it);
        num_sleepers_.fetch_sub(1, A::seq_cst);
        return false;
    }

    void begin_search() noexcept { num_searching_.fetch_add(1, A::seq_cst); }
    // Returns true if this was the last searcher.
    bool end_search() noexcept {
        return num_searching_.fetch_sub(1, A::seq_cst) == 1;
    }

    std::uint64_t wakeups() const noexcept { return wakeups_.load(A::relaxed); }

    // Workers listed as sleepers now (a worker between prepare() and finish() counts, asleep or
    // about to be). Relaxed: a hint for how long to search and whether to spin, never for
    // whether to wake anyone (that is notify_one's fenced read).
    std::uint32_t sleepers() const noexcept { return num_sleepers_.load(A::relaxed); }

private:
    struct alignas(64) padded_parker {
        parker_type p;
    };
    std::size_t n_;
    std::unique_ptr<padded_parker[]> parkers_;
    typename A::mutex mu_;
    std::vector<std::size_t> sleepers_;  // guarded by mu_
    std::vector<bool> listed_;           // guarded by mu_
    // Workers searching for work: +1 by begin_search() and by notify_*() for each worker it
    // takes off the list, -1 by end_search(). Read by producers (notify_one) after their fence.
    alignas(64) typename A::template atomic<std::uint32_t> num_searching_{0};
    // Listed sleepers (sleepers_.size()), read by producers without mu_ after their fence.
    alignas(64) typename A::template atomic<std::uint32_t> num_sleepers_{0};
    typename A::template atomic<std::uint64_t> wakeups_{0};  // statistics only
};

using idle_set = basic_idle_set<std_atomics, task_source>;

}  // namespace taskport::detail
