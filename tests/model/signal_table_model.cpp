// signal_table_model.cpp — Relacy model of io's signal handler table (io/src/signal_table.hpp,
// the real header, instantiated with rl_atomics): two signal handlers (on two threads) deliver
// a signal wanted by two sets while one of those sets is closed (release(), then the caller
// closes its pipe's write end). Checked: a handler never writes to a descriptor after the
// closer has closed it (the close is a plain write of the descriptor's state, each handler
// write a plain read of it: Relacy reports a data race unless the write happens before the
// close, and the assertion catches a write to a closed one); the set that stays sees every
// delivery.
//
// planted: SIGNAL_NO_QUIESCE SIGNAL_MASK_RELAXED
//   SIGNAL_NO_QUIESCE    release() frees the slot without waiting for running handlers: a
//                        handler that read the mask before it was cleared writes to the
//                        descriptor after it was closed (in the process: to whatever reused it).
//   SIGNAL_MASK_RELAXED  the handler reads a slot's mask relaxed: the Dekker pair with release()
//                        is broken, so release() can see no handler running while one still
//                        goes on to write to the descriptor.
#include "relacy_atomics.hpp"

#include "signal_table.hpp"

namespace {

using taskport::model::rl_atomics;
using table_t = taskport::io::detail::basic_signal_table<rl_atomics, 2>;

constexpr int signo = 10;
constexpr int fd_closing = 3;  // set A's write end: closed by thread 2
constexpr int fd_staying = 4;  // set B's

struct signal_table_test : rl::test_suite<signal_table_test, 3> {
    table_t* table = nullptr;
    int slot_a = -1;
    rl_atomics::var<int> fd_open[5];  // 1: open; written by the closer, read by each write
    rl_atomics::atomic<int> writes_to_b{0};

    void before() {
        table = new table_t;
        slot_a = table->claim(fd_closing);
        const int slot_b = table->claim(fd_staying);
        const std::uint64_t bit = std::uint64_t{1} << (signo - 1);
        table->want(slot_a, bit);
        table->want(slot_b, bit);
        fd_open[fd_closing].store(1);
        fd_open[fd_staying].store(1);
    }
    void after() {
        RL_ASSERT(writes_to_b.load(rl_atomics::relaxed) == 2);  // the set that stays saw both
        delete table;
    }

    void handler() {
        table->deliver(signo, [&](int fd, int n) {
            RL_ASSERT(n == signo);
            RL_ASSERT(fd_open[fd].load() == 1);  // the write(2): to an open descriptor only
            if (fd == fd_staying) writes_to_b.fetch_add(1, rl_atomics::relaxed);
        });
    }

    void thread(unsigned idx) {
        if (idx < 2) {
            handler();
            return;
        }
        int fd = -1;
        table->release(slot_a, fd);
        RL_ASSERT(fd == fd_closing);
        fd_open[fd].store(0);  // close(fd)
    }
};

}  // namespace

int main(int argc, char** argv) {
    unsigned iterations = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 200000;
    bool ok = taskport::model::run_suite<signal_table_test>(
        "signal table: two handlers delivering while a set is released", iterations);
    return ok ? 0 : 1;
}
