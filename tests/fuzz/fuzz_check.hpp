// fuzz_check.hpp — the one assertion the fuzz targets use: a property that does not hold prints
// what was expected and the input's context, then aborts, which libFuzzer reports as a crash
// and saves the input for.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fuzz {

// Writes s with every byte outside printable ASCII as \xNN, so a report is readable.
inline void print_escaped(std::string_view s) {
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') std::fputc(c, stderr);
        else std::fprintf(stderr, "\\x%02x", c);
    }
}

[[noreturn]] inline void fail(const char* file, int line, const char* cond, std::string_view context) {
    std::fprintf(stderr, "%s:%d: property failed: %s\n  input: \"", file, line, cond);
    print_escaped(context);
    std::fprintf(stderr, "\"\n");
    std::abort();
}

}  // namespace fuzz

// CHECK_PROP(cond, context): context is a string_view shown when cond is false.
#define CHECK_PROP(cond, context) \
    do {                                                                    \
        if (!(cond)) ::fuzz::fail(__FILE__, __LINE__, #cond, (context));    \
    } while (0)
