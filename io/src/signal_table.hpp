// signal_table.hpp — the process's table of signal sets, as the signal handler sees it
// (signal.cpp; signal.hpp for the design). The handler may run on any thread at any moment,
// also inside the writers' own code; it takes no lock and only calls `write`.
//
// A slot is free while its `fd` is 0, else holds its set's pipe write end + 1; `mask` holds the
// signals (bit signo-1) it wants. Writers (claim/want/release) run under the caller's lock, one
// at a time. Invariant: the handler never writes to a descriptor after release() returned it
// (the caller then closes it, and the process may reuse the number for anything).
//
// release() stores mask = 0, then waits until no handler is running (in_handler == 0), then
// frees fd. A handler counts itself in before it loads any mask and out after its last write.
// Both sides are a seq_cst store/RMW then a seq_cst load (Dekker): either release() sees the
// handler counted and waits for it to count out — whose fetch_sub its load then reads, so the
// handler's writes happen before the close — or the handler's mask load sees 0 and it skips
// the slot. Checked by tests/model/signal_table_model.cpp (Relacy) on this header.
//
// Parameterised on the atomics policy A (taskport/sched/atomics.hpp): std_atomics in the
// library, rl_atomics in the model.
#pragma once

#include <taskport/sched/atomics.hpp>

#include <cstdint>

namespace taskport::io::detail {

template <class A, int N>
struct basic_signal_table {
    struct slot {
        // Writers: claim/want/release (under the caller's lock); reader: deliver (any thread).
        typename A::template atomic<std::uint64_t> mask{0};
        typename A::template atomic<int> fd{0};  // write end + 1; 0: free
    };
    slot slots[N];
    // Handlers running now. deliver: fetch_add before reading a mask, fetch_sub after its last
    // write; release: reads it after clearing a mask (see the file comment for the orders).
    typename A::template atomic<int> in_handler{0};

    // The signal handler's part: write(fd, signo) for each slot that wants signo.
    template <class Write>
    void deliver(int signo, Write write) noexcept {
        in_handler.fetch_add(1, A::seq_cst);
        const std::uint64_t bit = std::uint64_t{1} << (signo - 1);
        for (auto& s : slots) {
#if defined(TASKPORT_PLANT_SIGNAL_MASK_RELAXED)
            if (!(s.mask.load(A::relaxed) & bit)) continue;
#else
            if (!(s.mask.load(A::seq_cst) & bit)) continue;
#endif
            const int fd = s.fd.load(A::seq_cst) - 1;
            if (fd >= 0) write(fd, signo);
        }
        in_handler.fetch_sub(1, A::seq_cst);
    }

    // A free slot for write end fd (wanting nothing yet), or -1 when all are taken.
    int claim(int fd) noexcept {
        for (int i = 0; i < N; ++i) {
            if (slots[i].fd.load(A::relaxed) == 0) {
                slots[i].fd.store(fd + 1, A::seq_cst);
                return i;
            }
        }
        return -1;
    }

    std::uint64_t wanted(int i) noexcept { return slots[i].mask.load(A::relaxed); }
    void want(int i, std::uint64_t mask) noexcept { slots[i].mask.store(mask, A::seq_cst); }

    // Frees slot i once no handler can write to its descriptor any more; returns the signals it
    // wanted and, in fd, its write end (for the caller to close).
    std::uint64_t release(int i, int& fd) noexcept {
        const std::uint64_t m = slots[i].mask.exchange(0, A::seq_cst);
#if !defined(TASKPORT_PLANT_SIGNAL_NO_QUIESCE)
        while (in_handler.load(A::seq_cst) != 0) A::yield();
#endif
        fd = slots[i].fd.exchange(0, A::seq_cst) - 1;
        return m;
    }
};

}  // namespace taskport::io::detail
