// test_env.cpp — the TASKPORT_* environment variables (taskport/detail/environment.hpp, the one
// place that reads them). TASKPORT_WORKERS overrides the worker count when
// runtime_options::workers is 0; for every variable a bad value makes the runtime constructor
// throw std::invalid_argument naming the variable, its accepted values and the value. Its own
// executable, because it changes the process environment.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace taskport;

namespace {

// Sets (or, with null, removes) a variable. Windows has no setenv: _putenv("NAME=") removes.
void set_env(const char* name, const char* value) {
#if defined(_WIN32)
    std::string kv = std::string(name) + "=" + (value ? value : "");
    ::_putenv(kv.c_str());
#else
    if (value)
        ::setenv(name, value, 1);
    else
        ::unsetenv(name);
#endif
}

struct env_guard {
    explicit env_guard(const char* value) : env_guard("TASKPORT_WORKERS", value) {}
    env_guard(const char* var, const char* value) : name(var) {
        if (const char* old = std::getenv(name)) {
            had = true;
            saved = old;
        }
        set_env(name, value);
    }
    ~env_guard() { set_env(name, had ? saved.c_str() : nullptr); }
    const char* name;
    bool had = false;
    std::string saved;
};

}  // namespace

TEST_CASE("TASKPORT_WORKERS sets the worker count") {
    for (const char* v : {"1", "3", "7"}) {
        env_guard g(v);
        runtime rt;
        REQUIRE(rt.workers() == static_cast<std::size_t>(std::atoi(v)));
        REQUIRE(rt.stats().workers == rt.workers());
        REQUIRE(rt.spawn([] { return 5; }).get() == 5);
    }
}

TEST_CASE("TASKPORT_WORKERS does not override an explicit count") {
    env_guard g("3");
    runtime rt(tp_test::workers(2));
    REQUIRE(rt.workers() == 2);
}

TEST_CASE("TASKPORT_WORKERS unset or empty: the hardware threads") {
    const std::size_t hw = std::thread::hardware_concurrency() ? std::thread::hardware_concurrency() : 1;
    {
        env_guard g(nullptr);
        runtime rt;
        REQUIRE(rt.workers() == hw);
    }
    {
        env_guard g("");
        runtime rt;
        REQUIRE(rt.workers() == hw);
    }
}

TEST_CASE("TASKPORT_WORKERS invalid values are refused, naming the variable") {
    for (const char* v : {"0", "-1", "+3", "abc", "4x", "2.5", " 3", "99999999999999999999", "5000"}) {
        env_guard g(v);
        INFO("TASKPORT_WORKERS='" << v << "'");
        try {
            runtime rt;
            FAIL("accepted TASKPORT_WORKERS='" << v << "'");
        } catch (const std::invalid_argument& e) {
            const std::string what = e.what();
            REQUIRE(what.find("TASKPORT_WORKERS") != std::string::npos);
            REQUIRE(what.find(v) != std::string::npos);  // and quotes the value
        }
    }
}

// Every variable, its bad values and what the message must name as accepted. The runtime
// constructor refuses each (before, a bad TASKPORT_POLL_SPIN_US was silently 20, a bad
// TASKPORT_WORKER_POLL or TASKPORT_FILE_FAST_PATH silently "on", and TASKPORT_IO_BACKEND was
// only checked at the first I/O call).
TEST_CASE("every TASKPORT_* variable: a bad value is refused by the runtime constructor") {
    struct row {
        const char* name;
        std::vector<const char*> bad;
        const char* accepted;
    };
    const row rows[] = {
        {"TASKPORT_WORKERS", {"0", "x"}, "1 to 4096"},
        {"TASKPORT_WORKER_POLL", {"2", "yes", "00", " 0"}, "0 or 1"},
        {"TASKPORT_IO_BACKEND", {"EPOLL", "uring", "epoll "}, "auto, epoll, io_uring, kqueue, iocp"},
        {"TASKPORT_POLL_SPIN_US", {"-1", "20us", "1000001", "1e3"}, "0 to 1000000"},
        {"TASKPORT_FILE_FAST_PATH", {"off", "2"}, "0 or 1"},
        {"TASKPORT_IOCP_SKIP_ON_SUCCESS", {"no", "-0"}, "0 or 1"},
    };
    for (const row& r : rows) {
        for (const char* v : r.bad) {
            env_guard g(r.name, v);
            INFO(r.name << "='" << v << "'");
            try {
                runtime rt(tp_test::workers(1));
                FAIL("accepted");
            } catch (const std::invalid_argument& e) {
                const std::string what = e.what();
                REQUIRE(what.find(r.name) != std::string::npos);
                REQUIRE(what.find(r.accepted) != std::string::npos);
                REQUIRE(what.find(std::string("'") + v + "'") != std::string::npos);
            }
        }
    }
}

TEST_CASE("every TASKPORT_* variable: good values and empty ones are accepted") {
    const std::pair<const char*, std::vector<const char*>> rows[] = {
        {"TASKPORT_WORKER_POLL", {"0", "1", ""}},
        {"TASKPORT_IO_BACKEND", {"auto", "epoll", "io_uring", "kqueue", "iocp", ""}},
        {"TASKPORT_POLL_SPIN_US", {"0", "20", "1000000", ""}},
        {"TASKPORT_FILE_FAST_PATH", {"0", "1", ""}},
        {"TASKPORT_IOCP_SKIP_ON_SUCCESS", {"0", "1", ""}},
    };
    for (const auto& [name, values] : rows) {
        for (const char* v : values) {
            env_guard g(name, v);
            INFO(name << "='" << v << "'");
            runtime rt(tp_test::workers(1));
            REQUIRE(rt.spawn([] { return 3; }).get() == 3);
        }
    }
}

// TASKPORT_WORKER_POLL reaches the scheduler through the runtime (sched reads no variable).
TEST_CASE("TASKPORT_WORKER_POLL=0 turns worker polling off") {
    {
        env_guard g("TASKPORT_WORKER_POLL", "0");
        runtime rt(tp_test::workers(1));
        REQUIRE_FALSE(rt.executor().polls_source());
    }
    {
        env_guard g("TASKPORT_WORKER_POLL", nullptr);
        runtime rt(tp_test::workers(1));
        REQUIRE(rt.executor().polls_source());
    }
}
