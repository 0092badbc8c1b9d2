#pragma once
// SO_MARK on an outbound socket ("outbound_fwmark"): a policy-routing rule (`ip rule fwmark M
// lookup T`) can then send our own connections around a TUN device that carries every other
// route (tun mode's "no loops", README). Needs CAP_NET_ADMIN; 0 leaves the socket unmarked.

#include <sys/socket.h>

#include <cstdint>

namespace ss {

// 0, or -errno.
inline int set_socket_mark(int fd, uint32_t mark) {
  if (mark == 0) return 0;
  return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) == 0 ? 0 : -1;
}

}  // namespace ss
