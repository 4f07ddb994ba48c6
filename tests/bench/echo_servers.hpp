// echo_servers.hpp — the two echo servers the I/O benchmarks compare, and the neutral client
// that loads them.
//
//   taskport_echo_server: a taskport runtime; one accept-loop coroutine, one coroutine per
//       connection (read_some, then write_all what was read) — the code of samples/echo.
//   asio_echo_server: Boost.Asio's own idiom, callbacks chained on a shared session object
//       (the library's echo example): async_read_some -> async_write -> async_read_some; one
//       io_context run by as many threads as taskport has workers.
//   Both: 4 KiB buffer per connection, TCP_NODELAY on accepted sockets, listen on 127.0.0.1:0.
//
//   load_client: neither library. Plain non-blocking sockets and one epoll loop per client thread
//       (level-triggered): each connection sends a message, reads until the whole echo is back,
//       counts one round trip, sends the next. Counters per thread on their own cache line; the
//       caller reads them at the start and end of its measuring window.
//   ping_client: one blocking socket, for latency: send, read the whole echo, note the time.
#pragma once

#include <taskport/io/io.hpp>
#include <taskport/taskport.hpp>

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace bench::echo {

inline void fail(const char* what) {
    std::fprintf(stderr, "bench: %s: %s\n", what, std::strerror(errno));
    std::exit(2);
}

// ---- taskport ------------------------------------------------------------------------------

class taskport_echo_server {
public:
    explicit taskport_echo_server(std::size_t workers) : rt_(options(workers)) {
        listener_ = taskport::io::tcp_listener::bind(rt_, taskport::io::endpoint::parse("127.0.0.1:0"));
        port_ = listener_.local_endpoint().port();
        loop_ = rt_.spawn(accept_loop(rt_, listener_, accepted_));
    }
    ~taskport_echo_server() {
        loop_.cancel();
        try {
            loop_.get();
        } catch (const std::exception&) {
        }
        listener_.close();
        rt_.shutdown();
    }
    std::uint16_t port() const { return port_; }
    std::size_t accepted() const { return accepted_.load(std::memory_order_acquire); }
    std::size_t workers() const { return rt_.workers(); }
    taskport::runtime& runtime() { return rt_; }

private:
    static taskport::runtime_options options(std::size_t workers) {
        taskport::runtime_options o;
        o.workers = workers;
        return o;
    }
    static taskport::task<void> echo(taskport::io::tcp_stream s) {
        std::array<std::byte, 4096> buf;
        try {
            for (;;) {
                const std::size_t n = co_await s.read_some(buf);
                if (n == 0) break;
                co_await s.write_all(std::span(buf).first(n));
            }
        } catch (const std::system_error&) {
        }
    }
    static taskport::task<void> accept_loop(taskport::runtime& rt, taskport::io::tcp_listener& l,
                                            std::atomic<std::size_t>& accepted) {
        for (;;) {
            taskport::io::tcp_stream s = co_await l.accept();
            s.set_nodelay(true);
            (void)rt.spawn(echo(std::move(s)));
            accepted.fetch_add(1, std::memory_order_release);
        }
    }

    taskport::runtime rt_;
    taskport::io::tcp_listener listener_;
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> accepted_{0};
    taskport::future<void> loop_;
};

// ---- Boost.Asio ----------------------------------------------------------------------------

class asio_echo_server {
    using tcp = boost::asio::ip::tcp;

    class session : public std::enable_shared_from_this<session> {
    public:
        explicit session(tcp::socket s) : sock_(std::move(s)) {}
        void start() { read(); }

    private:
        void read() {
            sock_.async_read_some(boost::asio::buffer(buf_),
                                  [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                                      if (!ec) self->write(n);
                                  });
        }
        void write(std::size_t n) {
            boost::asio::async_write(sock_, boost::asio::buffer(buf_, n),
                                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                                         if (!ec) self->read();
                                     });
        }
        tcp::socket sock_;
        std::array<char, 4096> buf_;
    };

public:
    explicit asio_echo_server(std::size_t threads)
        : acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
        port_ = acceptor_.local_endpoint().port();
        accept();
        for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
    }
    ~asio_echo_server() {
        io_.stop();
        for (auto& t : threads_) t.join();
    }
    std::uint16_t port() const { return port_; }
    std::size_t accepted() const { return accepted_.load(std::memory_order_acquire); }

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
            if (!ec) {
                s.set_option(tcp::no_delay(true));
                std::make_shared<session>(std::move(s))->start();
                accepted_.fetch_add(1, std::memory_order_release);
            }
            if (ec != boost::asio::error::operation_aborted) accept();
        });
    }

    boost::asio::io_context io_;
    tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> accepted_{0};
    std::vector<std::thread> threads_;
};

// ---- the neutral client --------------------------------------------------------------------

// A blocking TCP connection to 127.0.0.1:port with TCP_NODELAY. Exits on failure.
inline int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) fail("connect");
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// Waits (up to 30 s) until the server has accepted `n` connections.
template <class Server>
inline void wait_accepted(const Server& s, std::size_t n) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (s.accepted() < n) {
        if (std::chrono::steady_clock::now() > give_up) {
            std::fprintf(stderr, "bench: server accepted %zu of %zu connections\n", s.accepted(), n);
            std::exit(2);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

// `connections` connections ping-ponging `size`-byte messages, spread over `threads` epoll loops.
class load_client {
public:
    load_client(std::uint16_t port, std::size_t connections, std::size_t size, std::size_t threads)
        : size_(size), loops_(threads) {
        for (std::size_t i = 0; i < connections; ++i) {
            int fd = connect_to(port);
            ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
            loops_[i % threads].conns.push_back(conn{fd, 0});
        }
    }
    ~load_client() { stop(); }

    // Starts the loops: every connection sends its first message.
    void start() {
        for (auto& l : loops_) l.thread = std::thread([this, &l] { run(l); });
    }
    void stop() {
        stop_.store(true, std::memory_order_relaxed);
        for (auto& l : loops_)
            if (l.thread.joinable()) l.thread.join();
        for (auto& l : loops_)
            for (auto& c : l.conns)
                if (c.fd >= 0) ::close(std::exchange(c.fd, -1));
    }
    // CPU time the client's threads have used so far, in milliseconds.
    double cpu_ms() const {
        double ms = 0;
        for (auto& l : loops_) {
            clockid_t id;
            timespec ts{};
            if (pthread_getcpuclockid(const_cast<std::thread&>(l.thread).native_handle(), &id) == 0 &&
                clock_gettime(id, &ts) == 0)
                ms += ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
        }
        return ms;
    }
    std::uint64_t round_trips() const {
        std::uint64_t n = 0;
        for (auto& l : loops_) n += l.done.load(std::memory_order_relaxed);
        return n;
    }

private:
    struct conn {
        int fd;
        std::size_t got;  // bytes of the current echo received
    };
    struct alignas(64) loop {
        std::vector<conn> conns;
        std::atomic<std::uint64_t> done{0};  // written by its thread, read by the caller
        std::thread thread;
    };

    void send_msg(const conn& c, const std::vector<char>& msg) {
        for (std::size_t off = 0; off < msg.size();) {
            ssize_t n = ::send(c.fd, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                fail("client send");
            }  // EAGAIN cannot last: the server reads everything (at most one message in flight)
        }
    }

    void run(loop& l) {
        int ep = ::epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0) fail("epoll_create1");
        std::vector<char> msg(size_, 'x'), buf(size_);
        for (auto& c : l.conns) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = &c;
            if (::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) < 0) fail("epoll_ctl");
            send_msg(c, msg);
        }
        std::vector<epoll_event> evs(l.conns.size());
        std::uint64_t done = 0;
        while (!stop_.load(std::memory_order_relaxed)) {
            int n = ::epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 20);
            for (int i = 0; i < n; ++i) {
                conn& c = *static_cast<conn*>(evs[i].data.ptr);
                ssize_t r = ::recv(c.fd, buf.data(), size_ - c.got, 0);
                if (r <= 0) {
                    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                    fail("client recv (server closed?)");
                }
                c.got += static_cast<std::size_t>(r);
                if (c.got < size_) continue;
                c.got = 0;
                l.done.store(++done, std::memory_order_relaxed);
                send_msg(c, msg);
            }
        }
        ::close(ep);
    }

    std::size_t size_;
    std::vector<loop> loops_;
    std::atomic<bool> stop_{false};
};

// One blocking connection measuring each round trip, in microseconds.
class ping_client {
public:
    ping_client(std::uint16_t port, std::size_t size) : fd_(connect_to(port)), msg_(size, 'p'), buf_(size) {}
    ~ping_client() { ::close(fd_); }

    std::vector<double> run(std::size_t rounds) {
        std::vector<double> us;
        us.reserve(rounds);
        for (std::size_t i = 0; i < rounds; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            if (::send(fd_, msg_.data(), msg_.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg_.size()))
                fail("ping send");
            for (std::size_t got = 0; got < buf_.size();) {
                ssize_t r = ::recv(fd_, buf_.data() + got, buf_.size() - got, 0);
                if (r <= 0) fail("ping recv");
                got += static_cast<std::size_t>(r);
            }
            us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        }
        return us;
    }

private:
    int fd_;
    std::vector<char> msg_, buf_;
};

}  // namespace bench::echo
