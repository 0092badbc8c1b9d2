#pragma once
// Small helpers around getaddrinfo / uv_getaddrinfo results and calls (no lookups of their own).

#include <netdb.h>

namespace ss {

// The resolver's first answer of the preferred family (IPv6 with ipv6_first, else IPv4), or its
// first answer when none has that family. `res` must not be null.
const addrinfo* pick_address(const addrinfo* res, bool ipv6_first);

}  // namespace ss
