#pragma once
// IP packets as a TUN device carries them (IFF_NO_PI: no header, the packet starts at the IP
// version): a pure parser for IPv4 and IPv6 with TCP or UDP, an in-place rewriter of addresses and
// ports with incremental checksum updates (RFC 1624), and a builder of UDP packets. No allocation,
// no I/O: bytes in, Ok or Error out.

#include <cstddef>
#include <cstdint>

#include "relay/parse_status.h"

namespace ss {

// An IP address as it sits in a packet: 4 or 16 bytes, network order.
struct IpBytes {
  uint8_t len = 0;  // 4 or 16; 0 = none
  uint8_t b[16] = {};
  bool operator==(const IpBytes& o) const;
  bool operator!=(const IpBytes& o) const { return !(*this == o); }
};

// One endpoint of a flow: an address and a port (host order).
struct IpEndpoint {
  IpBytes ip;
  uint16_t port = 0;
  bool operator==(const IpEndpoint& o) const { return ip == o.ip && port == o.port; }
};

struct IpPacket {
  uint8_t version = 0;   // 4 or 6
  uint8_t protocol = 0;  // kTcp or kUdp
  IpEndpoint src, dst;
  size_t l4_offset = 0;       // where the TCP/UDP header starts
  size_t length = 0;          // the whole packet (the IP total length; trailing bytes ignored)
  size_t payload_offset = 0;  // where the TCP/UDP payload starts
  size_t payload_len = 0;
  uint8_t tcp_flags = 0;      // TCP: FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10
  size_t ip_csum_offset = 0;  // IPv4: the header checksum's offset; 0 for IPv6
  size_t l4_csum_offset = 0;  // the TCP/UDP checksum's offset
};

constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;
constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpAck = 0x10;

// Parses one packet. Error (the caller drops it) for: a truncated or inconsistent header, a
// protocol other than TCP and UDP, an IPv4 fragment (MF set or a nonzero offset) or an IPv6
// Fragment header (TCP from the kernel never fragments: it sets DF and does PMTU discovery; a
// fragmented UDP datagram is dropped, as documented in the README), IPv6 extension headers other
// than hop-by-hop, routing and destination options, and bad IPv4-header, TCP or UDP checksums
// (when verify is set). ParseStatus::NeedMore is never returned: a packet comes whole.
ParseStatus parse_ip_packet(const uint8_t* p, size_t n, IpPacket& out, bool verify = true);

// Rewrites the packet's source and destination in place (same address family as parsed), and
// updates the IPv4 header checksum and the TCP/UDP checksum incrementally (RFC 1624). False if the
// addresses' length does not match the packet's version.
bool rewrite_ip_packet(uint8_t* p, IpPacket& pkt, const IpEndpoint& src, const IpEndpoint& dst);

// Builds an IPv4 or IPv6 UDP packet from src to dst carrying payload, with checksums, into out
// (cap bytes). Returns its length, or 0 if it does not fit or the families differ.
size_t build_udp_packet(uint8_t* out, size_t cap, const IpEndpoint& src, const IpEndpoint& dst,
                        const uint8_t* payload, size_t payload_len);

// The RST answering the TCP segment pkt (parsed from p): from its destination to its source, as a
// closed port answers (RFC 9293 3.10.7.1), with checksums, into out (cap bytes). Its length, or 0.
size_t build_tcp_reset(uint8_t* out, size_t cap, const uint8_t* p, const IpPacket& pkt);

// The Internet checksum (RFC 1071) of data, folded, not complemented, starting from sum.
uint32_t ip_sum(const uint8_t* data, size_t n, uint32_t sum = 0);

}  // namespace ss
