// cpu_count.hpp — how many CPUs this process may actually use: the default worker count.
//
// std::thread::hardware_concurrency() counts the CPUs the kernel has online. A process pinned
// with taskset/cpuset, or a container given a CPU quota (Docker's --cpus, a Kubernetes CPU
// limit), may use fewer; a worker per online CPU then means workers throttled against each other
// (the quota is spent early in each period and every worker stalls until the next). Like Rust's
// std::thread::available_parallelism (which Tokio uses) and Go 1.25's GOMAXPROCS default, the
// count is the smallest of:
//   - the CPUs online (hardware_concurrency),
//   - the CPUs in the affinity mask (sched_getaffinity; Linux),
//   - the CPU quota of the process's cgroup and of every ancestor up to the mount root,
//     rounded up (cgroup v2 `cpu.max`: "QUOTA PERIOD" or "max PERIOD"; cgroup v1
//     `cpu.cfs_quota_us` / `cpu.cfs_period_us`, -1 = no limit), found through
//     /proc/self/mountinfo and /proc/self/cgroup;
// and at least 1. Anything unreadable or malformed counts as "no limit" from that source: the
// result is never below what the readable sources allow, and reading never throws.
// Elsewhere than Linux: hardware_concurrency only.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace taskport::detail {

// The default worker count (the smallest of the sources above, at least 1).
std::size_t available_cpus();

// Testable parts (Linux files read under `root`, "" for the real system).

// The tightest CPU quota (in CPUs, not rounded) on the cgroup path of this process under `root`
// (root + "/proc/self/mountinfo", root + "/proc/self/cgroup", and the mount points they name,
// prefixed with root); nullopt when none is set or nothing is readable.
std::optional<double> cgroup_cpu_limit(const std::string& root);

// One cgroup v2 cpu.max text: "150000 100000\n" -> 1.5; "max 100000" or malformed -> nullopt.
std::optional<double> parse_cpu_max(std::string_view text);

// The rounded-up limit applied to `online` CPUs: min(online, ceil(limit)), at least 1.
std::size_t apply_cpu_limit(std::size_t online, std::optional<double> limit);

}  // namespace taskport::detail
