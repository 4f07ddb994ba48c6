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

namespace {
template <class Pred>
void wait_until(Pred pred) {
    REQUIRE(tp_test::eventually(pred));
}
}  // namespace

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
    wait_until([&] { return ch.waiting_senders() == 1; });  // 0 queued, 1 waiting
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
    wait_until([&] { return ch.waiting_receivers() == 1; });
    ch.close();
    CHECK(consumer.get() == std::vector<std::string>{"0", "1", "2"});

    // A sender waiting at close() gets channel_closed_error (its value is not sent).
    taskport::channel<int> c2(1);
    REQUIRE(c2.try_send(1) == taskport::send_status::sent);
    auto s = rt.spawn([&]() -> task<void> { co_await c2.send(2); });
    wait_until([&] { return c2.waiting_senders() == 1; });
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
    wait_until([&] { return ch.waiting_receivers() == 1; });
    r.cancel();
    CHECK_THROWS_AS(r.get(), std::system_error);
    CHECK(ch.waiting_receivers() == 0);
    REQUIRE(ch.try_send(10) == taskport::send_status::sent);  // not taken by the cancelled one
    auto s = rt.spawn([&]() -> task<void> { co_await ch.send(11); });
    wait_until([&] { return ch.waiting_senders() == 1; });
    s.cancel();
    CHECK_THROWS_AS(s.get(), std::system_error);
    CHECK(ch.try_receive() == 10);
    CHECK(!ch.try_receive());  // the cancelled send's 11 never entered

    auto tr = rt.spawn([&]() -> task<bool> {
        try {
            co_await taskport::with_timeout(10ms, ch.receive());
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out;
        }
        co_return false;
    });
    CHECK(tr.get());
    REQUIRE(ch.try_send(1) == taskport::send_status::sent);
    auto ts = rt.spawn([&]() -> task<bool> {
        try {
            co_await taskport::with_timeout(10ms, ch.send(2));
        } catch (const std::system_error& e) {
            co_return e.code() == std::errc::timed_out;
        }
        co_return false;
    });
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
