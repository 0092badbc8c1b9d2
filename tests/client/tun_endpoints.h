#pragma once
// Endpoints for the tun tests: an IPv4 address and port, or fd00::LAST and a port.

#include <cstdint>

#include "client/tun/packet.h"

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

}  // namespace ss::test
