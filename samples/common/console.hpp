// console.hpp — what taskport-hash and taskport-fetch share: one lock over stdout and stderr,
// and a one-line progress bar on stderr.
//
// Invariant: every line either tool writes goes through console, under its mutex, so a line
// of results or an error message is never cut by the bar: the bar's line is erased first and
// redrawn by the next tick. The bar is drawn only when enabled (by default: stderr is a
// terminal), so a redirected stderr holds nothing but the tools' messages.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include <unistd.h>

namespace samples {

// "1.5 MiB", "312 B".
inline std::string human_bytes(double b) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char s[32];
    std::snprintf(s, sizeof s, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return s;
}

// "0:07", "1:02:03".
inline std::string human_duration(double seconds) {
    if (!(seconds >= 0) || seconds > 360000) return "--:--";
    const auto t = static_cast<long>(seconds + 0.5);
    char s[32];
    if (t >= 3600)
        std::snprintf(s, sizeof s, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        std::snprintf(s, sizeof s, "%ld:%02ld", t / 60, t % 60);
    return s;
}

class console {
public:
    using clock = std::chrono::steady_clock;

    // noun: what an item is ("files", "URLs").
    console(std::string noun, bool bar) : noun_(std::move(noun)), bar_(bar) {}

    static bool stderr_is_terminal() noexcept { return ::isatty(STDERR_FILENO) == 1; }

    // Totals for the bar. bytes_total 0: unknown (the ETA then goes by items).
    void set_totals(std::uint64_t items, std::uint64_t bytes) {
        items_total_.store(items, std::memory_order_relaxed);
        bytes_total_.store(bytes, std::memory_order_relaxed);
    }
    void add_bytes(std::uint64_t n) noexcept { bytes_done_.fetch_add(n, std::memory_order_relaxed); }
    void add_item() noexcept { items_done_.fetch_add(1, std::memory_order_relaxed); }
    std::uint64_t bytes_done() const noexcept { return bytes_done_.load(std::memory_order_relaxed); }
    void start_clock() { start_ = clock::now(); }
    double elapsed() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

    // A whole line (or several) to stdout / stderr; `text` ends with its newline.
    void out(std::string_view text) {
        std::lock_guard<std::mutex> g(mu_);
        erase_bar();
        std::fwrite(text.data(), 1, text.size(), stdout);
    }
    void err(std::string_view text) {
        std::lock_guard<std::mutex> g(mu_);
        erase_bar();
        std::fflush(stdout);  // stdout and stderr may be the same terminal: keep their order
        std::fwrite(text.data(), 1, text.size(), stderr);
    }

    // One frame of the bar (a no-op when disabled). Called by the tools' ticker every 200 ms.
    void draw() {
        if (!bar_.load(std::memory_order_relaxed)) return;
        const std::uint64_t items = items_done_.load(std::memory_order_relaxed);
        const std::uint64_t items_total = items_total_.load(std::memory_order_relaxed);
        const std::uint64_t bytes = bytes_done_.load(std::memory_order_relaxed);
        const std::uint64_t bytes_total = bytes_total_.load(std::memory_order_relaxed);
        const double t = std::max(elapsed(), 1e-3);
        const double rate = static_cast<double>(bytes) / t;
        double frac = 0, eta = -1;
        if (bytes_total > 0) {
            frac = static_cast<double>(bytes) / static_cast<double>(bytes_total);
            if (rate > 0) eta = static_cast<double>(bytes_total - std::min(bytes, bytes_total)) / rate;
        } else if (items_total > 0) {
            frac = static_cast<double>(items) / static_cast<double>(items_total);
            if (items > 0) eta = t * static_cast<double>(items_total - std::min(items, items_total)) / static_cast<double>(items);
        }
        frac = std::clamp(frac, 0.0, 1.0);
        constexpr int width = 24;
        const int fill = static_cast<int>(frac * width);
        std::string bar(static_cast<std::size_t>(fill), '#');
        bar.append(static_cast<std::size_t>(width - fill), '.');
        std::string sizes = human_bytes(static_cast<double>(bytes));
        if (bytes_total > 0) sizes += " / " + human_bytes(static_cast<double>(bytes_total));
        char line[256];
        std::snprintf(line, sizeof line, "\r[%s] %llu/%llu %s  %s  %s/s  ETA %s\033[K", bar.c_str(),
                      static_cast<unsigned long long>(items), static_cast<unsigned long long>(items_total),
                      noun_.c_str(), sizes.c_str(), human_bytes(rate).c_str(), human_duration(eta).c_str());
        std::lock_guard<std::mutex> g(mu_);
        if (!bar_.load(std::memory_order_relaxed)) return;  // finish() came first
        std::fflush(stdout);
        std::fputs(line, stderr);
        std::fflush(stderr);
        drawn_ = true;
    }

    // Erases the bar for good (before the final summary).
    void finish() {
        std::lock_guard<std::mutex> g(mu_);
        erase_bar();
        bar_.store(false, std::memory_order_relaxed);
        std::fflush(stdout);
        std::fflush(stderr);
    }

private:
    void erase_bar() {
        if (!drawn_) return;
        std::fputs("\r\033[K", stderr);
        drawn_ = false;
    }

    std::string noun_;
    std::atomic<bool> bar_;  // set by finish(), read by draw()
    bool drawn_ = false;  // the bar is on the screen (guarded by mu_)
    std::mutex mu_;
    clock::time_point start_ = clock::now();
    std::atomic<std::uint64_t> items_total_{0}, bytes_total_{0}, items_done_{0}, bytes_done_{0};
};

}  // namespace samples
