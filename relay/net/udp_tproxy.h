#pragma once
// The socket calls UDP through TPROXY needs and libuv does not make (Linux: see the kernel's
// Documentation/networking/tproxy.rst): a transparent listening socket that reports each
// datagram's original destination, and transparent sockets that send from a foreign address.

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace ss {

// A non-blocking UDP socket bound to `addr` with IP_TRANSPARENT (IPV6_TRANSPARENT) and
// IP_RECVORIGDSTADDR (and IPV6_RECVORIGDSTADDR for IPv6), SO_REUSEPORT if asked. Returns the fd,
// or a negative libuv error (UV_EPERM without CAP_NET_ADMIN).
int tproxy_listen_socket(const sockaddr* addr, bool reuse_port);

// One datagram from a socket made by tproxy_listen_socket: its sender and original destination.
// Returns the size, or -1 with errno (EAGAIN: nothing left); a datagram without a destination
// (not delivered by TPROXY) comes back with dst's family 0.
ssize_t tproxy_recv(int fd, uint8_t* buf, size_t cap, sockaddr_storage& from,
                    sockaddr_storage& dst);

// A non-blocking UDP socket bound, transparently and with SO_REUSEADDR, to the foreign address
// `src`, for sending replies from it. Returns the fd or a negative libuv error.
int tproxy_send_socket(const sockaddr* src);

}  // namespace ss
