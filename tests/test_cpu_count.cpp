// test_cpu_count.cpp — the default worker count (sched/src/cpu_count.hpp): the CPUs this process
// may use, the smallest of the CPUs online, the affinity mask and every cgroup CPU quota on the
// process's path, rounded up. The cgroup readers run on fake /proc and /sys trees built here,
// in both hierarchies' formats, so the test does not depend on the machine's own cgroups.
#include "test_util.hpp"

#include "cpu_count.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

using namespace taskport;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test case, removed afterwards.
struct fake_root {
    fs::path dir;
    fake_root() {
        static int n = 0;
        dir = fs::temp_directory_path() /
              ("tp_cpu_count_" + std::to_string(std::random_device{}()) + "_" + std::to_string(++n));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~fake_root() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void put(const std::string& rel, const std::string& text) const {
        fs::path p = dir / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
    }
    std::string root() const { return dir.string(); }
};

}  // namespace

TEST_CASE("cpu.max text: QUOTA PERIOD in CPUs, max and malformed mean no limit", "[cpu_count]") {
    using detail::parse_cpu_max;
    REQUIRE(parse_cpu_max("150000 100000\n").has_value());
    CHECK(*parse_cpu_max("150000 100000\n") == Approx(1.5));
    CHECK(*parse_cpu_max("400000 100000") == Approx(4.0));
    CHECK_FALSE(parse_cpu_max("max 100000\n").has_value());
    CHECK_FALSE(parse_cpu_max("").has_value());
    CHECK_FALSE(parse_cpu_max("100000").has_value());
    CHECK_FALSE(parse_cpu_max("0 100000").has_value());
    CHECK_FALSE(parse_cpu_max("-1 100000").has_value());
    CHECK_FALSE(parse_cpu_max("12x 100000").has_value());
    CHECK_FALSE(parse_cpu_max("50000 0").has_value());
}

TEST_CASE("a limit is rounded up and never raises the count or drops it below 1", "[cpu_count]") {
    using detail::apply_cpu_limit;
    CHECK(apply_cpu_limit(8, 1.5) == 2);
    CHECK(apply_cpu_limit(8, 2.0) == 2);
    CHECK(apply_cpu_limit(8, 0.1) == 1);
    CHECK(apply_cpu_limit(2, 4.0) == 2);
    CHECK(apply_cpu_limit(8, std::nullopt) == 8);
    CHECK(apply_cpu_limit(0, std::nullopt) == 1);
}

TEST_CASE("cgroup v2: the tightest cpu.max from the process's cgroup up to the mount", "[cpu_count]") {
    fake_root r;
    r.put("proc/self/mountinfo",
          "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
          "31 22 0:28 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n");
    r.put("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    r.put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000\n");
    r.put("sys/fs/cgroup/kubepods/pod1/cpu.max", "250000 100000\n");
    r.put("sys/fs/cgroup/kubepods/cpu.max", "800000 100000\n");
    auto limit = detail::cgroup_cpu_limit(r.root());
    REQUIRE(limit.has_value());
    CHECK(*limit == Approx(2.5));
    CHECK(detail::apply_cpu_limit(16, limit) == 3);

    // The process's own level tighter than its parents.
    r.put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "50000 100000\n");
    CHECK(*detail::cgroup_cpu_limit(r.root()) == Approx(0.5));
}

TEST_CASE("cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us under a namespaced mount root with an "
          "escaped mount point",
          "[cpu_count]") {
    fake_root r;
    // A container without a cgroup namespace: the mount's root is the container's own cgroup,
    // and /proc/self/cgroup names the same path; the mount point has a space (\040).
    r.put("proc/self/mountinfo",
          "40 31 0:35 /docker/abc /sys/fs/cgroup/cpu\\040acct rw - cgroup cgroup rw,cpu,cpuacct\n"
          "41 31 0:36 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
    r.put("proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n");
    r.put("sys/fs/cgroup/cpu acct/cpu.cfs_quota_us", "150000\n");
    r.put("sys/fs/cgroup/cpu acct/cpu.cfs_period_us", "100000\n");
    auto limit = detail::cgroup_cpu_limit(r.root());
    REQUIRE(limit.has_value());
    CHECK(*limit == Approx(1.5));

    // -1: no quota.
    r.put("sys/fs/cgroup/cpu acct/cpu.cfs_quota_us", "-1\n");
    CHECK_FALSE(detail::cgroup_cpu_limit(r.root()).has_value());
}

TEST_CASE("no cgroup files, no cpu controller, or garbage: no limit, no throw", "[cpu_count]") {
    fake_root r;
    CHECK_FALSE(detail::cgroup_cpu_limit(r.root()).has_value());
    r.put("proc/self/mountinfo", "garbage\n\n- - -\n41 31 0:36 / /m rw - cgroup cgroup rw,memory\n");
    r.put("proc/self/cgroup", "nonsense\n5:memory:/\n");
    CHECK_FALSE(detail::cgroup_cpu_limit(r.root()).has_value());
    // A v2 mount but the quota file holds garbage.
    r.put("proc/self/mountinfo", "31 22 0:28 / /cg rw - cgroup2 cgroup2 rw\n");
    r.put("proc/self/cgroup", "0::/\n");
    r.put("cg/cpu.max", "lots 100000\n");
    CHECK_FALSE(detail::cgroup_cpu_limit(r.root()).has_value());
}

TEST_CASE("the default worker count is this process's usable CPUs", "[cpu_count]") {
    const std::size_t n = detail::available_cpus();
    unsigned hw = std::thread::hardware_concurrency();
    CHECK(n >= 1);
    CHECK(n <= (hw ? hw : 1));
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
    CHECK(n <= static_cast<std::size_t>(CPU_COUNT(&set)));
    CHECK(n == detail::apply_cpu_limit(std::min<std::size_t>(hw ? hw : 1, CPU_COUNT(&set)),
                                       detail::cgroup_cpu_limit("")));
#endif
    runtime rt;
    CHECK(rt.workers() == n);
}

#if defined(__linux__)
TEST_CASE("an affinity mask narrower than the machine narrows the default", "[cpu_count]") {
    cpu_set_t saved;
    CPU_ZERO(&saved);
    REQUIRE(::sched_getaffinity(0, sizeof saved, &saved) == 0);
    if (CPU_COUNT(&saved) < 2) {
        WARN("one CPU in the affinity mask: nothing to narrow");
        return;
    }
    int first = 0;
    while (!CPU_ISSET(first, &saved)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
    const std::size_t n = detail::available_cpus();
    REQUIRE(::sched_setaffinity(0, sizeof saved, &saved) == 0);
    CHECK(n == 1);
}
#endif
