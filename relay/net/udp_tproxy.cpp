// UDP through TPROXY (Linux, Documentation/networking/tproxy.rst): the mangle table's TPROXY
// target delivers a datagram for any address to a socket with IP_TRANSPARENT; with
// IP_RECVORIGDSTADDR (IPV6_RECVORIGDSTADDR) recvmsg() reports the address it was sent to in a
// control message. A reply must come from that address, so it is sent through a socket bound to
// it, which IP_TRANSPARENT allows although the address is not ours; SO_REUSEADDR lets several
// such sockets, and a second client's, share it.

#include "relay/net/udp_tproxy.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>

namespace ss {
namespace {

int fail_and_close(int fd) {
  const int err = uv_translate_sys_error(errno);
  close(fd);
  return err;
}

int transparent_socket(int family) {
  const int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  const int one = 1;
  const int rc = family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                                    : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
  if (rc != 0) return fail_and_close(fd);
  return fd;
}

socklen_t length_of(const sockaddr* sa) {
  return sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

int tproxy_listen_socket(const sockaddr* addr, bool reuse_port) {
  const int fd = transparent_socket(addr->sa_family);
  if (fd < 0) return fd;
  const int one = 1;
  // IPv4 datagrams on a dual-stack socket report IP_ORIGDSTADDR, IPv6 ones IPV6_ORIGDSTADDR.
  if (setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof one) != 0 &&
      addr->sa_family == AF_INET) {
    return fail_and_close(fd);
  }
  if (addr->sa_family == AF_INET6 &&
      setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof one) != 0) {
    return fail_and_close(fd);
  }
  if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return fail_and_close(fd);
  }
  if (bind(fd, addr, length_of(addr)) != 0) return fail_and_close(fd);
  return fd;
}

ssize_t tproxy_recv(int fd, uint8_t* buf, size_t cap, sockaddr_storage& from,
                    sockaddr_storage& dst) {
  iovec iov{buf, cap};
  alignas(cmsghdr) char control[256];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return n;
  std::memset(&dst, 0, sizeof dst);
  if ((msg.msg_flags & MSG_TRUNC) != 0) {
    errno = EMSGSIZE;
    return -1;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR &&
        c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in))) {
      std::memcpy(&dst, CMSG_DATA(c), sizeof(sockaddr_in));
    } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR &&
               c->cmsg_len >= CMSG_LEN(sizeof(sockaddr_in6))) {
      std::memcpy(&dst, CMSG_DATA(c), sizeof(sockaddr_in6));
    }
  }
  return n;
}

int tproxy_send_socket(const sockaddr* src) {
  const int fd = transparent_socket(src->sa_family);
  if (fd < 0) return fd;
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return fail_and_close(fd);
  if (bind(fd, src, length_of(src)) != 0) return fail_and_close(fd);
  return fd;
}

}  // namespace ss
