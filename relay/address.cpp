// Address header codec (SOCKS5 / Shadowsocks): ATYP(1) then 4 bytes (IPv4), LEN(1) + LEN bytes
// (domain) or 16 bytes (IPv6), then the port, big-endian. parse_address is stateless: the caller
// re-parses its growing buffer and gets NeedMore until a whole header is there. Bytes that can
// never become valid (bad ATYP, LEN 0, a forbidden domain byte) give Error as soon as they are
// seen, without waiting for the rest of the header.

#include "relay/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace ss {
namespace {

inline constexpr size_t kIPv4HeaderLen = 1 + 4 + 2;
inline constexpr size_t kIPv6HeaderLen = 1 + 16 + 2;
inline constexpr size_t kMaxDomainLen = 255;

// A byte that can never appear in a host name we pass to the resolver: NUL, C0 controls, space
// and DEL.
constexpr bool is_forbidden_host_byte(uint8_t b) {
  return b <= 0x20 || b == 0x7F;
}

enum class Utf8 { Valid, Invalid, Truncated };

// Validates UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
// Truncated: valid so far, but the last sequence is cut off at the end of `s`.
Utf8 check_utf8(std::span<const uint8_t> s) {
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint8_t lo = 0x80;  // allowed range of the second byte
    uint8_t hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return Utf8::Invalid;  // continuation byte, C0/C1 overlong lead, or F5..FF
    }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= s.size()) return Utf8::Truncated;
      const uint8_t c = s[i + k];
      const uint8_t min = k == 1 ? lo : 0x80;
      const uint8_t max = k == 1 ? hi : 0xBF;
      if (c < min || c > max) return Utf8::Invalid;
    }
    i += len;
  }
  return Utf8::Valid;
}

// True if every byte is allowed and the bytes are valid UTF-8; when `partial`, a sequence cut off
// at the end is still acceptable (more bytes may complete it).
bool host_bytes_ok(std::span<const uint8_t> s, bool partial) {
  for (uint8_t b : s) {
    if (is_forbidden_host_byte(b)) return false;
  }
  const Utf8 r = check_utf8(s);
  return r == Utf8::Valid || (partial && r == Utf8::Truncated);
}

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

uint16_t read_port(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

void write_port(uint16_t port, uint8_t* p) {
  p[0] = static_cast<uint8_t>(port >> 8);
  p[1] = static_cast<uint8_t>(port & 0xFF);
}

// inet_pton needs a NUL-terminated string; copies into a stack buffer (IP literals are short).
bool parse_ip_literal(int family, std::string_view text, uint8_t* out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return inet_pton(family, buf, out) == 1;
}

// "1".."65535", digits only.
std::optional<uint16_t> parse_port_text(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

Address Address::from_sockaddr(const sockaddr* sa) {
  Address a;
  if (sa == nullptr) return a;
  if (sa->sa_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, sa, sizeof sin);
    a.type = Type::IPv4;
    std::memcpy(a.ip.data(), &sin.sin_addr, 4);
    a.port = ntohs(sin.sin_port);
  } else if (sa->sa_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, sa, sizeof sin6);
    a.type = Type::IPv6;
    std::memcpy(a.ip.data(), &sin6.sin6_addr, 16);
    a.port = ntohs(sin6.sin6_port);
  }
  return a;
}

Address Address::unmapped() const {
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (type != Type::IPv6 || std::memcmp(ip.data(), kMappedPrefix, sizeof kMappedPrefix) != 0) {
    return *this;
  }
  Address a;
  a.type = Type::IPv4;
  std::memcpy(a.ip.data(), ip.data() + 12, 4);
  a.port = port;
  return a;
}

bool Address::to_sockaddr(sockaddr_storage& out) const {
  std::memset(&out, 0, sizeof out);
  if (type == Type::IPv4) {
    sockaddr_in sin;
    std::memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    std::memcpy(&sin.sin_addr, ip.data(), 4);
    std::memcpy(&out, &sin, sizeof sin);
    return true;
  }
  if (type == Type::IPv6) {
    sockaddr_in6 sin6;
    std::memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    std::memcpy(&sin6.sin6_addr, ip.data(), 16);
    std::memcpy(&out, &sin6, sizeof sin6);
    return true;
  }
  return false;
}

std::string Address::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  std::string s;
  switch (type) {
    case Type::IPv4:
      if (inet_ntop(AF_INET, ip.data(), buf, sizeof buf) == nullptr) buf[0] = '\0';
      s = buf;
      break;
    case Type::IPv6:
      if (inet_ntop(AF_INET6, ip.data(), buf, sizeof buf) == nullptr) buf[0] = '\0';
      s.reserve(std::strlen(buf) + 8);
      s += '[';
      s += buf;
      s += ']';
      break;
    case Type::Domain:
      // A domain holding a colon (an unresolved IPv6 literal) is bracketed so the port stays
      // unambiguous.
      if (host.find(':') != std::string::npos && (host.empty() || host.front() != '[')) {
        s.reserve(host.size() + 8);
        s += '[';
        s += host;
        s += ']';
      } else {
        s = host;
      }
      break;
  }
  s += ':';
  s += std::to_string(port);
  return s;
}

size_t Address::encoded_size() const {
  switch (type) {
    case Type::IPv4:
      return kIPv4HeaderLen;
    case Type::IPv6:
      return kIPv6HeaderLen;
    case Type::Domain:
      return 1 + 1 + std::min(host.size(), kMaxDomainLen) + 2;
  }
  return 0;
}

ParseStatus parse_address(std::span<const uint8_t> in, Address& out, size_t& consumed) {
  if (in.empty()) return ParseStatus::NeedMore;
  switch (in[0]) {
    case static_cast<uint8_t>(Address::Type::IPv4): {
      if (in.size() < kIPv4HeaderLen) return ParseStatus::NeedMore;
      out.type = Address::Type::IPv4;
      out.ip.fill(0);
      std::memcpy(out.ip.data(), in.data() + 1, 4);
      out.host.clear();
      out.port = read_port(in.data() + 5);
      consumed = kIPv4HeaderLen;
      return ParseStatus::Ok;
    }
    case static_cast<uint8_t>(Address::Type::IPv6): {
      if (in.size() < kIPv6HeaderLen) return ParseStatus::NeedMore;
      out.type = Address::Type::IPv6;
      std::memcpy(out.ip.data(), in.data() + 1, 16);
      out.host.clear();
      out.port = read_port(in.data() + 17);
      consumed = kIPv6HeaderLen;
      return ParseStatus::Ok;
    }
    case static_cast<uint8_t>(Address::Type::Domain): {
      if (in.size() < 2) return ParseStatus::NeedMore;
      const size_t len = in[1];
      if (len == 0) return ParseStatus::Error;
      const size_t have = std::min(len, in.size() - 2);
      const bool complete = have == len;
      if (!host_bytes_ok(in.subspan(2, have), !complete)) return ParseStatus::Error;
      const size_t total = 2 + len + 2;
      if (in.size() < total) return ParseStatus::NeedMore;
      out.type = Address::Type::Domain;
      out.ip.fill(0);
      out.host.assign(reinterpret_cast<const char*>(in.data() + 2), len);
      out.port = read_port(in.data() + 2 + len);
      consumed = total;
      return ParseStatus::Ok;
    }
    default:
      return ParseStatus::Error;
  }
}

size_t encode_address(const Address& addr, uint8_t* out) {
  out[0] = static_cast<uint8_t>(addr.type);
  switch (addr.type) {
    case Address::Type::IPv4:
      std::memcpy(out + 1, addr.ip.data(), 4);
      write_port(addr.port, out + 5);
      return kIPv4HeaderLen;
    case Address::Type::IPv6:
      std::memcpy(out + 1, addr.ip.data(), 16);
      write_port(addr.port, out + 17);
      return kIPv6HeaderLen;
    case Address::Type::Domain: {
      // A valid Address never holds more than 255 bytes; clamp so `out` cannot overflow anyway.
      const size_t len = std::min(addr.host.size(), kMaxDomainLen);
      out[1] = static_cast<uint8_t>(len);
      if (len != 0) std::memcpy(out + 2, addr.host.data(), len);
      write_port(addr.port, out + 2 + len);
      return 2 + len + 2;
    }
  }
  return 0;
}

std::optional<Address> make_address(std::string_view host, uint16_t port) {
  if (host.empty() || host.size() > kMaxDomainLen) return std::nullopt;
  Address a;
  a.port = port;
  if (host.front() == '[') {
    // "[v6]" is only ever an IPv6 literal.
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    if (!parse_ip_literal(AF_INET6, host.substr(1, host.size() - 2), a.ip.data())) {
      return std::nullopt;
    }
    a.type = Address::Type::IPv6;
    return a;
  }
  if (parse_ip_literal(AF_INET, host, a.ip.data())) {
    a.type = Address::Type::IPv4;
    return a;
  }
  if (parse_ip_literal(AF_INET6, host, a.ip.data())) {
    a.type = Address::Type::IPv6;
    return a;
  }
  if (!host_bytes_ok(as_bytes(host), false)) return std::nullopt;
  a.type = Address::Type::Domain;
  a.ip.fill(0);
  a.host.assign(host);
  return a;
}

bool literal_to_sockaddr(std::string_view host, uint16_t port, sockaddr_storage& out) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  Address a;
  a.port = port;
  if (parse_ip_literal(AF_INET, host, a.ip.data())) {
    a.type = Address::Type::IPv4;
  } else if (parse_ip_literal(AF_INET6, host, a.ip.data())) {
    a.type = Address::Type::IPv6;
  } else {
    std::memset(&out, 0, sizeof out);
    return false;
  }
  return a.to_sockaddr(out);
}

std::optional<Address> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(0, close + 1);  // keep the brackets: make_address requires IPv6 inside
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    // An unbracketed host with a colon ("::1:53") is ambiguous.
    if (host.find(':') != std::string_view::npos) return std::nullopt;
    port_text = text.substr(colon + 1);
  }
  const std::optional<uint16_t> port = parse_port_text(port_text);
  if (!port) return std::nullopt;
  return make_address(host, *port);
}

}  // namespace ss
