// checksum_list.cpp — sha256sum's line format (see checksum_list.hpp).
#include "checksum_list.hpp"

#include <algorithm>

namespace samples::checksum {

bool has_any(std::string_view s, std::string_view chars) { return s.find_first_of(chars) != s.npos; }

std::string escape_name(std::string_view s) {
    std::string r;
    r.reserve(s.size() + 8);
    for (char c : s) {
        if (c == '\\') r += "\\\\";
        else if (c == '\n') r += "\\n";
        else if (c == '\r') r += "\\r";
        else r += c;
    }
    return r;
}

bool unescape_name(std::string_view s, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\') {
            out += s[i];
            continue;
        }
        if (++i == s.size()) return false;
        if (s[i] == '\\') out += '\\';
        else if (s[i] == 'n') out += '\n';
        else if (s[i] == 'r') out += '\r';
        else return false;
    }
    return true;
}

bool is_hex64(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
           });
}

namespace {
std::string lower(std::string_view s) {
    std::string r(s);
    for (char& c : r)
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    return r;
}
}  // namespace

line_kind parse_line(std::string_view line, std::string& hex, std::string& name) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') return line_kind::skip;
    const bool escaped = line.front() == '\\';
    if (escaped) line.remove_prefix(1);
    std::string_view raw;
    if (line.starts_with("SHA256 (")) {
        const std::size_t close = line.rfind(") = ");
        if (close == line.npos || close < 8) return line_kind::bad;
        raw = line.substr(8, close - 8);
        hex = std::string(line.substr(close + 4));
        if (!is_hex64(hex)) return line_kind::bad;
    } else {
        if (line.size() < 66 || !is_hex64(line.substr(0, 64)) || line[64] != ' ') return line_kind::bad;
        hex = std::string(line.substr(0, 64));
        raw = line.substr(65);
        if (!raw.empty() && (raw.front() == ' ' || raw.front() == '*')) raw.remove_prefix(1);
    }
    if (raw.empty()) return line_kind::bad;
    if (escaped) {
        if (!unescape_name(raw, name)) return line_kind::bad;
    } else {
        name = std::string(raw);
    }
    hex = lower(hex);
    return line_kind::entry;
}

void append_sum_line(std::string& out, std::string_view hex, std::string_view name) {
    if (has_any(name, "\\\n\r")) {
        out += '\\';
        out += hex;
        out += "  ";
        out += escape_name(name);
    } else {
        out += hex;
        out += "  ";
        out += name;
    }
    out += '\n';
}

void append_check_line(std::string& out, std::string_view name, std::string_view verdict) {
    if (name.find('\n') != name.npos) {
        out += '\\';
        out += escape_name(name);
    } else {
        out += name;
    }
    out += ": ";
    out += verdict;
    out += '\n';
}

list_counts read_list(std::istream& in, const std::function<void(const std::string& hex, const std::string& name)>& on_entry) {
    list_counts c;
    std::string line, hex, name;
    while (std::getline(in, line)) {
        switch (parse_line(line, hex, name)) {
            case line_kind::skip: break;
            case line_kind::bad: ++c.bad; break;
            case line_kind::entry:
                on_entry(hex, name);
                ++c.entries;
                break;
        }
    }
    return c;
}

}  // namespace samples::checksum
