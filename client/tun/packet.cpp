// IP packets from a TUN device (RFC 791 IPv4, RFC 8200 IPv6, RFC 9293 TCP, RFC 768 UDP): a pure
// parser that checks every length and checksum before the NAT trusts a field, an in-place
// rewriter whose checksum updates are incremental (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')), and
// a UDP packet builder (checksums from RFC 1071). Fragments are refused (see packet.h).

#include "client/tun/packet.h"

#include <cstring>

namespace ss {

namespace {

uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint16_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The pseudo-header's sum (RFC 9293 3.1, RFC 8200 8.1): addresses, protocol, L4 length.
uint32_t pseudo_sum(const uint8_t* src, const uint8_t* dst, size_t alen, uint8_t proto,
                    size_t l4_len) {
  uint32_t sum = ip_sum(src, alen);
  sum = ip_sum(dst, alen, sum);
  return sum + proto + static_cast<uint32_t>(l4_len & 0xffff) + static_cast<uint32_t>(l4_len >> 16);
}

// The checksum field at `field` after the bytes `old` became `now` (len even): RFC 1624.
void csum_update(uint8_t* field, const uint8_t* old, const uint8_t* now, size_t len,
                 bool udp_zero_is_none) {
  uint64_t sum = static_cast<uint16_t>(~load16(field));
  for (size_t i = 0; i < len; i += 2) {
    sum += static_cast<uint16_t>(~load16(old + i));
    sum += load16(now + i);
  }
  uint16_t v = static_cast<uint16_t>(~fold(sum));
  if (udp_zero_is_none && v == 0) v = 0xffff;  // RFC 768: 0 would mean "no checksum"
  store16(field, v);
}

}  // namespace

bool IpBytes::operator==(const IpBytes& o) const {
  return len == o.len && std::memcmp(b, o.b, len) == 0;
}

uint32_t ip_sum(const uint8_t* data, size_t n, uint32_t sum) {
  uint64_t s = sum;
  size_t i = 0;
  for (; i + 1 < n; i += 2) s += load16(data + i);
  if (i < n) s += static_cast<uint32_t>(data[i]) << 8;
  return fold(s);
}

ParseStatus parse_ip_packet(const uint8_t* p, size_t n, IpPacket& out, bool verify) {
  out = IpPacket{};
  if (n < 1) return ParseStatus::Error;
  const uint8_t version = p[0] >> 4;
  size_t off = 0;
  uint8_t proto = 0;
  size_t alen = 0;
  size_t total = 0;
  if (version == 4) {
    if (n < 20) return ParseStatus::Error;
    const size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    total = load16(p + 2);
    if (ihl < 20 || total < ihl || total > n) return ParseStatus::Error;
    const uint16_t frag = load16(p + 6);
    if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0) return ParseStatus::Error;  // MF or offset
    if (verify && ip_sum(p, ihl) != 0xffff) return ParseStatus::Error;
    proto = p[9];
    alen = 4;
    std::memcpy(out.src.ip.b, p + 12, 4);
    std::memcpy(out.dst.ip.b, p + 16, 4);
    off = ihl;
    out.ip_csum_offset = 10;
  } else if (version == 6) {
    if (n < 40) return ParseStatus::Error;
    total = 40 + static_cast<size_t>(load16(p + 4));
    if (total > n) return ParseStatus::Error;
    alen = 16;
    std::memcpy(out.src.ip.b, p + 8, 16);
    std::memcpy(out.dst.ip.b, p + 24, 16);
    proto = p[6];
    off = 40;
    // Extension headers: hop-by-hop (0), routing (43) and destination options (60) are skipped;
    // a Fragment header (44) and anything else end the parse.
    for (int hops = 0; proto == 0 || proto == 43 || proto == 60; ++hops) {
      if (hops == 8 || off + 8 > total) return ParseStatus::Error;
      const uint8_t next = p[off];
      const size_t len = (static_cast<size_t>(p[off + 1]) + 1) * 8;
      if (off + len > total) return ParseStatus::Error;
      proto = next;
      off += len;
    }
  } else {
    return ParseStatus::Error;
  }
  out.version = version;
  out.protocol = proto;
  out.src.ip.len = out.dst.ip.len = static_cast<uint8_t>(alen);
  out.length = total;
  out.l4_offset = off;
  const size_t l4_len = total - off;
  if (proto == kIpProtoTcp) {
    if (l4_len < 20) return ParseStatus::Error;
    const size_t doff = static_cast<size_t>(p[off + 12] >> 4) * 4;
    if (doff < 20 || doff > l4_len) return ParseStatus::Error;
    out.tcp_flags = p[off + 13];
    out.l4_csum_offset = off + 16;
    out.payload_offset = off + doff;
    out.payload_len = l4_len - doff;
  } else if (proto == kIpProtoUdp) {
    if (l4_len < 8) return ParseStatus::Error;
    const size_t ulen = load16(p + off + 4);
    if (ulen != l4_len) return ParseStatus::Error;
    out.l4_csum_offset = off + 6;
    out.payload_offset = off + 8;
    out.payload_len = l4_len - 8;
    // IPv4 may leave the UDP checksum out (0); IPv6 may not (RFC 8200 8.1).
    if (load16(p + out.l4_csum_offset) == 0) {
      if (version == 6) return ParseStatus::Error;
      verify = false;
    }
  } else {
    return ParseStatus::Error;
  }
  out.src.port = load16(p + off);
  out.dst.port = load16(p + off + 2);
  if (verify) {
    const uint32_t sum = pseudo_sum(out.src.ip.b, out.dst.ip.b, alen, proto, l4_len);
    if (ip_sum(p + off, l4_len, sum) != 0xffff) return ParseStatus::Error;
  }
  return ParseStatus::Ok;
}

bool rewrite_ip_packet(uint8_t* p, IpPacket& pkt, const IpEndpoint& src, const IpEndpoint& dst) {
  const size_t alen = pkt.version == 4 ? 4 : 16;
  if (src.ip.len != alen || dst.ip.len != alen) return false;
  const size_t addr_at = pkt.version == 4 ? 12 : 8;
  // The bytes the checksums cover that change: both addresses (contiguous in the header), then
  // both ports (contiguous in the L4 header).
  uint8_t old[36];
  uint8_t now[36];
  std::memcpy(old, p + addr_at, 2 * alen);
  std::memcpy(old + 2 * alen, p + pkt.l4_offset, 4);
  std::memcpy(now, src.ip.b, alen);
  std::memcpy(now + alen, dst.ip.b, alen);
  store16(now + 2 * alen, src.port);
  store16(now + 2 * alen + 2, dst.port);
  if (pkt.version == 4) csum_update(p + pkt.ip_csum_offset, old, now, 8, false);
  uint8_t* l4_csum = p + pkt.l4_csum_offset;
  if (pkt.protocol == kIpProtoTcp) {
    csum_update(l4_csum, old, now, 2 * alen + 4, false);
  } else if (load16(l4_csum) != 0) {  // IPv4 UDP without a checksum stays without
    csum_update(l4_csum, old, now, 2 * alen + 4, true);
  }
  std::memcpy(p + addr_at, now, 2 * alen);
  std::memcpy(p + pkt.l4_offset, now + 2 * alen, 4);
  pkt.src = src;
  pkt.dst = dst;
  return true;
}

namespace {

// The IPv4 (20 bytes, checksummed) or IPv6 (40 bytes) header of a packet from src to dst carrying
// l4_len bytes of protocol `proto`. Its size.
size_t write_ip_header(uint8_t* out, const IpEndpoint& src, const IpEndpoint& dst, uint8_t proto,
                       size_t l4_len) {
  if (src.ip.len == 4) {
    out[0] = 0x45;
    out[1] = 0;
    store16(out + 2, static_cast<uint16_t>(20 + l4_len));
    store16(out + 4, 0);
    store16(out + 6, 0);
    out[8] = 64;
    out[9] = proto;
    store16(out + 10, 0);
    std::memcpy(out + 12, src.ip.b, 4);
    std::memcpy(out + 16, dst.ip.b, 4);
    store16(out + 10, static_cast<uint16_t>(~ip_sum(out, 20)));
    return 20;
  }
  out[0] = 0x60;
  out[1] = out[2] = out[3] = 0;
  store16(out + 4, static_cast<uint16_t>(l4_len));
  out[6] = proto;
  out[7] = 64;
  std::memcpy(out + 8, src.ip.b, 16);
  std::memcpy(out + 24, dst.ip.b, 16);
  return 40;
}

}  // namespace

size_t build_udp_packet(uint8_t* out, size_t cap, const IpEndpoint& src, const IpEndpoint& dst,
                        const uint8_t* payload, size_t payload_len) {
  if (src.ip.len != dst.ip.len || (src.ip.len != 4 && src.ip.len != 16)) return 0;
  const size_t alen = src.ip.len;
  const size_t hdr = alen == 4 ? 20 : 40;
  const size_t udp_len = 8 + payload_len;
  const size_t total = hdr + udp_len;
  if (total > cap || (alen == 4 ? total : udp_len) > 0xffff) return 0;
  uint8_t* u = out + hdr;
  // The payload may sit where the headers go (a reply built in place): move it first.
  if (payload_len > 0) std::memmove(u + 8, payload, payload_len);
  write_ip_header(out, src, dst, kIpProtoUdp, udp_len);
  store16(u, src.port);
  store16(u + 2, dst.port);
  store16(u + 4, static_cast<uint16_t>(udp_len));
  store16(u + 6, 0);
  const uint32_t sum = pseudo_sum(src.ip.b, dst.ip.b, alen, kIpProtoUdp, udp_len);
  uint16_t c = static_cast<uint16_t>(~ip_sum(u, udp_len, sum));
  if (c == 0) c = 0xffff;
  store16(u + 6, c);
  return total;
}

size_t build_tcp_reset(uint8_t* out, size_t cap, const uint8_t* p, const IpPacket& pkt) {
  if (pkt.protocol != kIpProtoTcp || pkt.src.ip.len != pkt.dst.ip.len) return 0;
  const size_t alen = pkt.src.ip.len;
  const size_t hdr = alen == 4 ? 20 : 40;
  if (hdr + 20 > cap) return 0;
  const uint8_t* t = p + pkt.l4_offset;
  const uint32_t seq = static_cast<uint32_t>(load16(t + 4)) << 16 | load16(t + 6);
  const uint32_t ack_in = static_cast<uint32_t>(load16(t + 8)) << 16 | load16(t + 10);
  // RFC 9293 3.10.7.1: to a segment with ACK, RST with its ACK number as our sequence number;
  // else sequence 0 and ACK of everything the segment occupied (SYN and FIN count one each).
  uint32_t ack = seq + static_cast<uint32_t>(pkt.payload_len);
  if ((pkt.tcp_flags & kTcpSyn) != 0) ++ack;
  if ((pkt.tcp_flags & kTcpFin) != 0) ++ack;
  const bool had_ack = (pkt.tcp_flags & kTcpAck) != 0;
  write_ip_header(out, pkt.dst, pkt.src, kIpProtoTcp, 20);
  uint8_t* u = out + hdr;
  store16(u, pkt.dst.port);
  store16(u + 2, pkt.src.port);
  const uint32_t my_seq = had_ack ? ack_in : 0;
  store16(u + 4, static_cast<uint16_t>(my_seq >> 16));
  store16(u + 6, static_cast<uint16_t>(my_seq));
  store16(u + 8, static_cast<uint16_t>(had_ack ? 0 : ack >> 16));
  store16(u + 10, static_cast<uint16_t>(had_ack ? 0 : ack));
  u[12] = 5 << 4;
  u[13] = had_ack ? kTcpRst : (kTcpRst | kTcpAck);
  store16(u + 14, 0);
  store16(u + 16, 0);
  store16(u + 18, 0);
  const uint32_t sum = pseudo_sum(pkt.dst.ip.b, pkt.src.ip.b, alen, kIpProtoTcp, 20);
  store16(u + 16, static_cast<uint16_t>(~ip_sum(u, 20, sum)));
  return hdr + 20;
}

}  // namespace ss
