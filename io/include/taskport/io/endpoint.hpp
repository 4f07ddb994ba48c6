// taskport/io/endpoint.hpp — an IPv4 or IPv6 address and port.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

struct sockaddr;

namespace taskport::io {

/// An IPv4 or IPv6 address and port (a sockaddr_in or sockaddr_in6 by value). A value type: copy
/// it freely; a const endpoint may be read from any number of threads.
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

    /// 0.0.0.0:port (every IPv4 interface). Never fails.
    static endpoint any_v4(std::uint16_t port) noexcept;
    /// 127.0.0.1:port. Never fails.
    static endpoint loopback_v4(std::uint16_t port) noexcept;
    /// Every IPv6 interface: `[::]:port`. Never fails.
    static endpoint any_v6(std::uint16_t port) noexcept;
    /// The IPv6 loopback: `[::1]:port`. Never fails.
    static endpoint loopback_v6(std::uint16_t port) noexcept;

    /// The port, in host byte order.
    std::uint16_t port() const noexcept;
    /// Sets the port (host byte order); the address is kept.
    void port(std::uint16_t p) noexcept;
    /// True for an IPv4 address.
    bool is_v4() const noexcept;
    /// True for an IPv6 address.
    bool is_v6() const noexcept;
    std::string address() const;    // "127.0.0.1" / "::1"
    std::string to_string() const;  // "127.0.0.1:8080" / "[::1]:80"

    // Raw socket address (sockaddr_in or sockaddr_in6).
    const sockaddr* data() const noexcept;
    /// The raw socket address, writable (for a system call that fills it in; see from_sockaddr).
    sockaddr* data() noexcept;
    /// The length in bytes of the raw socket address (sizeof sockaddr_in or sockaddr_in6).
    std::uint32_t size() const noexcept;
    /// The most bytes an endpoint can hold (the size of its storage).
    static constexpr std::uint32_t capacity() noexcept { return sizeof(storage_); }
    // Adopts a socket address filled in by the system (len bytes). ec on an unknown family.
    static endpoint from_sockaddr(const sockaddr* sa, std::uint32_t len, std::error_code& ec) noexcept;

    /// True when the raw socket addresses are equal byte for byte (family, address, port; for
    /// IPv6 also flow label and scope id).
    friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

private:
    alignas(8) unsigned char storage_[28];  // sockaddr_in6 is the largest we hold
};

}  // namespace taskport::io
