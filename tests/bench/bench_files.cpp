// bench_files.cpp — reading a file tree: taskport's io::file against plain pread from a thread pool.
//
//   bench_files [MIB [CHUNK_KIB [PARALLEL]]]      (default 1024 256 16)
//
// Generates a tree of MIB mebibytes under /tmp (16 folders, files of 64 KiB to 16 MiB in a fixed
// mix, random bytes), removes it at the end. Then reads every file from start to end in
// CHUNK_KIB pieces, PARALLEL files at a time, on each side:
//   taskport: PARALLEL coroutines on one runtime, each taking the next file, io::file::open, then
//             co_await read_at(offset, chunk) until a short read (end of file). Run once with the
//             runtime's I/O backend set to epoll (reads on taskport's blocking pool) and once with
//             io_uring (reads as io_uring SQEs), both in this one run. A read first copies what
//             the page cache holds on the worker (preadv2 RWF_NOWAIT), so warm-cache rows are
//             also run with that fast path off ("backend only"): every read through the pool or
//             io_uring.
//   peer:     PARALLEL plain threads, each taking the next file, open(2), pread(2) the same chunks
//             until a short read, close(2).
// Both touch one byte per 4 KiB page of what they read (a checksum, compared between sides), so
// neither can skip the data. Two cache states:
//   warm: the tree is in the page cache (right after a read of it): the runtime's own overhead;
//   cold: every file's pages are dropped (posix_fadvise DONTNEED) before each rep: the device.
// Figure: MB/s (higher is better); ratio = taskport / pread (the issue sets no goal here: report
// only). Sides alternate rep by rep; setup (runtime and thread start, eviction) stays outside the
// timed region.
#include "io_report.hpp"

#include <taskport/io/file.hpp>
#include <taskport/taskport.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace fs = std::filesystem;
namespace io = taskport::io;

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "bench_files: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(2);
}

// The generated tree; removed by the destructor.
struct tree {
    fs::path root;
    std::vector<fs::path> files;
    std::uint64_t bytes = 0;

    explicit tree(std::uint64_t target) {
        std::string tmpl = (fs::temp_directory_path() / "taskport-bench-files-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) die("mkdtemp");
        root = tmpl;
        static constexpr std::uint64_t sizes[] = {64 << 10, 1 << 20, 256 << 10, 4 << 20,
                                                  16 << 20, 512 << 10, 2 << 20, 128 << 10};
        std::vector<char> block(16 << 20);
        std::mt19937_64 rng(42);
        for (std::size_t i = 0; i < block.size(); i += 8) {
            std::uint64_t v = rng();
            std::memcpy(block.data() + i, &v, 8);
        }
        for (std::size_t i = 0; bytes < target; ++i) {
            const std::uint64_t size = std::min<std::uint64_t>(sizes[i % 8], target - bytes);
            char dname[16], fname[32];
            std::snprintf(dname, sizeof dname, "d%zu", i % 16);
            std::snprintf(fname, sizeof fname, "f%zu.bin", i);
            fs::path dir = root / dname;
            fs::create_directories(dir);
            fs::path p = dir / fname;
            int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) die("create " + p.string());
            block[0] = static_cast<char>(i);  // files differ
            for (std::uint64_t off = 0; off < size;) {
                ssize_t n = ::pwrite(fd, block.data(), std::min<std::uint64_t>(size - off, block.size()), off);
                if (n <= 0) die("write " + p.string());
                off += static_cast<std::uint64_t>(n);
            }
            if (::fsync(fd) != 0) die("fsync");  // clean pages, so eviction works
            ::close(fd);
            files.push_back(p);
            bytes += size;
        }
    }
    ~tree() {
        std::error_code ec;
        fs::remove_all(root, ec);
        if (ec) std::fprintf(stderr, "bench_files: could not remove %s: %s\n", root.c_str(), ec.message().c_str());
    }

    void evict() const {
        for (const fs::path& p : files) {
            int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) die("open " + p.string());
            ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            ::close(fd);
        }
    }
};

// One byte per 4 KiB page, summed (both sides use it).
inline std::uint64_t touch(const std::byte* p, std::size_t n) {
    std::uint64_t s = 0;
    for (std::size_t i = 0; i < n; i += 4096) s += static_cast<unsigned char>(p[i]);
    return s;
}

struct totals {
    std::atomic<std::uint64_t> bytes{0}, sum{0};
};

// ---- taskport ----

taskport::task<void> tp_reader(taskport::runtime& rt, const std::vector<fs::path>& files,
                               std::atomic<std::size_t>& next, std::size_t chunk, totals& out) {
    std::vector<std::byte> buf(chunk);
    std::uint64_t bytes = 0, sum = 0;
    for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < files.size();) {
        io::file f = co_await io::file::open(rt, files[i], io::open_mode::read);
        for (std::uint64_t off = 0;;) {
            const std::size_t n = co_await f.read_at(off, buf);
            sum += touch(buf.data(), n);
            off += n;
            bytes += n;
            if (n < chunk) break;
        }
    }
    out.bytes += bytes;
    out.sum += sum;
}

taskport::task<void> tp_read_all(taskport::runtime& rt, const std::vector<fs::path>& files,
                                 std::size_t chunk, std::size_t parallel, totals& out) {
    std::atomic<std::size_t> next{0};
    std::vector<taskport::future<void>> readers;
    for (std::size_t i = 0; i < parallel; ++i) readers.push_back(rt.spawn(tp_reader(rt, files, next, chunk, out)));
    co_await taskport::when_all(std::move(readers));
}

// ---- plain pread from a thread pool ----

void pread_reader(const std::vector<fs::path>& files, std::atomic<std::size_t>& next, std::size_t chunk,
                  totals& out) {
    std::vector<std::byte> buf(chunk);
    std::uint64_t bytes = 0, sum = 0;
    for (std::size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < files.size();) {
        int fd = ::open(files[i].c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("open " + files[i].string());
        for (std::uint64_t off = 0;;) {
            std::size_t n = 0;  // fill the chunk, as read_at does
            while (n < chunk) {
                ssize_t r = ::pread(fd, buf.data() + n, chunk - n, static_cast<off_t>(off + n));
                if (r < 0 && errno == EINTR) continue;
                if (r < 0) die("pread " + files[i].string());
                if (r == 0) break;
                n += static_cast<std::size_t>(r);
            }
            sum += touch(buf.data(), n);
            off += n;
            bytes += n;
            if (n < chunk) break;
        }
        ::close(fd);
    }
    out.bytes += bytes;
    out.sum += sum;
}

}  // namespace

int main(int argc, char** argv) {
    const std::uint64_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
    const std::size_t chunk = (argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 256) << 10;
    const std::size_t parallel = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 16;
    const int r_warm = bench::reps(9), r_cold = bench::reps(3);  // a warm pass is ~0.1 s, a cold one ~1 s
    bench::raise_nofile();

    tree t(mib << 20);
    std::printf("# bench_files: %zu files, %.1f MiB under %s; %zu KiB reads, %zu files at a time; "
                "%d reps warm, %d cold\n",
                t.files.size(), t.bytes / 1048576.0, t.root.c_str(), chunk >> 10, parallel, r_warm, r_cold);
    std::fflush(stdout);

    std::uint64_t reference_sum = 0;
    auto check = [&](const totals& got, const char* who) {
        if (got.bytes != t.bytes) {
            std::fprintf(stderr, "bench_files: %s read %llu bytes of %llu\n", who,
                         static_cast<unsigned long long>(got.bytes.load()),
                         static_cast<unsigned long long>(t.bytes));
            std::exit(2);
        }
        if (reference_sum == 0) reference_sum = got.sum;
        if (got.sum != reference_sum) {
            std::fprintf(stderr, "bench_files: %s read different bytes (checksum)\n", who);
            std::exit(2);
        }
    };
    auto mbps = [&](double ms) { return static_cast<double>(t.bytes) / 1e6 / (ms / 1e3); };

    auto pread_side = [&](bool cold) {
        totals out;
        std::atomic<std::size_t> next{0};
        std::atomic<bool> go{false};
        std::vector<std::thread> pool;
        for (std::size_t i = 0; i < parallel; ++i)
            pool.emplace_back([&] {
                go.wait(false);
                pread_reader(t.files, next, chunk, out);
            });
        if (cold) t.evict();
        const auto t0 = bench::clock::now();
        go.store(true);
        go.notify_all();
        for (auto& th : pool) th.join();
        const double ms = bench::ms_since(t0);
        check(out, "pread");
        return mbps(ms);
    };
    auto taskport_side = [&](taskport::io_backend backend, bool cold, bool fast_path = true) {
        io::detail::set_file_fast_path(fast_path);
        struct restore {
            ~restore() { io::detail::set_file_fast_path(true); }
        } r;
        taskport::runtime_options o;
        o.io = backend;
        taskport::runtime rt(o);
        {  // start the runtime's I/O service (threads, io_uring) outside the timed region
            totals warm;
            std::atomic<std::size_t> next{0};
            std::vector<fs::path> one{t.files.front()};
            rt.block_on(tp_reader(rt, one, next, chunk, warm));
        }
        if (cold) t.evict();
        totals out;
        const auto t0 = bench::clock::now();
        rt.block_on(tp_read_all(rt, t.files, chunk, parallel, out));
        const double ms = bench::ms_since(t0);
        check(out, "taskport");
        return mbps(ms);
    };

    bool have_uring = true;
    try {
        taskport::runtime_options o;
        o.io = taskport::io_backend::io_uring;
        taskport::runtime rt(o);
        totals warm;
        std::atomic<std::size_t> next{0};
        std::vector<fs::path> one{t.files.front()};
        rt.block_on(tp_reader(rt, one, next, chunk, warm));
    } catch (const std::exception& e) {
        have_uring = false;
        std::printf("# io_uring unavailable here: %s\n", e.what());
    }

    for (bool cold : {false, true}) {
        const int r = cold ? r_cold : r_warm;
        const char* state = cold ? "cold cache" : "warm cache";
        const std::string what = std::to_string(mib) + " MiB tree, " + state + ": MB/s, taskport io::file ";
        bench::row_rate(what + "(epoll + blocking pool) vs pread pool",
                        bench::alternate(r, [&] { return taskport_side(taskport::io_backend::epoll, cold); },
                                         [&] { return pread_side(cold); }),
                        "MB/s", 0);
        if (have_uring)
            bench::row_rate(what + "(io_uring) vs pread pool",
                            bench::alternate(r, [&] { return taskport_side(taskport::io_backend::io_uring, cold); },
                                             [&] { return pread_side(cold); }),
                            "MB/s", 0);
        if (cold) continue;  // cold: the fast path finds nothing cached and steps aside anyway
        bench::row_rate(what + "(epoll + blocking pool, backend only) vs pread pool",
                        bench::alternate(r, [&] { return taskport_side(taskport::io_backend::epoll, cold, false); },
                                         [&] { return pread_side(cold); }),
                        "MB/s", 0);
        if (have_uring)
            bench::row_rate(what + "(io_uring, backend only) vs pread pool",
                            bench::alternate(r, [&] { return taskport_side(taskport::io_backend::io_uring, cold, false); },
                                             [&] { return pread_side(cold); }),
                            "MB/s", 0);
    }
}
