// cpu_count.cpp — see cpu_count.hpp.
#include "cpu_count.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace taskport::detail {

namespace {

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return s.str();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    for (;;) {
        std::size_t e = s.find(sep, at);
        out.push_back(s.substr(at, e == std::string_view::npos ? std::string_view::npos : e - at));
        if (e == std::string_view::npos) return out;
        at = e + 1;
    }
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return s;
}

// A decimal integer, optionally negative; nullopt for anything else.
std::optional<long long> to_int(std::string_view s) {
    s = trim(s);
    bool neg = !s.empty() && s.front() == '-';
    if (neg) s.remove_prefix(1);
    if (s.empty() || s.size() > 18) return std::nullopt;
    long long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return neg ? -v : v;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo (octal).
std::string unescape(std::string_view s) {
    auto octal = [&](std::size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '7'; };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
            out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
                                            (s[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

struct cgroup_mount {
    bool v2 = false;
    std::string root;   // the mount's root within the hierarchy (mountinfo field 4)
    std::string point;  // where it is mounted (field 5)
};

std::vector<cgroup_mount> cpu_mounts(const std::string& mountinfo) {
    std::vector<cgroup_mount> out;
    std::istringstream in(mountinfo);
    std::string line;
    while (std::getline(in, line)) {
        auto f = split(line, ' ');
        auto dash = std::find(f.begin(), f.end(), std::string_view("-"));
        if (f.size() < 5 || f.end() - dash < 3) continue;  // needs '- FSTYPE SOURCE'
        std::string_view fstype = dash[1];
        cgroup_mount m;
        m.root = unescape(f[3]);
        m.point = unescape(f[4]);
        if (fstype == "cgroup2") {
            m.v2 = true;
            out.push_back(std::move(m));
        } else if (fstype == "cgroup" && f.end() - dash >= 4) {
            for (std::string_view opt : split(trim(dash[3]), ','))
                if (opt == "cpu") {
                    out.push_back(std::move(m));
                    break;
                }
        }
    }
    return out;
}

// The process's path in the v2 hierarchy ("0::/path") or in the v1 hierarchy holding "cpu".
std::optional<std::string> cgroup_path(const std::string& cgroup_file, bool v2) {
    std::istringstream in(cgroup_file);
    std::string line;
    while (std::getline(in, line)) {
        std::size_t a = line.find(':');
        if (a == std::string::npos) continue;
        std::size_t b = line.find(':', a + 1);
        if (b == std::string::npos) continue;
        std::string_view ctrl = std::string_view(line).substr(a + 1, b - a - 1);
        std::string path = line.substr(b + 1);
        if (v2) {
            if (line.compare(0, a, "0") == 0 && ctrl.empty()) return path;
        } else {
            for (std::string_view c : split(ctrl, ','))
                if (c == "cpu") return path;
        }
    }
    return std::nullopt;
}

std::optional<double> v1_limit(const std::string& dir) {
    auto q = read_file(dir + "/cpu.cfs_quota_us");
    auto p = read_file(dir + "/cpu.cfs_period_us");
    if (!q || !p) return std::nullopt;
    auto quota = to_int(*q);
    auto period = to_int(*p);
    if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
    return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::optional<double> v2_limit(const std::string& dir) {
    auto t = read_file(dir + "/cpu.max");
    return t ? parse_cpu_max(*t) : std::nullopt;
}

std::optional<double> tighter(std::optional<double> a, std::optional<double> b) {
    if (!a) return b;
    if (!b) return a;
    return std::min(*a, *b);
}

}  // namespace

std::optional<double> parse_cpu_max(std::string_view text) {
    auto f = split(trim(text), ' ');
    if (f.size() != 2) return std::nullopt;
    auto quota = to_int(f[0]);
    auto period = to_int(f[1]);
    if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;  // "max" too
    return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::optional<double> cgroup_cpu_limit(const std::string& root) {
    auto mountinfo = read_file(root + "/proc/self/mountinfo");
    auto cgroup = read_file(root + "/proc/self/cgroup");
    if (!mountinfo || !cgroup) return std::nullopt;
    std::optional<double> limit;
    for (const cgroup_mount& m : cpu_mounts(*mountinfo)) {
        auto path = cgroup_path(*cgroup, m.v2);
        if (!path) continue;
        // The part of the process's path below the mount's root; outside it (no cgroup
        // namespace and a foreign root), only the mount point itself is looked at.
        std::string rel;
        if (m.root == "/")
            rel = *path;
        else if (path->compare(0, m.root.size(), m.root) == 0 &&
                 (path->size() == m.root.size() || (*path)[m.root.size()] == '/'))
            rel = path->substr(m.root.size());
        while (!rel.empty() && rel.back() == '/') rel.pop_back();
        // From the process's own cgroup up to the mount point: every level's quota applies.
        for (;;) {
            std::string dir = root + m.point + rel;
            limit = tighter(limit, m.v2 ? v2_limit(dir) : v1_limit(dir));
            if (rel.empty()) break;
            std::size_t slash = rel.rfind('/');
            rel.resize(slash == std::string::npos ? 0 : slash);
        }
    }
    return limit;
}

std::size_t apply_cpu_limit(std::size_t online, std::optional<double> limit) {
    std::size_t n = online ? online : 1;
    if (limit && *limit > 0) {
        double c = std::ceil(*limit);
        if (c < static_cast<double>(n)) n = static_cast<std::size_t>(c);
    }
    return n ? n : 1;
}

std::size_t available_cpus() {
    std::size_t n = std::thread::hardware_concurrency();
    if (n == 0) n = 1;
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        int k = CPU_COUNT(&set);
        if (k > 0 && static_cast<std::size_t>(k) < n) n = static_cast<std::size_t>(k);
    }
    n = apply_cpu_limit(n, cgroup_cpu_limit(""));
#endif
    return n;
}

}  // namespace taskport::detail
