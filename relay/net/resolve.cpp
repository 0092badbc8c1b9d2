#include "relay/net/resolve.h"

#include <sys/socket.h>

#include <cstdio>

namespace ss {

LookupArgs::LookupArgs(int socktype, int flags, uint16_t port_number) {
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = flags;
  std::snprintf(port, sizeof port, "%u", static_cast<unsigned>(port_number));
}

const addrinfo* pick_address(const addrinfo* res, bool ipv6_first) {
  const int preferred = ipv6_first ? AF_INET6 : AF_INET;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == preferred) return ai;
  }
  return res;
}

}  // namespace ss
