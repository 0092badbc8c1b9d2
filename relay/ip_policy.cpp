// Address classification for the SSRF guard. IPv6 forms that carry an IPv4 address are judged by
// that IPv4 address, so ::ffff:127.0.0.1 is as private as 127.0.0.1.

#include "relay/ip_policy.h"

#include <netinet/in.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace ss {
namespace {

bool private_v4(const uint8_t a[4]) {
  uint8_t b0 = a[0], b1 = a[1];
  if (b0 == 0) return true;                            // 0.0.0.0/8 "this network"
  if (b0 == 10) return true;                           // 10/8
  if (b0 == 127) return true;                          // loopback
  if (b0 == 100 && (b1 & 0xC0) == 64) return true;     // 100.64/10 shared address space
  if (b0 == 169 && b1 == 254) return true;             // link-local (cloud metadata lives here)
  if (b0 == 172 && (b1 & 0xF0) == 16) return true;     // 172.16/12
  if (b0 == 192 && b1 == 168) return true;             // 192.168/16
  if (b0 == 192 && b1 == 0 && a[2] == 0) return true;  // 192.0.0/24 protocol assignments
  if (b0 == 198 && (b1 & 0xFE) == 18) return true;     // 198.18/15 benchmarking
  if (b0 >= 224) return true;                          // multicast, reserved, broadcast
  return false;
}

bool private_v6(const uint8_t a[16]) {
  static const uint8_t kZero[16] = {};
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  static const uint8_t kNat64[12] = {0, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(a, kZero, 15) == 0 && (a[15] == 0 || a[15] == 1)) return true;  // :: and ::1
  if (std::memcmp(a, kMapped, 12) == 0 || std::memcmp(a, kNat64, 12) == 0) {
    return private_v4(a + 12);
  }
  if (std::memcmp(a, kZero, 12) == 0) return private_v4(a + 12);  // IPv4-compatible ::a.b.c.d
  if ((a[0] & 0xFE) == 0xFC) return true;                         // fc00::/7 unique local
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80) return true;         // fe80::/10 link-local
  if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0) return true;  // fec0::/10 site-local (deprecated)
  if (a[0] == 0xFF) return true;                           // multicast
  return false;
}

}  // namespace

bool is_private_address(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    uint8_t a[4];
    std::memcpy(a, &v4->sin_addr, 4);
    return private_v4(a);
  }
  if (sa->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    uint8_t a[16];
    std::memcpy(a, &v6->sin6_addr, 16);
    return private_v6(a);
  }
  return true;  // anything else is not a destination we relay to
}

bool is_own_address(const sockaddr* sa) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (sa->sa_family == AF_INET) {
    len = sizeof(sockaddr_in);
  } else if (sa->sa_family == AF_INET6) {
    len = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  std::memcpy(&ss, sa, len);
  // Port 0: only the address is in question (and no port is taken).
  if (ss.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = 0;
  } else {
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = 0;
  }
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  // Without IP_TRANSPARENT (and with ip_nonlocal_bind off, the default) binding a foreign address
  // fails with EADDRNOTAVAIL.
  const bool own = bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0;
  close(fd);
  return own;
}

}  // namespace ss
