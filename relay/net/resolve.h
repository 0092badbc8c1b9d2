#pragma once
// Small helpers around getaddrinfo / uv_getaddrinfo results and calls (no lookups of their own).

#include <netdb.h>

#include <cstdint>

namespace ss {

// What one getaddrinfo / uv_getaddrinfo call takes besides the host: hints for any address family
// with the given socket type and flags, and the port as decimal text (the service).
struct LookupArgs {
  LookupArgs(int socktype, int flags, uint16_t port_number);

  addrinfo hints{};
  char port[8] = {};
};

// The resolver's first answer of the preferred family (IPv6 with ipv6_first, else IPv4), or its
// first answer when none has that family. `res` must not be null.
const addrinfo* pick_address(const addrinfo* res, bool ipv6_first);

}  // namespace ss
