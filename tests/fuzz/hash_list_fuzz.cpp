// hash_list_fuzz.cpp — libFuzzer target for taskport-hash's checksum lists
// (samples/hash/checksum_list.hpp): the -c list reader and the line format it shares with the
// tool's output.
//
// Properties, for any input:
//   - read as a list (what `taskport-hash -c` reads), every entry has a 64-digit lower-case hex
//     digest and a non-empty name; a line is an entry, skipped or bad, and counted once;
//   - every entry, written again as the tool writes a sum line, reads back as one entry with the
//     same digest and name;
//   - the input taken as a file name (any bytes), with a digest made from it, written as a sum
//     line, is exactly one line and reads back to that name and digest; its -c verdict line is
//     one line too.
#include "checksum_list.hpp"

#include "fuzz_check.hpp"

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ck = samples::checksum;

namespace {

using entries = std::vector<std::pair<std::string, std::string>>;

entries read_all(const std::string& text, ck::list_counts& counts) {
    entries got;
    std::istringstream in(text);
    counts = ck::read_list(in, [&](const std::string& hex, const std::string& name) { got.emplace_back(hex, name); });
    return got;
}

bool lower_hex64(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// The sum line for (hex, name) reads back as exactly that, and only that.
void check_round_trip(const std::string& hex, const std::string& name, std::string_view context) {
    std::string line;
    ck::append_sum_line(line, hex, name);
    CHECK_PROP(line.ends_with('\n') && line.find('\n') == line.size() - 1, context);
    ck::list_counts c;
    const entries back = read_all(line, c);
    CHECK_PROP(c.entries == 1 && c.bad == 0, context);
    CHECK_PROP(back.size() == 1 && back[0].first == hex && back[0].second == name, context);
    // CRLF line ends (a list edited on Windows) read the same.
    line.insert(line.size() - 1, "\r");
    const entries crlf = read_all(line, c);
    CHECK_PROP(crlf.size() == 1 && crlf[0].first == hex && crlf[0].second == name, context);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);

    ck::list_counts counts;
    const entries got = read_all(text, counts);
    CHECK_PROP(counts.entries == got.size(), text);
    std::size_t lines = 0;
    for (std::size_t i = 0; i < text.size(); ++i) lines += text[i] == '\n';
    if (!text.empty() && !text.ends_with('\n')) ++lines;
    CHECK_PROP(counts.entries + counts.bad <= lines, text);
    // Every entry written again as a sum line: the list of those lines reads back to the same
    // entries, in order (one pass over all of them: each line alone is the name case below).
    std::string again;
    for (const auto& [hex, name] : got) {
        CHECK_PROP(lower_hex64(hex), text);
        CHECK_PROP(!name.empty(), text);
        ck::append_sum_line(again, hex, name);
    }
    if (!got.empty()) {
        ck::list_counts c;
        CHECK_PROP(read_all(again, c) == got && c.bad == 0, text);
    }

    // The input as a name.
    if (!text.empty()) {
        static const char digits[] = "0123456789abcdef";
        std::string hex(64, '0');
        for (std::size_t i = 0; i < 64; ++i) hex[i] = digits[(static_cast<unsigned char>(text[i % size]) + i) & 15];
        check_round_trip(hex, text, text);
        std::string verdict;
        ck::append_check_line(verdict, text, "OK");
        CHECK_PROP(verdict.ends_with(": OK\n") && verdict.find('\n') == verdict.size() - 1, text);
    }
    return 0;
}
