// test_env.cpp — TASKPORT_WORKERS: overrides the worker count when runtime_options::workers is 0;
// an invalid value is a std::invalid_argument that names the variable. Its own executable,
// because it changes the process environment.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

using namespace taskport;

namespace {

// Sets (or, with null, removes) TASKPORT_WORKERS. Windows has no setenv: _putenv("NAME=") removes.
void set_workers_env(const char* value) {
#if defined(_WIN32)
    std::string kv = std::string("TASKPORT_WORKERS=") + (value ? value : "");
    ::_putenv(kv.c_str());
#else
    if (value)
        ::setenv("TASKPORT_WORKERS", value, 1);
    else
        ::unsetenv("TASKPORT_WORKERS");
#endif
}

struct env_guard {
    explicit env_guard(const char* value) {
        if (const char* old = std::getenv("TASKPORT_WORKERS")) {
            had = true;
            saved = old;
        }
        set_workers_env(value);
    }
    ~env_guard() { set_workers_env(had ? saved.c_str() : nullptr); }
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
