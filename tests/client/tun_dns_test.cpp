// tun mode's DNS (client/tun/tun_dns.h): the fake-IP pools (one address per name, expiry, the
// least recently used given away first), answers to queries read from TUN packets, and a flow's
// target by name.

#include "client/tun/tun_dns.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "client/tun/packet.h"
#include "client/tun/tun_device.h"
#include "relay/dns/dns_message.h"
#include "tests/client/tun_endpoints.h"

using namespace ss;

namespace {

using test::v4;

// "198.18.0.1", "[fc00::1]".
std::string text(const IpBytes& ip) {
  IpEndpoint e;
  e.ip = ip;
  const std::string s = address_of(e).to_string();
  return s.substr(0, s.rfind(':'));
}

TunDnsOptions fake_options() {
  return test::fake_options(20);
}

// A UDP packet from the client to server:53 carrying a query for name/type; parsed into pkt.
std::vector<uint8_t> query_packet(const std::string& name, uint16_t type, IpPacket& pkt,
                                  const IpEndpoint& server = v4(10, 255, 0, 53, 53)) {
  uint8_t q[300];
  const size_t qn = dns::build_query(q, sizeof q, 0x4242, name, type);
  REQUIRE(qn > 0);
  std::vector<uint8_t> p(1500);
  const size_t n = build_udp_packet(p.data(), p.size(), v4(10, 255, 0, 1, 40000), server, q, qn);
  REQUIRE(n > 0);
  p.resize(n);
  REQUIRE(parse_ip_packet(p.data(), p.size(), pkt, true) == ParseStatus::Ok);
  return p;
}

}  // namespace

TEST_CASE("tun DNS: networks parse with host bits cleared, too small ones refused", "[client]") {
  const std::optional<IpNet> n = parse_ip_net("198.19.7.9/15");
  REQUIRE(n);
  CHECK(text(n->base) == "198.18.0.0");
  CHECK(n->contains(v4(198, 19, 255, 255, 0).ip));
  CHECK_FALSE(n->contains(v4(198, 20, 0, 0, 0).ip));
  CHECK(parse_ip_net("fc00::/18"));
  CHECK_FALSE(parse_ip_net("198.18.0.0/31"));
  CHECK_FALSE(parse_ip_net("198.18.0.0/0"));
  CHECK_FALSE(parse_ip_net("198.18.0.0"));
  CHECK_FALSE(parse_ip_net("example.com/16"));
  CHECK_FALSE(parse_ip_net("fc00::/127"));
  CHECK_FALSE(parse_ip_net("10.0.0.0/1x"));
}

TEST_CASE("tun DNS: one address per name, expiry after no use, LRU when full", "[client]") {
  FakeIpPool pool(*parse_ip_net("198.18.0.0/15"), 1000);
  const IpBytes a = pool.assign("Example.COM.", 0);
  CHECK(text(a) == "198.18.0.1");
  CHECK(pool.assign("example.com", 10) == a);  // case and the final dot do not matter
  const IpBytes b = pool.assign("other.example", 10);
  CHECK(text(b) == "198.18.0.2");
  std::string name;
  REQUIRE(pool.name_of(a, 900, name));  // a use: refreshed until 1900
  CHECK(name == "example.com");
  CHECK(pool.live(a, 1899));
  CHECK_FALSE(pool.live(b, 1010));  // unused for 1000 ms: forgotten
  CHECK_FALSE(pool.name_of(b, 1010, name));
  CHECK_FALSE(pool.live(v4(198, 18, 0, 3, 0).ip, 0));  // never given
  CHECK_FALSE(pool.live(v4(198, 18, 0, 0, 0).ip, 0));  // the network address
  CHECK_FALSE(pool.live(v4(10, 0, 0, 1, 0).ip, 0));    // not in the pool
  CHECK(pool.size() == 2);

  // A /30 has two addresses: the third name takes the least recently used one's.
  FakeIpPool small(*parse_ip_net("10.9.0.0/30"), 1000);
  const IpBytes x = small.assign("x", 0);
  const IpBytes y = small.assign("y", 1);
  small.assign("x", 2);  // x used last: y goes first
  const IpBytes z = small.assign("z", 3);
  CHECK(z == y);
  CHECK(small.evicted_live() == 1);
  REQUIRE(small.name_of(z, 4, name));
  CHECK(name == "z");
  REQUIRE(small.name_of(x, 4, name));
  CHECK(name == "x");
  CHECK(small.size() == 2);

  FakeIpPool six(*parse_ip_net("fc00::/18"), 1000);
  CHECK(text(six.assign("a.example", 0)) == "[fc00::1]");
}

TEST_CASE("tun DNS: A/AAAA answered from the pools, other types empty or relayed", "[client]") {
  TunDns dns(fake_options());
  uint8_t scratch[2048];
  uint8_t out[2048];
  size_t n = 0;
  IpPacket pkt;
  std::vector<uint8_t> p = query_packet("www.example.com", dns::kTypeA, pkt);
  REQUIRE(dns.on_query(p.data(), pkt, scratch, sizeof scratch, out, sizeof out, &n,
                       TunDns::now_ms()) == TunDns::Verdict::Reply);
  IpPacket r;
  REQUIRE(parse_ip_packet(out, n, r, true) == ParseStatus::Ok);
  CHECK(r.src == v4(10, 255, 0, 53, 53));  // from the address queried
  CHECK(r.dst == v4(10, 255, 0, 1, 40000));
  dns::Summary sum;
  REQUIRE(dns::summarize(out + r.payload_offset, r.payload_len, sum) == ParseStatus::Ok);
  CHECK(sum.header.id == 0x4242);
  CHECK(sum.header.response());
  CHECK(sum.header.rcode() == dns::kRcodeNoError);
  CHECK(sum.addresses == 1);
  CHECK(sum.min_ttl == 10);  // half the expiry
  const uint8_t* rdata = out + r.payload_offset + r.payload_len - 4;
  CHECK(std::memcmp(rdata, "\xc6\x12\x00\x01", 4) == 0);  // 198.18.0.1

  // The flow to it goes by name; an address never given is refused; others pass unchanged.
  Address target;
  target.type = Address::Type::IPv4;
  std::memcpy(target.ip.data(), rdata, 4);
  target.port = 443;
  REQUIRE(tun_dns_target(&dns, target));
  CHECK(target.to_string() == "www.example.com:443");
  Address unknown = *make_address("198.19.0.9", 80);
  CHECK_FALSE(tun_dns_target(&dns, unknown));
  CHECK(dns.refuses(v4(198, 19, 0, 9, 0).ip, 0));
  Address real = *make_address("192.0.2.1", 80);
  REQUIRE(tun_dns_target(&dns, real));
  CHECK(real.to_string() == "192.0.2.1:80");

  p = query_packet("www.example.com", dns::kTypeAaaa, pkt);
  REQUIRE(dns.on_query(p.data(), pkt, scratch, sizeof scratch, out, sizeof out, &n,
                       TunDns::now_ms()) == TunDns::Verdict::Reply);
  REQUIRE(parse_ip_packet(out, n, r, true) == ParseStatus::Ok);
  REQUIRE(dns::summarize(out + r.payload_offset, r.payload_len, sum) == ParseStatus::Ok);
  CHECK(sum.addresses == 1);

  // TXT: an empty NOERROR answer without a resolver; relayed with one.
  p = query_packet("www.example.com", 16, pkt);
  REQUIRE(dns.on_query(p.data(), pkt, scratch, sizeof scratch, out, sizeof out, &n,
                       TunDns::now_ms()) == TunDns::Verdict::Reply);
  REQUIRE(parse_ip_packet(out, n, r, true) == ParseStatus::Ok);
  REQUIRE(dns::summarize(out + r.payload_offset, r.payload_len, sum) == ParseStatus::Ok);
  CHECK(sum.header.rcode() == dns::kRcodeNoError);
  CHECK(sum.header.ancount == 0);
  TunDnsOptions with_resolver = fake_options();
  with_resolver.resolver = make_address("192.0.2.53", 53);
  with_resolver.pool6.reset();
  TunDns relaying(with_resolver);
  CHECK(relaying.on_query(p.data(), pkt, scratch, sizeof scratch, out, sizeof out, &n,
                          TunDns::now_ms()) == TunDns::Verdict::Relay);
  // Without an IPv6 pool (no IPv6 on the TUN), AAAA gets no address.
  p = query_packet("www.example.com", dns::kTypeAaaa, pkt);
  REQUIRE(relaying.on_query(p.data(), pkt, scratch, sizeof scratch, out, sizeof out, &n,
                            TunDns::now_ms()) == TunDns::Verdict::Reply);
  REQUIRE(parse_ip_packet(out, n, r, true) == ParseStatus::Ok);
  REQUIRE(dns::summarize(out + r.payload_offset, r.payload_len, sum) == ParseStatus::Ok);
  CHECK(sum.addresses == 0);

  // Malformed, a response, or no question: dropped.
  std::vector<uint8_t> bad = p;
  IpPacket bp = pkt;
  bad[bp.payload_offset + 2] |= 0x80;  // QR: a response
  CHECK(dns.on_query(bad.data(), bp, scratch, sizeof scratch, out, sizeof out, &n,
                     TunDns::now_ms()) == TunDns::Verdict::Drop);
  bp.payload_len = 5;  // shorter than a header
  CHECK(dns.on_query(p.data(), bp, scratch, sizeof scratch, out, sizeof out, &n,
                     TunDns::now_ms()) == TunDns::Verdict::Drop);
}

TEST_CASE("tun DNS: relay mode sends port 53 to the resolver", "[client]") {
  TunDnsOptions o = fake_options();
  o.mode = TunDnsOptions::Mode::Relay;
  o.resolver = make_address("192.0.2.53", 5353);
  TunDns dns(o);
  uint8_t buf[2048];
  size_t n = 0;
  IpPacket pkt;
  std::vector<uint8_t> p = query_packet("www.example.com", dns::kTypeA, pkt);
  CHECK(dns.on_query(p.data(), pkt, buf, sizeof buf, buf, sizeof buf, &n, 0) ==
        TunDns::Verdict::Relay);
  Address t = *make_address("10.255.0.53", 53);
  REQUIRE(tun_dns_target(&dns, t));
  CHECK(t.to_string() == "192.0.2.53:5353");
  Address other = *make_address("198.18.0.1", 80);  // no fake pool in relay mode
  REQUIRE(tun_dns_target(&dns, other));
  CHECK(other.to_string() == "198.18.0.1:80");
}
