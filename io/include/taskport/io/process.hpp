// taskport/io/process.hpp — child processes: start a program, talk to it through async pipes,
// co_await its exit.
//
//   auto p = io::process::start(rt, io::process_options("cat").std_in(io::stdio::pipe)
//                                                          .std_out(io::stdio::pipe));
//   co_await p.stdin_pipe().write_all(data);
//   p.stdin_pipe().close();                                // the child reads end of file
//   std::size_t n = co_await p.stdout_pipe().read_some(buf);   // 0 at end of file
//   io::exit_status st = co_await p.wait();                // st.code(), st.signal()
//
// Starting (POSIX): posix_spawn (glibc and musl run it as vfork + exec and report a failed
// exec as its result), so start() throws std::system_error with the OS's code when the child
// cannot run — no_such_file_or_directory for a missing program or working directory,
// permission_denied for a file that is not executable — instead of a child exiting 127. A
// program name without '/' is looked up in PATH (the child's PATH when the options change it,
// else this process's; confstr(_CS_PATH) when unset), before anything is started; a relative
// path with '/' is taken from this process's working directory (not the child's). The child
// gets an empty signal mask and SIGPIPE at its default action, and no descriptor of taskport's:
// every one taskport makes is close-on-exec (the pipes' too; the child's ends are dup2'ed onto
// 0, 1, 2 only), and on macOS POSIX_SPAWN_CLOEXEC_DEFAULT closes everything else.
//
// Pipes: stdio::pipe gives the parent a pipe_stream (a socketpair, as libuv's stdio pipes: the
// same operations and rules as tcp_stream: read_some gives 0 at end of file, writes never raise
// SIGPIPE, close() from any thread aborts pending operations). The child's end is an ordinary
// blocking descriptor.
//
// Waiting: the kqueue backend (BSD, macOS; Linux through libkqueue, whose EVFILT_PROC is a
// pidfd): EVFILT_PROC with NOTE_EXIT in the runtime's own kqueue, the child's knote deleted
// before its reap. Linux with pidfd_open (5.3+): the process's pidfd on the readiness core (epoll
// and the io_uring build alike). Elsewhere (ENOSYS, -Dforce_posix_fallbacks on epoll):
// SIGCHLD through signal_set's handler table (signal.hpp): each waiting child holds a slot
// whose pipe the handler writes to on every SIGCHLD, and a wait retries waitpid(pid, WNOHANG)
// for its own pid only — never waitpid(-1), so other code's children are not stolen. The
// fallback's limit: signal sets and children not yet reaped together at most 256.
// A program that sets SIGCHLD to SIG_IGN makes the kernel reap children itself: wait() then
// fails with no_child_process.
//
// Dropping: destroying a process that was not waited for neither kills nor blocks: the child
// keeps running and is reaped in the background when it exits (the runtime watches it, as
// Tokio's orphan queue). If the runtime has shut down first, it is reaped by the next
// process::start or process destruction in this program. Pipes the user moved out stay open.
//
// Threads: one process object is not for concurrent use, except that kill()/terminate() and
// pipe close()/cancel() may be called from any thread while a wait is pending. Moving it with a
// wait pending is safe. Cancellation (future::cancel, with_timeout) aborts a wait; the child
// keeps running.
//
// Windows (process_win.cpp): CreateProcessW. The command line is argv[0] and the arguments,
// each quoted so that the Microsoft C runtime (CommandLineToArgvW) gives it back unchanged;
// strings are UTF-8. A program name without '/', '\' or ':' is looked up with SearchPathW in
// the child's PATH (this process's unless the options change it), ".exe" added when it has no
// extension. Only the child's three standard handles are inherited
// (PROC_THREAD_ATTRIBUTE_HANDLE_LIST); stdio::null is the NUL device; stdio::pipe is a named
// pipe with a unique name (taskport-PID-COUNTER-TICKS in the pipe namespace, one instance,
// PIPE_REJECT_REMOTE_CLIENTS): this process's end is the server end, overlapped, read and written
// with ReadFile/WriteFile on the completion port (the pipe_stream; end of file when the child's
// end closes: ERROR_BROKEN_PIPE); the child's end is opened with CreateFileW, not overlapped,
// inheritable and passed only through the handle list (libuv's stdio pipes).
// Errors carry the Win32 code (ERROR_FILE_NOT_FOUND
// compares equal to no_such_file_or_directory). The wait: a thread-pool wait on the process
// handle sends a byte on a loopback socket pair whose overlapped receive completes the wait
// through the completion port; cancellation and with_timeout abort it as a socket operation.
// Windows has no signals: kill() and terminate() (and kill(n), any n > 0) call
// TerminateProcess, and the child's status is exit code 1; exit_status::signal() is always 0.
// No zombies either: dropping a process closes its handle without killing the child, and a
// wait still pending (or made before the drop and not yet started) completes with
// operation_aborted. pid() is the process id.
#pragma once

#include <taskport/io/tcp.hpp>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace taskport::io {

/// How a child's standard stream (stdin, stdout or stderr) is set up by process::start.
enum class stdio {
    inherit,  ///< the child shares this process's stream
    null,     ///< the null device (/dev/null): reads give end of file, writes are discarded
    pipe,     ///< an async pipe to this process: process::stdin_pipe() / stdout_pipe() / stderr_pipe()
};

/// How a child ended: an exit code, or (POSIX) the signal that terminated it.
class exit_status {
public:
    /// An exit with code 0.
    constexpr exit_status() noexcept = default;
    /// An exit with `code` (exited() is true).
    static constexpr exit_status from_code(int code) noexcept { return exit_status(code, 0); }
    /// Termination by signal `signo` (exited() is false).
    static constexpr exit_status from_signal(int signo) noexcept { return exit_status(-1, signo); }

    /// True when the child exited by itself (exit(), return from main), false when a signal ended it.
    constexpr bool exited() const noexcept { return signal_ == 0; }
    /// The exit code (0-255 on POSIX), or -1 when a signal ended the child.
    constexpr int code() const noexcept { return code_; }
    /// The signal that ended the child (SIGKILL, SIGTERM, ...), or 0 when it exited.
    constexpr int signal() const noexcept { return signal_; }
    /// True for an exit with code 0.
    constexpr bool success() const noexcept { return signal_ == 0 && code_ == 0; }
    /// "exit code N" or "signal N", for messages.
    std::string to_string() const;

    /// Equal when both exited with the same code or ended by the same signal.
    friend constexpr bool operator==(const exit_status&, const exit_status&) noexcept = default;

private:
    constexpr exit_status(int code, int signo) noexcept : code_(code), signal_(signo) {}
    int code_ = 0;
    int signal_ = 0;
};

/// What process::start runs and how (a builder: each setter returns *this).
///
///     io::process_options("ls").arg("-l").cwd("/tmp").env("LC_ALL", "C").std_out(io::stdio::pipe)
///
/// Plain data: copy it, reuse it for several starts. Nothing is checked until start().
struct process_options {
    /// The program: a path, or a name without '/' looked up in PATH (see the file comment).
    std::string program;
    /// The arguments after argv[0].
    std::vector<std::string> args;
    /// argv[0]; empty: `program` as given.
    std::string arg0;
    /// Start from this process's environment (true) or from an empty one (false).
    bool inherit_env = true;
    /// Changes applied in order on top of that: a value sets the variable, nullopt removes it.
    std::vector<std::pair<std::string, std::optional<std::string>>> env_changes;
    /// The child's working directory; empty: this process's.
    std::string working_dir;
    /// The child's stdin.
    stdio in = stdio::inherit;
    /// The child's stdout.
    stdio out = stdio::inherit;
    /// The child's stderr.
    stdio err = stdio::inherit;

    /// Options with `program` and nothing else (no arguments, everything inherited).
    process_options() = default;
    /// Options that run `program` (see the member's comment).
    explicit process_options(std::string program) : program(std::move(program)) {}

    /// Appends one argument.
    process_options& arg(std::string a) {
        args.push_back(std::move(a));
        return *this;
    }
    /// Appends several arguments.
    process_options& arguments(std::initializer_list<std::string_view> as) {
        for (auto a : as) args.emplace_back(a);
        return *this;
    }
    /// Sets argv[0] (what the child sees as its name).
    process_options& argv0(std::string a) {
        arg0 = std::move(a);
        return *this;
    }
    /// Sets variable `name` to `value` in the child's environment.
    process_options& env(std::string name, std::string value) {
        env_changes.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    /// Removes variable `name` from the child's environment.
    process_options& env_remove(std::string name) {
        env_changes.emplace_back(std::move(name), std::nullopt);
        return *this;
    }
    /// Starts the child's environment empty (drops what env()/env_remove() set so far).
    process_options& env_clear() {
        inherit_env = false;
        env_changes.clear();
        return *this;
    }
    /// Sets the child's working directory (a missing one makes start() throw no_such_file_or_directory).
    process_options& cwd(std::string dir) {
        working_dir = std::move(dir);
        return *this;
    }
    /// Sets how the child's stdin is set up.
    process_options& std_in(stdio s) noexcept {
        in = s;
        return *this;
    }
    /// Sets how the child's stdout is set up.
    process_options& std_out(stdio s) noexcept {
        out = s;
        return *this;
    }
    /// Sets how the child's stderr is set up.
    process_options& std_err(stdio s) noexcept {
        err = s;
        return *this;
    }
};

namespace detail {

#if defined(_WIN32)
// A named pipe's completion steps (iocp_socket.cpp): ReadFile/WriteFile on the port instead of
// WSARecv/WSASend; ERROR_BROKEN_PIPE is end of file for a read, broken_pipe for a write.
bool perform_pipe_read(operation* op) noexcept;
bool perform_pipe_write(operation* op) noexcept;
#endif

/// pipe_stream::read_some's awaiter: tcp_stream's read (on Windows a ReadFile on the named pipe).
struct pipe_read_op : read_op {
    /// As read_op.
    pipe_read_op(const socket_core& s, std::span<std::byte> b) noexcept : read_op(s, b) {
#if defined(_WIN32)
        perform = &perform_pipe_read;
#endif
    }
};

/// pipe_stream's write awaiter: tcp_stream's write (on Windows a WriteFile on the named pipe).
struct pipe_write_op : write_op {
    /// As write_op.
    pipe_write_op(const socket_core& s, std::span<const std::byte> b, bool all) noexcept : write_op(s, b, all) {
#if defined(_WIN32)
        perform = &perform_pipe_write;
#endif
    }
};

}  // namespace detail

/// This process's end of a child's stdin, stdout or stderr pipe (stdio::pipe). The operations,
/// errors and thread rules are tcp_stream's (tcp.hpp): read_some gives 0 at end of file (the
/// child closed its end or exited); close() the stdin pipe to give the child end of file.
class pipe_stream {
public:
    /// The platform's descriptor type (int on POSIX).
    using native_handle_type = detail::native_socket;

    /// A closed pipe (operations fail with bad_file_descriptor).
    pipe_stream() noexcept = default;
    /// Takes over a registered descriptor (used by process::start).
    explicit pipe_stream(detail::socket_core&& c) noexcept : core_(std::move(c)) {}

    /// At most buf.size() bytes; 0 at end of file. Throws std::system_error.
    detail::pipe_read_op read_some(std::span<std::byte> buf) noexcept { return {core_, buf}; }
    /// Some of buf; returns how much. Throws std::system_error (broken_pipe when the child closed its end).
    detail::pipe_write_op write_some(std::span<const std::byte> buf) noexcept { return {core_, buf, false}; }
    /// All of buf; returns buf.size(). Throws as write_some.
    detail::pipe_write_op write_all(std::span<const std::byte> buf) noexcept { return {core_, buf, true}; }
    /// Callback form of read_some: f(std::error_code, std::size_t) runs as a task.
    template <class F>
    void async_read_some(std::span<std::byte> buf, F&& f) {
        (new detail::callback_op<detail::pipe_read_op, std::decay_t<F>>(std::forward<F>(f), core_, buf))->go();
    }
    /// Callback form of write_all: f(std::error_code, std::size_t) runs as a task.
    template <class F>
    void async_write_all(std::span<const std::byte> buf, F&& f) {
        (new detail::callback_op<detail::pipe_write_op, std::decay_t<F>>(std::forward<F>(f), core_, buf, true))->go();
    }

    /// Closes this end (idempotent, any thread); pending operations complete with operation_aborted.
    void close() noexcept { core_.close(); }
    /// Aborts pending operations (operation_aborted); stays open. Any thread.
    void cancel() noexcept { core_.cancel(); }
    /// False once closed, moved from or never opened.
    bool is_open() const noexcept { return core_.is_open(); }
    /// The descriptor (invalid once closed).
    native_handle_type native_handle() const noexcept { return core_.fd(); }

private:
    detail::socket_core core_;
};

namespace detail {

struct child_state;  // process.cpp: the pid, its watch (pidfd or SIGCHLD pipe), the reaped status

/// The awaiter process::wait() returns (an I/O operation: with_timeout and cancel apply).
struct process_wait_op : socket_op {
    process_wait_op(const socket_core& watch, std::shared_ptr<child_state> c) noexcept;
    process_wait_op(process_wait_op&&) noexcept = default;
    bool await_ready() noexcept;        ///< true when reaped already (or no child)
    exit_status await_resume() const;   ///< the status; throws std::system_error
    static bool perform_wait(operation* op) noexcept;  // reaps the child if it has exited
    std::shared_ptr<child_state> child;
};

}  // namespace detail

/// A started child process (see the file comment). Move-only.
class process {
public:
    /// No child (wait() throws bad_file_descriptor, pid() is -1).
    process() noexcept;
    /// Takes o's child and pipes (o is left without a child); safe with a wait pending.
    process(process&& o) noexcept;
    /// Drops the current child (as the destructor) and takes o's.
    process& operator=(process&& o) noexcept;
    /// Closes the pipes still held here; a child not yet reaped is reaped in the background
    /// (never killed, never waited for here).
    ~process();

    /// Starts `opts.program` (see the file comment). Throws std::system_error with the OS's
    /// code: no_such_file_or_directory (program, or working directory, missing), permission_denied,
    /// too_many_files_open, ...; invalid_argument for an empty program or a '\0' inside a
    /// string; on Windows, the Win32 error (see the file comment).
    static process start(runtime& rt, const process_options& opts);

    /// The child's process id (kept after it is reaped, for messages); -1 without a child.
    long pid() const noexcept;

    /// Waits for the child to end: its exit_status. Once reaped, every later wait() gives the
    /// same status at once. Throws std::system_error: operation_aborted when cancelled (the
    /// child keeps running), bad_file_descriptor without a child, no_child_process when
    /// something else reaped it (waitpid(-1), SIGCHLD ignored).
    detail::process_wait_op wait() noexcept;

    /// The status if the child has ended (reaping it), else nullopt. Never blocks. Throws as wait().
    std::optional<exit_status> try_wait();

    /// Sends signal `signo` (POSIX) to the child; does nothing once it is reaped (its pid may
    /// belong to another process by then). Throws std::system_error (invalid_argument for a bad
    /// signal, bad_file_descriptor without a child). Any thread.
    void kill(int signo);
    /// Ends the child at once: SIGKILL (POSIX); TerminateProcess, exit code 1 (Windows). As kill().
    void kill();
    /// Asks the child to end: SIGTERM (POSIX); TerminateProcess, exit code 1 (Windows). As kill().
    void terminate();

    /// The parent's end of the child's stdin (stdio::pipe), else a closed pipe_stream.
    pipe_stream& stdin_pipe() noexcept { return in_; }
    /// The parent's end of the child's stdout (stdio::pipe), else a closed pipe_stream.
    pipe_stream& stdout_pipe() noexcept { return out_; }
    /// The parent's end of the child's stderr (stdio::pipe), else a closed pipe_stream.
    pipe_stream& stderr_pipe() noexcept { return err_; }

private:
    void drop() noexcept;  // the destructor's part: hand an unreaped child to the background reaper
    std::shared_ptr<detail::child_state> child_;
    pipe_stream in_, out_, err_;
};

}  // namespace taskport::io
