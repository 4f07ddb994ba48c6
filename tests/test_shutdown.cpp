// test_shutdown.cpp — shutdown(): everything queued runs (and what it spawns), nothing submitted
// is lost, submissions from outside afterwards throw runtime_closed, it is idempotent, and a
// runtime destroyed with work queued runs that work first.
#include "test_hooks.hpp"
#include "thread_probe.hpp"

#include <catch2/catch.hpp>

#if !defined(_WIN32)
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <atomic>
#include <csignal>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace taskport;

using tp_test::hook_scope;
using tp_test::thread_ids;

TEST_CASE("shutdown: runs everything queued, and what it spawns") {
    const long n = tp_test::scaled(200000);
    for (std::size_t w : {1u, 2u, 4u}) {
        std::atomic<long> ran{0}, children{0};
        runtime rt(tp_test::workers(w));
        tp_test::watchdog dog("shutdown with work queued");
        for (long i = 0; i < n; ++i) {
            if (i % 10 == 0)
                rt.post([&] {
                    ran++;
                    // Spawned from inside during shutdown: accepted and run.
                    rt.post([&] { children++; });
                });
            else
                rt.post([&] { ran++; });
        }
        rt.shutdown();
        REQUIRE(ran.load() == n);
        REQUIRE(children.load() == (n + 9) / 10);
        REQUIRE(rt.closed());
        auto s = rt.stats();
        REQUIRE(s.tasks_run >= static_cast<std::uint64_t>(n + (n + 9) / 10));
        REQUIRE(s.injector_depth == 0);
        for (auto d : s.worker_queue_depth) REQUIRE(d == 0);
    }
}

TEST_CASE("shutdown: futures of queued tasks all become ready") {
    runtime rt(tp_test::workers(2));
    tp_test::gate go;
    rt.post([&] { go.wait(); });
    std::vector<future<int>> fs;
    for (int i = 0; i < 1000; ++i) fs.push_back(rt.spawn([i] { return i; }));
    std::thread closer([&] { rt.shutdown(); });
    go.open();
    closer.join();
    long sum = 0;
    for (auto& f : fs) {
        REQUIRE(f.is_ready());
        sum += f.get();
    }
    REQUIRE(sum == 999L * 1000 / 2);
}

TEST_CASE("shutdown: spawn and post from outside afterwards throw runtime_closed") {
    runtime rt(tp_test::workers(2));
    rt.shutdown();
    REQUIRE(rt.closed());
    std::atomic<int> ran{0};
    REQUIRE_THROWS_AS(rt.post([&] { ran++; }), runtime_closed);
    REQUIRE_THROWS_AS(rt.spawn([&] { ran++; }), runtime_closed);
    REQUIRE_THROWS_AS(rt.spawn([]() -> task<int> { co_return 1; }), runtime_closed);
    REQUIRE_THROWS_AS(rt.block_on([]() -> task<int> { co_return 1; }()), runtime_closed);
    task_group g(rt);
    REQUIRE_THROWS_AS(g.run([&] { ran++; }), runtime_closed);
    REQUIRE_NOTHROW(g.wait());  // the refused task is not pending
    REQUIRE(ran.load() == 0);
    // The message says what happened.
    try {
        rt.post([] {});
    } catch (const runtime_closed& e) {
        REQUIRE(std::string(e.what()).find("shut down") != std::string::npos);
    }
}

TEST_CASE("shutdown: idempotent, concurrent, and from inside a task") {
    {
        runtime rt(tp_test::workers(2));
        std::atomic<int> ran{0};
        for (int i = 0; i < 100; ++i) rt.post([&] { ran++; });
        rt.shutdown();
        rt.shutdown();
        REQUIRE(ran.load() == 100);
    }  // and the destructor's third call
    {
        runtime rt(tp_test::workers(2));
        std::atomic<int> ran{0};
        for (int i = 0; i < 1000; ++i) rt.post([&] { ran++; });
        std::vector<std::thread> ts;
        for (int i = 0; i < 3; ++i) ts.emplace_back([&] { rt.shutdown(); });
        for (auto& t : ts) t.join();
        REQUIRE(ran.load() == 1000);
    }
    {
        // shutdown() called from a task only closes the runtime; the destructor joins.
        std::atomic<int> ran{0};
        tp_test::counter_latch closed;
        {
            runtime rt(tp_test::workers(2));
            rt.post([&] {
                rt.shutdown();
                closed.arrive();
                rt.post([&] { ran++; });  // from inside: still accepted
            });
            REQUIRE(closed.wait_for(1));
            REQUIRE(rt.closed());
            REQUIRE_THROWS_AS(rt.post([] {}), runtime_closed);
        }
        REQUIRE(ran.load() == 1);
    }
}

TEST_CASE("shutdown: destroying a runtime with queued tasks runs them") {
    const long n = tp_test::scaled(100000);
    std::atomic<long> ran{0};
    {
        runtime rt(tp_test::workers(2));
        for (long i = 0; i < n; ++i) rt.post([&] { ran++; });
        // Some from inside as well, queued on workers' own deques.
        rt.post([&] {
            for (int i = 0; i < 1000; ++i) rt.post([&] { ran++; });
        });
    }
    REQUIRE(ran.load() == n + 1000);
}

TEST_CASE("shutdown: submissions racing shutdown are either refused or run") {
    const int rounds = static_cast<int>(tp_test::scaled(200));
    for (int r = 0; r < rounds; ++r) {
        std::atomic<long> accepted{0}, ran{0};
        {
            runtime rt(tp_test::workers(2));
            std::atomic<bool> stop{false};
            std::thread producer([&] {
                while (!stop.load()) {
                    try {
                        rt.post([&] { ran++; });
                        accepted++;
                    } catch (const runtime_closed&) {
                        break;
                    }
                }
            });
            // Let the producer get going (it submits at least a few) before closing.
            REQUIRE(tp_test::eventually([&] { return accepted.load() >= 10; }));
            rt.shutdown();
            stop = true;
            producer.join();
            // Everything accepted before shutdown() returned has run.
            REQUIRE(ran.load() == accepted.load());
        }
        REQUIRE(ran.load() == accepted.load());
    }
}

TEST_CASE("shutdown: posted tasks that throw do not stop shutdown or kill workers") {
    std::atomic<int> reported{0}, ran{0};
    {
        runtime_options o = tp_test::workers(2);
        o.on_unhandled_exception = [&](std::exception_ptr e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::runtime_error&) {
                reported++;
            }
        };
        runtime rt(std::move(o));
        for (int i = 0; i < 100; ++i) {
            rt.post([] { throw std::runtime_error("posted"); });
            rt.post([&] { ran++; });
        }
    }
    REQUIRE(reported.load() == 100);
    REQUIRE(ran.load() == 100);
}

// ---- a submission refused while every worker sleeps (the hang of the test above) ----

namespace refused {
std::atomic<bool> armed{false}, in_window{false}, release{false};
std::atomic<unsigned> slept_after_close{0};  // bit per worker: decided to sleep after close
std::atomic<runtime*> rt{nullptr};
void submit_in_flight() {
    if (!armed.exchange(false)) return;
    in_window = true;
    while (!release.load()) std::this_thread::yield();
}
void before_sleep(std::size_t w, bool) {
    if (runtime* r = rt.load(); r && r->closed()) slept_after_close.fetch_or(1u << w);
}
}  // namespace refused

// An outside submission counts itself in flight, then reads closed_. Held in that window (a
// test hook), shutdown() closes the pool and every worker re-checks and goes back to sleep:
// it may not end the pool while a submission is in flight. The submission then sees closed_
// and is refused. It must wake the workers to end the pool; before the fix it left without a
// wake-up and shutdown() joined sleeping workers for ever (gdb: both workers in futex_wait).
TEST_CASE("shutdown: a submission refused while every worker sleeps still lets the pool end") {
    namespace R = refused;
    hook_scope h1(detail::test_hooks().submit_in_flight, &R::submit_in_flight);
    hook_scope h2(detail::test_hooks().before_sleep, &R::before_sleep);
    for (int round = 0; round < 3; ++round) {
        R::in_window = false;
        R::release = false;
        R::slept_after_close = 0;
        tp_test::pool_probe probe;
        std::atomic<bool> refused_ok{false};
        {
            runtime rt(tp_test::workers(2));
            probe.capture();
            R::rt = &rt;
            R::armed = true;
            std::thread producer([&] {
                try {
                    rt.post([] {});
                } catch (const runtime_closed&) {
                    refused_ok = true;
                }
            });
            REQUIRE(tp_test::eventually([] { return R::in_window.load(); }));
            std::thread closer([&] { rt.shutdown(); });
            // Both workers decided to sleep after the close, and are asleep in the kernel.
            REQUIRE(tp_test::eventually([&] {
                return R::slept_after_close.load() == 3u && probe.all_asleep();
            }));
            R::release = true;
            {
                tp_test::watchdog dog("a submission refused while every worker sleeps");
                producer.join();
                closer.join();
            }
            R::rt = nullptr;
        }
        REQUIRE(refused_ok.load());
    }
}

// ---- the constructor when a worker thread cannot be started ----

namespace failing_start {
std::atomic<std::size_t> fail_at{0};
bool fail(std::size_t i) { return i == fail_at.load(); }
}  // namespace failing_start

// Worker k of 4 cannot be started: the constructor throws std::system_error naming it, with the
// workers already started joined (no thread left behind; ASan's leak check sees no memory
// left). Before the fix, k > 0 hung: shutdown() waited for all 4 workers to go idle.
TEST_CASE("runtime: a worker thread that cannot be started is a std::system_error and leaves nothing") {
    hook_scope h(detail::test_hooks().fail_thread_start, &failing_start::fail);
    const std::size_t threads_before = thread_ids().size();
    for (std::size_t k = 0; k < 4; ++k) {
        failing_start::fail_at = k;
        tp_test::watchdog dog("runtime constructor with a failing thread start");
        try {
            runtime rt(tp_test::workers(4));
            FAIL("the constructor did not throw");
        } catch (const std::system_error& e) {
            REQUIRE(e.code() == std::errc::resource_unavailable_try_again);
            const std::string what = e.what();
            REQUIRE(what.find("worker thread " + std::to_string(k + 1) + " of 4") != std::string::npos);
        }
        // No worker thread of the failed runtime remains (the watchdog's own is one thread).
        if (threads_before != 0) REQUIRE(thread_ids().size() == threads_before + 1);
    }
    // And the next runtime works.
    failing_start::fail_at = 99;
    runtime rt(tp_test::workers(4));
    REQUIRE(rt.spawn([] { return 7; }).get() == 7);
}

// ---- destroying the runtime from one of its own tasks ----

#if !defined(_WIN32)
// A worker cannot join itself, and the runtime's memory (its queues, the worker's own state)
// would be freed under the task that runs the destructor: a user error, reported by name on
// stderr before abort() (as std::thread's destructor terminates on a joinable thread, but
// saying what happened). Run in a forked child; the parent checks its exit and its stderr.
TEST_CASE("runtime: destroying it from one of its own tasks names the mistake and aborts") {
    // Forked while this process has one thread (the child starts threads: TSan requires it);
    // the watchdog starts after the fork.
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(pipefd[1], 2);
        ::close(pipefd[0]);
        std::signal(SIGABRT, SIG_DFL);  // not Catch's handler: it would report a failure here
        auto* rt = new runtime(tp_test::workers(2));
        rt->post([rt] { delete rt; });
        for (;;) ::pause();  // the child ends by abort(); the parent's deadline covers a hang
    }
    ::close(pipefd[1]);
    tp_test::watchdog dog("a child destroying its runtime from a task");
    std::string err;
    char buf[512];
    for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) err.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("child stderr: " << err);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGABRT);
    REQUIRE(err.find("taskport: runtime destroyed from one of its own tasks") != std::string::npos);
}
#endif
