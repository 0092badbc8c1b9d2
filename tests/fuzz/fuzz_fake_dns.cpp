// Fuzzes the parts of tun mode's fake DNS that read untrusted bytes outside a packet: the fake
// table's file (client/tun/fake_dns_file.cpp) and DNS over TCP (client/tun/tun_dns_tcp.h).
// The file: an accepted file encodes back to a file that parses to the same records, and
// restoring it into pools of any size loads each record at most once (the pools' live entries
// then number what was loaded). DNS over TCP: the input fed in input-chosen pieces never makes
// the state machine write past its output's capacity, and every answer it writes is a framed
// message the codec reads, a response with the query's id.

#include <cstring>
#include <string>
#include <vector>

#include "client/tun/tun_dns.h"
#include "client/tun/tun_dns_tcp.h"
#include "relay/dns/dns_message.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;

TunDnsOptions options(const char* pool4, const char* pool6) {
  TunDnsOptions o;
  o.pool4 = *parse_ip_net(pool4);
  o.pool6 = parse_ip_net(pool6);
  o.expire_s = 600;
  return o;
}

void file(std::string_view text) {
  const std::optional<std::vector<FakeDnsRecord>> records = parse_fake_dns_file(text);
  if (!records) return;
  const std::string again = encode_fake_dns_file(*records);
  const std::optional<std::vector<FakeDnsRecord>> back = parse_fake_dns_file(again);
  FUZZ_CHECK(back && back->size() == records->size());
  for (size_t i = 0; i < records->size(); ++i) {
    FUZZ_CHECK((*back)[i].ip == (*records)[i].ip);
    FUZZ_CHECK((*back)[i].expires_s == (*records)[i].expires_s);
    FUZZ_CHECK((*back)[i].name == (*records)[i].name);
  }
  for (const auto& [p4, p6] :
       {std::pair{"198.18.0.0/15", "fc00::/18"}, std::pair{"198.18.0.0/29", "fc00::/125"}}) {
    TunDns dns(options(p4, p6));
    const TunDns::Restored got = dns.restore(*records, 1000, 1'000'000);
    FUZZ_CHECK(got.loaded + got.expired + got.outside == records->size());
    FUZZ_CHECK(dns.snapshot(1000, 1'000'000).size() == got.loaded);
  }
}

void tcp(const uint8_t* data, size_t size) {
  TunDnsOptions o = options("198.18.0.0/15", "fc00::/18");
  fuzz::Rng rng(fuzz::hash_bytes({data, size}));
  if (rng.below(2) == 1) o.resolver = make_address("192.0.2.53", 53);
  TunDns dns(o);
  TunDnsTcp machine(&dns);
  size_t at = 0;
  while (at < size) {
    const size_t n = rng.piece(size - at);
    const size_t cap = 64 + rng.below(1024);
    fuzz::ExactBuffer out(cap);
    size_t len = 0;
    const TunDnsTcp::Result r = machine.feed(data + at, n, out.data(), cap, &len, 0);
    at += n;
    FUZZ_CHECK(len <= cap);
    size_t pos = 0;
    while (pos < len) {
      size_t msg = 0;
      FUZZ_CHECK(dns::tcp_frame(out.data() + pos, len - pos, msg) == ParseStatus::Ok);
      dns::Summary s;
      FUZZ_CHECK(dns::summarize(out.data() + pos + 2, msg, s) == ParseStatus::Ok);
      FUZZ_CHECK(s.header.response());
      pos += 2 + msg;
    }
    FUZZ_CHECK(pos == len);
    if (r == TunDnsTcp::Result::Relay) {
      FUZZ_CHECK(o.resolver.has_value() && machine.relayed().size() >= 2);
      return;
    }
    if (r != TunDnsTcp::Result::NeedMore) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  file({reinterpret_cast<const char*>(data), size});
  tcp(data, size);
  return 0;
}
