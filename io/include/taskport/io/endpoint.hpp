// taskport/io/endpoint.hpp — an IPv4 or IPv6 address and port.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

struct sockaddr;

namespace taskport::io {

class endpoint {
public:
    endpoint() noexcept;  // 0.0.0.0:0

    // "127.0.0.1:8080", "[::1]:80", "[fe80::1%eth0]:443". Throws std::invalid_argument
    // naming the text and what is wrong with it.
    static endpoint parse(std::string_view text);
    // As above; on failure returns a default endpoint and sets ec (std::errc::invalid_argument).
    static endpoint parse(std::string_view text, std::error_code& ec) noexcept;

    // From an address without port ("10.0.0.1", "::1") and a port.
    static endpoint from(std::string_view address, std::uint16_t port);

    static endpoint any_v4(std::uint16_t port) noexcept;
    static endpoint loopback_v4(std::uint16_t port) noexcept;
    static endpoint any_v6(std::uint16_t port) noexcept;
    static endpoint loopback_v6(std::uint16_t port) noexcept;

    std::uint16_t port() const noexcept;
    void port(std::uint16_t p) noexcept;
    bool is_v4() const noexcept;
    bool is_v6() const noexcept;
    std::string address() const;    // "127.0.0.1" / "::1"
    std::string to_string() const;  // "127.0.0.1:8080" / "[::1]:80"

    // Raw socket address (sockaddr_in or sockaddr_in6).
    const sockaddr* data() const noexcept;
    sockaddr* data() noexcept;
    std::uint32_t size() const noexcept;
    static constexpr std::uint32_t capacity() noexcept { return sizeof(storage_); }
    // Adopts a socket address filled in by the system (len bytes). ec on an unknown family.
    static endpoint from_sockaddr(const sockaddr* sa, std::uint32_t len, std::error_code& ec) noexcept;

    friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

private:
    alignas(8) unsigned char storage_[28];  // sockaddr_in6 is the largest we hold
};

}  // namespace taskport::io
