// test_io_unix.cpp — Unix domain stream sockets (taskport/io/unix.hpp): echo over many
// connections, abstract names, names too long for sun_path, the socket file bind() leaves,
// a move with a read pending, close() from another task, end of stream, descriptors back to
// where they were. Windows: bind() and connect() throw function_not_supported.
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <taskport/io/unix.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/un.h>
#include <unistd.h>
#endif

using namespace taskport;
namespace io = taskport::io;
namespace fs = std::filesystem;
using tp_test::bytes_of;

#if defined(_WIN32)

TEST_CASE("unix: not supported on Windows: bind and connect throw function_not_supported", "[unix]") {
    runtime rt(tp_test::workers(1));
    auto not_supported = std::make_error_code(std::errc::function_not_supported);
    try {
        io::unix_listener::bind(rt, "x.sock");
        FAIL("bind did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == not_supported);
    }
    try {
        (void)io::unix_stream::connect(rt, "x.sock");
        FAIL("connect did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == not_supported);
    }
    try {
        io::unix_datagram::bind(rt, "x.sock");
        FAIL("unix_datagram::bind did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == not_supported);
    }
    CHECK_THROWS_AS(io::unix_datagram::pair(rt), std::system_error);
}

#else

namespace {

const auto aborted = io::operation_aborted();

// A fresh socket path in the temporary directory (removed first and by the destructor).
struct temp_path {
    std::string path;
    temp_path() {
        static std::atomic<int> n{0};
        const long pid = static_cast<long>(::getpid());
        path = (fs::temp_directory_path() / ("tp-unix-" + std::to_string(pid) + "-" + std::to_string(n++) + ".sock")).string();
        std::error_code ec;
        fs::remove(path, ec);
    }
    ~temp_path() {
        std::error_code ec;
        fs::remove(path, ec);
    }
};

struct unix_pair {
    io::unix_stream client, server;
};

task<unix_pair> connect_pair(runtime& rt, io::unix_listener& l, std::string name) {
    unix_pair p;
    p.client = co_await io::unix_stream::connect(rt, name);
    p.server = co_await l.accept();
    co_return p;
}

task<void> echo_session(io::unix_stream s) {
    std::array<std::byte, 4096> buf;
    for (;;) {
        std::size_t n = co_await s.read_some(buf);
        if (n == 0) break;
        co_await s.write_all(std::span<const std::byte>(buf.data(), n));
    }
}

task<std::vector<std::byte>> echo_client(runtime& rt, std::string name, std::vector<std::byte> msg) {
    io::unix_stream s = co_await io::unix_stream::connect(rt, name);
    auto writer = rt.spawn([&]() -> task<void> {
        co_await s.write_all(msg);
        s.shutdown_write();
    });
    std::vector<std::byte> got;
    std::array<std::byte, 1500> buf;
    for (;;) {
        std::size_t n = co_await s.read_some(buf);
        if (n == 0) break;
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    co_await std::move(writer);
    co_return got;
}

// n clients echo their own pattern through one listener at `name`; every byte is checked.
void echo_many(runtime& rt, const std::string& name, int n, std::size_t size) {
    auto l = io::unix_listener::bind(rt, name);
    CHECK(l.local_name() == name);
    auto ok = tp_test::run(rt, [&]() -> task<int> {
        auto server = rt.spawn([&]() -> task<void> {
            std::vector<future<void>> sessions;
            for (int i = 0; i < n; ++i) sessions.push_back(rt.spawn(echo_session(co_await l.accept())));
            for (auto& f : sessions) co_await std::move(f);
        });
        std::vector<future<std::vector<std::byte>>> clients;
        for (int i = 0; i < n; ++i)
            clients.push_back(rt.spawn(echo_client(rt, name, tp_test::pattern(size + static_cast<std::size_t>(i), i))));
        int good = 0;
        for (int i = 0; i < n; ++i) {
            auto got = co_await std::move(clients[static_cast<std::size_t>(i)]);
            if (got == tp_test::pattern(size + static_cast<std::size_t>(i), i)) ++good;
        }
        co_await std::move(server);
        co_return good;
    }());
    CHECK(ok == n);
}

}  // namespace

TEST_CASE("unix: echo over a path, one and many connections, every byte back", "[unix]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        SECTION("one connection, 1 MiB") {
            temp_path p;
            echo_many(rt, p.path, 1, std::size_t{1} << 20);
        }
        SECTION("200 connections at once") {
            temp_path p;
            echo_many(rt, p.path, 200, 3000);
        }
    }
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("unix: names: both ends report them; bind leaves the file; a second bind is address_in_use",
          "[unix]") {
    const long fds = tp_test::open_fds();
    temp_path p;
    {
        runtime rt(tp_test::workers(1));
        auto l = io::unix_listener::bind(rt, p.path);
        auto pair = tp_test::run(rt, connect_pair(rt, l, p.path));
        CHECK(pair.client.remote_name() == p.path);
        CHECK(pair.client.local_name().empty());  // a connecting socket is unnamed
        CHECK(pair.server.local_name() == p.path);
        CHECK(fs::is_socket(p.path));
        try {
            io::unix_listener::bind(rt, p.path);
            FAIL("a second bind to a live path succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::address_in_use);
        }
        l.close();
        CHECK(fs::is_socket(p.path));  // close() leaves the file (documented)
        try {
            io::unix_listener::bind(rt, p.path);
            FAIL("bind over a stale socket file succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::address_in_use);
        }
        fs::remove(p.path);
        auto again = io::unix_listener::bind(rt, p.path);  // after removing it: fine
        CHECK(again.is_open());
        try {
            tp_test::run(rt, [&]() -> task<void> {
                fs::remove(p.path);
                co_await io::unix_stream::connect(rt, p.path);
            }());
            FAIL("connect to a removed path succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::no_such_file_or_directory);
        }
    }
    CHECK(tp_test::open_fds() == fds);
}

#if defined(__linux__)
TEST_CASE("unix: an abstract name (leading '\\0'): no file, names reported with their '\\0'", "[unix]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        const std::string name = io::abstract_name("taskport-test-" + std::to_string(::getpid()));
        CHECK(name.size() == 1 + std::string("taskport-test-" + std::to_string(::getpid())).size());
        echo_many(rt, name, 20, 5000);
        auto l = io::unix_listener::bind(rt, name);
        auto pair = tp_test::run(rt, connect_pair(rt, l, name));
        CHECK(pair.client.remote_name() == name);
        CHECK(pair.server.local_name() == name);
        CHECK(!fs::exists(name.substr(1)));
        try {
            io::unix_listener::bind(rt, name);
            FAIL("a second bind to a live abstract name succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::address_in_use);
        }
        // '@' is no convention: "@name" is a file of that name.
        const std::string at = "@tp-at-" + std::to_string(::getpid());
        {
            auto a = io::unix_listener::bind(rt, at);
            CHECK(a.local_name() == at);
            CHECK(fs::is_socket(at));
        }
        fs::remove(at);
    }
    CHECK(tp_test::open_fds() == fds);
}
#endif

TEST_CASE("unix: a name too long for sun_path is filename_too_long; empty is invalid_argument", "[unix]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(1));
        auto expect = [&](const std::string& name, std::errc e) {
            INFO("name of " << name.size() << " bytes");
            try {
                io::unix_listener::bind(rt, name);
                FAIL("bind succeeded");
            } catch (const std::system_error& x) {
                CHECK(x.code() == e);
            }
            try {
                (void)io::unix_stream::connect(rt, name);
                FAIL("connect succeeded");
            } catch (const std::system_error& x) {
                CHECK(x.code() == e);
            }
        };
        // The longest path that fits is sizeof(sun_path) - 1 (107 on Linux): it binds; one more fails.
        constexpr std::size_t room = sizeof(sockaddr_un::sun_path);
        const std::string dir = fs::temp_directory_path().string() + "/";
        std::string fits = dir + "tp-" + std::to_string(::getpid()) + "-";
        fits += std::string(room - 1 - fits.size(), 'x');
        REQUIRE(fits.size() == room - 1);
        {
            std::error_code ignore;
            fs::remove(fits, ignore);
            auto l = io::unix_listener::bind(rt, fits);
            CHECK(l.local_name() == fits);
            fs::remove(fits);
        }
        expect(fits + "y", std::errc::filename_too_long);
        expect(std::string(4096, 'z'), std::errc::filename_too_long);
        expect(io::abstract_name(std::string(room, 'a')), std::errc::filename_too_long);
        expect("", std::errc::invalid_argument);
        expect(std::string("ab\0cd", 5), std::errc::invalid_argument);
    }
    CHECK(tp_test::open_fds() == fds);  // the refused names made no socket
}

TEST_CASE("unix: a stream moved while a read is pending: the read completes with the data", "[unix]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(1));  // one worker: the reader has parked once it let us run
        temp_path p;
        auto l = io::unix_listener::bind(rt, p.path);
        auto pair = tp_test::run(rt, connect_pair(rt, l, p.path));
        std::atomic<bool> started{false};
        auto got = tp_test::run(rt, [&]() -> task<std::string> {
            auto reader = rt.spawn([&]() -> task<std::string> {
                std::string buf(16, '\0');
                started = true;
                std::size_t n = co_await pair.server.read_some(bytes_of(buf));
                buf.resize(n);
                co_return buf;
            });
            while (!started) co_await taskport::yield();
            io::unix_stream moved = std::move(pair.server);  // the read belongs to the socket
            CHECK(!pair.server.is_open());
            co_await pair.client.write_all(bytes_of(std::string_view("moved")));
            std::string s = co_await std::move(reader);
            CHECK(moved.is_open());
            co_return s;
        }());
        CHECK(got == "moved");
    }
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("unix: close() from another task aborts a pending read with operation_aborted", "[unix][close]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(1));
        temp_path p;
        auto l = io::unix_listener::bind(rt, p.path);
        auto pair = tp_test::run(rt, connect_pair(rt, l, p.path));
        std::atomic<int> started{0};
        auto result = tp_test::run(rt, [&]() -> task<std::vector<std::error_code>> {
            auto outcome = [&](auto body) -> task<std::error_code> {
                started.fetch_add(1);
                try {
                    co_await body();
                } catch (const std::system_error& e) {
                    co_return e.code();
                }
                co_return std::error_code();
            };
            std::vector<future<std::error_code>> ops;
            ops.push_back(rt.spawn(outcome([&]() -> task<void> {
                std::array<std::byte, 64> b;
                co_await pair.server.read_some(b);
            })));
            ops.push_back(rt.spawn(outcome([&]() -> task<void> { co_await l.accept(); })));
            while (started.load() < 2) co_await taskport::yield();
            co_await rt.spawn([&] {
                pair.server.close();
                l.close();
            });
            std::vector<std::error_code> out;
            for (auto& f : ops) out.push_back(co_await std::move(f));
            co_return out;
        }());
        CHECK(result == std::vector<std::error_code>(2, aborted));
    }
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("unix: the peer's close reads 0 (after the data it sent)", "[unix]") {
    runtime rt(tp_test::workers(2));
    temp_path p;
    auto l = io::unix_listener::bind(rt, p.path);
    auto pair = tp_test::run(rt, connect_pair(rt, l, p.path));
    auto reads = tp_test::run(rt, [&]() -> task<std::vector<std::size_t>> {
        co_await pair.client.write_all(bytes_of(std::string_view("bye")));
        pair.client.close();
        std::vector<std::size_t> out;
        std::array<std::byte, 64> b;
        out.push_back(co_await pair.server.read_some(b));
        out.push_back(co_await pair.server.read_some(b));
        co_return out;
    }());
    CHECK(reads == std::vector<std::size_t>{3, 0});
}

TEST_CASE("unix: callback forms (async_accept, async_read_some, async_write_all)", "[unix]") {
    runtime rt(tp_test::workers(2));
    temp_path p;
    auto l = io::unix_listener::bind(rt, p.path);
    std::promise<std::pair<std::error_code, std::string>> got;
    io::unix_stream server;
    std::array<std::byte, 16> buf;
    l.async_accept([&](std::error_code ec, io::unix_stream s) {
        if (ec) {
            got.set_value({ec, {}});
            return;
        }
        server = std::move(s);
        server.async_read_some(buf, [&](std::error_code ec2, std::size_t n) {
            got.set_value({ec2, std::string(reinterpret_cast<const char*>(buf.data()), n)});
        });
    });
    auto client = tp_test::run(rt, [&]() -> task<io::unix_stream> {
        co_return co_await io::unix_stream::connect(rt, p.path);
    }());
    tp_test::counter_latch wrote;
    std::error_code wec;
    client.async_write_all(bytes_of(std::string_view("cb")), [&](std::error_code ec, std::size_t) {
        wec = ec;
        wrote.arrive();
    });
    REQUIRE(wrote.wait_for(1));
    CHECK(!wec);
    auto f = got.get_future();
    REQUIRE(f.wait_for(tp_test::hang_deadline) == std::future_status::ready);
    auto r = f.get();
    CHECK(!r.first);
    CHECK(r.second == "cb");
    rt.shutdown();
}

// ---- unix_datagram ----

namespace {

std::string text(std::span<const std::byte> b, std::size_t n) { return std::string(reinterpret_cast<const char*>(b.data()), n); }

template <class T>
std::error_code error_of(runtime& rt, task<T> t) {
    try {
        tp_test::run(rt, std::move(t));
    } catch (const std::system_error& e) {
        return e.code();
    }
    return {};
}

}  // namespace

TEST_CASE("unix datagram: send_to/receive_from between paths: boundaries kept, senders named, cut to the buffer",
          "[unix][datagram]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        temp_path pa, pb;
        auto a = io::unix_datagram::bind(rt, pa.path);
        auto b = io::unix_datagram::bind(rt, pb.path);
        CHECK(a.local_name() == pa.path);
        CHECK(fs::is_socket(pb.path));
        auto got = tp_test::run(rt, [&]() -> task<std::vector<io::unix_receive_result>> {
            co_await a.send_to(bytes_of(std::string_view("one")), pb.path);
            co_await a.send_to(bytes_of(std::string_view("")), pb.path);  // an empty datagram is one too
            co_await a.send_to(bytes_of(std::string_view("three and more")), pb.path);
            std::vector<io::unix_receive_result> r;
            std::array<std::byte, 64> buf;
            for (int i = 0; i < 2; ++i) r.push_back(co_await b.receive_from(buf));
            std::array<std::byte, 5> small;
            r.push_back(co_await b.receive_from(small));  // cut
            r.back().from += "|" + text(small, r.back().bytes);
            co_return r;
        }());
        REQUIRE(got.size() == 3);
        CHECK(got[0].bytes == 3);
        CHECK(got[0].from == pa.path);
        CHECK(got[1].bytes == 0);
        CHECK(got[2].bytes == 5);
        CHECK(got[2].from == pa.path + "|three");
        // An unnamed sender: its datagrams arrive from "".
        auto anon = io::unix_datagram::open(rt);
        CHECK(anon.local_name().empty());
        auto from = tp_test::run(rt, [&]() -> task<std::string> {
            co_await anon.send_to(bytes_of(std::string_view("x")), pb.path);
            std::array<std::byte, 8> buf;
            auto r = co_await b.receive_from(buf);
            co_return r.from;
        }());
        CHECK(from.empty());
        // Errors: nobody at the path; a bad name throws at the call.
        temp_path nobody;
        CHECK(error_of(rt, [&]() -> task<std::size_t> {
                  co_return co_await a.send_to(bytes_of(std::string_view("x")), nobody.path);
              }()) == std::errc::no_such_file_or_directory);
        CHECK(error_of(rt, [&]() -> task<std::size_t> {
                  co_return co_await a.send_to(bytes_of(std::string_view("x")), std::string(200, 'n'));
              }()) == std::errc::filename_too_long);
        try {
            io::unix_datagram::bind(rt, pa.path);
            FAIL("a second bind to a live path succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::address_in_use);
        }
    }
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("unix datagram: connect, pair(); a full receiver makes the sender wait: 3000 datagrams in order",
          "[unix][datagram]") {
    const long fds = tp_test::open_fds();
    {
        runtime rt(tp_test::workers(2));
        auto [x, y] = io::unix_datagram::pair(rt);
        const int n = 3000;  // far more than the receive queue holds (max_dgram_qlen is 512 at most)
        auto ok = tp_test::run(rt, [&]() -> task<int> {
            auto sender = rt.spawn([&]() -> task<void> {
                for (int i = 0; i < n; ++i) {
                    auto msg = tp_test::pattern(700 + static_cast<std::size_t>(i % 300), static_cast<unsigned>(i));
                    std::size_t sent = co_await x.send(msg);
                    if (sent != msg.size()) throw std::runtime_error("short datagram send");
                }
            });
            int good = 0;
            std::array<std::byte, 2048> buf;
            for (int i = 0; i < n; ++i) {
                auto r = co_await y.receive_from(buf);
                auto want = tp_test::pattern(700 + static_cast<std::size_t>(i % 300), static_cast<unsigned>(i));
                if (r.bytes == want.size() && std::equal(want.begin(), want.end(), buf.begin())) ++good;
            }
            co_await std::move(sender);
            co_return good;
        }());
        CHECK(ok == n);

        temp_path ps;
        auto server = io::unix_datagram::bind(rt, ps.path);
        auto client = io::unix_datagram::open(rt);
        client.connect(ps.path);
        CHECK(client.remote_name() == ps.path);
        auto echoed = tp_test::run(rt, [&]() -> task<std::string> {
            co_await client.send(bytes_of(std::string_view("ping")));
            std::array<std::byte, 16> buf;
            auto r = co_await server.receive_from(buf);
            co_return text(buf, r.bytes) + "/" + r.from;
        }());
        CHECK(echoed == "ping/");
        temp_path gone;
        try {
            client.connect(gone.path);
            FAIL("connect to a missing path succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::no_such_file_or_directory);
        }
    }
    CHECK(tp_test::open_fds() == fds);
}

TEST_CASE("unix datagram: close() and cancel() abort a pending receive; callbacks", "[unix][datagram]") {
    runtime rt(tp_test::workers(2));
    auto [x, y] = io::unix_datagram::pair(rt);
    std::promise<std::error_code> got;
    std::array<std::byte, 16> buf;
    y.async_receive_from(buf, [&](std::error_code ec, io::unix_receive_result) { got.set_value(ec); });
    y.cancel();
    auto f = got.get_future();
    REQUIRE(f.wait_for(tp_test::hang_deadline) == std::future_status::ready);
    CHECK(f.get() == io::operation_aborted());
    std::promise<std::pair<std::error_code, std::string>> got2;
    y.async_receive_from(buf, [&](std::error_code ec, io::unix_receive_result r) {
        got2.set_value({ec, text(buf, r.bytes)});
    });
    tp_test::run(rt, [&]() -> task<void> { co_await x.send(bytes_of(std::string_view("cb"))); }());
    auto f2 = got2.get_future();
    REQUIRE(f2.wait_for(tp_test::hang_deadline) == std::future_status::ready);
    auto r2 = f2.get();
    CHECK(!r2.first);
    CHECK(r2.second == "cb");
    auto code = tp_test::run(rt, [&]() -> task<std::error_code> {
        auto w = rt.spawn([&]() -> task<std::error_code> {
            try {
                co_await y.receive_from(buf);
            } catch (const std::system_error& e) {
                co_return e.code();
            }
            co_return std::error_code();
        });
        y.close();  // before or after the receive parks: aborted, or bad_file_descriptor
        std::error_code ec = co_await std::move(w);
        co_return ec;
    }());
    CHECK((code == io::operation_aborted() || code == std::errc::bad_file_descriptor));
}

#if defined(__linux__)
TEST_CASE("unix datagram: abstract names", "[unix][datagram]") {
    runtime rt(tp_test::workers(1));
    const std::string na = io::abstract_name("tp-dgram-a-" + std::to_string(::getpid()));
    const std::string nb = io::abstract_name("tp-dgram-b-" + std::to_string(::getpid()));
    auto a = io::unix_datagram::bind(rt, na);
    auto b = io::unix_datagram::bind(rt, nb);
    CHECK(a.local_name() == na);
    auto from = tp_test::run(rt, [&]() -> task<std::string> {
        co_await a.send_to(bytes_of(std::string_view("hi")), nb);
        std::array<std::byte, 8> buf;
        auto r = co_await b.receive_from(buf);
        co_return r.from + text(buf, r.bytes);
    }());
    CHECK(from == na + "hi");
}
#endif

#endif
