// process_win.cpp — io::process on Windows (see process.hpp): CreateProcessW, and the child's
// exit delivered through the completion port.
//
// Invariant: a child_state owns the process handle, a thread-pool wait on it
// (RegisterWaitForSingleObject, WT_EXECUTEONLYONCE) and a loopback socket pair (signal_win.cpp's
// socket_pair). The wait's callback runs once, when the process ends, and sends one byte on the
// write socket; a wait() is an overlapped 1-byte WSARecv on the read socket (the watch, a
// socket_core on the port: iocp_socket.cpp's issue_byte_recv), so the byte's arrival completes
// it through the port, and future::cancel, with_timeout and the drop's cancel abort it exactly
// once, by the socket layer's CancelIoEx, as any socket operation. The byte is never needed
// twice: a wait first looks at the process handle (WaitForSingleObject(h, 0)) and finishes at
// once when the process has ended. The child_state's destructor unregisters the wait with
// UnregisterWaitEx(INVALID_HANDLE_VALUE), which returns only once the callback cannot run or has
// returned, so the callback never sees a freed state; then it closes the sockets and the handle.
#include <taskport/io/process.hpp>
#include <taskport/runtime.hpp>

#include "iocp_backend.hpp"
#include "process_common.hpp"
#include "service.hpp"
#include "socket_ops.hpp"
#include "socket_types.hpp"

#include <algorithm>
#include <atomic>
#include <cwchar>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace taskport::io {

namespace detail {

void socket_pair(SOCKET& rd, SOCKET& wr, const char* what);  // signal_win.cpp

struct child_state {
    HANDLE process = nullptr;
    DWORD pid = 0;
    HANDLE wait = nullptr;       // the thread-pool wait on `process`
    SOCKET wr = INVALID_SOCKET;  // the callback sends one byte here when the process ends
    socket_core watch;           // the read end: wait()'s 1-byte receive

    child_state() = default;
    child_state(const child_state&) = delete;
    child_state& operator=(const child_state&) = delete;
    ~child_state() {
        if (wait) ::UnregisterWaitEx(wait, INVALID_HANDLE_VALUE);  // the callback has returned
        if (wr != INVALID_SOCKET) ::closesocket(wr);
        watch.close();
        if (process) ::CloseHandle(process);
    }

    bool ended() const noexcept { return ::WaitForSingleObject(process, 0) == WAIT_OBJECT_0; }
    exit_status status(const char* what) const {
        DWORD code = 0;
        if (!::GetExitCodeProcess(process, &code))
            throw std::system_error(win32_error(static_cast<int>(::GetLastError())), what);
        return exit_status::from_code(static_cast<int>(code));
    }
};

namespace {

// The thread pool's callback: the process has ended (INFINITE: never a timeout).
void CALLBACK on_process_end(PVOID ctx, BOOLEAN) {
    auto* c = static_cast<child_state*>(ctx);
    const char b = 1;
    ::send(c->wr, &b, 1, 0);
}

[[noreturn]] void fail_win32(DWORD e, const std::string& what) {
    throw std::system_error(win32_error(static_cast<int>(e)), what);
}
[[noreturn]] void fail_errc(std::errc e, const std::string& what) {
    throw std::system_error(std::make_error_code(e), what);
}

// UTF-8 to UTF-16; a string that is not UTF-8, or holds a '\0', is invalid_argument.
std::wstring widen(const std::string& s, const char* what) {
    if (s.find('\0') != std::string::npos) fail_errc(std::errc::invalid_argument, std::string(what) + ": '\\0' in a string");
    if (s.empty()) return {};
    const int n = ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), nullptr, 0);
    if (n <= 0) fail_errc(std::errc::invalid_argument, std::string(what) + ": not UTF-8: " + s);
    std::wstring w(static_cast<std::size_t>(n), L'\0');
    ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), w.data(), n);
    return w;
}

// One argument quoted so that the Microsoft C runtime's parser (CommandLineToArgvW's rules) gives
// it back unchanged: backslashes are literal except before a '"', where 2n backslashes give n and
// 2n+1 give n and a literal '"'.
void append_quoted(std::wstring& line, const std::wstring& arg) {
    if (!arg.empty() && arg.find_first_of(L" \t\n\v\"") == std::wstring::npos) {
        line += arg;
        return;
    }
    line += L'"';
    std::size_t backslashes = 0;
    for (wchar_t ch : arg) {
        if (ch == L'\\') {
            ++backslashes;
            continue;
        }
        if (ch == L'"') line.append(backslashes * 2 + 1, L'\\');
        else line.append(backslashes, L'\\');
        backslashes = 0;
        line += ch;
    }
    line.append(backslashes * 2, L'\\');  // before the closing quote
    line += L'"';
}

bool same_name(const std::wstring& a, const std::wstring& b) noexcept {
    return ::CompareStringOrdinal(a.data(), static_cast<int>(a.size()), b.data(), static_cast<int>(b.size()), TRUE) ==
           CSTR_EQUAL;
}

using env_list = std::vector<std::pair<std::wstring, std::wstring>>;

// The child's environment as name/value pairs (names compared case-insensitively, as Windows
// does); `changed` says whether it differs from this process's.
env_list child_env(const process_options& o, const char* what, bool& changed) {
    env_list env;
    changed = !o.inherit_env || !o.env_changes.empty();
    if (o.inherit_env) {
        if (wchar_t* block = ::GetEnvironmentStringsW()) {
            for (const wchar_t* p = block; *p; p += std::wcslen(p) + 1) {
                std::wstring entry(p);
                const std::size_t eq = entry.find(L'=', 1);  // "=C:=C:\dir" entries start with '='
                if (eq == std::wstring::npos) continue;
                env.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
            }
            ::FreeEnvironmentStringsW(block);
        }
    }
    for (const auto& [name, value] : o.env_changes) {
        if (name.empty() || name.find('=') != std::string::npos)
            fail_errc(std::errc::invalid_argument, std::string(what) + ": bad environment variable name '" + name + "'");
        std::wstring wn = widen(name, what);
        env.erase(std::remove_if(env.begin(), env.end(), [&](const auto& e) { return same_name(e.first, wn); }),
                  env.end());
        if (value) env.emplace_back(std::move(wn), widen(*value, what));
    }
    return env;
}

// CreateProcess's block: sorted by name (case-insensitively), "name=value\0" each, then '\0'.
std::wstring env_block(env_list env) {
    std::stable_sort(env.begin(), env.end(), [](const auto& a, const auto& b) {
        return ::CompareStringOrdinal(a.first.data(), static_cast<int>(a.first.size()), b.first.data(),
                                      static_cast<int>(b.first.size()), TRUE) == CSTR_LESS_THAN;
    });
    std::wstring block;
    for (const auto& [n, v] : env) {
        block += n;
        block += L'=';
        block += v;
        block += L'\0';
    }
    if (block.empty()) block += L'\0';
    block += L'\0';
    return block;
}

bool has_separator(const std::wstring& p) noexcept { return p.find_first_of(L"/\\:") != std::wstring::npos; }

// The program's path: as given when it has a separator, else looked up with SearchPathW in the
// child's PATH (this process's when the options leave PATH alone), ".exe" added when it has no
// extension. Not found: no_such_file_or_directory (ERROR_FILE_NOT_FOUND).
std::wstring resolve_program(const std::wstring& prog, const env_list& env, bool env_changed, const char* what,
                             const std::string& name) {
    if (has_separator(prog)) {
        const DWORD a = ::GetFileAttributesW(prog.c_str());
        if (a == INVALID_FILE_ATTRIBUTES) fail_win32(::GetLastError(), std::string(what) + ": " + name);
        return prog;
    }
    std::wstring path;
    bool have_path = false;
    if (env_changed) {
        for (const auto& [n, v] : env)
            if (same_name(n, L"PATH")) {
                path = v;
                have_path = true;
            }
    } else {
        const DWORD n = ::GetEnvironmentVariableW(L"PATH", nullptr, 0);
        if (n > 0) {
            path.resize(n);
            const DWORD got = ::GetEnvironmentVariableW(L"PATH", path.data(), n);
            path.resize(got < n ? got : 0);
            have_path = true;
        }
    }
    if (!have_path) fail_win32(ERROR_FILE_NOT_FOUND, std::string(what) + ": " + name + " (no PATH)");
    std::wstring found(MAX_PATH, L'\0');
    for (;;) {
        const DWORD n = ::SearchPathW(path.c_str(), prog.c_str(), L".exe", static_cast<DWORD>(found.size()),
                                      found.data(), nullptr);
        if (n == 0) {
            const DWORD e = ::GetLastError();
            fail_win32(e ? e : ERROR_FILE_NOT_FOUND, std::string(what) + ": " + name + " (looked up in PATH)");
        }
        if (n < found.size()) {
            found.resize(n);
            return found;
        }
        found.resize(n);
    }
}

// A handle that closes itself.
struct owned_handle {
    HANDLE h = nullptr;
    owned_handle() = default;
    explicit owned_handle(HANDLE x) : h(x) {}
    owned_handle(const owned_handle&) = delete;
    owned_handle& operator=(const owned_handle&) = delete;
    ~owned_handle() {
        if (h && h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
    }
};

// The handle the child gets for one stream, inheritable (closed here after CreateProcess):
// a duplicate of this process's own (inherit), the null device (null), or none when this
// process has no such stream.
HANDLE child_stdio(stdio s, DWORD which, const char* what) {
    SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, TRUE};
    if (s == stdio::null) {
        HANDLE h = ::CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                                 OPEN_EXISTING, 0, nullptr);
        if (h == INVALID_HANDLE_VALUE) fail_win32(::GetLastError(), std::string(what) + ": open NUL");
        return h;
    }
    HANDLE mine = ::GetStdHandle(which);
    if (mine == nullptr || mine == INVALID_HANDLE_VALUE) return nullptr;
    HANDLE dup = nullptr;
    if (!::DuplicateHandle(::GetCurrentProcess(), mine, ::GetCurrentProcess(), &dup, 0, TRUE, DUPLICATE_SAME_ACCESS))
        return nullptr;  // not a handle that can be passed on (a console's pseudo-handle...): none
    return dup;
}

// A child's stdio::pipe: a named pipe with a name nobody else can have taken (this process's id,
// a counter, the tick count; FILE_FLAG_FIRST_PIPE_INSTANCE fails if the name exists, and a new
// name is tried), one instance, byte mode, local clients only. `mine`: the server end,
// overlapped, not inheritable (the pipe_stream, on the port). `theirs`: the client end opened
// with CreateFileW right away (so nobody else can connect: one instance), not overlapped (a
// child's ReadFile/WriteFile on a standard handle expects a synchronous handle), inheritable,
// and passed to the child only through the handle list. child_reads: the child's stdin.
void stdio_pipe(bool child_reads, HANDLE& mine, HANDLE& theirs, const char* what) {
    static std::atomic<unsigned> counter{0};  // relaxed: only uniqueness matters
    constexpr DWORD buffer = 64 * 1024;
    mine = theirs = INVALID_HANDLE_VALUE;
    std::wstring name;
    for (int attempt = 0;; ++attempt) {
        name = L"\\\\.\\pipe\\taskport-" + std::to_wstring(::GetCurrentProcessId()) + L"-" +
               std::to_wstring(counter.fetch_add(1, std::memory_order_relaxed)) + L"-" + std::to_wstring(::GetTickCount64());
        mine = ::CreateNamedPipeW(name.c_str(),
                                  (child_reads ? PIPE_ACCESS_OUTBOUND : PIPE_ACCESS_INBOUND) | FILE_FLAG_OVERLAPPED |
                                      FILE_FLAG_FIRST_PIPE_INSTANCE,
                                  PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1, buffer,
                                  buffer, 0, nullptr);
        if (mine != INVALID_HANDLE_VALUE) break;
        const DWORD e = ::GetLastError();
        if ((e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY) && attempt < 16) continue;  // the name exists
        fail_win32(e, std::string(what) + ": CreateNamedPipeW");
    }
    SECURITY_ATTRIBUTES sa{sizeof sa, nullptr, TRUE};
    // The child may set its end's state (SetNamedPipeHandleState), hence the attribute right.
    theirs = ::CreateFileW(name.c_str(), child_reads ? GENERIC_READ | FILE_WRITE_ATTRIBUTES : GENERIC_WRITE | FILE_READ_ATTRIBUTES,
                           0, &sa, OPEN_EXISTING, 0, nullptr);
    if (theirs == INVALID_HANDLE_VALUE) {
        const DWORD e = ::GetLastError();
        ::CloseHandle(std::exchange(mine, INVALID_HANDLE_VALUE));
        fail_win32(e, std::string(what) + ": CreateFileW (the pipe's client end)");
    }
}

}  // namespace

bool process_wait_op::await_ready() noexcept {
    if (!child) {
        ec = std::make_error_code(std::errc::bad_file_descriptor);
        return true;
    }
    if (child->ended()) {
        ec.clear();
        return true;
    }
    if (st.get() && st.get()->closed.load(std::memory_order_acquire)) {  // the process was dropped
        ec = operation_aborted();
        return true;
    }
    return socket_op::await_ready();
}

exit_status process_wait_op::await_resume() const {
    throw_if(ec, "taskport::io::process::wait");
    return child->status("taskport::io::process::wait");
}

// The 1-byte receive's completion (iocp_socket.cpp: issue_byte_recv).
bool process_wait_op::perform_wait(operation* o) noexcept {
    auto* op = static_cast<process_wait_op*>(o);
    const int e = op->plat.error;
    op->bytes = 0;
    if (e != 0 || op->plat.transferred == 0) {
        // Nothing received: the watch was closed or cancelled (the drop, future::cancel).
        op->ec = e != 0 && !op->st.get()->closed.load(std::memory_order_acquire) ? win32_error(e) : operation_aborted();
        return true;
    }
    op->ec.clear();
    return true;
}

}  // namespace detail

namespace detail {

// process::drop's Windows part (process_common.hpp). Windows keeps no zombie: the child runs on,
// and its handle (with the wait and the watch) is closed once the last pending wait lets go of
// the state. Closed, not only cancelled: a wait made before the drop but not parked yet
// (spawned, not run) is aborted too when it starts (await_ready), instead of waiting for the exit.
void release_child(std::shared_ptr<child_state> c) noexcept {
    if (c) c->watch.close();
}

}  // namespace detail

long process::pid() const noexcept { return child_ ? static_cast<long>(child_->pid) : -1; }

detail::process_wait_op process::wait() noexcept {
    static const detail::socket_core none;
    if (!child_) return detail::process_wait_op(none, nullptr);
    return detail::process_wait_op(child_->watch, child_);
}

std::optional<exit_status> process::try_wait() {
    const char* what = "taskport::io::process::try_wait";
    if (!child_) detail::fail_errc(std::errc::bad_file_descriptor, what);
    if (!child_->ended()) return std::nullopt;
    return child_->status(what);
}

void process::kill(int signo) {
    const char* what = "taskport::io::process::kill";
    if (signo <= 0) detail::fail_errc(std::errc::invalid_argument, std::string(what) + ": signal " + std::to_string(signo));
    if (!child_) detail::fail_errc(std::errc::bad_file_descriptor, what);
    if (child_->ended()) return;
    if (!::TerminateProcess(child_->process, 1)) {
        const DWORD e = ::GetLastError();
        if (child_->ended()) return;  // it ended meanwhile (ERROR_ACCESS_DENIED)
        detail::fail_win32(e, what);
    }
}
void process::kill() { kill(9); }        // SIGKILL's number; the child's exit code is 1
void process::terminate() { kill(15); }  // SIGTERM's number; the same TerminateProcess

process process::start(runtime& rt, const process_options& o) {
    const char* what = "taskport::io::process::start";
    if (o.program.empty()) detail::fail_errc(std::errc::invalid_argument, std::string(what) + ": empty program");
    const std::wstring prog = detail::widen(o.program, what);
    std::wstring line;
    detail::append_quoted(line, o.arg0.empty() ? prog : detail::widen(o.arg0, what));
    for (const std::string& a : o.args) {
        line += L' ';
        detail::append_quoted(line, detail::widen(a, what));
    }
    bool env_changed = false;
    detail::env_list env = detail::child_env(o, what, env_changed);
    const std::wstring app = detail::resolve_program(prog, env, env_changed, what, o.program);
    std::wstring block;
    if (env_changed) block = detail::env_block(std::move(env));
    std::wstring cwd;
    if (!o.working_dir.empty()) {
        cwd = detail::widen(o.working_dir, what);
        const DWORD a = ::GetFileAttributesW(cwd.c_str());
        if (a == INVALID_FILE_ATTRIBUTES)
            detail::fail_win32(::GetLastError(), std::string(what) + ": working directory " + o.working_dir);
        if (!(a & FILE_ATTRIBUTE_DIRECTORY))
            detail::fail_win32(ERROR_DIRECTORY, std::string(what) + ": working directory " + o.working_dir);
    }

    // The watch first: nothing is started when it cannot be made.
    detail::service& svc = detail::service_of(rt);
    detail::net_init();
    auto c = std::make_shared<detail::child_state>();
    SOCKET rd = INVALID_SOCKET;
    detail::socket_pair(rd, c->wr, what);
    c->watch = detail::socket_core(&svc, rd);  // closes rd if it throws

    // stdio::pipe: a named pipe per stream; this process's end on the port (a pipe_stream).
    process p;
    detail::owned_handle theirs[3];
    pipe_stream* ends[3] = {&p.in_, &p.out_, &p.err_};
    const stdio kinds[3] = {o.in, o.out, o.err};
    for (int i = 0; i < 3; ++i) {
        if (kinds[i] != stdio::pipe) continue;
        HANDLE mine = INVALID_HANDLE_VALUE;
        detail::stdio_pipe(i == 0, mine, theirs[i].h, what);
        // Closes mine if it throws (iocp_socket.cpp's close_socket: CloseHandle for a pipe).
        *ends[i] = pipe_stream(detail::socket_core(&svc, reinterpret_cast<SOCKET>(mine)));
    }
    auto std_handle = [&](int i, DWORD which) {
        return kinds[i] == stdio::pipe ? theirs[i].h : detail::child_stdio(kinds[i], which, what);
    };
    detail::owned_handle hin(o.in == stdio::pipe ? nullptr : std_handle(0, STD_INPUT_HANDLE));
    detail::owned_handle hout(o.out == stdio::pipe ? nullptr : std_handle(1, STD_OUTPUT_HANDLE));
    detail::owned_handle herr(o.err == stdio::pipe ? nullptr : std_handle(2, STD_ERROR_HANDLE));
    const HANDLE child_in = o.in == stdio::pipe ? std_handle(0, 0) : hin.h;
    const HANDLE child_out = o.out == stdio::pipe ? std_handle(1, 0) : hout.h;
    const HANDLE child_err = o.err == stdio::pipe ? std_handle(2, 0) : herr.h;
    std::vector<HANDLE> inherit;
    for (HANDLE h : {child_in, child_out, child_err})
        if (h && std::find(inherit.begin(), inherit.end(), h) == inherit.end()) inherit.push_back(h);

    // Only these handles go to the child (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), whatever else of
    // this process's is inheritable (taskport's own handles never are).
    STARTUPINFOEXW si{};
    si.StartupInfo.cb = sizeof si;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = child_in;
    si.StartupInfo.hStdOutput = child_out;
    si.StartupInfo.hStdError = child_err;
    std::vector<unsigned char> attr_buf;
    if (!inherit.empty()) {
        SIZE_T size = 0;
        ::InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
        attr_buf.resize(size);
        si.lpAttributeList = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(attr_buf.data());
        if (!::InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &size))
            detail::fail_win32(::GetLastError(), std::string(what) + ": InitializeProcThreadAttributeList");
        if (!::UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherit.data(),
                                         inherit.size() * sizeof(HANDLE), nullptr, nullptr)) {
            const DWORD e = ::GetLastError();
            ::DeleteProcThreadAttributeList(si.lpAttributeList);
            detail::fail_win32(e, std::string(what) + ": UpdateProcThreadAttribute");
        }
    }
    PROCESS_INFORMATION pi{};
    const BOOL ok = ::CreateProcessW(app.c_str(), line.data(), nullptr, nullptr, inherit.empty() ? FALSE : TRUE,
                                     CREATE_UNICODE_ENVIRONMENT | (inherit.empty() ? 0 : EXTENDED_STARTUPINFO_PRESENT),
                                     env_changed ? block.data() : nullptr, cwd.empty() ? nullptr : cwd.c_str(),
                                     &si.StartupInfo, &pi);
    const DWORD err = ok ? 0 : ::GetLastError();
    if (si.lpAttributeList) ::DeleteProcThreadAttributeList(si.lpAttributeList);
    if (!ok) detail::fail_win32(err, std::string(what) + ": " + o.program);
    ::CloseHandle(pi.hThread);
    c->process = pi.hProcess;
    c->pid = pi.dwProcessId;
    if (!::RegisterWaitForSingleObject(&c->wait, c->process, &detail::on_process_end, c.get(), INFINITE,
                                       WT_EXECUTEONLYONCE)) {
        const DWORD e = ::GetLastError();
        c->wait = nullptr;
        ::TerminateProcess(c->process, 1);  // nobody could wait for it
        detail::fail_win32(e, std::string(what) + ": RegisterWaitForSingleObject");
    }
    p.child_ = std::move(c);
    return p;
}

}  // namespace taskport::io
