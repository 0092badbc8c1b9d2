#pragma once
// Endpoints for the tun tests: an IPv4 address and port, or fd00::LAST and a port; and fake
// DNS options with both pools.

#include <cstdint>

#include "client/tun/packet.h"
#include "client/tun/tun_dns.h"

namespace ss::test {

inline IpEndpoint v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  IpEndpoint e;
  e.ip.len = 4;
  e.ip.b[0] = a;
  e.ip.b[1] = b;
  e.ip.b[2] = c;
  e.ip.b[3] = d;
  e.port = port;
  return e;
}

inline IpEndpoint v6(uint8_t last, uint16_t port) {
  IpEndpoint e;
  e.ip.len = 16;
  e.ip.b[0] = 0xfd;
  e.ip.b[15] = last;
  e.port = port;
  return e;
}

// Fake mode with rust's default pools, 198.18.0.0/15 and fc00::/18.
inline TunDnsOptions fake_options(uint32_t expire_s) {
  TunDnsOptions o;
  o.pool4 = *parse_ip_net("198.18.0.0/15");
  o.pool6 = parse_ip_net("fc00::/18");
  o.expire_s = expire_s;
  return o;
}

}  // namespace ss::test
