#pragma once
// Which destinations ss-server refuses by default (SSRF guard): addresses that reach the server's
// own host or networks behind it rather than the internet.

#include <sys/socket.h>

namespace ss {

// True for loopback, unspecified, private (RFC 1918), carrier-grade NAT (100.64/10), link-local,
// unique-local (fc00::/7), site-local (fec0::/10), multicast, broadcast and reserved (240/4)
// addresses, including IPv4 addresses embedded in IPv6 (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::/96).
bool is_private_address(const sockaddr* sa);

// True if `sa` (AF_INET or AF_INET6, port ignored) is an address of this host, in this network
// namespace: a plain (not transparent) socket can bind to it. Two system calls; for rare checks
// only, never per packet.
bool is_own_address(const sockaddr* sa);

}  // namespace ss
