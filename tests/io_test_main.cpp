// io_test_main.cpp — Catch2's main for the I/O tests. Before running them it checks that the
// backend TASKPORT_IO_BACKEND names can be used here: where an io_uring run finds io_uring
// unavailable (the build has no liburing, or the kernel or a seccomp filter refuses it) the whole
// executable is reported as skipped (exit status 77, which meson shows as SKIP) with the reason.
// TASKPORT_TEST_REQUIRE_IO_URING=1 turns that skip into a failure (for CI machines that must have
// it).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <taskport/taskport.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#if !defined(_WIN32)
// libkqueue (the kqueue backend on Linux) opens process-wide descriptors the first time a kqueue
// watches a socket, and keeps them; a test counting descriptors (tp_test::open_fds) would see
// them as its own leak when it happens to run first. So under TASKPORT_IO_BACKEND=kqueue one
// datagram goes through a socket pair before any test takes its baseline.
static void warm_up_kqueue() {
    const char* b = std::getenv("TASKPORT_IO_BACKEND");
    if (!b || std::strcmp(b, "kqueue") != 0) return;
    try {
        taskport::runtime rt;
        auto [a, c] = taskport::io::unix_datagram::pair(rt);
        rt.spawn([&a = a, &c = c]() -> taskport::task<void> {
              char byte = 'x';
              co_await a.send(std::as_bytes(std::span(&byte, 1)));
              char got = 0;
              co_await c.receive_from(std::as_writable_bytes(std::span(&got, 1)));
          }).get();
    } catch (const std::exception& e) {
        std::printf("kqueue warm-up failed: %s\n", e.what());  // the tests will say more
    }
}
#else
static void warm_up_kqueue() {}
#endif

int main(int argc, char** argv) {
    std::string why = tp_test::io_backend_unavailable();
    if (!why.empty()) {
        const char* req = std::getenv("TASKPORT_TEST_REQUIRE_IO_URING");
        bool required = req && *req && *req != '0';
        std::printf("%s: TASKPORT_IO_BACKEND=io_uring is not available here: %s\n",
                    required ? "FAIL" : "SKIP", why.c_str());
        return required ? 1 : 77;
    }
    warm_up_kqueue();
    return Catch::Session().run(argc, argv);
}
