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
// Words are runs of ASCII letters, lower-cased. Hidden files and folders (".git") and files
// holding a NUL byte (binaries) are skipped.
#include <taskport/taskport.hpp>

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
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using counts = std::unordered_map<std::string, std::uint64_t>;

namespace {

// One file's words. Throws std::system_error when the file cannot be read.
counts count_words(const fs::path& path) {
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::system_error(errno ? errno : EIO, std::generic_category(), "cannot open");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw std::system_error(std::make_error_code(std::errc::io_error), "cannot read");
    counts words;
    if (text.find('\0') != std::string::npos) return words;  // a binary file
    std::string word;
    for (const char ch : text) {
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
            word += static_cast<char>(ch | 0x20);  // ASCII lower case
        } else if (!word.empty()) {
            ++words[word];
            word.clear();
        }
    }
    if (!word.empty()) ++words[word];
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

const char* const usage =
    "usage: wordfreq [--top N] [--workers N] [--scheduler work_stealing|tbb_arena] [PATH...]\n"
    "Counts the words in files and folders (default: .) in parallel; prints the N (10) most\n"
    "frequent. --workers 0 (the default) means TASKPORT_WORKERS, else the hardware threads;\n"
    "--scheduler tbb_arena runs the tasks in a oneTBB task_arena (a build with oneTBB).\n";

struct command_line {
    std::vector<fs::path> paths;
    std::size_t top = 10;
    std::size_t workers = 0;
    std::string scheduler = "work_stealing";
};

// Three options and a list of paths: a loop says it more plainly than a parser library.
command_line parse(int argc, char** argv) {
    command_line o;
    const auto number = [&](int& i) -> std::size_t {
        if (i + 1 >= argc) throw std::invalid_argument(std::string(argv[i]) + " needs a value");
        const std::string v = argv[++i];
        std::size_t used = 0;
        unsigned long n = 0;
        try {
            n = std::stoul(v, &used);
        } catch (const std::logic_error&) {
        }
        if (used == 0 || used != v.size()) throw std::invalid_argument("not a number: " + v);
        return n;
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else if (a == "-n" || a == "--top") {
            o.top = number(i);
        } else if (a == "-w" || a == "--workers") {
            o.workers = number(i);
        } else if (a == "-s" || a == "--scheduler") {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            o.scheduler = argv[++i];
            if (o.scheduler != "work_stealing" && o.scheduler != "tbb_arena")
                throw std::invalid_argument("unknown scheduler: " + o.scheduler);
        } else if (a.size() > 1 && a[0] == '-') {
            throw std::invalid_argument("unknown option: " + a);
        } else {
            o.paths.emplace_back(a);
        }
    }
    if (o.paths.empty()) o.paths.emplace_back(".");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    command_line opt;
    try {
        opt = parse(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wordfreq: %s\n%s", e.what(), usage);
        return 2;
    }
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
