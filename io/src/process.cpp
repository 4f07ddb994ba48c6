// process.cpp — child processes on POSIX (process.hpp): posix_spawn, socketpair stdio, and the
// wait on the readiness core: EVFILT_PROC on the kqueue backend (process_watch.hpp), else a
// pidfd, else the SIGCHLD pipe of signal_pipe.hpp.
//
// Invariant: a child is reaped (waitpid) exactly once, by child_state::reap, under
// child_state::mu, which also guards every kill() — so no signal is ever sent to a pid after it
// was reaped (and so possibly reused). Every waitpid names one pid of ours; none is waitpid(-1).
// On kqueue the child's EVFILT_PROC knote is deleted before each waitpid (and added back if the
// child still runs), so no knote ever names a reaped pid (process_watch.hpp).
// A child that nobody waits for is watched by an orphan_op until it exits; if the runtime goes
// first its pid moves to the process-wide orphan list, swept (waitpid WNOHANG each) by every
// start() and every destruction.
#include <taskport/io/process.hpp>
#include <taskport/runtime.hpp>

#include "process_common.hpp"
#include "process_watch.hpp"
#include "service.hpp"
#include "signal_pipe.hpp"
#include "socket_ops.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#if TASKPORT_HAVE_PIDFD
#include <sys/syscall.h>
#endif

#if defined(__APPLE__)
#include <crt_externs.h>
#define TASKPORT_ENVIRON (*_NSGetEnviron())
#else
extern char** environ;
#define TASKPORT_ENVIRON environ
#endif

namespace taskport::io {

namespace detail {

struct child_state {
    long pid = -1;
    bool sigchld = false;  // the watch is the SIGCHLD pipe (else a pidfd or a process watch)
    bool kq_watch = false;  // the watch is process_watch.hpp's number watch_no (EVFILT_PROC)
    int watch_no = 0;
    int sig_slot = -1;     // signal_pipe.hpp's slot (sigchld only; freed under mu by the reap)
    socket_core watch;     // readable when the child (sigchld: any child) has exited

    std::mutex mu;          // guards reaped/raw_status and every waitpid and kill of pid
    bool reaped = false;
    int raw_status = 0;
    // reaped, readable without mu: set (release) after raw_status under mu; await_ready and
    // await_resume read it (acquire) and then raw_status, which no longer changes.
    std::atomic<bool> done{false};

    ~child_state() {
        close_signal_pipe(sig_slot);  // the write end first (as signal_set::close), then the read end
        watch.close();
        if (kq_watch) process_watch_close(watch_no);  // after the close: detach removed the knote
    }

    // waitpid(pid, WNOHANG) unless reaped: true when reaped (now or before) or on an error (ec).
    bool reap(std::error_code& ec) noexcept {
        std::lock_guard g(mu);
        if (reaped) return true;
        if (pid <= 0) return false;  // not started yet: never waitpid(-1) or waitpid(0)
        for (;;) {
            // kqueue: no knote may name the pid once it is reaped (process_watch.hpp).
            if (kq_watch) process_watch_suspend(watch_no);
            int st = 0;
            const pid_t r = ::waitpid(static_cast<pid_t>(pid), &st, WNOHANG);
            if (r == 0) {
                if (!kq_watch) return false;
                const int e = process_watch_resume(watch_no);
                if (e == 0) return false;
                if (e == ESRCH) continue;  // exited since the waitpid: reap it now
                ec = std::error_code(e, std::system_category());
                return true;
            }
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                ec = std::error_code(errno, std::system_category());
                return true;
            }
            raw_status = st;
            reaped = true;
            done.store(true, std::memory_order_release);
            // The SIGCHLD slot is not needed any more: free it now (there are 256), not when
            // the object goes. Its read end stays registered until then; it sees end of file.
            close_signal_pipe(std::exchange(sig_slot, -1));
            return true;
        }
    }

    exit_status status() const noexcept {
        if (WIFSIGNALED(raw_status)) return exit_status::from_signal(WTERMSIG(raw_status));
        return exit_status::from_code(WEXITSTATUS(raw_status));
    }
};

namespace {

[[noreturn]] void fail(int e, const std::string& what) { throw std::system_error(e, std::system_category(), what); }
[[noreturn]] void fail(std::errc e, const std::string& what) { throw std::system_error(std::make_error_code(e), what); }

// ---- the orphan list: children whose watch ended with the runtime before they exited ----

std::mutex orphans_mu;
std::vector<long> orphans;  // guarded by orphans_mu

void add_orphan(long pid) noexcept {
    std::lock_guard g(orphans_mu);
    try {
        orphans.push_back(pid);
    } catch (...) {  // out of memory: the zombie stays until this process exits
    }
}

void sweep_orphans() noexcept {
    std::lock_guard g(orphans_mu);
    std::erase_if(orphans, [](long pid) {
        int st;
        pid_t r;
        while ((r = ::waitpid(static_cast<pid_t>(pid), &st, WNOHANG)) < 0 && errno == EINTR) {
        }
        return r != 0;  // reaped, or not ours any more (ECHILD)
    });
}

// Watches a dropped child until it exits (process::drop), then frees its state.
struct orphan_op final : process_wait_op, taskport::detail::task_allocated {
    explicit orphan_op(const std::shared_ptr<child_state>& c) : process_wait_op(c->watch, c) {
        run_fn = &orphan_op::on_done;
    }
    static void on_done(taskport::detail::task_node* t) noexcept {
        auto* self = static_cast<orphan_op*>(t);
        // Aborted (the runtime shut down, or the watch failed): the list takes the pid over.
        if (!self->child->done.load(std::memory_order_acquire)) add_orphan(self->child->pid);
        delete self;
        sweep_orphans();
    }
};

// ---- how to wait ----

bool pidfd_works() noexcept {
#if TASKPORT_HAVE_PIDFD
    // 1 yes, 0 no (ENOSYS: kernel before 5.3; EPERM: a seccomp filter), -1 not probed yet.
    // Relaxed: every thread computes the same answer.
    static std::atomic<int> known{-1};
    int k = known.load(std::memory_order_relaxed);
    if (k < 0) {
        const long fd = ::syscall(SYS_pidfd_open, static_cast<long>(::getpid()), 0L);
        k = fd >= 0;
        if (fd >= 0) ::close(static_cast<int>(fd));
        known.store(k, std::memory_order_relaxed);
    }
    return k == 1;
#else
    return false;
#endif
}

// kqueue: EVFILT_PROC in the runtime's kqueue (libkqueue's EVFILT_READ on a pidfd is not one of
// the kinds it handles, but its EVFILT_PROC is a pidfd inside its epoll set).
bool use_kqueue_watch(const service& svc) noexcept {
    return svc.chosen == io_backend::kqueue && process_watch_available();
}
// Elsewhere the pidfd on the readiness core where the kernel has it; else the SIGCHLD pipe.
bool use_pidfd(const service& svc) noexcept { return svc.chosen != io_backend::kqueue && pidfd_works(); }

// ---- spawning ----

struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
    int release() noexcept { return std::exchange(fd, -1); }
};

// A connected socketpair, both ends close-on-exec; ends[0] (the parent's) non-blocking and
// without SIGPIPE where that is a socket option; ends[1] (the child's) blocking.
void make_stdio_pair(fd_guard& parent, fd_guard& child, const char* what) {
    int sv[2];
#if TASKPORT_HAVE_SOCK_FLAGS
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) fail(errno, std::string(what) + ": socketpair");
    parent.fd = sv[0];
    child.fd = sv[1];
#else
    // The fork window of posix_socket.cpp's fallback applies between socketpair and fcntl.
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) fail(errno, std::string(what) + ": socketpair");
    parent.fd = sv[0];
    child.fd = sv[1];
    for (int fd : sv)
        if (::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) fail(errno, std::string(what) + ": fcntl");
#endif
    const int fl = ::fcntl(parent.fd, F_GETFL);
    if (fl < 0 || ::fcntl(parent.fd, F_SETFL, fl | O_NONBLOCK) < 0) fail(errno, std::string(what) + ": fcntl");
#if !TASKPORT_HAVE_MSG_NOSIGNAL && TASKPORT_HAVE_SO_NOSIGPIPE
    int one = 1;
    if (::setsockopt(parent.fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0)
        fail(errno, std::string(what) + ": SO_NOSIGPIPE");
#endif
}

void check_string(std::string_view s, const char* what, const char* which) {
    if (s.find('\0') != std::string_view::npos)
        fail(std::errc::invalid_argument, std::string(what) + ": " + which + " has a '\\0' inside");
}

std::string_view env_name(std::string_view entry) { return entry.substr(0, entry.find('=')); }

std::vector<std::string> child_environment(const process_options& o, const char* what) {
    std::vector<std::string> env;
    if (o.inherit_env)
        for (char** e = TASKPORT_ENVIRON; e && *e; ++e) env.emplace_back(*e);
    for (const auto& [name, value] : o.env_changes) {
        check_string(name, what, "an environment variable's name");
        if (name.empty() || name.find('=') != std::string::npos)
            fail(std::errc::invalid_argument, std::string(what) + ": bad environment variable name \"" + name + "\"");
        std::erase_if(env, [&](const std::string& e) { return env_name(e) == name; });
        if (value) {
            check_string(*value, what, "an environment variable's value");
            env.push_back(name + "=" + *value);
        }
    }
    return env;
}

// The file to execute (see process.hpp: PATH search, relative paths).
std::string resolve_program(const process_options& o, const std::vector<std::string>& env, const char* what) {
    const std::string& prog = o.program;
    if (prog.find('/') != std::string::npos) {
        if (prog.front() == '/' || o.working_dir.empty()) return prog;
        char buf[4096];
        if (!::getcwd(buf, sizeof buf)) fail(errno, std::string(what) + ": getcwd");
        return std::string(buf) + "/" + prog;
    }
    std::string path;
    bool have_path = false;
    for (const auto& e : env)
        if (env_name(e) == "PATH") {
            path = e.substr(5);
            have_path = true;
        }
    if (!have_path) {
        if (const char* p = ::getenv("PATH")) {
            path = p;
        } else {
            const std::size_t n = ::confstr(_CS_PATH, nullptr, 0);
            std::string d(n, '\0');
            if (n > 0) ::confstr(_CS_PATH, d.data(), n);
            path = d.c_str();
        }
    }
    bool denied = false;
    std::size_t at = 0;
    for (;;) {
        const std::size_t end = path.find(':', at);
        std::string dir = path.substr(at, end == std::string::npos ? std::string::npos : end - at);
        if (dir.empty()) dir = ".";
        const std::string cand = dir + "/" + prog;
        struct stat sb;
        if (::stat(cand.c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (::access(cand.c_str(), X_OK) == 0) return cand;
            denied = true;
        }
        if (end == std::string::npos) break;
        at = end + 1;
    }
    fail(denied ? EACCES : ENOENT, std::string(what) + ": " + prog + " (searched PATH)");
}

}  // namespace

// ---- the wait ----

bool process_wait_op::await_ready() noexcept {
    if (!child) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return true;
    }
    if (child->done.load(std::memory_order_acquire)) {
        ec.clear();
        return true;
    }
    return socket_op::await_ready();
}

exit_status process_wait_op::await_resume() const {
    throw_if(ec, "taskport::io::process::wait");
    return child->status();
}

bool process_wait_op::perform_wait(operation* o) noexcept {
    auto* op = static_cast<process_wait_op*>(o);
    child_state& c = *op->child;
    if (c.sigchld) {
        // Drain first, then look: a SIGCHLD after the waitpid below writes again and wakes us.
        unsigned char buf[64];
        while (::read(op->st.get()->fd, buf, sizeof buf) > 0) {
        }
    }
    std::error_code e;
    if (!c.reap(e)) return false;
    op->ec = e;
    op->bytes = 0;
    return true;
}

}  // namespace detail

// ---- process ----

namespace detail {

// process::drop's POSIX part (process_common.hpp): a pending wait completes with
// operation_aborted; a child that has exited is reaped now; one still running is watched by an
// orphan_op (reaped when it exits), or put on the orphan list when the watch is gone.
void release_child(std::shared_ptr<child_state> c) noexcept {
    if (!c) return;
    c->watch.cancel();  // a pending wait completes with operation_aborted (as a socket's close)
    std::error_code ec;
    if (!c->reap(ec) && c->watch.is_open()) {
        try {
            start_detached(new orphan_op(c));
        } catch (...) {  // out of memory
            add_orphan(c->pid);
        }
    }
    sweep_orphans();
}

}  // namespace detail

long process::pid() const noexcept { return child_ ? child_->pid : -1; }

detail::process_wait_op process::wait() noexcept {
    static const detail::socket_core none;
    if (!child_) return detail::process_wait_op(none, nullptr);
    return detail::process_wait_op(child_->watch, child_);
}

std::optional<exit_status> process::try_wait() {
    if (!child_)
        throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), "taskport::io::process::try_wait");
    std::error_code ec;
    if (!child_->reap(ec)) return std::nullopt;
    detail::throw_if(ec, "taskport::io::process::try_wait");
    return child_->status();
}

void process::kill(int signo) {
    const char* what = "taskport::io::process::kill";
    if (!child_) throw std::system_error(std::make_error_code(std::errc::bad_file_descriptor), what);
    std::lock_guard g(child_->mu);
    if (child_->reaped) return;
    if (::kill(static_cast<pid_t>(child_->pid), signo) < 0)
        throw std::system_error(errno, std::system_category(), std::string(what) + " " + std::to_string(signo));
}
void process::kill() { kill(SIGKILL); }
void process::terminate() { kill(SIGTERM); }

process process::start(runtime& rt, const process_options& o) {
    const char* what = "taskport::io::process::start";
    detail::sweep_orphans();
    if (o.program.empty()) detail::fail(std::errc::invalid_argument, std::string(what) + ": the program is empty");
    detail::check_string(o.program, what, "the program");
    detail::check_string(o.arg0, what, "argv[0]");
    for (const auto& a : o.args) detail::check_string(a, what, "an argument");
    detail::check_string(o.working_dir, what, "the working directory");
    detail::service& svc = detail::service_of(rt);

    const std::vector<std::string> env = detail::child_environment(o, what);
    const std::string file = detail::resolve_program(o, env, what);
    std::vector<char*> argv, envp;
    argv.push_back(const_cast<char*>(o.arg0.empty() ? o.program.c_str() : o.arg0.c_str()));
    for (const auto& a : o.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    struct actions {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        bool fa_ok = false, attr_ok = false;
        ~actions() {
            if (fa_ok) posix_spawn_file_actions_destroy(&fa);
            if (attr_ok) posix_spawnattr_destroy(&attr);
        }
    } sp;
    auto check = [&](int r, const char* call) {
        if (r != 0) detail::fail(r, std::string(what) + ": " + call);
    };
    check(posix_spawn_file_actions_init(&sp.fa), "posix_spawn_file_actions_init");
    sp.fa_ok = true;
    check(posix_spawnattr_init(&sp.attr), "posix_spawnattr_init");
    sp.attr_ok = true;

    detail::fd_guard parent[3], child[3];
    const stdio modes[3] = {o.in, o.out, o.err};
    for (int i = 0; i < 3; ++i) {
        if (modes[i] == stdio::null) {
            check(posix_spawn_file_actions_addopen(&sp.fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0),
                  "posix_spawn_file_actions_addopen");
        } else if (modes[i] == stdio::pipe) {
            detail::make_stdio_pair(parent[i], child[i], what);
            check(posix_spawn_file_actions_adddup2(&sp.fa, child[i].fd, i), "posix_spawn_file_actions_adddup2");
        }
    }
    if (!o.working_dir.empty()) {
#if TASKPORT_HAVE_SPAWN_CHDIR
        check(posix_spawn_file_actions_addchdir_np(&sp.fa, o.working_dir.c_str()), "posix_spawn_file_actions_addchdir_np");
#else
        detail::fail(std::errc::function_not_supported,
                     std::string(what) + ": a working directory needs posix_spawn_file_actions_addchdir_np");
#endif
    }
    sigset_t none, pipe_only;
    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    check(posix_spawnattr_setsigmask(&sp.attr, &none), "posix_spawnattr_setsigmask");
    check(posix_spawnattr_setsigdefault(&sp.attr, &pipe_only), "posix_spawnattr_setsigdefault");
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#if defined(POSIX_SPAWN_CLOEXEC_DEFAULT)
    flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
#endif
    check(posix_spawnattr_setflags(&sp.attr, flags), "posix_spawnattr_setflags");

    auto state = std::make_shared<detail::child_state>();
    const bool kq_watch = detail::use_kqueue_watch(svc);
    const bool pidfd = !kq_watch && detail::use_pidfd(svc);
    if (!pidfd && !kq_watch) {  // the SIGCHLD pipe exists before the child: no exit can go unseen
        state->sigchld = true;
        const int rd = detail::open_signal_pipe(SIGCHLD, state->sig_slot, what);
        state->watch = detail::socket_core(&svc, rd);
    }

    pid_t pid = -1;
    const int r = ::posix_spawn(&pid, file.c_str(), &sp.fa, &sp.attr, argv.data(), envp.data());
    if (r != 0) detail::fail(r, std::string(what) + ": " + o.program);
    state->pid = pid;
    for (auto& c : child)
        if (c.fd >= 0) ::close(c.release());  // the child has its copies

    process p;
    p.child_ = state;  // from here on, a failure leaves the child to drop(): reaped in the background
    if (kq_watch) {
        // Registered after the spawn: a child that has exited by then is a zombie until its
        // reap, and the knote fires at once (libkqueue: its pidfd is readable) or is refused
        // (ESRCH on BSD: the wait's first attempt reaps it).
        try {
            state->watch_no = detail::process_watch_open(pid);
            state->kq_watch = true;
            state->watch = detail::socket_core(&svc, state->watch_no);
        } catch (...) {
            ::kill(pid, SIGKILL);
            p.child_.reset();  // ~child_state closes the watch number
            detail::add_orphan(pid);
            throw;
        }
    }
#if TASKPORT_HAVE_PIDFD
    if (pidfd) {
        const long fd = ::syscall(SYS_pidfd_open, static_cast<long>(pid), 0L);
        if (fd < 0) {
            const int e = errno;
            ::kill(pid, SIGKILL);
            p.child_.reset();
            detail::add_orphan(pid);
            detail::fail(e, std::string(what) + ": pidfd_open");
        }
        ::fcntl(static_cast<int>(fd), F_SETFL, O_NONBLOCK);  // the readiness core's rule (waitpid ignores it)
        try {
            state->watch = detail::socket_core(&svc, static_cast<int>(fd));
        } catch (...) {
            ::kill(pid, SIGKILL);
            p.child_.reset();
            detail::add_orphan(pid);
            throw;
        }
    }
#endif
    if (parent[0].fd >= 0) p.in_ = pipe_stream(detail::socket_core(&svc, parent[0].release()));
    if (parent[1].fd >= 0) p.out_ = pipe_stream(detail::socket_core(&svc, parent[1].release()));
    if (parent[2].fd >= 0) p.err_ = pipe_stream(detail::socket_core(&svc, parent[2].release()));
    return p;
}

}  // namespace taskport::io
