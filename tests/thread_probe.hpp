// thread_probe.hpp — what the scheduler tests (test_parking, test_shutdown) need to see a pool
// from outside: this process's threads and their scheduler state, the threads one runtime
// started and whether all of them are asleep in the kernel, and a scoped scheduler test hook.
// Where threads cannot be listed (no /proc/self/task: Windows, macOS) the sets are empty, and
// the checks that use them do not wait (a round may then start before the pool has parked).
#pragma once

#include "test_util.hpp"

#if !defined(_WIN32)
#include <dirent.h>
#endif

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace tp_test {

// This process's thread ids. (Under Wine, /proc/self/task would be the Linux host's.)
inline std::set<int> thread_ids() {
    std::set<int> ids;
#if !defined(_WIN32)
    if (DIR* d = opendir("/proc/self/task")) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') ids.insert(std::stoi(e->d_name));
        closedir(d);
    }
#endif
    return ids;
}

// The scheduler state letter of one of our threads (R running, S sleeping, ...), or '?'.
inline char thread_state(int tid) {
    std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return '?';
    auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) return '?';
    return line[close + 2];
}

// The threads a runtime started (those that appeared while it was constructed: construct the
// probe, then the runtime, then capture()), and whether all of them are asleep in the kernel.
struct pool_probe {
    std::set<int> before = thread_ids();
    std::vector<int> tids;
    static bool observable() { return !thread_ids().empty(); }
    void capture() {
        for (int id : thread_ids())
            if (!before.count(id)) tids.push_back(id);
    }
    bool all_asleep() const {
        for (int tid : tids)
            if (thread_state(tid) != 'S') return false;
        return true;
    }
    bool wait_all_asleep() const {
        return eventually([&] { return all_asleep(); });
    }
};

// Sets a scheduler test hook (sched/src/test_hooks.hpp) for one scope.
template <class Hook>
struct hook_scope {
    hook_scope(std::atomic<Hook>& h, Hook f) : h_(h) { h_.store(f); }
    ~hook_scope() { h_.store(nullptr); }
    hook_scope(const hook_scope&) = delete;
    hook_scope& operator=(const hook_scope&) = delete;
    std::atomic<Hook>& h_;
};

}  // namespace tp_test
