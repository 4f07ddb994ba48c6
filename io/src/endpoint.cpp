// endpoint.cpp — parsing and printing socket addresses (POSIX and Windows).
#include <taskport/io/endpoint.hpp>

#include "socket_types.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace taskport::io {

static_assert(sizeof(sockaddr_in6) <= 28, "endpoint storage too small");

namespace {

const char* parse_into(std::string_view text, endpoint& out) noexcept {
    if (text.empty()) return "empty address";
    std::string_view host, port;
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return "missing ']' after IPv6 address";
        host = text.substr(1, close - 1);
        if (close + 1 >= text.size() || text[close + 1] != ':') return "expected ':port' after ']'";
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return "expected host:port";
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return "IPv6 addresses must be written in brackets, as [::1]:80";
    }
    if (port.empty()) return "missing port";
    if (port.size() > 5) return "port out of range (0-65535)";
    unsigned p = 0;
    for (char c : port) {
        if (c < '0' || c > '9') return "port is not a number";
        p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p > 65535) return "port out of range (0-65535)";
    if (host.empty()) return "missing host";
    // inet_pton reads a C string: an embedded NUL would cut the text short and accept
    // "127.0.0.1\0junk" as 127.0.0.1.
    if (host.find('\0') != std::string_view::npos) return "address contains a NUL character";
    if (host.size() >= 64) return "address too long";
    char buf[64];
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    detail::net_init();
    std::memset(out.data(), 0, endpoint::capacity());
    auto* v4 = reinterpret_cast<sockaddr_in*>(out.data());
    if (::inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(p));
        return nullptr;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(out.data());
    std::memset(out.data(), 0, endpoint::capacity());
    char* pct = std::strchr(buf, '%');
    if (pct) *pct = '\0';
    if (::inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(p));
        if (pct) {
            // An interface name, else a scope id in decimal digits only, at most 32 bits
            // (strtoul would take a sign, leading blanks and wrap larger numbers).
            std::uint32_t idx = ::if_nametoindex(pct + 1);
            if (idx == 0) {
                const char* d = pct + 1;
                if (!*d) return "unknown IPv6 scope (interface)";
                std::uint64_t v = 0;
                for (; *d; ++d) {
                    if (*d < '0' || *d > '9') return "unknown IPv6 scope (interface)";
                    v = v * 10 + static_cast<unsigned>(*d - '0');
                    if (v > 0xffffffffu) return "IPv6 scope id out of range (0-4294967295)";
                }
                idx = static_cast<std::uint32_t>(v);
            }
            v6->sin6_scope_id = idx;
        }
        return nullptr;
    }
    return "not an IPv4 or IPv6 address (names need io::resolve)";
}

}  // namespace

endpoint::endpoint() noexcept {
    std::memset(storage_, 0, sizeof storage_);
    reinterpret_cast<sockaddr_in*>(storage_)->sin_family = AF_INET;
}

endpoint endpoint::parse(std::string_view text) {
    endpoint e;
    if (const char* why = parse_into(text, e))
        throw std::invalid_argument("taskport::io::endpoint: cannot parse '" + std::string(text) +
                                    "': " + why);
    return e;
}

endpoint endpoint::parse(std::string_view text, std::error_code& ec) noexcept {
    endpoint e;
    if (parse_into(text, e)) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return endpoint();
    }
    ec.clear();
    return e;
}

endpoint endpoint::from(std::string_view address, std::uint16_t port) {
    std::string t = address.find(':') != std::string_view::npos
                        ? "[" + std::string(address) + "]:" + std::to_string(port)
                        : std::string(address) + ":" + std::to_string(port);
    return parse(t);
}

endpoint endpoint::any_v4(std::uint16_t port) noexcept {
    endpoint e;
    auto* v4 = reinterpret_cast<sockaddr_in*>(e.storage_);
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    v4->sin_port = htons(port);
    return e;
}
endpoint endpoint::loopback_v4(std::uint16_t port) noexcept {
    endpoint e;
    auto* v4 = reinterpret_cast<sockaddr_in*>(e.storage_);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v4->sin_port = htons(port);
    return e;
}
endpoint endpoint::any_v6(std::uint16_t port) noexcept {
    endpoint e;
    std::memset(e.storage_, 0, sizeof e.storage_);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(e.storage_);
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_any;
    v6->sin6_port = htons(port);
    return e;
}
endpoint endpoint::loopback_v6(std::uint16_t port) noexcept {
    endpoint e = any_v6(port);
    reinterpret_cast<sockaddr_in6*>(e.storage_)->sin6_addr = in6addr_loopback;
    return e;
}

bool endpoint::is_v4() const noexcept { return data()->sa_family == AF_INET; }
bool endpoint::is_v6() const noexcept { return data()->sa_family == AF_INET6; }

std::uint16_t endpoint::port() const noexcept {
    return is_v4() ? ntohs(reinterpret_cast<const sockaddr_in*>(storage_)->sin_port)
                   : ntohs(reinterpret_cast<const sockaddr_in6*>(storage_)->sin6_port);
}
void endpoint::port(std::uint16_t p) noexcept {
    if (is_v4())
        reinterpret_cast<sockaddr_in*>(storage_)->sin_port = htons(p);
    else
        reinterpret_cast<sockaddr_in6*>(storage_)->sin6_port = htons(p);
}

std::string endpoint::address() const {
    detail::net_init();
    char buf[INET6_ADDRSTRLEN + 16] = {};
    if (is_v4()) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(storage_)->sin_addr, buf, sizeof buf);
        return buf;
    }
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(storage_);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    std::string s = buf;
    if (v6->sin6_scope_id) s += "%" + std::to_string(v6->sin6_scope_id);
    return s;
}

std::string endpoint::to_string() const {
    return is_v4() ? address() + ":" + std::to_string(port())
                   : "[" + address() + "]:" + std::to_string(port());
}

const sockaddr* endpoint::data() const noexcept { return reinterpret_cast<const sockaddr*>(storage_); }
sockaddr* endpoint::data() noexcept { return reinterpret_cast<sockaddr*>(storage_); }
std::uint32_t endpoint::size() const noexcept {
    return is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

endpoint endpoint::from_sockaddr(const sockaddr* sa, std::uint32_t len, std::error_code& ec) noexcept {
    endpoint e;
    if ((sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) ||
        (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6))) {
        std::memset(e.storage_, 0, sizeof e.storage_);
        std::memcpy(e.storage_, sa, sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
        ec.clear();
    } else {
        ec = std::make_error_code(std::errc::address_family_not_supported);
    }
    return e;
}

bool operator==(const endpoint& a, const endpoint& b) noexcept {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace taskport::io
