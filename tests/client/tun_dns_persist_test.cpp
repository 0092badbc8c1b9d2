// tun mode's fake DNS beyond UDP: DNS over TCP (client/tun/tun_dns_tcp.h: framing, pipelining,
// queries cut across reads, the relay hand-off, malformed input) and the fake table's file
// (client/tun/fake_dns_file.cpp: round trip, corrupt files, entries outside the pools, expiry).

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "client/tun/tun_dns.h"
#include "client/tun/tun_dns_tcp.h"
#include "relay/dns/dns_message.h"
#include "tests/client/tun_endpoints.h"

using namespace ss;

namespace {

TunDnsOptions fake_options() {
  return test::fake_options(600);
}

// A query for name/type, framed for TCP.
std::vector<uint8_t> framed_query(const std::string& name, uint16_t type, uint16_t id) {
  uint8_t q[300];
  const size_t n = dns::build_query(q, sizeof q, id, name, type);
  REQUIRE(n > 0);
  std::vector<uint8_t> f = {static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  f.insert(f.end(), q, q + n);
  return f;
}

// The framed answers in out[0, len): each one's summary.
std::vector<dns::Summary> answers(const uint8_t* out, size_t len) {
  std::vector<dns::Summary> got;
  size_t at = 0;
  while (at < len) {
    size_t size = 0;
    REQUIRE(dns::tcp_frame(out + at, len - at, size) == ParseStatus::Ok);
    dns::Summary s;
    REQUIRE(dns::summarize(out + at + 2, size, s) == ParseStatus::Ok);
    got.push_back(s);
    at += 2 + size;
  }
  return got;
}

}  // namespace

TEST_CASE("tun DNS over TCP: framed answers, pipelined and cut queries", "[client]") {
  TunDns dns(fake_options());
  TunDnsTcp tcp(&dns);
  uint8_t out[512];
  size_t len = 0;
  // Two queries in one read: both answered, each with its id.
  std::vector<uint8_t> in = framed_query("a.example", dns::kTypeA, 1);
  const std::vector<uint8_t> second = framed_query("b.example", dns::kTypeAaaa, 2);
  in.insert(in.end(), second.begin(), second.end());
  REQUIRE(tcp.feed(in.data(), in.size(), out, sizeof out, &len, 0) == TunDnsTcp::Result::NeedMore);
  std::vector<dns::Summary> got = answers(out, len);
  REQUIRE(got.size() == 2);
  CHECK(got[0].header.id == 1);
  CHECK(got[0].addresses == 1);
  CHECK(got[1].header.id == 2);
  CHECK(got[1].question.type == dns::kTypeAaaa);
  CHECK(got[1].addresses == 1);
  // The same pool as UDP: a.example has 198.18.0.1.
  std::string name;
  IpBytes first;
  first.len = 4;
  const uint8_t a1[4] = {198, 18, 0, 1};
  std::memcpy(first.b, a1, 4);
  REQUIRE(dns.pool(4)->name_of(first, 1, name));
  CHECK(name == "a.example");

  // One byte at a time: nothing until the query is whole, then its answer.
  len = 0;
  const std::vector<uint8_t> q = framed_query("c.example", dns::kTypeA, 3);
  for (size_t i = 0; i + 1 < q.size(); ++i) {
    REQUIRE(tcp.feed(&q[i], 1, out, sizeof out, &len, 0) == TunDnsTcp::Result::NeedMore);
    CHECK(len == 0);
  }
  REQUIRE(tcp.feed(&q.back(), 1, out, sizeof out, &len, 0) == TunDnsTcp::Result::NeedMore);
  got = answers(out, len);
  REQUIRE(got.size() == 1);
  CHECK(got[0].header.id == 3);

  // More answers than fit: those that fit, then Full (the connection ends after them).
  std::vector<uint8_t> many;
  for (uint16_t i = 0; i < 20; ++i) {
    const std::vector<uint8_t> one = framed_query("name" + std::to_string(i) + ".example", 1, i);
    many.insert(many.end(), one.begin(), one.end());
  }
  TunDnsTcp busy(&dns);
  len = 0;
  CHECK(busy.feed(many.data(), many.size(), out, sizeof out, &len, 0) == TunDnsTcp::Result::Full);
  got = answers(out, len);
  CHECK(got.size() >= 5);
  CHECK(got.size() < 20);
}

TEST_CASE("tun DNS over TCP: malformed input closes, other types go to the resolver", "[client]") {
  TunDns dns(fake_options());
  uint8_t out[512];
  size_t len = 0;
  const uint8_t zero[2] = {0, 0};  // a length shorter than a header
  CHECK(TunDnsTcp(&dns).feed(zero, 2, out, sizeof out, &len, 0) == TunDnsTcp::Result::Close);
  const uint8_t huge[2] = {0x20, 0x00};  // 8 KiB: longer than any query
  CHECK(TunDnsTcp(&dns).feed(huge, 2, out, sizeof out, &len, 0) == TunDnsTcp::Result::Close);
  std::vector<uint8_t> response = framed_query("a.example", dns::kTypeA, 1);
  response[4] |= 0x80;  // QR set: not a query
  CHECK(TunDnsTcp(&dns).feed(response.data(), response.size(), out, sizeof out, &len, 0) ==
        TunDnsTcp::Result::Close);
  std::vector<uint8_t> garbage(14, 0xff);
  garbage[0] = 0;
  garbage[1] = 12;
  CHECK(TunDnsTcp(&dns).feed(garbage.data(), garbage.size(), out, sizeof out, &len, 0) ==
        TunDnsTcp::Result::Close);

  // TXT without a resolver: an empty NOERROR answer.
  TunDnsTcp plain(&dns);
  len = 0;
  const std::vector<uint8_t> txt = framed_query("a.example", 16, 7);
  REQUIRE(plain.feed(txt.data(), txt.size(), out, sizeof out, &len, 0) ==
          TunDnsTcp::Result::NeedMore);
  const std::vector<dns::Summary> got = answers(out, len);
  REQUIRE(got.size() == 1);
  CHECK(got[0].header.ancount == 0);
  CHECK(got[0].header.rcode() == dns::kRcodeNoError);

  // With a resolver: an A query answered here, then the TXT query and all after it relayed.
  TunDnsOptions o = fake_options();
  o.resolver = make_address("192.0.2.53", 53);
  TunDns relaying(o);
  TunDnsTcp tcp(&relaying);
  std::vector<uint8_t> in = framed_query("b.example", dns::kTypeA, 8);
  in.insert(in.end(), txt.begin(), txt.end());
  in.push_back(0);  // the start of a third query
  len = 0;
  REQUIRE(tcp.feed(in.data(), in.size(), out, sizeof out, &len, 0) == TunDnsTcp::Result::Relay);
  CHECK(answers(out, len).size() == 1);
  std::vector<uint8_t> rest = txt;
  rest.push_back(0);
  CHECK(tcp.relayed() == rest);
}

TEST_CASE("fake DNS file: round trip, corrupt files refused, outside entries skipped", "[client]") {
  TunDns dns(fake_options());
  const IpBytes a = dns.pool(4)->assign("a.example", 1000);
  const IpBytes b = dns.pool(4)->assign("b.example", 2000);
  const IpBytes c = dns.pool(6)->assign("c.example", 3000);
  const uint64_t now_s = 1'800'000'000;
  const std::string text = encode_fake_dns_file(dns.snapshot(now_s, 3000));
  CHECK(text.rfind(std::string(kFakeDnsFileHeader) + "\n", 0) == 0);
  CHECK(text.find("198.18.0.1 1800000598 a.example\n") != std::string::npos);  // 598 s left
  CHECK(text.find("fc00::1 1800000600 c.example\n") != std::string::npos);
  const std::optional<std::vector<FakeDnsRecord>> parsed = parse_fake_dns_file(text);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 3);

  // Another process, 100 s later: the same names behind the same addresses.
  TunDns after(fake_options());
  const TunDns::Restored got = after.restore(*parsed, now_s + 100, 50);
  CHECK(got.loaded == 3);
  CHECK(got.expired == 0);
  CHECK(got.outside == 0);
  std::string name;
  REQUIRE(after.pool(4)->name_of(a, 60, name));
  CHECK(name == "a.example");
  REQUIRE(after.pool(6)->name_of(c, 60, name));
  CHECK(name == "c.example");
  CHECK(after.pool(4)->assign("b.example", 70) == b);  // a name keeps its address
  const IpBytes fresh = after.pool(4)->assign("new.example", 70);
  CHECK(fresh != a);
  CHECK(fresh != b);

  // Expired entries dropped; an entry whose time runs out goes when it would have.
  TunDns late(fake_options());
  CHECK(late.restore(*parsed, now_s + 599, 1'000'000).expired == 2);
  CHECK(late.pool(6)->live(c, 1'000'500));  // 1 s was left
  TunDns later(fake_options());
  later.restore(*parsed, now_s + 599, 1'000'000);
  CHECK_FALSE(later.pool(6)->live(c, 1'001'100));

  // Pools of another configuration: those entries skipped one by one, the others loaded.
  TunDnsOptions other = fake_options();
  other.pool4 = *parse_ip_net("100.64.0.0/10");
  TunDns moved(other);
  const TunDns::Restored m = moved.restore(*parsed, now_s, 0);
  CHECK(m.outside == 2);
  CHECK(m.loaded == 1);
  TunDnsOptions no6 = fake_options();
  no6.pool6.reset();
  CHECK(TunDns(no6).restore(*parsed, now_s, 0).outside == 1);
  // A small pool: an address past its capacity is outside it.
  TunDnsOptions small = fake_options();
  small.pool4 = *parse_ip_net("198.18.0.0/30");
  std::vector<FakeDnsRecord> far =
      *parse_fake_dns_file(std::string(kFakeDnsFileHeader) + "\n198.18.0.3 1800000600 x.example\n");
  CHECK(TunDns(small).restore(far, now_s, 0).outside == 1);
  // The same address or name twice: the second skipped.
  std::vector<FakeDnsRecord> twice =
      *parse_fake_dns_file(std::string(kFakeDnsFileHeader) +
                           "\n198.18.0.5 1800000600 x.example\n198.18.0.5 1800000600 y.example\n"
                           "198.18.0.6 1800000600 x.example\n");
  const TunDns::Restored t = TunDns(fake_options()).restore(twice, now_s, 0);
  CHECK(t.loaded == 1);
  CHECK(t.outside == 2);

  // Corrupt: the whole file refused.
  const std::string h = std::string(kFakeDnsFileHeader) + "\n";
  CHECK(parse_fake_dns_file(h));  // empty table
  CHECK(parse_fake_dns_file(h)->empty());
  CHECK_FALSE(parse_fake_dns_file(""));
  CHECK_FALSE(parse_fake_dns_file("shadowsocks-uv fake-dns 2\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "198.18.0.1 1800000600 a.example"));  // cut short
  CHECK_FALSE(parse_fake_dns_file(h + "198.18.0.1 1800000600\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "198.18.0.1 18x0000600 a.example\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "198.18.0.1 99999999999999999999 a.example\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "example.com 1800000600 a.example\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "[fc00::1] 1800000600 a.example\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "198.18.0.1 1800000600 10.0.0.1\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "198.18.0.1 1800000600 a example\n"));
  CHECK_FALSE(parse_fake_dns_file(h + "198.18.0.1 1800000600 \n"));
  CHECK_FALSE(parse_fake_dns_file(h + std::string("198.18.0.1 1800000600 a\x01.example\n")));
  CHECK_FALSE(parse_fake_dns_file(h + "\n"));
}
