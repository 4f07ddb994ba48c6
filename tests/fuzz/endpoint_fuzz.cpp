// endpoint_fuzz.cpp — libFuzzer target for io::endpoint::parse (io/src/endpoint.cpp).
//
// Properties, for any text:
//   - both overloads agree: the throwing one throws std::invalid_argument exactly when the
//     error_code one sets std::errc::invalid_argument (and then returns the default endpoint);
//     the message names the text;
//   - an accepted text is what the documentation says it is, checked against the system's own
//     inet_pton: "a.b.c.d:port" or "[v6]:port" / "[v6%scope]:port", the port 1 to 5 decimal digits
//     equal to port(), the address equal to the parsed one, and a scope that is an interface name
//     (if_nametoindex) or a decimal number of at most 32 bits equal to the scope id;
//   - to_string() of what was parsed parses back to the same endpoint and prints the same.
#include <taskport/io/endpoint.hpp>

#include "fuzz_check.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace io = taskport::io;

namespace {

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// What the text must have meant, given that parse accepted it as e.
void check_accepted(std::string_view text, const io::endpoint& e) {
    CHECK_PROP(e.is_v4() || e.is_v6(), text);
    CHECK_PROP(text.find('\0') == std::string_view::npos, text);
    const std::size_t colon = text.rfind(':');
    CHECK_PROP(colon != std::string_view::npos, text);
    const std::string_view port = text.substr(colon + 1);
    CHECK_PROP(all_digits(port) && port.size() <= 5, text);
    CHECK_PROP(std::stoul(std::string(port)) == e.port(), text);
    std::string_view host = text.substr(0, colon);
    const bool bracketed = host.starts_with('[');
    if (bracketed) {
        CHECK_PROP(host.ends_with(']') && host.size() >= 2, text);
        host = host.substr(1, host.size() - 2);
    }
    CHECK_PROP(!host.empty() && host.size() < 64, text);
    if (e.is_v4()) {
        in_addr a{};
        CHECK_PROP(::inet_pton(AF_INET, std::string(host).c_str(), &a) == 1, text);
        CHECK_PROP(std::memcmp(&a, &reinterpret_cast<const sockaddr_in*>(e.data())->sin_addr, sizeof a) == 0, text);
        CHECK_PROP(e.size() == sizeof(sockaddr_in), text);
        return;
    }
    CHECK_PROP(bracketed, text);  // IPv6 only in brackets
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(e.data());
    const std::size_t pct = host.find('%');
    const std::string addr(host.substr(0, pct));
    in6_addr a{};
    CHECK_PROP(::inet_pton(AF_INET6, addr.c_str(), &a) == 1, text);
    CHECK_PROP(std::memcmp(&a, &v6->sin6_addr, sizeof a) == 0, text);
    if (pct == std::string_view::npos) {
        CHECK_PROP(v6->sin6_scope_id == 0, text);
        return;
    }
    const std::string scope(host.substr(pct + 1));
    const unsigned idx = ::if_nametoindex(scope.c_str());
    if (idx != 0) {
        CHECK_PROP(v6->sin6_scope_id == idx, text);
    } else {
        // Not an interface: a decimal number, all digits, that fits the 32-bit scope id.
        CHECK_PROP(all_digits(scope), text);
        const std::size_t nz = std::min(scope.find_first_not_of('0'), scope.size() - 1);  // leading zeros
        const std::string digits = scope.substr(nz);
        CHECK_PROP(digits.size() <= 10 && std::stoull(digits) <= 0xffffffffull, text);
        CHECK_PROP(v6->sin6_scope_id == std::stoull(digits), text);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    std::error_code ec;
    const io::endpoint e = io::endpoint::parse(text, ec);
    bool threw = false;
    try {
        const io::endpoint t = io::endpoint::parse(text);
        CHECK_PROP(t == e, text);
    } catch (const std::invalid_argument& x) {
        threw = true;
        if (text.find('\0') == std::string_view::npos)
            CHECK_PROP(std::string_view(x.what()).find("'" + std::string(text) + "'") != std::string_view::npos, text);
    }
    CHECK_PROP(threw == (ec == std::errc::invalid_argument), text);
    CHECK_PROP(threw || !ec, text);
    if (threw) {
        CHECK_PROP(e == io::endpoint(), text);
        return 0;
    }

    check_accepted(text, e);

    // Printing and parsing again is the identity.
    const std::string s = e.to_string();
    std::error_code ec2;
    const io::endpoint again = io::endpoint::parse(s, ec2);
    CHECK_PROP(!ec2, s);
    CHECK_PROP(again == e, s);
    CHECK_PROP(again.to_string() == s, s);
    // from(address, port) builds the same endpoint.
    CHECK_PROP(io::endpoint::from(e.address(), e.port()) == e, s);
    return 0;
}
