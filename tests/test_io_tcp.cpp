// test_io_tcp.cpp — TCP streams and listeners doing their ordinary work: echo round trips over
// many connections (coroutines and the callback forms), end of stream, zero-length and huge
// buffers, where callbacks run. The faults (refused, reset, broken pipe, EMFILE, closed sockets,
// cancellation, shutdown) are in test_io_faults.cpp.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"
#ifndef _WIN32
#include "../sched/src/test_hooks.hpp"  // the scheduler's park hooks (the poller hand-off test)
#endif

#include <taskport/detail/environment.hpp>
#include <taskport/io/detail/test_hooks.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace taskport;
namespace io = taskport::io;
using tp_test::bytes_of;

namespace {

// ---- coroutine echo ----

task<void> echo_session(io::tcp_stream s) {
    std::array<std::byte, 4096> buf;
    for (;;) {
        std::size_t n = co_await s.read_some(buf);
        if (n == 0) break;  // the client shut its side: we are done (s closes on return)
        std::size_t w = co_await s.write_all(std::span<const std::byte>(buf.data(), n));
        if (w != n) throw std::logic_error("write_all wrote a part");
    }
}

// Accepts exactly n connections, echoes each in its own task, returns when all are done.
task<int> echo_server(runtime& rt, io::tcp_listener& l, int n) {
    std::vector<future<void>> sessions;
    for (int i = 0; i < n; ++i) sessions.push_back(rt.spawn(echo_session(co_await l.accept())));
    for (auto& f : sessions) co_await std::move(f);
    co_return n;
}

task<void> send_then_fin(io::tcp_stream& s, std::span<const std::byte> msg) {
    // Odd-sized pieces, so the server sees many partial reads.
    std::size_t off = 0, step = 1000 + msg.size() % 3000;
    while (off < msg.size()) {
        std::size_t k = std::min(step, msg.size() - off);
        co_await s.write_all(msg.subspan(off, k));
        off += k;
    }
    s.shutdown_write();
}

// Writes msg (in a second task, while this one reads), reads the echo to end of stream.
task<std::vector<std::byte>> echo_client(runtime& rt, io::endpoint ep, std::vector<std::byte> msg) {
    io::tcp_stream s = co_await io::tcp_stream::connect(rt, ep);
    s.set_nodelay(true);
    auto writer = rt.spawn(send_then_fin(s, msg));
    std::vector<std::byte> got;
    std::exception_ptr err;
    try {
        std::array<std::byte, 1500> buf;
        for (;;) {
            std::size_t n = co_await s.read_some(buf);
            if (n == 0) break;
            got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        }
    } catch (...) {
        err = std::current_exception();
        s.cancel();  // do not leave the writer parked on a stream about to go away
    }
    try {
        co_await std::move(writer);  // it uses s: wait for it before s goes
    } catch (...) {
        if (!err) err = std::current_exception();
    }
    if (err) std::rethrow_exception(err);
    co_return got;
}

}  // namespace

TEST_CASE("tcp: echo round trips over many concurrent connections (coroutines)", "[tcp]") {
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::parse("127.0.0.1:0"));
    const int n = static_cast<int>(tp_test::scaled(200)) + 8;
    tp_test::watchdog wd("coroutine echo");

    auto server = rt.spawn(echo_server(rt, l, n));
    std::vector<std::vector<std::byte>> msgs;
    std::vector<future<std::vector<std::byte>>> clients;
    for (int i = 0; i < n; ++i) {
        // 1 byte up to ~100 KiB: more than one socket buffer for the big ones.
        std::size_t len = i % 7 == 0 ? 100'000 + static_cast<std::size_t>(i) : 1 + static_cast<std::size_t>(i) * 37 % 9000;
        msgs.push_back(tp_test::pattern(len, static_cast<unsigned>(i)));
        clients.push_back(rt.spawn(echo_client(rt, l.local_endpoint(), msgs.back())));
    }
    for (int i = 0; i < n; ++i) {
        INFO("client " << i);
        auto got = clients[i].get();
        REQUIRE(got.size() == msgs[i].size());
        CHECK(got == msgs[i]);
    }
    CHECK(server.get() == n);
}

namespace {

// ---- callback echo: the server is written with async_accept / async_read_some /
// async_write_all only; every callback checks it runs on one of the runtime's workers.

struct cb_stats {
    runtime* rt;
    std::atomic<int> off_worker{0};     // callbacks that ran elsewhere: must stay 0
    std::atomic<int> errors{0};
    tp_test::counter_latch sessions_done;
    void check_thread() {
        if (!rt->executor().in_worker()) off_worker.fetch_add(1);
    }
};

struct cb_session : std::enable_shared_from_this<cb_session> {
    cb_session(io::tcp_stream st, cb_stats& s) : s(std::move(st)), stats(s) {}
    io::tcp_stream s;
    cb_stats& stats;
    std::array<std::byte, 777> buf;

    void read() {
        s.async_read_some(buf, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            self->stats.check_thread();
            if (ec) self->stats.errors.fetch_add(1);
            if (ec || n == 0) {
                self->stats.sessions_done.arrive();
                return;
            }
            self->s.async_write_all(std::span<const std::byte>(self->buf.data(), n),
                                    [self, n](std::error_code ec2, std::size_t m) {
                                        self->stats.check_thread();
                                        if (ec2 || m != n) {
                                            self->stats.errors.fetch_add(1);
                                            self->stats.sessions_done.arrive();
                                            return;
                                        }
                                        self->read();
                                    });
        });
    }
};

struct cb_acceptor {
    io::tcp_listener& l;
    cb_stats& stats;
    std::atomic<int> remaining;
    void next() {
        l.async_accept([this](std::error_code ec, io::tcp_stream s) {
            stats.check_thread();
            if (ec) {
                stats.errors.fetch_add(1);
                return;
            }
            std::make_shared<cb_session>(std::move(s), stats)->read();
            if (remaining.fetch_sub(1) > 1) next();
        });
    }
};

// A client written with callbacks too: write everything, shut down, read the echo to the end.
struct cb_client : std::enable_shared_from_this<cb_client> {
    cb_client(io::tcp_stream st, std::vector<std::byte> m, cb_stats& s)
        : s(std::move(st)), msg(std::move(m)), stats(s) {}
    io::tcp_stream s;
    std::vector<std::byte> msg, got;
    cb_stats& stats;
    std::array<std::byte, 512> buf;
    tp_test::counter_latch* done = nullptr;
    std::atomic<int> finished{0};

    void start() {
        auto self = shared_from_this();
        s.async_write_all(msg, [self](std::error_code ec, std::size_t n) {
            self->stats.check_thread();
            if (ec || n != self->msg.size()) self->stats.errors.fetch_add(1);
            try {
                self->s.shutdown_write();
            } catch (...) {
                self->stats.errors.fetch_add(1);
            }
        });
        read();
    }
    void read() {
        s.async_read_some(buf, [self = shared_from_this()](std::error_code ec, std::size_t n) {
            self->stats.check_thread();
            if (ec) self->stats.errors.fetch_add(1);
            if (ec || n == 0) {
                self->finished.fetch_add(1);
                self->done->arrive();
                return;
            }
            self->got.insert(self->got.end(), self->buf.begin(),
                             self->buf.begin() + static_cast<std::ptrdiff_t>(n));
            self->read();
        });
    }
};

}  // namespace

TEST_CASE("tcp: echo round trips with the callback forms", "[tcp][callback]") {
    runtime rt(tp_test::workers(2));
    cb_stats stats;
    stats.rt = &rt;
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    const int n = static_cast<int>(tp_test::scaled(100)) + 6;
    cb_acceptor acc{l, stats, n};
    acc.next();

    tp_test::counter_latch clients_done;
    std::vector<std::shared_ptr<cb_client>> clients;
    std::vector<future<std::vector<std::byte>>> co_clients;
    std::vector<std::vector<std::byte>> co_msgs;
    for (int i = 0; i < n; ++i) {
        auto msg = tp_test::pattern(1 + static_cast<std::size_t>(i) * 613 % 20000, static_cast<unsigned>(i));
        if (i % 2 == 0) {  // half the clients are coroutines, half callbacks
            co_msgs.push_back(msg);
            co_clients.push_back(rt.spawn(echo_client(rt, l.local_endpoint(), std::move(msg))));
        } else {
            auto s = tp_test::run(rt, [](runtime& r, io::endpoint ep) -> task<io::tcp_stream> {
                co_return co_await io::tcp_stream::connect(r, ep);
            }(rt, l.local_endpoint()));
            auto c = std::make_shared<cb_client>(std::move(s), std::move(msg), stats);
            c->done = &clients_done;
            clients.push_back(c);
            c->start();
        }
    }
    {
        tp_test::watchdog wd("callback echo clients");
        for (std::size_t i = 0; i < co_clients.size(); ++i) CHECK(co_clients[i].get() == co_msgs[i]);
    }
    REQUIRE(clients_done.wait_for(static_cast<long>(clients.size())));
    REQUIRE(stats.sessions_done.wait_for(n));
    for (auto& c : clients) {
        CHECK(c->got == c->msg);
        CHECK(c->finished.load() == 1);
    }
    rt.shutdown();
    CHECK(stats.errors.load() == 0);
    CHECK(stats.off_worker.load() == 0);
    CHECK(clients_done.count() == static_cast<long>(clients.size()));  // each finished once
    CHECK(stats.sessions_done.count() == n);
}

namespace {
thread_local int inside_async_call = 0;  // > 0 while this thread is inside an async_* call
}

TEST_CASE("tcp: a callback never runs inside the call that started it", "[tcp][callback]") {
    // Data is already there, so the read finishes during async_read_some itself; its callback
    // must still be queued as a task (on a worker), not called from inside.
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    const int rounds = 200;
    std::atomic<int> inline_calls{0}, off_worker{0}, bad{0};
    tp_test::counter_latch done;
    std::array<std::byte, 8> buf{};

    auto one = [&](bool from_task) {
        tp_test::raw_send_all(p.server.native_handle(), bytes_of("x"));
        auto start = [&] {
            ++inside_async_call;
            p.client.async_read_some(buf, [&](std::error_code ec, std::size_t n) {
                if (inside_async_call) inline_calls.fetch_add(1);
                if (!rt.executor().in_worker()) off_worker.fetch_add(1);
                if (ec || n != 1) bad.fetch_add(1);
                done.arrive();
            });
            --inside_async_call;
        };
        if (from_task)
            rt.spawn(start).get();
        else
            start();
    };
    tp_test::watchdog wd("inline callback check");
    for (int i = 0; i < rounds; ++i) {
        one(i % 2 == 0);
        REQUIRE(done.wait_for(i + 1));
    }
    CHECK(inline_calls.load() == 0);
    CHECK(off_worker.load() == 0);
    CHECK(bad.load() == 0);
}

TEST_CASE("tcp: read_some returns 0 at end of stream, after the data, and again after", "[tcp]") {
    runtime rt(tp_test::workers(2));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    auto r = tp_test::run(rt, [](runtime& rt, io::tcp_listener& l) -> task<std::string> {
        auto p = co_await tp_test::connect_pair(rt, l);
        co_await p.client.write_all(bytes_of("hello"));
        p.client.shutdown_write();  // FIN after the data

        std::string got;
        std::array<std::byte, 64> buf;
        for (;;) {
            std::size_t n = co_await p.server.read_some(buf);
            if (n == 0) break;
            got += tp_test::text_of(std::span(buf.data(), n));
        }
        // End of stream stays end of stream.
        if (co_await p.server.read_some(buf) != 0) got += "<not EOF twice>";
        // The other direction is still open: the server can answer after the client's FIN.
        co_await p.server.write_all(bytes_of("bye"));
        p.server.close();
        std::string back;
        for (;;) {
            std::size_t n = co_await p.client.read_some(buf);
            if (n == 0) break;
            back += tp_test::text_of(std::span(buf.data(), n));
        }
        co_return got + "|" + back;
    }(rt, l));
    CHECK(r == "hello|bye");
}

TEST_CASE("tcp: a read parked before the peer closes returns 0", "[tcp]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    std::atomic<bool> reading{false};
    auto f = rt.spawn([&]() -> task<std::size_t> {
        std::array<std::byte, 16> buf;
        reading = true;
        co_return co_await p.client.read_some(buf);
    });
    REQUIRE(tp_test::eventually([&] { return reading.load(); }));
    p.server.close();
    tp_test::watchdog wd("parked read at EOF");
    CHECK(f.get() == 0);
}

TEST_CASE("tcp: zero-length buffers complete at once with 0 and consume nothing", "[tcp]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    // Coroutine forms, with nothing to read (a real read would park forever here).
    auto r = tp_test::run(rt, [](io::tcp_stream& c, io::tcp_stream& s) -> task<std::string> {
        std::span<std::byte> none;
        std::string out;
        out += std::to_string(co_await c.read_some(none));
        out += std::to_string(co_await c.write_all(std::span<const std::byte>()));
        out += std::to_string(co_await c.write_some(std::span<const std::byte>()));
        // Data waiting: an empty read still takes none of it.
        co_await s.write_all(bytes_of("ab"));
        out += std::to_string(co_await c.read_some(none));
        std::array<std::byte, 8> buf;
        std::size_t n = co_await c.read_some(buf);
        out += "|" + std::string(tp_test::text_of(std::span(buf.data(), n)));
        co_return out;
    }(p.client, p.server));
    CHECK(r == "0000|ab");

    // Callback forms.
    tp_test::counter_latch done;
    std::atomic<int> bad{0};
    auto check0 = [&](std::error_code ec, std::size_t n) {
        if (ec || n != 0) bad.fetch_add(1);
        done.arrive();
    };
    p.client.async_read_some(std::span<std::byte>(), check0);
    p.client.async_write_some(std::span<const std::byte>(), check0);
    p.client.async_write_all(std::span<const std::byte>(), check0);
    REQUIRE(done.wait_for(3));
    CHECK(bad.load() == 0);
}

TEST_CASE("tcp: a 64 MiB write_all reaches a reader intact", "[tcp][huge]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    const std::size_t size = std::size_t{64} << 20;
    const auto data = tp_test::pattern(size, 42);
    std::vector<std::byte> got(size);
    tp_test::watchdog wd("64 MiB transfer");

    auto writer = rt.spawn([&]() -> task<std::size_t> {
        std::size_t n = co_await p.client.write_all(data);
        p.client.shutdown_write();
        co_return n;
    });
    // The reader offers the whole remaining buffer each time (a huge read_some), so each call
    // returns whatever has arrived.
    auto reader = rt.spawn([&]() -> task<std::size_t> {
        std::size_t total = 0, calls = 0;
        for (;;) {
            std::size_t n = co_await p.server.read_some(std::span(got).subspan(std::min(total, size)));
            if (n == 0) break;
            total += n;
            ++calls;
            if (total > size) break;
        }
        co_return total;
    });
    CHECK(writer.get() == size);
    CHECK(reader.get() == size);
    CHECK(std::memcmp(got.data(), data.data(), size) == 0);
}

TEST_CASE("tcp: write_some returns a part of a large buffer, and the rest follows", "[tcp]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    const auto data = tp_test::pattern(std::size_t{16} << 20, 7);
    tp_test::watchdog wd("write_some");
    auto writer = rt.spawn([&]() -> task<int> {
        std::size_t off = 0;
        int calls = 0;
        while (off < data.size()) {
            std::size_t n = co_await p.client.write_some(std::span(data).subspan(off));
            if (n == 0) throw std::logic_error("write_some returned 0 for a non-empty buffer");
            off += n;
            ++calls;
        }
        p.client.shutdown_write();
        co_return calls;
    });
    auto reader = rt.spawn([&]() -> task<bool> {
        std::vector<std::byte> got;
        got.reserve(data.size());
        std::vector<std::byte> buf(1 << 16);
        for (;;) {
            std::size_t n = co_await p.server.read_some(buf);
            if (n == 0) break;
            got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        }
        co_return got == data;
    });
    // 16 MiB does not fit the loopback socket buffers, so one write_some cannot take it all.
    CHECK(writer.get() > 1);
    CHECK(reader.get());
}

TEST_CASE("tcp: endpoints of a connected pair agree; set_nodelay works", "[tcp]") {
    runtime rt(tp_test::workers(1));
    auto l = io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0));
    auto p = tp_test::run(rt, tp_test::connect_pair(rt, l));
    CHECK(p.client.remote_endpoint() == l.local_endpoint());
    CHECK(p.server.local_endpoint() == l.local_endpoint());
    CHECK(p.server.remote_endpoint() == p.client.local_endpoint());
    CHECK(p.client.is_open());
    CHECK_NOTHROW(p.client.set_nodelay(true));
    CHECK_NOTHROW(p.client.set_nodelay(false));
    CHECK(p.client.native_handle() != tp_test::raw_fd::none);
}

// ---- a worker that polls while it waits in get() ----

namespace {

task<void> read_one_byte(io::tcp_stream& s, std::atomic<bool>& done) {
    std::array<std::byte, 1> buf;
    co_await s.read_some(buf);
    done.store(true, std::memory_order_release);
}

// The get()-read test's rounds wait asleep (tp_test::gate: a mutex and a condition variable),
// never spinning on sched_yield: beside a CPU-bound process a yield hands the core to it until
// the kernel's next tick (4 ms at HZ=250), and rounds waiting so measured the kernel's yield
// policy, not taskport (3-24 s instead of 0.1 s beside two busy processes).
task<void> read_one_byte(io::tcp_stream& s, tp_test::gate& done) {
    std::array<std::byte, 1> buf;
    co_await s.read_some(buf);
    done.open();
}

}  // namespace

// An idle worker sleeps in the readiness poller, also one waiting inside get() (help_until).
// What its poll finds is queued without waking anyone, for it to take next; but when its own
// wait ends at that moment (here a promise set by this outside thread, which interrupts the
// poll), it goes straight back to its task, which then blocks until the read has run: only the
// other worker can run it, so the completion must have reached that worker (a regression test
// for completions left queued while every other worker sleeps). The byte and the promise race
// each other from this thread; which worker polls at that moment is up to the run, so rounds
// repeat it, in both orders. The task and this thread wait asleep (gate), not spinning on
// sched_yield, whose cost under CPU contention is a scheduler tick per yield.
TEST_CASE("tcp: a read found by a worker waiting in get() reaches another worker", "[tcp][poll]") {
    runtime rt(tp_test::workers(2));
    auto p1 = tp_test::connect_pair(rt);
    tp_test::watchdog wd("a read found by a worker waiting in get()");
    const int rounds = static_cast<int>(tp_test::scaled(2000));
    const std::byte one[1] = {std::byte{7}};
    for (int r = 0; r < rounds; ++r) {
        tp_test::gate first, waiting;
        promise<void> release;
        future<void> released = release.get_future();
        auto t1 = rt.spawn(read_one_byte(p1.server, first));
        auto t2 = rt.spawn([&] {
            waiting.open();
            released.get();
            (void)first.wait();  // this worker stays in user code: the read is the other worker's
        });
        REQUIRE(waiting.wait());
        if (r % 2 == 0) {
            tp_test::raw_send_all(p1.client.native_handle(), one);
            release.set_value();
        } else {
            release.set_value();
            tp_test::raw_send_all(p1.client.native_handle(), one);
        }
        t2.get();
        t1.get();
    }
    SUCCEED("rounds: " << rounds);
}

#ifndef _WIN32  // the readiness core's poll role (IOCP has no poller that workers sleep in)
namespace {

// The poller hand-off test's state, set by plain-function hooks (scheduler: park_enter,
// before_futex_sleep; io: parked, blocking_poll). Reset before the runtime starts.
struct handoff_ctx {
    std::atomic<bool> armed{false};
    std::atomic<bool> read_parked{false};     // the read is queued on its descriptor
    std::atomic<bool> waiter_polling{false};  // the worker inside get() blocks in the poller
    std::atomic<int> futex_sleeper{-1};       // then a top-level worker sleeps on its futex
};
handoff_ctx g_handoff;
thread_local bool tl_parks_in_wait = false;  // this worker's current park is inside help_until

void handoff_park_enter(std::size_t, bool top, bool) { tl_parks_in_wait = !top; }
void handoff_futex_sleep(std::size_t w, bool top) {
    if (g_handoff.armed.load() && top && g_handoff.waiter_polling.load())
        g_handoff.futex_sleeper.store(static_cast<int>(w));
}
void handoff_io_hook(io::detail::hook_point p, void*) {
    if (!g_handoff.armed.load()) return;
    if (p == io::detail::hook_point::parked) g_handoff.read_parked.store(true);
    if (p == io::detail::hook_point::blocking_poll && tl_parks_in_wait) g_handoff.waiter_polling.store(true);
}

struct handoff_hooks {
    handoff_hooks() {
        g_handoff.armed = false;
        g_handoff.read_parked = false;
        g_handoff.waiter_polling = false;
        g_handoff.futex_sleeper = -1;
        taskport::detail::test_hooks().park_enter.store(&handoff_park_enter);
        taskport::detail::test_hooks().before_futex_sleep.store(&handoff_futex_sleep);
        io::detail::set_test_hook(&handoff_io_hook);
    }
    ~handoff_hooks() {
        io::detail::set_test_hook(nullptr);
        taskport::detail::test_hooks().before_futex_sleep.store(nullptr);
        taskport::detail::test_hooks().park_enter.store(nullptr);
    }
};

}  // namespace

// The state behind the test above's rare slow runs (21.8 s with io_uring at load 12.8: its rounds
// then waited for the reactor's backstop, 1-10 ms each), made certain: worker W waits in get()
// and, having nothing to run, sleeps in the poller (the role's blocking holder), so worker V,
// idle next, sleeps on its futex. W's wait ends and it goes back to its task, which spins until
// a pending read has run; the read's byte then arrives. Only a poll can find it, and W left the
// poller while V sleeps where no event reaches it: leaving, W must hand the poller on (wake a
// sleeper) when operations wait for events. The backstop is paused so that it cannot stand in.
TEST_CASE("tcp: a worker leaving the poller for its task hands the poller to a futex sleeper", "[tcp][poll][handoff]") {
    if (!taskport::detail::env_worker_poll()) {
        SUCCEED("workers do not poll here (TASKPORT_WORKER_POLL=0): the readiness thread does");
        return;
    }
    handoff_hooks hooks;
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    std::atomic<bool> first{false}, busy_running{false}, left_wait{false}, give_up{false};
    struct stop_spinning {  // a failed REQUIRE must not leave t2 spinning under rt's destructor
        std::atomic<bool>& g;
        ~stop_spinning() { g = true; }
    } stop{give_up};
    promise<void> release;
    future<void> released = release.get_future();
    io::detail::set_backstop_paused(true);
    struct resume_backstop {
        ~resume_backstop() { io::detail::set_backstop_paused(false); }
    } resume;
    g_handoff.armed = true;
    auto t1 = rt.spawn(read_one_byte(p.server, first));
    REQUIRE(tp_test::eventually([&] { return g_handoff.read_parked.load(); }));
    // V runs user code until W blocks in the poller inside get(): W takes the role for certain.
    auto busy = rt.spawn([&] {
        busy_running = true;
        (void)tp_test::eventually([&] { return g_handoff.waiter_polling.load(); });
    });
    REQUIRE(tp_test::eventually([&] { return busy_running.load(); }));
    auto t2 = rt.spawn([&] {
        released.get();
        left_wait = true;
        while (!first.load(std::memory_order_acquire) && !give_up.load()) std::this_thread::yield();
    });
    REQUIRE(tp_test::eventually([&] { return g_handoff.waiter_polling.load(); }));
    busy.get();
    // V, idle now, found W in the poller and sleeps on its futex.
    REQUIRE(tp_test::eventually([&] { return g_handoff.futex_sleeper.load() >= 0; }));
    release.set_value();
    REQUIRE(tp_test::eventually([&] { return left_wait.load(); }));
    const std::byte one[1] = {std::byte{7}};
    tp_test::raw_send_all(p.client.native_handle(), one);
    const bool delivered = tp_test::eventually([&] { return first.load(std::memory_order_acquire); });
    give_up = true;
    io::detail::set_backstop_paused(false);  // so that the read completes either way
    t2.get();
    t1.get();
    g_handoff.armed = false;
    CHECK(delivered);
}
#endif

// ---------------------------------------------------------------------------------------------
// Moving a stream or listener while an operation is pending: the operation holds the
// descriptor's state, not the user's object, so it completes on the moved-to object.
// ---------------------------------------------------------------------------------------------

namespace {

// One callback's outcome, waited for by the test thread.
struct callback_result {
    tp_test::counter_latch done;
    std::atomic<int> calls{0};
    std::error_code ec;
    std::size_t n = 0;
    auto handler() {
        return [this](std::error_code e, std::size_t k) {
            ec = e;
            n = k;
            calls.fetch_add(1);
            done.arrive();
        };
    }
};

}  // namespace

TEST_CASE("tcp: a stream moved with a callback read pending: the read completes with the data", "[tcp][move]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    std::array<std::byte, 16> buf{};
    callback_result r;
    p.server.async_read_some(buf, r.handler());  // parked: nothing has been sent
    io::tcp_stream moved = std::move(p.server);
    CHECK_FALSE(p.server.is_open());
    CHECK(moved.is_open());
    tp_test::raw_send_all(p.client.native_handle(), bytes_of("hello"));
    REQUIRE(r.done.wait_for(1));
    CHECK(r.ec == std::error_code());
    REQUIRE(r.n == 5);
    CHECK(tp_test::text_of(std::span<const std::byte>(buf.data(), r.n)) == "hello");
    rt.shutdown();
    CHECK(r.calls.load() == 1);
}

TEST_CASE("tcp: a vector of streams grows under a pending callback read", "[tcp][move]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    std::vector<io::tcp_stream> v;
    v.push_back(std::move(p.server));
    std::array<std::byte, 16> buf{};
    callback_result r;
    v[0].async_read_some(buf, r.handler());
    for (int i = 0; i < 64; ++i) v.emplace_back();  // reallocates: v[0] moves, the old one dies
    tp_test::raw_send_all(p.client.native_handle(), bytes_of("grown"));
    REQUIRE(r.done.wait_for(1));
    CHECK(r.ec == std::error_code());
    REQUIRE(r.n == 5);
    CHECK(tp_test::text_of(std::span<const std::byte>(buf.data(), r.n)) == "grown");
    // The moved stream still reads and writes.
    auto echo_once = [](io::tcp_stream& s) -> task<std::size_t> { co_return co_await s.write_all(bytes_of("back")); };
    CHECK(tp_test::run(rt, echo_once(v[0])) == 4);
}

TEST_CASE("tcp: a vector of streams grows under a suspended co_await read_some", "[tcp][move]") {
    // One worker: the task that grows the vector runs only once the reader has suspended in
    // read_some (it was spawned by the reader, onto the same worker, just before).
    runtime rt(tp_test::workers(1));
    auto p = tp_test::connect_pair(rt);
    std::vector<io::tcp_stream> v;
    v.push_back(std::move(p.server));
    const tp_test::raw_socket client = p.client.native_handle();
    auto reader = [&]() -> task<std::string> {
        auto grower = rt.spawn([&] {
            for (int i = 0; i < 64; ++i) v.emplace_back();
            tp_test::raw_send_all(client, bytes_of("moved"));
        });
        std::array<std::byte, 16> buf{};
        std::size_t n = co_await v[0].read_some(buf);
        co_await std::move(grower);
        co_return std::string(tp_test::text_of(std::span<const std::byte>(buf.data(), n)));
    };
    CHECK(tp_test::run(rt, reader()) == "moved");
    CHECK(v.size() == 65);
}

TEST_CASE("tcp: a listener moved with a callback accept pending: the accept completes", "[tcp][move]") {
    runtime rt(tp_test::workers(2));
    std::vector<io::tcp_listener> v;
    v.push_back(io::tcp_listener::bind(rt, io::endpoint::loopback_v4(0)));
    const io::endpoint ep = v[0].local_endpoint();
    tp_test::counter_latch done;
    std::error_code got;
    io::tcp_stream accepted;
    v[0].async_accept([&](std::error_code ec, io::tcp_stream s) {
        got = ec;
        accepted = std::move(s);
        done.arrive();
    });
    for (int i = 0; i < 64; ++i) v.emplace_back();
    io::tcp_listener moved = std::move(v[0]);
    tp_test::raw_fd c(tp_test::raw_connect(ep));
    REQUIRE(done.wait_for(1));
    CHECK(got == std::error_code());
    CHECK(accepted.is_open());
    CHECK(moved.is_open());
    CHECK_FALSE(v[0].is_open());
}

TEST_CASE("tcp: a stream moved into a coroutine frame with a write pending: the write completes", "[tcp][move]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    const std::size_t big = std::size_t{8} << 20;  // more than the socket buffers: it parks
    const auto data = tp_test::pattern(big, 9);
    callback_result w;
    p.client.async_write_all(data, w.handler());
    auto drain_in_frame = [](io::tcp_stream s, io::tcp_stream peer, std::size_t n) -> task<std::size_t> {
        std::vector<std::byte> buf(65536);
        std::size_t got = 0;
        while (got < n) {
            std::size_t k = co_await peer.read_some(buf);
            if (k == 0) break;
            got += k;
        }
        (void)s;  // the writer's stream lives in this frame now
        co_return got;
    };
    CHECK(tp_test::run(rt, drain_in_frame(std::move(p.client), std::move(p.server), big)) == big);
    REQUIRE(w.done.wait_for(1));
    CHECK(w.ec == std::error_code());
    CHECK(w.n == big);
}

// ---- per-descriptor readiness (readiness core only: io/src/descriptor.hpp, `drained`) ----
//
// A short read proves the socket drained (epoll(7) Q9; Tokio's clear_readiness): the next read
// parks without the recv that would fail with EAGAIN, and the edge that the next arrival brings
// completes it. The hooks count the failed calls and the skipped ones on the server's descriptor.
#if !defined(_WIN32)
#include "descriptor.hpp"
#include <taskport/io/detail/test_hooks.hpp>

#include <cerrno>
#include <poll.h>
#include <sys/socket.h>

namespace {

struct ready_ctx {
    int fd = -1;                         // the descriptor counted (the server side)
    std::atomic<io::detail::descriptor_state*> st{nullptr};
    std::atomic<int> would_block{0};     // failed reads/writes (EAGAIN) on fd
    std::atomic<int> skipped{0};         // reads/writes parked without their call on fd
    tp_test::counter_latch parked;       // operations queued (any descriptor)
    std::atomic<bool> race_armed{false};  // the next skip on fd: make an edge arrive and be handled
    int peer_fd = -1;                     // where the racing edge's byte is sent from
};
ready_ctx* g_ready = nullptr;

void ready_hook(io::detail::hook_point at, void* arg) {
    // Any worker's blocking poll, at any time (also while ready_scope clears g_ready): not ours.
    if (at == io::detail::hook_point::blocking_poll) return;
    ready_ctx* c = g_ready;
    if (!c) return;
    if (at == io::detail::hook_point::parked) {
        c->parked.arrive();
        return;
    }
    auto* st = static_cast<io::detail::descriptor_state*>(arg);
    if (at != io::detail::hook_point::would_block && at != io::detail::hook_point::drained_skip) return;
    if (st->fd != c->fd) return;
    c->st.store(st);
    if (at == io::detail::hook_point::would_block) {
        c->would_block.fetch_add(1);
        return;
    }
    c->skipped.fetch_add(1);
    if (!c->race_armed.exchange(false)) return;
    // The skip decided on a stale count; now an edge arrives and is handled (by the worker asleep
    // in the poller, or the backstop) before this read takes the descriptor's lock to park.
    const std::uint32_t before = st->ready_seq[0].load();
    const char b = 'r';
    if (::send(c->peer_fd, &b, 1, MSG_NOSIGNAL) != 1) std::abort();
    if (!tp_test::eventually([&] { return st->ready_seq[0].load() != before; })) std::abort();
}

struct ready_scope {
    explicit ready_scope(ready_ctx& c) {
        g_ready = &c;
        io::detail::set_test_hook(&ready_hook);
    }
    ~ready_scope() {
        io::detail::set_test_hook(nullptr);
        g_ready = nullptr;
    }
};

void raw_send_all(int fd, const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        ssize_t k = ::send(fd, c, n, MSG_NOSIGNAL);
        tp_test::check_posix(k > 0, "send");
        c += k;
        n -= static_cast<std::size_t>(k);
    }
}

}  // namespace

TEST_CASE("tcp readiness: a read after a short read parks without a failing recv", "[tcp][ready]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    ready_ctx c;
    c.fd = p.server.native_handle();
    ready_scope rs(c);
    constexpr int rounds = 50;
    std::atomic<int> got{0};
    auto server = rt.spawn([](io::tcp_stream& s, std::atomic<int>& got) -> task<int> {
        std::array<std::byte, 4096> buf;
        int bad = 0;
        for (int i = 0; i < rounds; ++i) {
            std::size_t n = co_await s.read_some(buf);
            if (n != 64) ++bad;
            got.fetch_add(1);
        }
        co_return bad;
    }(p.server, got));
    const int client = p.client.native_handle();
    std::array<char, 64> msg{};
    for (int i = 0; i < rounds; ++i) {
        // Each read is queued before its data is sent: the read, not the data, comes first.
        REQUIRE(c.parked.wait_for(i + 1));
        raw_send_all(client, msg.data(), msg.size());
        REQUIRE(tp_test::eventually([&] { return got.load() == i + 1; }));
    }
    {
        tp_test::watchdog wd("readiness reads");
        CHECK(server.get() == 0);
    }
    io::detail::descriptor_state* st = c.st.load();
    REQUIRE(st != nullptr);
    INFO("would_block " << c.would_block.load() << ", skipped " << c.skipped.load());
    if (st->short_drains) {
        // The first read finds nothing (EAGAIN); every later one follows a short read.
        CHECK(c.would_block.load() <= 1);
        CHECK(c.skipped.load() >= rounds - 1);
    } else {  // libkqueue: short reads prove nothing (poller.hpp); one failed recv per read
        CHECK(c.would_block.load() >= rounds - 1);
    }
}

TEST_CASE("tcp readiness: an edge handled between the skip and the park is not lost", "[tcp][ready][race]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    ready_ctx c;
    c.fd = p.server.native_handle();
    c.peer_fd = p.client.native_handle();
    ready_scope rs(c);
    // One short read makes the side known drained; the next read skips its recv, and the hook
    // then sends a byte and waits until its edge has been handled. The read must find the count
    // moved (reactor::start) and read the byte; trusting the stale skip parks it for good.
    auto server = rt.spawn([](io::tcp_stream& s) -> task<std::size_t> {
        std::array<std::byte, 4096> buf;
        std::size_t first = co_await s.read_some(buf);
        if (first != 3) co_return 1000 + first;
        g_ready->race_armed.store(true);
        std::size_t second = co_await s.read_some(buf);
        co_return second;
    }(p.server));
    REQUIRE(c.parked.wait_for(1));
    raw_send_all(c.peer_fd, "abc", 3);
    // Without short-read inference (libkqueue) the second read tries recv and parks: then this
    // thread sends the byte.
    REQUIRE(tp_test::eventually([&] { return c.skipped.load() == 1 || c.parked.count() >= 2; }));
    if (c.skipped.load() == 0) raw_send_all(c.peer_fd, "r", 1);
    tp_test::watchdog wd("read after an edge between skip and park");
    CHECK(server.get() == 1);
    io::detail::descriptor_state* st = c.st.load();
    REQUIRE(st != nullptr);
    if (st->short_drains) {
        CHECK(c.skipped.load() == 1);
        CHECK(c.parked.count() == 1);  // the second read found the byte under the lock
    }
}

TEST_CASE("tcp readiness: data then FIN, both seen by the poller before the reads: short read, then 0",
          "[tcp][ready]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    ready_ctx c;
    c.fd = p.server.native_handle();
    ready_scope rs(c);
    // A first read parks and gets one byte (short: the side is known drained).
    auto first = rt.spawn([](io::tcp_stream& s) -> task<std::size_t> {
        std::array<std::byte, 64> buf;
        co_return co_await s.read_some(buf);
    }(p.server));
    REQUIRE(c.parked.wait_for(1));
    const int client = p.client.native_handle();
    raw_send_all(client, "x", 1);
    {
        tp_test::watchdog wd("first read");
        REQUIRE(first.get() == 1);
    }
    io::detail::descriptor_state* st = c.st.load();
    REQUIRE(st != nullptr);
    // Ten bytes and the FIN, handled by the poller while nobody reads: the FIN's edge has come
    // and gone. A short read of the ten must not make the next read wait for another edge.
    raw_send_all(client, "0123456789", 10);
    ::shutdown(client, SHUT_WR);
    if (st->short_drains) REQUIRE(tp_test::eventually([&] { return st->no_skip.load(); }));
    auto rest = rt.spawn([](io::tcp_stream& s) -> task<std::string> {
        std::array<std::byte, 64> buf;
        std::size_t a = co_await s.read_some(buf);
        std::size_t b = co_await s.read_some(buf);
        co_return std::to_string(a) + "," + std::to_string(b);
    }(p.server));
    tp_test::watchdog wd("reads after data and FIN");
    CHECK(rest.get() == "10,0");
}

TEST_CASE("tcp readiness: write_some after a short write_some parks and completes when the peer reads",
          "[tcp][ready]") {
    runtime rt(tp_test::workers(2));
    auto p = tp_test::connect_pair(rt);
    ready_ctx c;
    c.fd = p.server.native_handle();
    ready_scope rs(c);
    const std::vector<std::byte> big = tp_test::pattern(std::size_t{16} << 20, 7);
    // write_some until one is short (the send buffer is full), then one more: it parks (skipped
    // or after EAGAIN) and completes once the peer reads. Every byte arrives in order.
    std::atomic<std::size_t> total{0};
    auto writer = rt.spawn([](io::tcp_stream& s, const std::vector<std::byte>& big,
                              std::atomic<std::size_t>& total) -> task<void> {
        std::size_t off = 0;
        for (int k = 0; k < 2 && off < big.size();) {
            std::size_t n = co_await s.write_some(std::span<const std::byte>(big).subspan(off));
            off += n;
            if (n < big.size() - off + n) ++k;  // a short write
        }
        total.store(off);
        s.shutdown_write();
    }(p.server, big, total));
    std::vector<std::byte> got;
    const int client = p.client.native_handle();
    std::array<std::byte, 65536> buf;
    {
        tp_test::watchdog wd("reader of short writes");
        for (;;) {
            ssize_t n = ::recv(client, buf.data(), buf.size(), 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                // The client's socket is taskport's, so non-blocking: wait for data here.
                pollfd pfd{client, POLLIN, 0};
                tp_test::check_posix(::poll(&pfd, 1, -1) >= 0, "poll");
                continue;
            }
            tp_test::check_posix(n >= 0, "recv");
            if (n == 0) break;
            got.insert(got.end(), buf.begin(), buf.begin() + n);
        }
        writer.get();
    }
    INFO("would_block " << c.would_block.load() << ", skipped " << c.skipped.load());
    REQUIRE(got.size() == total.load());
    CHECK(std::memcmp(got.data(), big.data(), got.size()) == 0);
}
#endif
