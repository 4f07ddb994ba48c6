// checksum_list.hpp — sha256sum's line format, as taskport-hash writes it and reads it back with
// -c: "<hex>  <name>", "<hex> *<name>" or "SHA256 (<name>) = <hex>"; a name holding '\\', '\n'
// or '\r' is escaped ("\\\\", "\\n", "\\r") and its line starts with a backslash.
//
// No I/O beyond the istream it is given: hash.cpp uses it for its output and its -c lists, and
// tests/fuzz/ feeds it arbitrary lists. Invariant: a line format_sum_line() writes, for any name
// and digest, parses back to that name and digest (lower case); any other input is an entry, a
// line to skip, or a bad line, never undefined behaviour.
#pragma once

#include <cstddef>
#include <functional>
#include <istream>
#include <string>
#include <string_view>

namespace samples::checksum {

bool has_any(std::string_view s, std::string_view chars);
std::string escape_name(std::string_view s);
// Undoes escape_name; false for a lone or unknown escape.
bool unescape_name(std::string_view s, std::string& out);
bool is_hex64(std::string_view s);

enum class line_kind { entry, skip, bad };

// One line of a checksum list (without its '\n'; a trailing '\r' is dropped). Comments (#) and
// blank lines are skipped. On entry, hex is the digest in lower case and name the file's name.
line_kind parse_line(std::string_view line, std::string& hex, std::string& name);

// hex + "  " + name + '\n', escaped (leading backslash) when the name needs it: sha256sum's output.
void append_sum_line(std::string& out, std::string_view hex, std::string_view name);
// name + ": " + verdict + '\n' for -c ("OK", "FAILED"...): escaped only when the name holds a
// newline, as sha256sum does.
void append_check_line(std::string& out, std::string_view name, std::string_view verdict);

struct list_counts {
    std::size_t entries = 0;  // lines that named a file and its digest
    std::size_t bad = 0;      // improperly formatted lines
};

// Reads a list line by line ('\n'-separated, as std::getline), calling on_entry(hex, name) for
// each entry in order.
list_counts read_list(std::istream& in, const std::function<void(const std::string& hex, const std::string& name)>& on_entry);

}  // namespace samples::checksum
