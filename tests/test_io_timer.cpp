// test_io_timer.cpp — sleep_for, sleep_until, with_timeout, and cancelling them.
//
// Order, never elapsed time: the ordering test holds the only worker while every timer expires, so
// the order in which the completions then run is the order the timer heap produced them in. The
// only clock assertion anywhere is the lower bound (a sleeper never wakes before its deadline),
// which no slow machine can break.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"
#include "service.hpp"  // io's private header: the completion queue's length (ordering test)

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace taskport;
using namespace std::chrono_literals;
namespace io = taskport::io;
using tp_test::aborted;
using tp_test::bytes_of;
using clk = std::chrono::steady_clock;

namespace {

struct wake_log {
    std::mutex mu;
    std::vector<int> order;  // indices, in wake-up order
    int early = 0;           // woke before the deadline: must stay 0
    void woke(int i, clk::time_point deadline) {
        bool is_early = clk::now() < deadline;
        std::lock_guard<std::mutex> g(mu);
        order.push_back(i);
        if (is_early) ++early;
    }
    std::size_t size() {
        std::lock_guard<std::mutex> g(mu);
        return order.size();
    }
};

std::size_t completions_queued(runtime& rt) { return io::detail::service_of(rt).cq.size(); }

// One attempt of the ordering test: K sleepers with distinct deadlines `first + perm[i] * step`
// started in index order (so the heap sees them out of order), half through sleep_for and half
// through sleep_until. Returns false when the machine was so slow that a deadline passed before
// the worker could be held (then the attempt proves nothing and is repeated with a later one).
bool ordering_attempt(clk::duration first, clk::duration step) {
    runtime rt(tp_test::workers(1));
    constexpr int k = 24;  // below the scheduler's batch size: one pop takes them all
    std::vector<int> perm(k);
    for (int i = 0; i < k; ++i) perm[static_cast<std::size_t>(i)] = i;
    std::shuffle(perm.begin(), perm.end(), std::mt19937(12345));

    wake_log log;
    std::vector<clk::time_point> deadline(k);
    tp_test::counter_latch started;
    std::vector<future<void>> sleepers;
    const clk::time_point base = clk::now();
    for (int i = 0; i < k; ++i) {
        sleepers.push_back(rt.spawn([&, i]() -> task<void> {
            auto offset = first + perm[static_cast<std::size_t>(i)] * step;
            if (i % 2 == 0) {
                auto aw = taskport::sleep_until(base + offset);
                deadline[static_cast<std::size_t>(i)] = aw.when;
                started.arrive();
                co_await std::move(aw);
            } else {
                auto aw = taskport::sleep_for(base + offset - clk::now());
                deadline[static_cast<std::size_t>(i)] = aw.when;
                started.arrive();
                co_await std::move(aw);
            }
            log.woke(i, deadline[static_cast<std::size_t>(i)]);
        }));
    }
    REQUIRE(started.wait_for(k));
    const clk::time_point earliest = *std::min_element(deadline.begin(), deadline.end());
    // Hold the only worker: completions can only queue up behind it now. If it is held before
    // the earliest deadline, no timer had expired yet (the reactor expires a timer only once
    // now >= its deadline), so every completion is still to come, into the queue.
    tp_test::gate g;
    tp_test::counter_latch holding;
    std::atomic<bool> held_in_time{false};
    rt.post([&] {
        held_in_time = clk::now() < earliest;
        holding.arrive();
        g.wait();
    });
    REQUIRE(holding.wait_for(1));
    if (!held_in_time.load()) {
        g.open();
        tp_test::watchdog wd("sleepers");
        for (auto& f : sleepers) f.get();
        return false;
    }
    // Every sleeper's expiry is now in the completion queue, in the order the heap released it.
    REQUIRE(tp_test::eventually([&] { return completions_queued(rt) == static_cast<std::size_t>(k); }));
    g.open();
    {
        tp_test::watchdog wd("sleepers");
        for (auto& f : sleepers) f.get();
    }
    std::vector<int> expected(k);
    for (int i = 0; i < k; ++i) expected[static_cast<std::size_t>(i)] = i;
    std::sort(expected.begin(), expected.end(), [&](int a, int b) {
        return deadline[static_cast<std::size_t>(a)] < deadline[static_cast<std::size_t>(b)];
    });
    CHECK(log.order == expected);
    CHECK(log.early == 0);
    return true;
}

}  // namespace

TEST_CASE("timer: sleepers wake in deadline order", "[timer]") {
    bool proved = false;
    for (auto first : {30ms, 300ms, 3000ms})
        if ((proved = ordering_attempt(first, 1ms))) break;
    CHECK(proved);
}

TEST_CASE("timer: many timers with random deadlines each wake once, never early", "[timer]") {
    runtime rt(tp_test::workers(2));
    const int n = static_cast<int>(tp_test::scaled(3000));
    wake_log log;
    std::vector<future<void>> fs;
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> us(0, 40'000);
    const auto base = clk::now();
    for (int i = 0; i < n; ++i) {
        auto d = base + std::chrono::microseconds(us(rng));
        fs.push_back(rt.spawn([&log, i, d]() -> task<void> {
            co_await taskport::sleep_until(d);
            log.woke(i, d);
        }));
    }
    tp_test::watchdog wd("many timers");
    for (auto& f : fs) f.get();
    CHECK(log.size() == static_cast<std::size_t>(n));
    std::vector<int> seen(static_cast<std::size_t>(n));
    for (int i : log.order) ++seen[static_cast<std::size_t>(i)];
    CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));
    CHECK(log.early == 0);
}

TEST_CASE("timer: a deadline already passed, zero and negative durations resume at once", "[timer]") {
    runtime rt(tp_test::workers(1));
    auto r = tp_test::run(rt, []() -> task<int> {
        int n = 0;
        co_await taskport::sleep_for(0ms);
        ++n;
        co_await taskport::sleep_for(-5s);
        ++n;
        co_await taskport::sleep_until(clk::now() - 1h);
        ++n;
        co_await taskport::sleep_until(clk::time_point::min());
        ++n;
        co_await taskport::sleep_for(1us);  // a real (tiny) timer
        ++n;
        co_return n;
    }());
    CHECK(r == 5);
}

TEST_CASE("timer: with_timeout fires on an idle read; the stream stays usable, nothing lost", "[timer][timeout]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    tp_test::watchdog wd("with_timeout fires");
    auto r = tp_test::run(rt, [](io::tcp_stream& s) -> task<std::string> {
        std::array<std::byte, 16> buf;
        try {
            co_await taskport::with_timeout(20ms, s.read_some(buf));
            co_return "no timeout";
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::timed_out) co_return std::string("wrong error: ") + e.what();
        }
        co_return "timed_out";
    }(p.client));
    CHECK(r == "timed_out");

    // Data sent after the timeout is read by the next read, in full.
    tp_test::raw_send_all(p.server.native_handle(), bytes_of("after"));
    std::string got = tp_test::run(rt, [](io::tcp_stream& s) -> task<std::string> {
        std::array<std::byte, 16> buf;
        std::size_t n = co_await taskport::with_timeout(tp_test::hang_deadline, s.read_some(buf));
        co_return std::string(tp_test::text_of(std::span(buf.data(), n)));
    }(p.client));
    CHECK(got == "after");
}

TEST_CASE("timer: with_timeout does not fire when the operation finishes first", "[timer][timeout]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    tp_test::watchdog wd("with_timeout does not fire");

    SECTION("data already there (the operation finishes inside co_await)") {
        tp_test::raw_send_all(p.server.native_handle(), bytes_of("ready"));
        auto n = tp_test::run(rt, [](io::tcp_stream& s) -> task<std::size_t> {
            std::array<std::byte, 16> buf;
            co_return co_await taskport::with_timeout(tp_test::hang_deadline, s.read_some(buf));
        }(p.client));
        CHECK(n == 5);
    }
    SECTION("data arrives while it waits") {
        std::atomic<bool> waiting{false};
        auto f = rt.spawn([&]() -> task<std::size_t> {
            std::array<std::byte, 16> buf;
            waiting = true;
            co_return co_await taskport::with_timeout(tp_test::hang_deadline, p.client.read_some(buf));
        });
        REQUIRE(tp_test::eventually([&] { return waiting.load(); }));
        tp_test::raw_send_all(p.server.native_handle(), bytes_of("late"));
        CHECK(f.get() == 4);
    }
    SECTION("the operation fails on its own: its error, not timed_out") {
        if (tp_test::under_wine())
            TP_SKIP("Wine 8 closes a socket with FIN even after SO_LINGER {1, 0}: no reset to see");
        tp_test::set_linger0(p.server.native_handle());
        p.server.close();
        auto ec = tp_test::run(rt, [](io::tcp_stream& s) -> task<std::error_code> {
            std::array<std::byte, 16> buf;
            try {
                co_await taskport::with_timeout(tp_test::hang_deadline, s.read_some(buf));
                co_return std::error_code{};
            } catch (const std::system_error& e) {
                co_return e.code();
            }
        }(p.client));
        CHECK(ec == std::errc::connection_reset);
    }
    SECTION("a sleep shorter than the timeout") {
        auto r = tp_test::run(rt, []() -> task<int> {
            co_await taskport::with_timeout(1h, taskport::sleep_for(1ms));
            co_return 1;
        }());
        CHECK(r == 1);
    }
    // Whichever way it ended, the runtime shuts down promptly: no timer was left behind to
    // keep anything alive, and nothing completes twice.
    rt.shutdown();
}

TEST_CASE("timer: with_timeout around a sleep and an accept", "[timer][timeout]") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog wd("with_timeout sleep/accept");
    auto slept = tp_test::run(rt, []() -> task<std::string> {
        try {
            co_await taskport::with_timeout(1ms, taskport::sleep_for(1h));
            co_return "slept an hour?";
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out ? "timed_out" : e.what();
        }
    }());
    CHECK(slept == "timed_out");

    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    auto acc = tp_test::run(rt, [](io::tcp_listener& l) -> task<std::string> {
        try {
            co_await taskport::with_timeout(10ms, l.accept());
            co_return "accepted nothing?";
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out ? "timed_out" : e.what();
        }
    }(l));
    CHECK(acc == "timed_out");
    // The listener still works after its accept was withdrawn.
    auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
    CHECK(p.server.is_open());

    // A connection that completes the accept inside with_timeout hands the stream out.
    tp_test::raw_fd c(tp_test::raw_connect(l.local_endpoint()));
    auto got = tp_test::run(rt, [](io::tcp_listener& l) -> task<bool> {
        io::tcp_stream s = co_await taskport::with_timeout(tp_test::hang_deadline, l.accept());
        co_return s.is_open();
    }(l));
    CHECK(got);
}

TEST_CASE("timer: with_timeout racing data arrival: one outcome each, no byte lost", "[timer][timeout][race]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    const int iters = static_cast<int>(tp_test::scaled(1000));
    const int peer = p.server.native_handle();
    std::atomic<long> received{0}, timeouts{0}, wrong{0};
    tp_test::watchdog wd("with_timeout race");
    for (int i = 0; i < iters; ++i) {
        const long timeouts_before = timeouts.load();
        std::atomic<bool> waiting{false};
        auto f = rt.spawn([&]() -> task<void> {
            std::array<std::byte, 64> buf;
            waiting = true;
            try {
                // Deadlines around when the byte below lands (the reactor's timeout is in ms).
                const std::chrono::microseconds d[] = {0us, 0us, 1us, 500us, 1000us};
                auto n = co_await taskport::with_timeout(d[i % 5], p.client.read_some(buf));
                received.fetch_add(static_cast<long>(n));
            } catch (const std::system_error& e) {
                (e.code() == std::errc::timed_out ? timeouts : wrong).fetch_add(1);
            }
        });
        REQUIRE(tp_test::eventually([&] { return waiting.load(); }));
        tp_test::raw_send_all(peer, bytes_of("b"));
        f.get();
        if (timeouts.load() != timeouts_before) {
            // This round's byte is still in the socket: read it, so the next round starts empty.
            received.fetch_add(tp_test::run(rt, [](io::tcp_stream& s) -> task<long> {
                std::array<std::byte, 64> b;
                co_return static_cast<long>(co_await s.read_some(b));
            }(p.client)));
        }
    }
    p.server.shutdown_write();
    long rest = tp_test::run(rt, [](io::tcp_stream& s) -> task<long> {
        long total = 0;
        std::array<std::byte, 4096> b;
        for (;;) {
            std::size_t n = co_await s.read_some(b);
            if (n == 0) co_return total;
            total += static_cast<long>(n);
        }
    }(p.client));
    CHECK(wrong.load() == 0);
    CHECK(received.load() + rest == iters);  // every byte sent arrived exactly once
    CHECK(rest == 0);                         // each round's byte was read in its round
    WARN("with_timeout race: " << timeouts.load() << " of " << iters << " timed out");
}

TEST_CASE("timer: future::cancel of a sleeping task completes it with operation_canceled", "[timer][cancel]") {
    runtime rt(tp_test::workers(2));
    tp_test::watchdog wd("cancel sleep");
    std::atomic<bool> sleeping{false};
    std::atomic<int> woke{0};
    auto f = rt.spawn([&]() -> task<void> {
        sleeping = true;
        co_await taskport::sleep_for(1h);
        woke.fetch_add(1);
    });
    REQUIRE(tp_test::eventually([&] { return sleeping.load(); }));
    f.cancel();
    CHECK(tp_test::outcome(f) == std::errc::operation_canceled);
    CHECK(woke.load() == 0);

    // Inside with_timeout: the cancel reaches the inner operation; the result is the cancel,
    // not a timeout.
    auto p = tp_test::connect_pair(rt);
    std::atomic<bool> reading{false};
    auto g = rt.spawn([&]() -> task<void> {
        std::array<std::byte, 8> buf;
        reading = true;
        co_await taskport::with_timeout(1h, p.client.read_some(buf));
    });
    REQUIRE(tp_test::eventually([&] { return reading.load(); }));
    g.cancel();
    CHECK(tp_test::outcome(g) == std::errc::operation_canceled);
}

TEST_CASE("timer: future::cancel racing the expiry: one outcome per sleep, never a hang", "[timer][cancel][race]") {
    runtime rt(tp_test::workers(2));
    const int iters = static_cast<int>(tp_test::scaled(500));
    int normal = 0, cancelled = 0;
    tp_test::watchdog wd("cancel vs expiry");
    for (int i = 0; i < iters; ++i) {
        std::atomic<int> resumed{0};
        std::atomic<clk::rep> deadline{0};
        auto f = rt.spawn([&]() -> task<void> {
            auto aw = taskport::sleep_for(std::chrono::microseconds(50 + i % 200));
            deadline = aw.when.time_since_epoch().count();
            co_await std::move(aw);
            resumed.fetch_add(1);
        });
        // Aim the cancel at the expiry: spin on the clock (no sleep) until about the deadline,
        // a little before or after it depending on the round. Either outcome is accepted.
        REQUIRE(tp_test::eventually([&] { return deadline.load() != 0; }));
        const auto aim = clk::time_point(clk::duration(deadline.load())) +
                         std::chrono::microseconds(i % 8 * 250) - 250us;
        while (clk::now() < aim) std::this_thread::yield();
        f.cancel();
        auto ec = tp_test::outcome(f);
        if (!ec) {
            ++normal;
            REQUIRE(resumed.load() == 1);
        } else {
            REQUIRE(ec == std::errc::operation_canceled);
            ++cancelled;
            REQUIRE(resumed.load() == 0);  // no co_await after the sleep: a cancel shows there only
        }
    }
    CHECK(normal + cancelled == iters);
    WARN("cancel vs expiry: " << normal << " slept to the end, " << cancelled << " cancelled");
}

TEST_CASE("timer: shutdown aborts long sleeps with operation_aborted", "[timer][shutdown]") {
    std::atomic<int> aborted_n{0}, other{0};
    std::vector<future<void>> fs;
    const int n = 500;
    {
        runtime rt(tp_test::workers(2));
        tp_test::counter_latch started;
        for (int i = 0; i < n; ++i)
            fs.push_back(rt.spawn([&, i]() -> task<void> {
                started.arrive();
                try {
                    co_await taskport::sleep_for(std::chrono::hours(24) - std::chrono::seconds(i));
                    other.fetch_add(1);
                } catch (const std::system_error& e) {
                    (e.code() == aborted ? aborted_n : other).fetch_add(1);
                }
            }));
        REQUIRE(started.wait_for(n));
        tp_test::watchdog wd("shutdown with sleepers");
        rt.shutdown();
        CHECK(aborted_n.load() == n);
    }
    CHECK(other.load() == 0);
    CHECK(aborted_n.load() == n);
}
