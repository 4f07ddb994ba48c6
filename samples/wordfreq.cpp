// wordfreq — counts the words in files and folders, in parallel, and prints the most frequent.
//
//   wordfreq [--top N] [--workers N] [--scheduler work_stealing|tbb_arena] [PATH...]
//
// The parts of taskport an application uses together, on the public API only:
//   1. a task_group walks the folders: each folder is one task, which runs its subfolders as
//      more tasks of the same group; group.wait() returns when the whole tree is walked;
//   2. rt.spawn() counts one file per task and hands back a future; .then() turns a file that
//      cannot be read into a warning instead of an error for the whole run;
//   3. a coroutine (taskport::task) co_awaits when_all() of those futures, then merges the
//      counts with parallel_for, one slice of the word space per index, no locks;
//   4. rt.block_on() runs that coroutine from main; rt.stats() shows what the workers did.
// Words as a reader counts them: runs of letters and digits holding at least one letter
// ("2026" is not a word, "utf8" is), where an apostrophe (' or U+2019) or a hyphen between two
// such characters joins them: "don't", "it's", "o'clock" and "self-contained" are one word each,
// 'quoted' is "quoted". Bytes of UTF-8 sequences count as letters, so "naïve" is one word;
// ASCII letters are lower-cased (other case folding is left alone). Hidden files and folders
// (".git") and files holding a NUL byte (binaries) are skipped.
#include <taskport/taskport.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using counts = std::unordered_map<std::string, std::uint64_t>;

namespace {

bool ascii_letter(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// Calls f(word) for each word of text, by the rules at the top of this file.
template <class F>
void for_each_word(std::string_view text, F&& f) {
    std::string word;
    bool has_letter = false;
    const auto flush = [&] {
        if (has_letter) f(word);
        word.clear();
        has_letter = false;
    };
    const std::size_t n = text.size();
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const auto is_rsquo = [&](std::size_t i) {  // U+2019 RIGHT SINGLE QUOTATION MARK, E2 80 99
        return i + 2 < n && byte(i) == 0xE2 && byte(i + 1) == 0x80 && byte(i + 2) == 0x99;
    };
    // The length of the UTF-8 punctuation at i that separates words (0: none): quotation marks
    // U+2018 U+201C U+201D U+00AB U+00BB, dashes U+2013 U+2014, the ellipsis U+2026.
    const auto punct_len = [&](std::size_t i) -> std::size_t {
        if (i + 1 < n && byte(i) == 0xC2 && (byte(i + 1) == 0xAB || byte(i + 1) == 0xBB)) return 2;
        if (i + 2 < n && byte(i) == 0xE2 && byte(i + 1) == 0x80) {
            const unsigned char c = byte(i + 2);
            if (c == 0x98 || c == 0x9C || c == 0x9D || c == 0x93 || c == 0x94 || c == 0xA6) return 3;
        }
        return 0;
    };
    // A letter, a digit or a byte of a UTF-8 sequence other than the punctuation above.
    const auto word_char = [&](std::size_t i) {
        const unsigned char c = byte(i);
        return ascii_letter(c) || ascii_digit(c) || (c >= 0x80 && !is_rsquo(i) && punct_len(i) == 0);
    };
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = byte(i);
        if (is_rsquo(i)) {
            // Inside a word it joins (and is written as '): "don’t" counts as "don't".
            if (!word.empty() && i + 3 < n && word_char(i + 3)) word += '\'';
            else flush();
            i += 3;
            continue;
        }
        if (const std::size_t len = punct_len(i)) {
            flush();
            i += len;
            continue;
        }
        if (word_char(i)) {
            if (ascii_letter(c) || c >= 0x80) has_letter = true;
            word += ascii_letter(c) ? static_cast<char>(c | 0x20) : static_cast<char>(c);
        } else if ((c == '\'' || c == '-') && !word.empty() && i + 1 < n && word_char(i + 1)) {
            word += static_cast<char>(c);
        } else {
            flush();
        }
        ++i;
    }
    flush();
}

// One file's words. Throws std::system_error when the file cannot be read.
counts count_words(const fs::path& path) {
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::system_error(errno ? errno : EIO, std::generic_category(), "cannot open");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw std::system_error(std::make_error_code(std::errc::io_error), "cannot read");
    counts words;
    if (text.find('\0') != std::string::npos) return words;  // a binary file
    for_each_word(text, [&](const std::string& w) { ++words[w]; });
    return words;
}

bool hidden(const fs::path& p) {
    const std::string name = p.filename().string();
    return name.size() > 1 && name[0] == '.' && name != "..";
}

// Step 1 and 2: walks the paths with a task_group and spawns one counting task per file.
class walker {
public:
    explicit walker(taskport::runtime& rt) : rt_(rt), group_(rt) {}

    std::vector<taskport::future<counts>> run(const std::vector<fs::path>& roots) {
        for (const fs::path& root : roots) {
            std::error_code ec;
            if (fs::is_directory(root, ec))
                group_.run([this, root] { visit(root); });
            else
                add_file(root);
        }
        group_.wait();  // rethrows the first exception a folder task threw
        return std::move(files_);
    }

private:
    // A task of group_: lists one folder, runs its subfolders as tasks of the same group.
    void visit(const fs::path& dir) {
        std::error_code ec;
        fs::directory_iterator it(dir, ec);
        for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
            const fs::directory_entry& entry = *it;
            if (hidden(entry.path())) continue;
            std::error_code kind_ec;
            if (entry.is_directory(kind_ec) && !entry.is_symlink(kind_ec))
                group_.run([this, sub = entry.path()] { visit(sub); });
            else if (entry.is_regular_file(kind_ec))
                add_file(entry.path());
        }
        if (ec) warn(dir, ec.message());
    }

    void add_file(fs::path path) {
        taskport::future<counts> f =
            rt_.spawn([path] { return count_words(path); })
                .then([path](taskport::future<counts> done) {
                    try {
                        return done.get();
                    } catch (const std::exception& e) {
                        warn(path, e.what());
                        return counts{};
                    }
                });
        std::lock_guard<std::mutex> lock(mu_);
        files_.push_back(std::move(f));
    }

    static void warn(const fs::path& p, const std::string& why) {
        static std::mutex err_mu;
        std::lock_guard<std::mutex> lock(err_mu);
        std::cerr << "wordfreq: skipping " << p << ": " << why << '\n';
    }

    taskport::runtime& rt_;
    taskport::task_group group_;
    std::mutex mu_;  // guards files_: folder tasks add to it from every worker
    std::vector<taskport::future<counts>> files_;
};

struct result {
    std::size_t files = 0;
    std::uint64_t words = 0;
    std::vector<std::pair<std::string, std::uint64_t>> by_count;  // most frequent first
};

// Step 3: waits for every file's counts, merges them, sorts them.
taskport::task<result> merge(taskport::runtime& rt, std::vector<taskport::future<counts>> files) {
    std::vector<counts> per_file = co_await taskport::when_all(std::move(files));

    // Split every file's words into slices by hash, then merge each slice on its own: each
    // parallel_for index owns one row (first loop) or one slice (second), so nothing is shared.
    const std::size_t slices = rt.workers() * 4;
    const std::hash<std::string> hash;
    std::vector<std::vector<counts>> split(per_file.size(), std::vector<counts>(slices));
    taskport::parallel_for(rt, std::size_t{0}, per_file.size(), [&](std::size_t i) {
        for (auto& [word, n] : per_file[i]) split[i][hash(word) % slices][word] += n;
        per_file[i] = counts{};
    });
    std::vector<counts> merged(slices);
    taskport::parallel_for(rt, std::size_t{0}, slices, [&](std::size_t s) {
        for (auto& row : split)
            for (auto& [word, n] : row[s]) merged[s][word] += n;
    });

    result r;
    r.files = per_file.size();
    for (counts& slice : merged)
        for (auto& [word, n] : slice) {
            r.words += n;
            r.by_count.emplace_back(word, n);
        }
    std::sort(r.by_count.begin(), r.by_count.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    co_return r;
}

struct command_line {
    std::vector<fs::path> paths;
    std::size_t top = 10;
    std::size_t workers = 0;
    std::string scheduler = "work_stealing";
};

}  // namespace

int main(int argc, char** argv) {
    command_line opt;
    CLI::App app{"wordfreq: counts the words in files and folders (default: .) in parallel and prints the most "
                 "frequent, with what the runtime did."};
    app.allow_windows_style_options(false);  // paths such as /tmp/x are arguments, not options
    app.add_option("PATH", opt.paths, "files and folders to read");
    app.add_option("-n,--top", opt.top, "how many of the most frequent words to print")->capture_default_str();
    app.add_option("-w,--workers", opt.workers,
                   "worker threads (0: TASKPORT_WORKERS, else one per hardware thread)")
        ->capture_default_str();
    app.add_option("-s,--scheduler", opt.scheduler,
                   "work_stealing, or tbb_arena to run the tasks in a oneTBB task_arena (a build with oneTBB)")
        ->check(CLI::IsMember({"work_stealing", "tbb_arena"}))
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (opt.paths.empty()) opt.paths.emplace_back(".");
    try {
        taskport::runtime_options options;
        options.workers = opt.workers;
        if (opt.scheduler == "tbb_arena") options.scheduler = taskport::scheduler_kind::tbb_arena;
        taskport::runtime rt{options};

        walker w(rt);
        result r = rt.block_on(merge(rt, w.run(opt.paths)));

        std::printf("%zu files, %llu words, %zu distinct (%zu workers, %s)\n", r.files,
                    static_cast<unsigned long long>(r.words), r.by_count.size(), rt.workers(),
                    opt.scheduler.c_str());
        for (std::size_t i = 0; i < std::min(opt.top, r.by_count.size()); ++i)
            std::printf("%10llu  %s\n", static_cast<unsigned long long>(r.by_count[i].second),
                        r.by_count[i].first.c_str());

        const taskport::runtime_stats s = rt.stats();
        std::printf("runtime: %llu tasks run, %llu steals, %llu parks, %llu wake-ups\n",
                    static_cast<unsigned long long>(s.tasks_run),
                    static_cast<unsigned long long>(s.steals),
                    static_cast<unsigned long long>(s.parks),
                    static_cast<unsigned long long>(s.wakeups));
        rt.shutdown();
    } catch (const std::exception& e) {
        std::cerr << "wordfreq: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
