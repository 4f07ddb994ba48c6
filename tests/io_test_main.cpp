// io_test_main.cpp — Catch2's main for the I/O tests. Before running them it checks that the
// backend TASKPORT_IO_BACKEND names can be used here: where an io_uring run finds io_uring
// unavailable (the build has no liburing, or the kernel or a seccomp filter refuses it) the whole
// executable is reported as skipped (exit status 77, which meson shows as SKIP) with the reason.
// TASKPORT_TEST_REQUIRE_IO_URING=1 turns that skip into a failure (for CI machines that must have
// it).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "io_test_util.hpp"

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    std::string why = tp_test::io_backend_unavailable();
    if (!why.empty()) {
        const char* req = std::getenv("TASKPORT_TEST_REQUIRE_IO_URING");
        bool required = req && *req && *req != '0';
        std::printf("%s: TASKPORT_IO_BACKEND=io_uring is not available here: %s\n",
                    required ? "FAIL" : "SKIP", why.c_str());
        return required ? 1 : 77;
    }
    return Catch::Session().run(argc, argv);
}
