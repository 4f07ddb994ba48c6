// bench_pingpong.cpp — two tasks hand a value back and forth 100k times (200k hand-offs).
//
// taskport: two coroutines; hand-off i is a promise<int> the sender sets and a future<int> the
// receiver co_awaits (one pair per direction per round, made on a worker inside the timed region,
// so continuations run on the runtime: the woken coroutine goes to the LIFO slot).
// Peer 1: oneTBB's own way for a task to block on an event, tbb::task::suspend / resume: two TBB
// tasks, each suspending until the other resumes it. Peer 2: the continuation-passing form TBB
// users write instead: every hand-off spawns the next step as a new task (task_group::run).
#include "common.hpp"

#include <taskport/taskport.hpp>

#include <oneapi/tbb/task.h>
#include <oneapi/tbb/task_group.h>

namespace {

constexpr int rounds = 100'000;

// Hand-off i is a promise<int>/future<int> pair per direction, made when it is needed: ping makes
// round i+1's pairs before it sends round i (so pong finds them when it gets there), in a ring of
// slots that pong is done with by the time ping reuses one. One allocation per message, as a
// program passing messages through promises pays. Round 0's pairs exist before either starts.
struct round_slot {
    taskport::promise<int> to_pong, to_ping;
    taskport::future<int> at_pong, at_ping;
    void make() {
        to_pong = taskport::promise<int>();
        to_ping = taskport::promise<int>();
        at_pong = to_pong.get_future();
        at_ping = to_ping.get_future();
    }
};
struct channels {
    static constexpr int ring = 4;
    round_slot slot[ring];
    round_slot& at(int i) { return slot[i % ring]; }
};

taskport::task<int> ping(channels& c) {
    int v = 0;
    for (int i = 0; i < rounds; ++i) {
        if (i + 1 < rounds) c.at(i + 1).make();
        c.at(i).to_pong.set_value(v);
        v = co_await std::move(c.at(i).at_ping);
    }
    co_return v;
}

taskport::task<int> pong(channels& c) {
    int v = 0;
    for (int i = 0; i < rounds; ++i) {
        v = co_await std::move(c.at(i).at_pong);
        c.at(i).to_ping.set_value(v + 1);
    }
    co_return v;
}

// One side's mailbox for the suspend/resume peer: 0 empty, 1 signalled, else a suspend point.
struct mailbox {
    std::atomic<std::uintptr_t> s{0};
    int value = 0;

    void send(int v) {
        value = v;
        std::uintptr_t prev = s.exchange(1, std::memory_order_acq_rel);
        if (prev > 1) tbb::task::resume(reinterpret_cast<tbb::task::suspend_point>(prev));
    }
    int receive() {
        if (s.load(std::memory_order_acquire) != 1) {
            tbb::task::suspend([this](tbb::task::suspend_point sp) {
                std::uintptr_t expect = 0;
                if (!s.compare_exchange_strong(expect, reinterpret_cast<std::uintptr_t>(sp),
                                               std::memory_order_acq_rel))
                    tbb::task::resume(sp);  // signalled meanwhile
            });
        }
        s.store(0, std::memory_order_relaxed);
        return value;
    }
};

struct chain {
    tbb::task_group& g;
    int v = 0;
    void ping_step(int i) {
        if (i == rounds) return;
        g.run([this, i] { pong_step(i); });
    }
    void pong_step(int i) {
        ++v;
        g.run([this, i] { ping_step(i + 1); });
    }
};

}  // namespace

int main() {
    const int r = bench::reps(9);
    taskport::runtime rt;

    auto tp_side = [&] {
        channels c;
        auto t0 = bench::clock::now();
        // Both coroutines start from a worker, so their promises' continuations run on the runtime.
        int got = rt.spawn([&] {
                        c.at(0).make();
                        auto a = rt.spawn(ping(c));
                        auto b = rt.spawn(pong(c));
                        int x = a.get();
                        b.get();
                        return x;
                    }).get();
        double ms = bench::ms_since(t0);
        if (got != rounds) std::abort();
        return ms;
    };
    auto suspend_side = [&] {
        mailbox to_ping, to_pong;
        int got = 0;
        auto t0 = bench::clock::now();
        tbb::task_group g;
        g.run([&] {
            int v = 0;
            for (int i = 0; i < rounds; ++i) {
                to_pong.send(v);
                v = to_ping.receive();
            }
            got = v;
        });
        g.run([&] {
            for (int i = 0; i < rounds; ++i) to_ping.send(to_pong.receive() + 1);
        });
        g.wait();
        double ms = bench::ms_since(t0);
        if (got != rounds) std::abort();
        return ms;
    };
    auto chain_side = [&] {
        auto t0 = bench::clock::now();
        tbb::task_group g;
        chain c{g};
        g.run([&] { c.ping_step(0); });
        g.wait();
        double ms = bench::ms_since(t0);
        if (c.v != rounds) std::abort();
        return ms;
    };
    bench::row_samples("ping-pong 100k round trips: coroutines + promise/future vs tbb::task::suspend/resume",
                       bench::alternate(r, tp_side, suspend_side), "ms");
    bench::row_samples("ping-pong 100k round trips: coroutines + promise/future vs TBB task chain (task_group::run per hand-off)",
                       bench::alternate(r, tp_side, chain_side), "ms");
}
