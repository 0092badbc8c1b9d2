#pragma once
// The SOCKS5 / Shadowsocks address header: ATYP (1 = IPv4, 3 = domain, 4 = IPv6), address, port
// (big-endian). Pure: no I/O, no resolver.

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "relay/parse_status.h"

namespace ss {

struct Address {
  enum class Type : uint8_t { IPv4 = 1, Domain = 3, IPv6 = 4 };

  Type type = Type::IPv4;
  std::array<uint8_t, 16> ip{};  // IPv4 in the first 4 bytes, network order
  std::string host;              // Domain only: 1..255 bytes
  uint16_t port = 0;             // host order

  static Address from_sockaddr(const sockaddr* sa);  // AF_INET or AF_INET6
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4
  // peer) as the IPv4 address a.b.c.d, same port; any other address unchanged.
  Address unmapped() const;
  // For IPv4/IPv6 addresses; false for a domain.
  bool to_sockaddr(sockaddr_storage& out) const;
  // "1.2.3.4:80", "[::1]:443", "example.com:80".
  std::string to_string() const;
  // Bytes encode_address() writes.
  size_t encoded_size() const;

  bool operator==(const Address&) const = default;
};

inline constexpr size_t kMaxAddressLen = 1 + 1 + 255 + 2;

// Parses one address header from the start of `in`. NeedMore if `in` is a strict prefix of a
// valid header; Error for an unknown ATYP, a zero-length domain, or a domain with bytes that can
// never be a host name (NUL, control characters, space, DEL). On Ok, `consumed` is the header
// size. Stateless: call again with more bytes to resume.
ParseStatus parse_address(std::span<const uint8_t> in, Address& out, size_t& consumed);

// Writes the header (encoded_size() bytes, at most kMaxAddressLen) and returns its size.
size_t encode_address(const Address& addr, uint8_t* out);

// Parses "host:port", "1.2.3.4:port" or "[v6]:port" (the -L and config forms). An IP literal
// becomes IPv4/IPv6, anything else a domain. nullopt if malformed or port is 0 or > 65535.
std::optional<Address> parse_host_port(std::string_view text);

// Makes an Address from a host string and port: an IP literal becomes IPv4/IPv6, else Domain.
// nullopt if the host is empty, longer than 255, or has bytes that can never be a host name.
std::optional<Address> make_address(std::string_view host, uint16_t port);

// An IP literal host, with or without brackets ("192.0.2.1", "2001:db8::1", "[2001:db8::1]"),
// and a port as a sockaddr. False for anything else (a host name): then `out` is all zeros.
bool literal_to_sockaddr(std::string_view host, uint16_t port, sockaddr_storage& out);

}  // namespace ss
