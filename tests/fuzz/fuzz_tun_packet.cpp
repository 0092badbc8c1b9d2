// Fuzzes tun mode's packet path (client/tun/packet.h, client/tun/tcp_nat.h): the parser never
// reads past the packet; an Ok packet's offsets lie inside it; a packet parsed with checksums
// verified still verifies after any rewrite (the incremental update equals a full checksum); the
// TCP NAT's translation of an Ok packet parses back Ok with the addresses it promised, and the
// listener's reply to it comes back to the original client from the original target. The DNS
// side (client/tun/tun_dns.h): an Ok UDP packet taken as a query is answered with a packet that
// parses back Ok, from its destination to its source, carrying a message the codec reads; the RST
// answering an Ok TCP packet parses back Ok with the endpoints swapped.

#include <cstring>
#include <vector>

#include "client/tun/packet.h"
#include "client/tun/tcp_nat.h"
#include "client/tun/tun_dns.h"
#include "relay/dns/dns_message.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;

IpEndpoint endpoint(uint8_t len, uint8_t last, uint16_t port) {
  IpEndpoint e;
  e.ip.len = len;
  e.ip.b[0] = len == 4 ? 10 : 0xfd;
  e.ip.b[len - 1] = last;
  e.port = port;
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copied, so a read past the packet is a heap overflow ASan sees.
  std::vector<uint8_t> p(data, data + size);
  IpPacket pkt;
  const ParseStatus st = parse_ip_packet(p.data(), p.size(), pkt, true);
  IpPacket loose;
  const ParseStatus st_loose = parse_ip_packet(p.data(), p.size(), loose, false);
  FUZZ_CHECK(st != ParseStatus::NeedMore && st_loose != ParseStatus::NeedMore);
  if (st == ParseStatus::Ok) FUZZ_CHECK(st_loose == ParseStatus::Ok);
  // DNS reads the payload whatever the checksums say (they were checked before, in the engine):
  // the loose parse, so that mutated queries get this far.
  if (st_loose == ParseStatus::Ok && loose.protocol == kIpProtoUdp) {
    static TunDns dns = [] {
      TunDnsOptions o;
      o.pool4 = *parse_ip_net("198.18.0.0/15");
      o.pool6 = parse_ip_net("fc00::/18");
      return TunDns(o);
    }();
    static std::vector<uint8_t> scratch(65536), out(65536);
    size_t n = 0;
    if (dns.on_query(p.data(), loose, scratch.data(), scratch.size(), out.data(), out.size(), &n,
                     size) == TunDns::Verdict::Reply) {
      IpPacket ap;
      FUZZ_CHECK(parse_ip_packet(out.data(), n, ap, true) == ParseStatus::Ok);
      FUZZ_CHECK(ap.src == loose.dst && ap.dst == loose.src);
      dns::Summary sum;
      FUZZ_CHECK(dns::summarize(out.data() + ap.payload_offset, ap.payload_len, sum) ==
                 ParseStatus::Ok);
      FUZZ_CHECK(sum.header.response() && sum.addresses <= 1);
    }
  }
  if (st != ParseStatus::Ok) return 0;
  FUZZ_CHECK(pkt.length <= size && pkt.l4_offset < pkt.length);
  FUZZ_CHECK(pkt.payload_offset + pkt.payload_len == pkt.length);
  FUZZ_CHECK(pkt.l4_csum_offset + 2 <= pkt.length);
  const uint8_t len = pkt.src.ip.len;
  FUZZ_CHECK(len == (pkt.version == 4 ? 4 : 16));

  // A rewrite keeps the checksums valid.
  std::vector<uint8_t> q = p;
  IpPacket r = pkt;
  const IpEndpoint s = endpoint(len, 2, static_cast<uint16_t>(size));
  const IpEndpoint d = endpoint(len, 1, 7000);
  FUZZ_CHECK(rewrite_ip_packet(q.data(), r, s, d));
  IpPacket back;
  FUZZ_CHECK(parse_ip_packet(q.data(), q.size(), back, true) == ParseStatus::Ok);
  FUZZ_CHECK(back.src == s && back.dst == d);

  if (pkt.protocol != kIpProtoTcp) return 0;
  {
    uint8_t rst[80];
    const size_t n = build_tcp_reset(rst, sizeof rst, p.data(), pkt);
    FUZZ_CHECK(n == (len == 4 ? 40u : 60u));
    IpPacket rp;
    FUZZ_CHECK(parse_ip_packet(rst, n, rp, true) == ParseStatus::Ok);
    FUZZ_CHECK(rp.src == pkt.dst && rp.dst == pkt.src && (rp.tcp_flags & kTcpRst) != 0);
  }
  // The NAT: a fresh table takes the packet as a new flow (if a SYN) or drops it.
  const IpEndpoint listener = endpoint(len, 1, 7000);
  const IpBytes spare = endpoint(len, 2, 0).ip;
  TcpNat nat(listener, spare);
  const IpEndpoint client = pkt.src;
  const IpEndpoint target = pkt.dst;
  std::vector<uint8_t> t = p;
  IpPacket tp = pkt;
  if (!nat.translate(t.data(), tp, 0)) return 0;
  IpPacket tb;
  FUZZ_CHECK(parse_ip_packet(t.data(), t.size(), tb, true) == ParseStatus::Ok);
  if (client == listener && target.ip == spare) return 0;  // a reply to an unknown port: dropped
  FUZZ_CHECK(tb.dst == listener && tb.src.ip == spare);
  const std::optional<IpEndpoint> orig = nat.original_dst(tb.src);
  FUZZ_CHECK(orig && *orig == target);
  // The listener's reply, the same bytes turned around, goes back to the client.
  IpPacket rp = tb;
  FUZZ_CHECK(rewrite_ip_packet(t.data(), rp, listener, tb.src));
  FUZZ_CHECK(nat.translate(t.data(), rp, 1));
  FUZZ_CHECK(rp.src == target && rp.dst == client);
  FUZZ_CHECK(parse_ip_packet(t.data(), t.size(), tb, true) == ParseStatus::Ok);
  return 0;
}
