// test_channel.cpp — channel<T>: FIFO, bounded waiting, close/drain, try forms, cancellation and
// with_timeout of send and receive, the blocking forms, and a many-producer/many-consumer
// stress that checks every value is received exactly once.
#include <catch2/catch.hpp>

#include "test_util.hpp"

#include <taskport/taskport.hpp>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using taskport::task;

TEST_CASE("channel: FIFO, try forms, close drains then ends") {
    taskport::channel<int> ch(3);
    CHECK(ch.try_send(1) == taskport::send_status::sent);
    CHECK(ch.try_send(2) == taskport::send_status::sent);
    CHECK(ch.try_send(3) == taskport::send_status::sent);
    CHECK(ch.try_send(4) == taskport::send_status::full);
    CHECK(ch.size() == 3);
    CHECK(ch.try_receive() == 1);
    ch.close();
    CHECK(ch.try_send(5) == taskport::send_status::closed);
    CHECK(ch.try_receive() == 2);
    CHECK(ch.try_receive() == 3);
    CHECK(!ch.try_receive());
    CHECK_THROWS_AS(taskport::channel<int>(0), std::invalid_argument);

    // try_send leaves a value it did not send as it was.
    taskport::channel<std::unique_ptr<int>> c1(1);
    auto p = std::make_unique<int>(7);
    CHECK(c1.try_send(std::make_unique<int>(1)) == taskport::send_status::sent);
    CHECK(c1.try_send(std::move(p)) == taskport::send_status::full);
    CHECK(p != nullptr);
    // An lvalue is copied, never moved from.
    taskport::channel<std::string> c2(1);
    std::string keep = "kept";
    CHECK(c2.try_send(keep) == taskport::send_status::sent);
    CHECK(keep == "kept");
    CHECK(c2.try_receive() == std::string("kept"));
}

TEST_CASE("channel: send waits while full, receive while empty; close wakes both") {
    taskport::runtime rt({.workers = 2});
    taskport::channel<std::string> ch(1);
    auto producer = rt.spawn([&]() -> task<void> {
        for (int i = 0; i < 3; ++i) co_await ch.send(std::to_string(i));
    });
    tp_test::wait_until([&] { return ch.waiting_senders() == 1; });  // 0 queued, 1 waiting
    auto consumer = rt.spawn([&]() -> task<std::vector<std::string>> {
        std::vector<std::string> got;
        for (;;) {
            std::optional<std::string> v = co_await ch.receive();
            if (!v) break;
            got.push_back(*v);
        }
        co_return got;
    });
    producer.get();
    tp_test::wait_until([&] { return ch.waiting_receivers() == 1; });
    ch.close();
    CHECK(consumer.get() == std::vector<std::string>{"0", "1", "2"});

    // A sender waiting at close() gets channel_closed_error (its value is not sent).
    taskport::channel<int> c2(1);
    REQUIRE(c2.try_send(1) == taskport::send_status::sent);
    auto s = rt.spawn([&]() -> task<void> { co_await c2.send(2); });
    tp_test::wait_until([&] { return c2.waiting_senders() == 1; });
    c2.close();
    try {
        s.get();
        FAIL("send on a closed channel returned");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::broken_pipe);
    }
    CHECK(c2.try_receive() == 1);
    CHECK(!c2.try_receive());
    auto late = rt.spawn([&]() -> task<void> { co_await c2.send(3); });
    CHECK_THROWS_AS(late.get(), std::system_error);
}

TEST_CASE("channel: cancel and with_timeout of send and receive lose and duplicate nothing") {
    taskport::runtime rt({.workers = 2});
    taskport::channel<int> ch(1);
    auto r = rt.spawn([&]() -> task<std::optional<int>> { co_return co_await ch.receive(); });
    tp_test::wait_until([&] { return ch.waiting_receivers() == 1; });
    r.cancel();
    CHECK_THROWS_AS(r.get(), std::system_error);
    CHECK(ch.waiting_receivers() == 0);
    REQUIRE(ch.try_send(10) == taskport::send_status::sent);  // not taken by the cancelled one
    auto s = rt.spawn([&]() -> task<void> { co_await ch.send(11); });
    tp_test::wait_until([&] { return ch.waiting_senders() == 1; });
    s.cancel();
    CHECK_THROWS_AS(s.get(), std::system_error);
    CHECK(ch.try_receive() == 10);
    CHECK(!ch.try_receive());  // the cancelled send's 11 never entered

    auto tr = rt.spawn(tp_test::times_out(10ms, ch.receive()));
    CHECK(tr.get());
    REQUIRE(ch.try_send(1) == taskport::send_status::sent);
    auto ts = rt.spawn(tp_test::times_out(10ms, ch.send(2)));
    CHECK(ts.get());
    CHECK(ch.try_receive() == 1);
    CHECK(!ch.try_receive());
    // Within the deadline: the value.
    auto ok = rt.spawn([&]() -> task<int> {
        co_await ch.send(5);
        std::optional<int> v = co_await taskport::with_timeout(10s, ch.receive());
        co_return *v;
    });
    CHECK(ok.get() == 5);
}

TEST_CASE("channel: blocking forms from outside threads; refused on a worker") {
    taskport::runtime rt({.workers = 2});
    taskport::channel<int> ch(2);
    const int n = static_cast<int>(tp_test::scaled(2000));
    auto consumer = rt.spawn([&]() -> task<long> {
        long sum = 0;
        for (;;) {
            std::optional<int> v = co_await ch.receive();
            if (!v) break;
            sum += *v;
        }
        co_return sum;
    });
    std::thread producer([&] {
        for (int i = 1; i <= n; ++i) ch.send_blocking(i);
        ch.close();
    });
    producer.join();
    CHECK(consumer.get() == static_cast<long>(n) * (n + 1) / 2);
    CHECK_THROWS_AS(ch.send_blocking(1), std::system_error);

    taskport::channel<int> back;  // unbounded
    std::thread rx([&] {
        long sum = 0;
        while (std::optional<int> v = back.receive_blocking()) sum += *v;
        CHECK(sum == 6);
    });
    rt.spawn([&]() -> task<void> {
          for (int i = 1; i <= 3; ++i) co_await back.send(i);
          back.close();
      }).get();
    rx.join();
    auto f = rt.spawn([&] { return back.receive_blocking(); });
    try {
        f.get();
        FAIL("receive_blocking on a worker did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::resource_deadlock_would_occur);
    }
}

TEST_CASE("channel: a blocking form given hours::max() waits for the value, it does not time out at once") {
    // deadline_after(hours::max()) used to wrap into the past (now + max overflowed), so the
    // receiver gave up at once with timed_out instead of waiting.
    taskport::channel<int> ch(1);
    std::atomic<bool> done{false};
    std::optional<int> got;
    std::string error;
    std::thread receiver([&] {
        try {
            got = ch.receive_blocking(std::chrono::hours::max());
        } catch (const std::system_error& e) {
            error = e.what();
        }
        done.store(true);
    });
    {
        tp_test::watchdog wd("receive_blocking(hours::max()) never queued nor returned");
        while (ch.waiting_receivers() == 0 && !done.load()) std::this_thread::yield();
    }
    const bool returned_early = done.load();
    REQUIRE(ch.try_send(7) == taskport::send_status::sent);
    receiver.join();
    CHECK_FALSE(returned_early);
    CHECK(error == "");
    CHECK(got == 7);
}

TEST_CASE("channel: blocking forms with a timeout: timed_out, nothing sent or taken; a hand-off in time") {
    auto is_timed_out = [](const std::system_error& e) { return e.code() == std::errc::timed_out; };
    taskport::channel<int> ch(1);
    // An empty channel: receive_blocking(d) times out, and leaves no waiter behind to take a
    // later value.
    try {
        (void)ch.receive_blocking(1ms);
        FAIL("receive_blocking(1ms) on an empty channel returned");
    } catch (const std::system_error& e) {
        CHECK(is_timed_out(e));
    }
    CHECK(ch.waiting_receivers() == 0);
    REQUIRE(ch.try_send(1) == taskport::send_status::sent);
    // A full channel: send_blocking(v, d) times out and its value never enters.
    try {
        ch.send_blocking(2, 1ms);
        FAIL("send_blocking(v, 1ms) on a full channel returned");
    } catch (const std::system_error& e) {
        CHECK(is_timed_out(e));
    }
    CHECK(ch.waiting_senders() == 0);
    CHECK(ch.try_receive() == 1);
    CHECK(!ch.try_receive());

    // Within the deadline: a value handed over by another thread, then end of stream.
    std::optional<int> got;
    bool eos = false;
    std::thread rx([&] {
        got = ch.receive_blocking(tp_test::hang_deadline);
        eos = !ch.receive_blocking(tp_test::hang_deadline).has_value();
    });
    tp_test::wait_until([&] { return ch.waiting_receivers() == 1; });
    REQUIRE(ch.try_send(7) == taskport::send_status::sent);
    tp_test::wait_until([&] { return ch.waiting_receivers() == 1; });
    ch.close();
    rx.join();
    CHECK(got == 7);
    CHECK(eos);
    CHECK_THROWS_AS(ch.send_blocking(3, 1s), std::system_error);

    // Refused on a worker, like the untimed forms.
    taskport::runtime rt({.workers = 1});
    auto f = rt.spawn([&] { return ch.receive_blocking(1s); });
    try {
        f.get();
        FAIL("receive_blocking(d) on a worker did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::resource_deadlock_would_occur);
    }
}

// The race a timed blocking form must settle: its deadline passes just as a hand-off completes
// it. The hook lands the hand-off in that window (after the wait timed out, before the
// withdrawal): the value must be received, not lost to a timed_out; likewise a send.
namespace {
taskport::channel<int>* deadline_ch = nullptr;
int deadline_hook_calls = 0;
void hand_off_at_deadline(taskport::detail::sync_waiter*) noexcept {
    ++deadline_hook_calls;
    if (deadline_ch->waiting_receivers() == 1)
        (void)deadline_ch->try_send(42);  // completes the timed-out receiver
    else
        (void)deadline_ch->try_receive();  // frees the slot: the timed-out sender's value enters
}
}  // namespace

TEST_CASE("channel: a timed blocking form whose deadline passes as a hand-off lands takes the hand-off") {
    taskport::channel<int> ch(1);
    deadline_ch = &ch;
    deadline_hook_calls = 0;
    taskport::detail::sync_blocking_deadline_hook.store(&hand_off_at_deadline);
    std::optional<int> got;
    CHECK_NOTHROW(got = ch.receive_blocking(1ms));
    CHECK(got == 42);
    CHECK(ch.size() == 0);
    REQUIRE(ch.try_send(1) == taskport::send_status::sent);
    CHECK_NOTHROW(ch.send_blocking(2, 1ms));  // the hook took 1; 2 was sent
    taskport::detail::sync_blocking_deadline_hook.store(nullptr);
    CHECK(deadline_hook_calls == 2);
    CHECK(ch.try_receive() == 2);
    CHECK(!ch.try_receive());
}

// Timed blocking forms racing each other from outside threads, with deadlines short enough that
// many expire mid-hand-off: a send that timed out did not send (the sender retries it), a
// receive that timed out took nothing. Every value arrives exactly once, in order.
TEST_CASE("channel: stress, timed blocking forms racing hand-offs lose and duplicate nothing") {
    taskport::channel<int> ch(2);
    const int n = static_cast<int>(tp_test::scaled(20000));
    long send_timeouts = 0, receive_timeouts = 0;
    std::thread tx([&] {
        for (int i = 0; i < n;) {
            try {
                ch.send_blocking(i, std::chrono::microseconds(1 + i % 40));
                ++i;
            } catch (const std::system_error& e) {
                if (e.code() != std::errc::timed_out) throw;
                ++send_timeouts;
            }
        }
        ch.close();
    });
    std::vector<int> got;
    for (;;) {
        try {
            std::optional<int> v = ch.receive_blocking(std::chrono::microseconds(1 + got.size() % 30));
            if (!v) break;
            got.push_back(*v);
        } catch (const std::system_error& e) {
            if (e.code() != std::errc::timed_out) throw;
            ++receive_timeouts;
        }
    }
    tx.join();
    REQUIRE(got.size() == static_cast<std::size_t>(n));
    int bad = 0;
    for (int i = 0; i < n; ++i)
        if (got[static_cast<std::size_t>(i)] != i) ++bad;
    CHECK(bad == 0);
    std::printf("timed blocking stress: %d values, %ld send and %ld receive timeouts\n", n, send_timeouts,
                receive_timeouts);
}

// The channel's buffer (detail/ring_buffer.hpp) grows while its contents wrap around the end of
// its storage, and holds values that own memory: order and contents survive, nothing leaks
// (ASan), and once grown, a bounded channel's steady traffic reuses the storage.
TEST_CASE("channel: buffer growth while wrapped keeps order; values that own memory") {
    taskport::channel<std::string> ch;  // unbounded
    const std::string pad(40, 'x');     // longer than the small-string buffer: heap-owned
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 12; ++round) {
        for (int k = 0; k < 7 + round * 5; ++k)
            REQUIRE(ch.try_send(std::to_string(next_in++) + pad) == taskport::send_status::sent);
        for (int k = 0; k < 3 + round * 2; ++k) {
            std::optional<std::string> v = ch.try_receive();
            REQUIRE(v);
            CHECK(*v == std::to_string(next_out++) + pad);
        }
    }
    CHECK(ch.size() == static_cast<std::size_t>(next_in - next_out));
    ch.close();
    while (std::optional<std::string> v = ch.try_receive()) CHECK(*v == std::to_string(next_out++) + pad);
    CHECK(next_out == next_in);
    // Left in the buffer at destruction: freed by the channel (ASan would report a leak).
    taskport::channel<std::string> left(4);
    REQUIRE(left.try_send(pad) == taskport::send_status::sent);
    REQUIRE(left.try_send(pad) == taskport::send_status::sent);
}

TEST_CASE("channel: stress, many producers and consumers, every value exactly once") {
    taskport::runtime rt({.workers = 4});
    for (std::size_t cap : {std::size_t{1}, std::size_t{16}, std::size_t{0}}) {
        auto ch = cap ? std::make_unique<taskport::channel<int>>(cap) : std::make_unique<taskport::channel<int>>();
        const int producers = 4, consumers = 4, per = static_cast<int>(tp_test::scaled(20000));
        std::vector<std::atomic<int>> seen(static_cast<std::size_t>(producers * per));
        std::vector<taskport::future<void>> ps, cs;
        for (int p = 0; p < producers; ++p)
            ps.push_back(rt.spawn([&, p]() -> task<void> {
                for (int i = 0; i < per; ++i) co_await ch->send(p * per + i);
            }));
        std::atomic<bool> out_of_order{false};
        for (int c = 0; c < consumers; ++c)
            cs.push_back(rt.spawn([&]() -> task<void> {
                std::vector<int> last(producers, -1);
                for (;;) {
                    std::optional<int> v = co_await ch->receive();
                    if (!v) break;
                    seen[static_cast<std::size_t>(*v)]++;
                    const int p = *v / per;
                    if (*v <= last[static_cast<std::size_t>(p)]) out_of_order = true;  // FIFO per producer
                    last[static_cast<std::size_t>(p)] = *v;
                }
            }));
        for (auto& f : ps) f.get();
        ch->close();
        for (auto& f : cs) f.get();
        int bad = 0;
        for (auto& s : seen)
            if (s.load() != 1) ++bad;
        CHECK(bad == 0);
        CHECK(!out_of_order);
    }
}

// with_timeout racing the hand-off on both sides: a send that timed out must not have sent (the
// retry would duplicate the value) and a receive that timed out must not have taken a value (it
// would be lost). Whatever times out, every value arrives exactly once.
TEST_CASE("channel: stress, timeouts racing hand-offs lose and duplicate nothing") {
    taskport::runtime rt({.workers = 4});
    taskport::channel<int> ch(2);
    const int producers = 3, consumers = 3, per = static_cast<int>(tp_test::scaled(3000));
    std::vector<std::atomic<int>> seen(static_cast<std::size_t>(producers * per));
    std::atomic<long> send_timeouts{0}, receive_timeouts{0};
    std::vector<taskport::future<void>> ps, cs;
    for (int p = 0; p < producers; ++p)
        ps.push_back(rt.spawn([&, p]() -> task<void> {
            for (int i = 0; i < per; ++i) {
                for (;;) {
                    bool timed_out = false;
                    try {
                        co_await taskport::with_timeout(std::chrono::microseconds(20 + i % 50), ch.send(p * per + i));
                    } catch (const std::system_error& e) {
                        if (e.code() != std::errc::timed_out) throw;
                        timed_out = true;
                    }
                    if (!timed_out) break;
                    send_timeouts++;
                }
            }
        }));
    for (int c = 0; c < consumers; ++c)
        cs.push_back(rt.spawn([&, c]() -> task<void> {
            for (int k = 0;; ++k) {
                std::optional<int> v;
                bool timed_out = false;
                try {
                    v = co_await taskport::with_timeout(std::chrono::microseconds(10 + (k * 7 + c) % 60), ch.receive());
                } catch (const std::system_error& e) {
                    if (e.code() != std::errc::timed_out) throw;
                    timed_out = true;
                }
                if (timed_out) {
                    receive_timeouts++;
                    continue;
                }
                if (!v) break;
                seen[static_cast<std::size_t>(*v)]++;
            }
        }));
    for (auto& f : ps) f.get();
    ch.close();
    for (auto& f : cs) f.get();
    int bad = 0;
    for (auto& s : seen)
        if (s.load() != 1) ++bad;
    CHECK(bad == 0);
    // Not asserted (timing): how often each side timed out, for the log.
    std::printf("timeouts: %ld sends, %ld receives\n", send_timeouts.load(), receive_timeouts.load());
}
