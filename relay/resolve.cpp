#include "relay/resolve.h"

#include <sys/socket.h>

namespace ss {

const addrinfo* pick_address(const addrinfo* res, bool ipv6_first) {
  const int preferred = ipv6_first ? AF_INET6 : AF_INET;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == preferred) return ai;
  }
  return res;
}

}  // namespace ss
