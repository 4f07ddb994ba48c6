// proc_child_win.cpp — the child test_io_process runs on Windows (where there is no sh, cat or
// /proc): what it was asked to report goes to a file, its exit code is asked for.
//   tp_proc_child exit N              exits with code N
//   tp_proc_child sleep               waits forever (for kill, cancel, with_timeout)
//   tp_proc_child args FILE ARG...    writes each ARG (UTF-8), one a line, to FILE
//   tp_proc_child cwd FILE            writes its working directory to FILE
//   tp_proc_child env FILE NAME...    writes NAME=value or NAME unset, one a line, to FILE
//   tp_proc_child stdin               exits 0 when stdin is at end of file at once (the null device)
//   tp_proc_child cat                 copies stdin to stdout until end of file
//   tp_proc_child both                writes "out" to stdout, "err" to stderr, exits 3
#include <windows.h>

#include <cstdio>
#include <cstdlib>
#include <cwchar>
#include <string>

namespace {

std::string utf8(const wchar_t* w) {
    const int n = ::WideCharToMultiByte(CP_UTF8, 0, w, -1, nullptr, 0, nullptr, nullptr);
    std::string s(n > 0 ? static_cast<std::size_t>(n) : 1, '\0');
    ::WideCharToMultiByte(CP_UTF8, 0, w, -1, s.data(), n, nullptr, nullptr);
    s.resize(s.size() - 1);
    return s;
}

}  // namespace

int wmain(int argc, wchar_t** argv) {
    if (argc < 2) return 100;
    const std::wstring mode = argv[1];
    if (mode == L"exit" && argc == 3) return std::wcstol(argv[2], nullptr, 10);
    if (mode == L"sleep") {
        ::Sleep(INFINITE);
        return 101;
    }
    if (mode == L"stdin") {
        char b;
        DWORD n = 0;
        const BOOL ok = ::ReadFile(::GetStdHandle(STD_INPUT_HANDLE), &b, 1, &n, nullptr);
        return ok && n == 0 ? 0 : 102;
    }
    if (mode == L"cat") {
        char buf[65536];
        DWORD n = 0;
        while (::ReadFile(::GetStdHandle(STD_INPUT_HANDLE), buf, sizeof buf, &n, nullptr) && n > 0) {
            for (DWORD done = 0; done < n;) {
                DWORD w = 0;
                if (!::WriteFile(::GetStdHandle(STD_OUTPUT_HANDLE), buf + done, n - done, &w, nullptr)) return 104;
                done += w;
            }
        }
        return 0;
    }
    if (mode == L"both") {
        DWORD w = 0;
        ::WriteFile(::GetStdHandle(STD_OUTPUT_HANDLE), "out", 3, &w, nullptr);
        ::WriteFile(::GetStdHandle(STD_ERROR_HANDLE), "err", 3, &w, nullptr);
        return 3;
    }
    if (argc < 3) return 100;
    FILE* f = ::_wfopen(argv[2], L"wb");
    if (!f) return 103;
    if (mode == L"args") {
        for (int i = 3; i < argc; ++i) std::fprintf(f, "%s\n", utf8(argv[i]).c_str());
    } else if (mode == L"cwd") {
        wchar_t dir[MAX_PATH * 4];
        ::GetCurrentDirectoryW(MAX_PATH * 4, dir);
        std::fprintf(f, "%s\n", utf8(dir).c_str());
    } else if (mode == L"env") {
        for (int i = 3; i < argc; ++i) {
            const wchar_t* v = ::_wgetenv(argv[i]);
            if (v)
                std::fprintf(f, "%s=%s\n", utf8(argv[i]).c_str(), utf8(v).c_str());
            else
                std::fprintf(f, "%s unset\n", utf8(argv[i]).c_str());
        }
    } else {
        std::fclose(f);
        return 100;
    }
    std::fclose(f);
    return 0;
}
