// test_service_registry.cpp — the runtime's typed services (taskport/detail/service_registry.hpp):
// two kinds side by side, one instance per kind however many threads ask at once, a service
// that needs another, shutdown and release newest first with the work a shutdown queues run by
// the workers in between, and a clear error for a new service after shutdown.
#include "test_util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace taskport;

namespace {

// What every test service records, in order.
struct journal {
    std::mutex mu;
    std::vector<std::string> lines;
    void add(std::string s) {
        std::lock_guard<std::mutex> g(mu);
        lines.push_back(std::move(s));
    }
    std::vector<std::string> get() {
        std::lock_guard<std::mutex> g(mu);
        return lines;
    }
};
journal* log_to = nullptr;  // set by each test before its runtime exists
std::atomic<int> made_a{0};

// A service whose shutdown queues a task on the runtime (as io's does with aborted operations):
// the workers must run it after the shutdown and before the release.
template <char Name>
struct recording_service final : detail::runtime_service {
    explicit recording_service(runtime& r) : rt(r) {
        if (Name == 'a') made_a.fetch_add(1);
        log_to->add(std::string("make ") + Name);
    }
    void shutdown() noexcept override {
        log_to->add(std::string("shutdown ") + Name);
        if (!queued_task) {
            queued_task = true;
            journal* j = log_to;
            (void)rt.spawn([j] { j->add(std::string("task of ") + Name); });
        }
    }
    void release_by_runtime() noexcept override {
        log_to->add(std::string("release ") + Name);
        delete this;
    }
    runtime& rt;
    bool queued_task = false;
    int value = Name;
};
using service_a = recording_service<'a'>;
using service_b = recording_service<'b'>;

// Needs service_a: makes it from its own constructor (the registry's lock is recursive).
struct dependent_service final : detail::runtime_service {
    explicit dependent_service(runtime& r) : a(r.use_service<service_a>()) { log_to->add("make dependent"); }
    void shutdown() noexcept override { log_to->add("shutdown dependent"); }
    void release_by_runtime() noexcept override {
        log_to->add("release dependent");
        delete this;
    }
    service_a& a;
};

std::atomic<int> throwing_tries{0};
struct throwing_service final : detail::runtime_service {
    explicit throwing_service(runtime&) {
        if (throwing_tries.fetch_add(1) == 0) throw std::runtime_error("first construction fails");
    }
    void shutdown() noexcept override {}
};

}  // namespace

TEST_CASE("services: two kinds side by side, one instance each") {
    journal j;
    log_to = &j;
    made_a = 0;
    {
        runtime rt(runtime_options{.workers = 2});
        CHECK(rt.find_service<service_a>() == nullptr);
        service_a& a = rt.use_service<service_a>();
        service_b& b = rt.use_service<service_b>();
        CHECK(static_cast<void*>(&a) != static_cast<void*>(&b));
        CHECK(a.value == 'a');
        CHECK(b.value == 'b');
        CHECK(&rt.use_service<service_a>() == &a);
        CHECK(&rt.use_service<service_b>() == &b);
        CHECK(rt.find_service<service_a>() == &a);
        CHECK(rt.find_service<service_b>() == &b);
        CHECK(rt.services().size() == 2);
        CHECK(made_a.load() == 1);
    }
    log_to = nullptr;
}

TEST_CASE("services: many threads asking at once get the one instance") {
    journal j;
    log_to = &j;
    made_a = 0;
    {
        runtime rt(runtime_options{.workers = 2});
        constexpr int n = 8;
        tp_test::barrier start(n);
        std::vector<void*> seen(n, nullptr);
        std::atomic<int> mismatches{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < n; ++i)
            ts.emplace_back([&, i] {
                start.arrive_and_wait();
                for (int k = 0; k < 1000; ++k) {
                    void* p = &rt.use_service<service_a>();
                    if ((seen[i] && seen[i] != p) || rt.find_service<service_a>() != p) mismatches.fetch_add(1);
                    seen[i] = p;
                }
            });
        for (auto& t : ts) t.join();
        CHECK(mismatches.load() == 0);
        for (int i = 0; i < n; ++i) CHECK(seen[i] == static_cast<void*>(rt.find_service<service_a>()));
        CHECK(made_a.load() == 1);
        // Workers too (a service made lazily from tasks, as io's is).
        std::vector<future<void*>> fs;
        for (int i = 0; i < 16; ++i)
            fs.push_back(rt.spawn([&rt] { return static_cast<void*>(&rt.use_service<service_b>()); }));
        void* b = &rt.use_service<service_b>();
        for (auto& f : fs) CHECK(f.get() == b);
    }
    log_to = nullptr;
}

TEST_CASE("services: shut down and released newest first, the shutdown's work run in between") {
    journal j;
    log_to = &j;
    {
        runtime rt(runtime_options{.workers = 2});
        (void)rt.use_service<service_b>();
        (void)rt.use_service<dependent_service>();  // makes service_a from inside its constructor
    }
    const std::vector<std::string> want = {
        "make b", "make a", "make dependent",
        // runtime::shutdown(): the services first, newest first (dependent was published after a)
        "shutdown dependent", "shutdown a", "shutdown b",
        // then the releases, after the workers have run what those shutdowns queued
        "release dependent", "release a", "release b",
    };
    auto got = j.get();
    REQUIRE(got.size() == want.size() + 2);
    // The tasks a shutdown spawns run on the workers, which are still running: a task may run
    // before the next service's shutdown is logged (seen under Wine), never after a release.
    std::vector<std::string> rest, tasks;
    std::size_t last_task = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i].rfind("task of ", 0) == 0) {
            tasks.push_back(got[i]);
            last_task = i;
        } else {
            rest.push_back(got[i]);
        }
    }
    CHECK(rest == want);
    std::sort(tasks.begin(), tasks.end());
    CHECK(tasks == std::vector<std::string>{"task of a", "task of b"});
    // Each task after its own service's shutdown, and both before the first release.
    const auto at = [&](const char* e) { return std::find(got.begin(), got.end(), e) - got.begin(); };
    CHECK(at("task of a") > at("shutdown a"));
    CHECK(at("task of b") > at("shutdown b"));
    CHECK(last_task < static_cast<std::size_t>(at("release dependent")));
    log_to = nullptr;
}

TEST_CASE("services: a new one after shutdown is a clear error; existing ones stay reachable") {
    journal j;
    log_to = &j;
    {
        runtime rt(runtime_options{.workers = 1});
        service_a& a = rt.use_service<service_a>();
        rt.shutdown();
        CHECK(&rt.use_service<service_a>() == &a);
        try {
            (void)rt.use_service<service_b>();
            FAIL("use_service of a new kind after shutdown did not throw");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::operation_canceled);
            CHECK(std::string(e.what()).find("shut down") != std::string::npos);
        }
        CHECK(rt.find_service<service_b>() == nullptr);
    }
    log_to = nullptr;
}

TEST_CASE("services: a constructor that throws leaves nothing behind; the next call makes it") {
    throwing_tries = 0;
    runtime rt(runtime_options{.workers = 1});
    CHECK_THROWS_AS(rt.use_service<throwing_service>(), std::runtime_error);
    CHECK(rt.find_service<throwing_service>() == nullptr);
    CHECK(rt.services().size() == 0);
    CHECK_NOTHROW(rt.use_service<throwing_service>());
    CHECK(rt.find_service<throwing_service>() != nullptr);
}
