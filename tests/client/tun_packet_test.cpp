// The tun packet parser, rewriter and builder, and the kernel-terminated TCP NAT, on hand-built
// packets (client/tun/packet.h, client/tun/tcp_nat.h).

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "client/tun/packet.h"
#include "client/tun/tcp_nat.h"
#include "client/tun/tun_device.h"
#include "client/tun/tun_udp_inbound.h"
#include "relay/address.h"
#include "tests/client/tun_endpoints.h"

#include <arpa/inet.h>

using namespace ss;

namespace {

using test::v4;
using test::v6;

void put16(std::vector<uint8_t>& p, size_t at, uint16_t v) {
  p[at] = static_cast<uint8_t>(v >> 8);
  p[at + 1] = static_cast<uint8_t>(v);
}

// Full checksums for a packet built by hand (the reference the incremental updates must match).
void fill_checksums(std::vector<uint8_t>& p, const IpPacket& pkt) {
  const size_t alen = pkt.version == 4 ? 4 : 16;
  const size_t addr_at = pkt.version == 4 ? 12 : 8;
  if (pkt.version == 4) {
    put16(p, 10, 0);
    put16(p, 10, static_cast<uint16_t>(~ip_sum(p.data(), (p[0] & 0xf) * 4u)));
  }
  const size_t l4_len = pkt.length - pkt.l4_offset;
  put16(p, pkt.l4_csum_offset, 0);
  uint32_t sum = ip_sum(p.data() + addr_at, 2 * alen);
  sum = ip_sum(nullptr, 0, sum + pkt.protocol + static_cast<uint32_t>(l4_len));
  uint16_t c = static_cast<uint16_t>(~ip_sum(p.data() + pkt.l4_offset, l4_len, sum));
  if (c == 0 && pkt.protocol == kIpProtoUdp) c = 0xffff;
  put16(p, pkt.l4_csum_offset, c);
}

// An IPv4 TCP packet with a 4-byte option (MSS) and a payload, checksums filled.
std::vector<uint8_t> tcp4(const IpEndpoint& src, const IpEndpoint& dst, uint8_t flags,
                          const std::string& payload) {
  const size_t total = 20 + 24 + payload.size();
  std::vector<uint8_t> p(total, 0);
  p[0] = 0x45;
  put16(p, 2, static_cast<uint16_t>(total));
  put16(p, 6, 0x4000);  // DF
  p[8] = 64;
  p[9] = kIpProtoTcp;
  std::memcpy(&p[12], src.ip.b, 4);
  std::memcpy(&p[16], dst.ip.b, 4);
  put16(p, 20, src.port);
  put16(p, 22, dst.port);
  p[32] = 6 << 4;  // data offset: 24 bytes
  p[33] = flags;
  put16(p, 34, 65535);
  p[40] = 2;  // MSS option
  p[41] = 4;
  put16(p, 42, 1460);
  std::memcpy(&p[44], payload.data(), payload.size());
  IpPacket pkt;
  pkt.version = 4;
  pkt.protocol = kIpProtoTcp;
  pkt.length = total;
  pkt.l4_offset = 20;
  pkt.l4_csum_offset = 36;
  fill_checksums(p, pkt);
  return p;
}

// An IPv6 UDP packet with a destination-options extension header.
std::vector<uint8_t> udp6_ext(const IpEndpoint& src, const IpEndpoint& dst,
                              const std::string& payload) {
  const size_t l4 = 8 + payload.size();
  const size_t total = 40 + 8 + l4;
  std::vector<uint8_t> p(total, 0);
  p[0] = 0x60;
  put16(p, 4, static_cast<uint16_t>(total - 40));
  p[6] = 60;  // destination options
  p[7] = 64;
  std::memcpy(&p[8], src.ip.b, 16);
  std::memcpy(&p[24], dst.ip.b, 16);
  p[40] = kIpProtoUdp;
  p[41] = 0;  // 8 bytes
  p[42] = 1;  // PadN
  p[43] = 4;
  put16(p, 48, src.port);
  put16(p, 50, dst.port);
  put16(p, 52, static_cast<uint16_t>(l4));
  std::memcpy(&p[56], payload.data(), payload.size());
  IpPacket pkt;
  pkt.version = 6;
  pkt.protocol = kIpProtoUdp;
  pkt.length = total;
  pkt.l4_offset = 48;
  pkt.l4_csum_offset = 54;
  fill_checksums(p, pkt);
  return p;
}

// Whether the packet's checksums are what a full computation gives.
bool checksums_valid(const std::vector<uint8_t>& p) {
  IpPacket pkt;
  return parse_ip_packet(p.data(), p.size(), pkt, true) == ParseStatus::Ok;
}

}  // namespace

TEST_CASE("tun packet: IPv4 TCP with options parses", "[client]") {
  const auto p = tcp4(v4(10, 0, 0, 1, 40000), v4(192, 0, 2, 7, 80), kTcpSyn, "hello");
  IpPacket pkt;
  REQUIRE(parse_ip_packet(p.data(), p.size(), pkt) == ParseStatus::Ok);
  CHECK(pkt.version == 4);
  CHECK(pkt.protocol == kIpProtoTcp);
  CHECK(pkt.src == v4(10, 0, 0, 1, 40000));
  CHECK(pkt.dst == v4(192, 0, 2, 7, 80));
  CHECK(pkt.tcp_flags == kTcpSyn);
  CHECK(pkt.payload_offset == 44);
  CHECK(pkt.payload_len == 5);
}

TEST_CASE("tun packet: bad checksums, truncation and fragments are refused", "[client]") {
  auto p = tcp4(v4(10, 0, 0, 1, 40000), v4(192, 0, 2, 7, 80), kTcpAck, "data");
  IpPacket pkt;
  SECTION("a payload bit flipped") {
    p.back() ^= 1;
    CHECK(parse_ip_packet(p.data(), p.size(), pkt) == ParseStatus::Error);
    CHECK(parse_ip_packet(p.data(), p.size(), pkt, false) == ParseStatus::Ok);
  }
  SECTION("an IPv4 header bit flipped") {
    p[8] ^= 1;  // TTL
    CHECK(parse_ip_packet(p.data(), p.size(), pkt) == ParseStatus::Error);
  }
  SECTION("truncated") {
    CHECK(parse_ip_packet(p.data(), p.size() - 1, pkt) == ParseStatus::Error);
    CHECK(parse_ip_packet(p.data(), 19, pkt) == ParseStatus::Error);
  }
  SECTION("more fragments") {
    put16(p, 6, 0x2000);
    fill_checksums(p, IpPacket{4, kIpProtoTcp, {}, {}, 20, p.size(), 0, 0, 0, 10, 36});
    CHECK(parse_ip_packet(p.data(), p.size(), pkt, false) == ParseStatus::Error);
  }
  SECTION("a fragment offset") {
    put16(p, 6, 0x0010);
    CHECK(parse_ip_packet(p.data(), p.size(), pkt, false) == ParseStatus::Error);
  }
  SECTION("a TCP data offset past the packet") {
    p[32] = 15 << 4;
    CHECK(parse_ip_packet(p.data(), p.size(), pkt, false) == ParseStatus::Error);
  }
  SECTION("ICMP") {
    p[9] = 1;
    CHECK(parse_ip_packet(p.data(), p.size(), pkt, false) == ParseStatus::Error);
  }
}

TEST_CASE("tun packet: IPv6 UDP past an extension header; Fragment header refused", "[client]") {
  auto p = udp6_ext(v6(1, 5353), v6(2, 53), "query");
  IpPacket pkt;
  REQUIRE(parse_ip_packet(p.data(), p.size(), pkt) == ParseStatus::Ok);
  CHECK(pkt.version == 6);
  CHECK(pkt.protocol == kIpProtoUdp);
  CHECK(pkt.l4_offset == 48);
  CHECK(pkt.src == v6(1, 5353));
  CHECK(pkt.dst == v6(2, 53));
  CHECK(std::string(reinterpret_cast<const char*>(&p[pkt.payload_offset]), pkt.payload_len) ==
        "query");
  p[6] = 44;  // a Fragment header instead
  CHECK(parse_ip_packet(p.data(), p.size(), pkt, false) == ParseStatus::Error);
}

TEST_CASE("tun packet: incremental rewrite equals a full checksum", "[client]") {
  SECTION("IPv4 TCP") {
    auto p = tcp4(v4(10, 0, 0, 1, 40000), v4(192, 0, 2, 7, 80), kTcpAck, "some bytes");
    IpPacket pkt;
    REQUIRE(parse_ip_packet(p.data(), p.size(), pkt) == ParseStatus::Ok);
    REQUIRE(rewrite_ip_packet(p.data(), pkt, v4(10, 0, 0, 2, 1024), v4(10, 0, 0, 1, 7000)));
    CHECK(checksums_valid(p));
    IpPacket again;
    REQUIRE(parse_ip_packet(p.data(), p.size(), again) == ParseStatus::Ok);
    CHECK(again.src == v4(10, 0, 0, 2, 1024));
    CHECK(again.dst == v4(10, 0, 0, 1, 7000));
    CHECK_FALSE(rewrite_ip_packet(p.data(), pkt, v6(1, 1), v6(2, 2)));  // family differs
  }
  SECTION("IPv6 UDP") {
    auto p = udp6_ext(v6(1, 5353), v6(2, 53), "query!");
    IpPacket pkt;
    REQUIRE(parse_ip_packet(p.data(), p.size(), pkt) == ParseStatus::Ok);
    REQUIRE(rewrite_ip_packet(p.data(), pkt, v6(9, 1), v6(8, 2)));
    CHECK(checksums_valid(p));
  }
}

TEST_CASE("tun packet: built UDP packets parse back", "[client]") {
  uint8_t buf[256];
  const std::string payload = "stun reply";
  for (const auto& [s, d] : {std::pair{v4(198, 51, 100, 9, 3478), v4(10, 0, 0, 1, 50000)},
                             std::pair{v6(7, 3478), v6(1, 50000)}}) {
    const size_t n = build_udp_packet(
        buf, sizeof buf, s, d, reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    REQUIRE(n > 0);
    IpPacket pkt;
    REQUIRE(parse_ip_packet(buf, n, pkt) == ParseStatus::Ok);
    CHECK(pkt.src == s);
    CHECK(pkt.dst == d);
    CHECK(std::string(reinterpret_cast<const char*>(buf + pkt.payload_offset), pkt.payload_len) ==
          payload);
  }
  CHECK(build_udp_packet(buf, 30, v4(1, 2, 3, 4, 1), v4(1, 2, 3, 5, 2), buf, 10) == 0);
  CHECK(build_udp_packet(buf, sizeof buf, v4(1, 2, 3, 4, 1), v6(1, 2), buf, 10) == 0);
}

TEST_CASE("tun TCP NAT: both directions, lookup, stale packets dropped", "[client]") {
  const IpEndpoint listener = v4(10, 0, 0, 1, 7000);
  const IpBytes spare = v4(10, 0, 0, 2, 0).ip;
  TcpNat nat(listener, spare, 1000, 100);
  const IpEndpoint client = v4(10, 0, 0, 1, 40000);
  const IpEndpoint target = v4(192, 0, 2, 7, 80);

  // A data packet for an unknown flow is not a connection.
  auto stray = tcp4(client, target, kTcpAck, "x");
  IpPacket pkt;
  REQUIRE(parse_ip_packet(stray.data(), stray.size(), pkt) == ParseStatus::Ok);
  CHECK_FALSE(nat.translate(stray.data(), pkt, 0));

  auto syn = tcp4(client, target, kTcpSyn, "");
  REQUIRE(parse_ip_packet(syn.data(), syn.size(), pkt) == ParseStatus::Ok);
  REQUIRE(nat.translate(syn.data(), pkt, 0));
  CHECK(checksums_valid(syn));
  CHECK(pkt.dst == listener);
  CHECK(pkt.src.ip == spare);
  const IpEndpoint nat_src = pkt.src;
  REQUIRE(nat.original_dst(nat_src));
  CHECK(*nat.original_dst(nat_src) == target);
  CHECK_FALSE(nat.original_dst(IpEndpoint{v4(10, 0, 0, 3, 0).ip, nat_src.port}));

  // The listener's SYN-ACK comes back as the target's.
  auto synack = tcp4(listener, nat_src, kTcpSyn | kTcpAck, "");
  REQUIRE(parse_ip_packet(synack.data(), synack.size(), pkt) == ParseStatus::Ok);
  REQUIRE(nat.translate(synack.data(), pkt, 10));
  CHECK(checksums_valid(synack));
  CHECK(pkt.src == target);
  CHECK(pkt.dst == client);

  // The same flow keeps its port; another flow gets another.
  auto ack = tcp4(client, target, kTcpAck, "GET /");
  REQUIRE(parse_ip_packet(ack.data(), ack.size(), pkt) == ParseStatus::Ok);
  REQUIRE(nat.translate(ack.data(), pkt, 20));
  CHECK(pkt.src == nat_src);
  auto syn2 = tcp4(v4(10, 0, 0, 1, 40001), target, kTcpSyn, "");
  REQUIRE(parse_ip_packet(syn2.data(), syn2.size(), pkt) == ParseStatus::Ok);
  REQUIRE(nat.translate(syn2.data(), pkt, 20));
  CHECK(pkt.src.port != nat_src.port);
  CHECK(nat.size() == 2);

  // One queue per worker: a worker whose loop clock is behind the one that saw the flow last
  // (here 5 ms, against 20) does not take the flow for expired.
  auto behind = tcp4(client, target, kTcpAck, "more");
  REQUIRE(parse_ip_packet(behind.data(), behind.size(), pkt) == ParseStatus::Ok);
  REQUIRE(nat.translate(behind.data(), pkt, 5));
  CHECK(pkt.src == nat_src);

  // After a RST and the closed delay, the flow's packets are stale.
  auto rst = tcp4(client, target, kTcpRst, "");
  REQUIRE(parse_ip_packet(rst.data(), rst.size(), pkt) == ParseStatus::Ok);
  REQUIRE(nat.translate(rst.data(), pkt, 30));
  auto late = tcp4(client, target, kTcpAck, "");
  REQUIRE(parse_ip_packet(late.data(), late.size(), pkt) == ParseStatus::Ok);
  CHECK_FALSE(nat.translate(late.data(), pkt, 200));
  // A reply to a port with no entry is dropped.
  auto orphan = tcp4(listener, IpEndpoint{spare, 5}, kTcpAck, "");
  REQUIRE(parse_ip_packet(orphan.data(), orphan.size(), pkt) == ParseStatus::Ok);
  CHECK_FALSE(nat.translate(orphan.data(), pkt, 200));
}

namespace {

struct NoFlows final : UdpFlows {
  UdpFlowState* state = nullptr;
  UdpFlowState* inbound_state(const UdpFlowKey&) override { return state; }
};

}  // namespace

TEST_CASE("tun UDP inbound: target from the packet, replies from their source", "[client]") {
  TunUdpInbound in;
  NoFlows flows;
  UdpStats stats;
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_port = htons(50000);
  from.sin_addr.s_addr = htonl(0x0aff0001);  // 10.255.0.1
  sockaddr_in dest{};
  dest.sin_family = AF_INET;
  dest.sin_port = htons(3478);
  dest.sin_addr.s_addr = htonl(0xc6336409);  // 198.51.100.9
  const uint8_t payload[] = {1, 2, 3, 4};
  uint8_t scratch[64];
  UdpRequest req;
  REQUIRE(in.receive(payload, reinterpret_cast<sockaddr*>(&from),
                     reinterpret_cast<sockaddr*>(&dest), flows, scratch, req, stats));
  CHECK(req.payload.size() == 4);
  Address target;
  size_t used = 0;
  REQUIRE(parse_address(req.address, target, used) == ParseStatus::Ok);
  CHECK(target.to_string() == "198.51.100.9:3478");
  REQUIRE(req.state);  // a new association remembers its client

  // A reply from another address (full cone): a packet from that address to the client.
  Address other = *make_address("203.0.113.5", 19302);
  uint8_t hdr[kMaxAddressLen];
  const size_t hn = encode_address(other, hdr);
  uint8_t out[128];
  const uint8_t answer[] = {9, 8, 7};
  const size_t n = in.reply(req.state.get(), {hdr, hn}, answer, out);
  REQUIRE(n != kNoReply);
  IpPacket pkt;
  REQUIRE(parse_ip_packet(out, n, pkt) == ParseStatus::Ok);
  CHECK(pkt.protocol == kIpProtoUdp);
  CHECK(pkt.src == v4(203, 0, 113, 5, 19302));
  CHECK(pkt.dst == v4(10, 255, 0, 1, 50000));
  CHECK(pkt.payload_len == 3);
  // A reply from an IPv6 source cannot go to an IPv4 client; no state: dropped.
  const size_t h6 = encode_address(*make_address("2001:db8::1", 53), hdr);
  CHECK(in.reply(req.state.get(), {hdr, h6}, answer, out) == kNoReply);
  CHECK(in.reply(nullptr, {hdr, hn}, answer, out) == kNoReply);
  // Not from the tun engine (no destination): dropped.
  UdpRequest req2;
  CHECK_FALSE(in.receive(payload, reinterpret_cast<sockaddr*>(&from), nullptr, flows, scratch, req2,
                         stats));
}

TEST_CASE("tun device addresses: the spare address beside the device's own", "[client]") {
  auto c = parse_tun_cidr("10.255.0.1/24");
  REQUIRE(c);
  CHECK(c->own == v4(10, 255, 0, 1, 0).ip);
  CHECK(c->spare == v4(10, 255, 0, 2, 0).ip);
  c = parse_tun_cidr("10.255.0.254/24");  // the top of the prefix: the one below
  REQUIRE(c);
  CHECK(c->spare == v4(10, 255, 0, 253, 0).ip);
  CHECK_FALSE(parse_tun_cidr("10.255.0.0/24"));  // the network's own address
  CHECK_FALSE(parse_tun_cidr("10.255.0.1/31"));  // no spare address
  CHECK_FALSE(parse_tun_cidr("10.255.0.1"));
  CHECK_FALSE(parse_tun_cidr("fd55::1/64"));
  auto c6 = parse_tun_cidr6("fd00::1/64");
  REQUIRE(c6);
  CHECK(c6->own == v6(1, 0).ip);
  CHECK(c6->spare.len == 16);
  CHECK(c6->spare.b[15] == 2);
  c6 = parse_tun_cidr6("fd00::ffff:ffff:ffff:ffff/64");  // the top: the one below
  REQUIRE(c6);
  CHECK(c6->spare.b[15] == 0xfe);
  CHECK_FALSE(parse_tun_cidr6("fd00::/64"));
  CHECK_FALSE(parse_tun_cidr6("fd00::1/127"));
  CHECK_FALSE(parse_tun_cidr6("10.0.0.1/24"));
}

TEST_CASE("tun packet: the RST answering a SYN, and a segment with ACK", "[client]") {
  const IpEndpoint client = v4(10, 255, 0, 1, 40000);
  const IpEndpoint fake = v4(198, 19, 255, 254, 8080);
  auto refill = [](std::vector<uint8_t>& p) {
    IpPacket k;
    k.version = 4;
    k.protocol = kIpProtoTcp;
    k.length = p.size();
    k.l4_offset = 20;
    k.l4_csum_offset = 36;
    fill_checksums(p, k);
  };
  std::vector<uint8_t> syn = tcp4(client, fake, kTcpSyn, "");
  put16(syn, 24, 0x1234);  // seq 0x12345678
  put16(syn, 26, 0x5678);
  refill(syn);
  IpPacket pkt;
  REQUIRE(parse_ip_packet(syn.data(), syn.size(), pkt, true) == ParseStatus::Ok);
  uint8_t out[128];
  const size_t n = build_tcp_reset(out, sizeof out, syn.data(), pkt);
  REQUIRE(n == 40);
  IpPacket rst;
  REQUIRE(parse_ip_packet(out, n, rst, true) == ParseStatus::Ok);  // checksums verified
  CHECK(rst.src == fake);
  CHECK(rst.dst == client);
  CHECK(rst.tcp_flags == (kTcpRst | kTcpAck));
  CHECK(std::memcmp(out + 24, "\0\0\0\0", 4) == 0);          // seq 0
  CHECK(std::memcmp(out + 28, "\x12\x34\x56\x79", 4) == 0);  // ack: the SYN's seq + 1
  CHECK(build_tcp_reset(out, 39, syn.data(), pkt) == 0);     // does not fit

  std::vector<uint8_t> data = tcp4(client, fake, kTcpAck, "abc");
  put16(data, 28, 0xabcd);  // ack 0xabcd0001
  put16(data, 30, 0x0001);
  refill(data);
  REQUIRE(parse_ip_packet(data.data(), data.size(), pkt, true) == ParseStatus::Ok);
  REQUIRE(build_tcp_reset(out, sizeof out, data.data(), pkt) == 40);
  REQUIRE(parse_ip_packet(out, 40, rst, true) == ParseStatus::Ok);
  CHECK(rst.tcp_flags == kTcpRst);
  CHECK(std::memcmp(out + 24, "\xab\xcd\x00\x01", 4) == 0);  // seq: the segment's ack
}
