// ss-local's DNS inbound, its pure parts: which resolver a query goes to by the ACL (rust's rule),
// whether a local answer may be kept, the answer cache (TTL, negative answers by SOA, LRU bound,
// id rewrite), and the "dns" local's configuration keys and refusals.

#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "client/dns/dns_split.h"
#include "relay/acl.h"
#include "relay/config.h"
#include "relay/dns/dns_message.h"
#include "tests/support/config_text.h"

namespace ss {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes query(const char* name, uint16_t type = dns::kTypeA, uint16_t id = 1) {
  Bytes q(512);
  q.resize(dns::build_query(q.data(), q.size(), id, name, type));
  REQUIRE(!q.empty());
  return q;
}

dns::Question question_of(const Bytes& msg) {
  dns::Reader r;
  REQUIRE(r.start(msg.data(), msg.size()) == ParseStatus::Ok);
  dns::Question q;
  REQUIRE(r.next_question(q));
  return q;
}

dns::Question question(const char* name, uint16_t type = dns::kTypeA) {
  return question_of(query(name, type));
}

Bytes answer(const char* name, const char* ip, uint32_t ttl, uint8_t rcode = dns::kRcodeNoError) {
  const Bytes q = query(name);
  uint8_t addr[4] = {};
  if (ip[0] != 0) REQUIRE(inet_pton(AF_INET, ip, addr) == 1);
  const dns::AddressAnswer a[] = {{addr, 4}};
  Bytes out(512);
  out.resize(dns::build_answer(
      out.data(), out.size(), q.data(), q.size(), rcode,
      ip[0] != 0 ? std::span<const dns::AddressAnswer>(a) : std::span<const dns::AddressAnswer>(),
      ttl));
  REQUIRE(!out.empty());
  return out;
}

// NXDOMAIN for `name` with an SOA (TTL 3600, MINIMUM `minimum`) in the authority section.
Bytes negative(const char* name, uint32_t minimum) {
  Bytes m = answer(name, "", 0, dns::kRcodeNxDomain);
  m[9] = 1;  // NSCOUNT
  const uint8_t rr[] = {0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0x0e, 0x10, 0, 26, 1, 'a', 0, 1, 'b', 0, 0,
                        0,    0,    1, 0, 0, 0, 1, 0, 0,    0,    1, 0,  0, 0,   1, 0, 0,   0, 1};
  m.insert(m.end(), rr, rr + sizeof rr);
  for (int i = 0; i < 4; ++i) m[m.size() - 1 - i] = static_cast<uint8_t>(minimum >> (8 * i));
  return m;
}

std::unique_ptr<const Acl> acl(const char* text) {
  std::string error;
  auto a = Acl::parse(text, &error);
  REQUIRE(a);
  return a;
}

uint32_t first_ttl(const Bytes& m) {
  dns::Reader r;
  REQUIRE(r.start(m.data(), m.size()) == ParseStatus::Ok);
  dns::Record rec;
  REQUIRE(r.next_record(rec));
  return rec.ttl;
}

Config finalized(const std::string& json) {
  return test::finalized(Role::Local, json);
}

std::string refused(const std::string& json) {
  return test::refusal(Role::Local, json);
}

constexpr const char* kServer =
    R"({"server": "ss.example", "server_port": 8388, "password": "x", "method": "aes-256-gcm", )";

}  // namespace

std::unique_ptr<const Acl> b_acl_bypass_all() {
  return acl("[bypass_all]\n[proxy_list]\n8.8.8.0/24\n");
}

TEST_CASE("dns split: reverse names parsed into the address they stand for", "[client]") {
  Address a;
  REQUIRE(reverse_name_address("4.3.2.1.in-addr.arpa", a));
  CHECK(a.type == Address::Type::IPv4);
  CHECK(a.to_string() == "1.2.3.4:0");
  REQUIRE(reverse_name_address("255.0.168.192.IN-ADDR.ARPA.", a));
  CHECK(a.to_string() == "192.168.0.255:0");
  // 2001:db8::567:89ab, nibbles lowest first (RFC 3596's example form).
  REQUIRE(reverse_name_address(
      "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", a));
  CHECK(a.type == Address::Type::IPv6);
  CHECK(a.to_string() == "[2001:db8::567:89ab]:0");
  REQUIRE(reverse_name_address(
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.IP6.Arpa.", a));
  CHECK(a.to_string() == "[::1]:0");
  // Partial zones, bad labels, other names.
  for (const char* bad :
       {"3.2.1.in-addr.arpa", "5.4.3.2.1.in-addr.arpa", "256.2.1.1.in-addr.arpa",
        "1..2.3.in-addr.arpa", "a.2.3.4.in-addr.arpa", "1000.2.3.4.in-addr.arpa",
        ".2.3.4.in-addr.arpa", "in-addr.arpa", "4.3.2.1.in-addr.arpa.example", "example.com", "",
        "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",  // 31
        "g.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        "ba.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.0.ip6.arpa",
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.0.ip6.arpa"}) {
    INFO(bad);
    CHECK_FALSE(reverse_name_address(bad, a));
  }
}

TEST_CASE("dns split: the resolver by the ACL, as shadowsocks-rust", "[client]") {
  const std::vector<std::string> servers = {"ss.example"};
  const auto a =
      acl("[proxy_all]\n[bypass_list]\n(^|\\.)direct\\.test$\n10.1.1.0/24\n"
          "[proxy_list]\n(^|\\.)proxied\\.test$\n");
  CHECK(dns_upstream(nullptr, question("anything.test"), servers) == DnsUpstream::Remote);
  CHECK(dns_upstream(a.get(), question("SS.Example"), servers) == DnsUpstream::Local);
  CHECK(dns_upstream(nullptr, question("ss.example"), servers) == DnsUpstream::Local);
  CHECK(dns_upstream(a.get(), question("www.direct.test"), servers) == DnsUpstream::Local);
  CHECK(dns_upstream(a.get(), question("proxied.test", dns::kTypeAaaa), servers) ==
        DnsUpstream::Remote);
  // No name rule, and IP rules that could bypass it: the local answer decides.
  CHECK(dns_upstream(a.get(), question("other.test"), servers) == DnsUpstream::ByLocalAnswer);
  // PTR goes where the ACL routes the address (10.1.1.0/24 bypassed); a partial reverse name
  // and classes other than IN follow the mode.
  CHECK(dns_upstream(a.get(), question("1.1.1.10.in-addr.arpa", dns::kTypePtr), servers) ==
        DnsUpstream::Local);
  CHECK(dns_upstream(a.get(), question("1.7.7.10.in-addr.arpa", dns::kTypePtr), servers) ==
        DnsUpstream::Remote);
  CHECK(dns_upstream(a.get(), question("1.10.in-addr.arpa", dns::kTypePtr), servers) ==
        DnsUpstream::Remote);
  CHECK(dns_upstream(b_acl_bypass_all().get(), question("1.1.1.10.in-addr.arpa", dns::kTypePtr),
                     servers) == DnsUpstream::Local);
  dns::Question chaos = question("direct.test");
  chaos.klass = 3;
  CHECK(dns_upstream(a.get(), chaos, servers) == DnsUpstream::Remote);
  // Without IP rules, the mode decides a name no rule names.
  const auto b = acl("[bypass_all]\n[proxy_list]\n(^|\\.)proxied\\.test$\n");
  CHECK(dns_upstream(b.get(), question("other.test"), servers) == DnsUpstream::Local);
  CHECK(dns_upstream(b.get(), question("a.proxied.test"), servers) == DnsUpstream::Remote);

  // The local answer is kept when one of its addresses is bypassed.
  Bytes m = answer("other.test", "10.1.1.9", 60);
  CHECK(local_answer_usable(*a, m.data(), m.size()));
  m = answer("other.test", "10.7.7.7", 60);
  CHECK_FALSE(local_answer_usable(*a, m.data(), m.size()));
  m = negative("other.test", 60);
  CHECK_FALSE(local_answer_usable(*a, m.data(), m.size()));
  CHECK_FALSE(local_answer_usable(*a, m.data(), 5));
}

TEST_CASE("dns cache: min TTL, negative answers by SOA, id rewrite, LRU bound", "[client]") {
  DnsCache cache(2);
  Bytes out;
  const Bytes a = answer("a.test", "192.0.2.1", 42);
  CHECK(cache.store(question("a.test"), a.data(), a.size(), 1000));
  REQUIRE(cache.lookup(question("A.TEST"), 0x7777, 11'000, out));
  CHECK(dns::message_id(out.data()) == 0x7777);
  CHECK(first_ttl(out) == 32);  // 10 s in the cache
  CHECK(out.size() == a.size());
  CHECK_FALSE(cache.lookup(question("a.test", dns::kTypeAaaa), 1, 11'000, out));
  CHECK_FALSE(cache.lookup(question("a.test"), 1, 43'000, out));  // expired
  CHECK(cache.size() == 0);

  // NXDOMAIN lives for the SOA's MINIMUM (60), not its TTL (3600).
  const Bytes nx = negative("gone.test", 60);
  CHECK(cache.store(question("gone.test"), nx.data(), nx.size(), 0));
  CHECK(cache.lookup(question("gone.test"), 2, 59'000, out));
  CHECK_FALSE(cache.lookup(question("gone.test"), 2, 60'000, out));

  // Not kept: SERVFAIL, a negative answer without SOA, TTL 0, a query, oversized answers.
  const Bytes sf = answer("x.test", "", 0, dns::kRcodeServFail);
  CHECK_FALSE(cache.store(question("x.test"), sf.data(), sf.size(), 0));
  const Bytes bare_nx = answer("x.test", "", 0, dns::kRcodeNxDomain);
  CHECK_FALSE(cache.store(question("x.test"), bare_nx.data(), bare_nx.size(), 0));
  const Bytes zero = answer("x.test", "192.0.2.1", 0);
  CHECK_FALSE(cache.store(question("x.test"), zero.data(), zero.size(), 0));
  const Bytes q = query("x.test");
  CHECK_FALSE(cache.store(question("x.test"), q.data(), q.size(), 0));
  Bytes big = answer("x.test", "192.0.2.1", 60);
  big.resize(DnsCache::kMaxEntrySize + 1);
  CHECK_FALSE(cache.store(question("x.test"), big.data(), big.size(), 0));

  // At most two entries: the least recently used one goes.
  const Bytes b = answer("b.test", "192.0.2.2", 300);
  const Bytes c = answer("c.test", "192.0.2.3", 300);
  const Bytes d = answer("d.test", "192.0.2.4", 300);
  CHECK(cache.store(question("b.test"), b.data(), b.size(), 0));
  CHECK(cache.store(question("c.test"), c.data(), c.size(), 0));
  CHECK(cache.lookup(question("b.test"), 3, 1000, out));  // b is now the most recent
  CHECK(cache.store(question("d.test"), d.data(), d.size(), 1000));
  CHECK(cache.size() == 2);
  CHECK(cache.lookup(question("b.test"), 3, 1000, out));
  CHECK_FALSE(cache.lookup(question("c.test"), 3, 1000, out));
  CHECK(cache.lookup(question("d.test"), 3, 1000, out));

  DnsCache off(0);
  CHECK_FALSE(off.store(question("b.test"), b.data(), b.size(), 0));
}

TEST_CASE("dns config: a dns local, its defaults and refusals", "[client]") {
  const Config c = finalized(std::string(kServer) + R"("locals": [
      {"protocol": "dns", "local_port": 5353, "local_dns_address": "192.0.2.53",
       "remote_dns_address": "dns.example", "remote_dns_port": 5300, "dns_cache_size": 10},
      {"protocol": "socks", "local_port": 1080}]})");
  REQUIRE(c.listeners.size() == 2);
  const ListenerSpec& l = c.listeners[0];
  CHECK(l.protocol == ListenerSpec::Protocol::Dns);
  CHECK(l.local_dns->to_string() == "192.0.2.53:53");
  CHECK(l.remote_dns->to_string() == "dns.example:5300");
  CHECK(l.dns_cache_size == 10);
  const Specs s = specs_of(c);
  CHECK(s.listeners[0].tcp);
  CHECK(s.listeners[0].udp);  // both unless its "mode" says otherwise
  CHECK_FALSE(s.listeners[1].udp);

  const Config d = finalized(std::string(kServer) + R"("locals": [
      {"protocol": "dns", "local_port": 53, "local_dns_address": "::1", "mode": "udp_only"}]})");
  CHECK(d.listeners[0].remote_dns->to_string() == "8.8.8.8:53");  // rust's default
  CHECK(d.listeners[0].dns_cache_size == 1024);
  CHECK_FALSE(specs_of(d).listeners[0].tcp);

  CHECK_THAT(
      refused(std::string(kServer) + R"("locals": [{"protocol": "dns", "local_port": 53}]})"),
      Catch::Contains("local_dns_address: missing"));
  CHECK_THAT(refused(std::string(kServer) + R"("locals": [{"protocol": "dns", "local_port": 53,
                     "local_dns_address": "resolver.example"}]})"),
             Catch::Contains("must be an IP address"));
  CHECK_THAT(refused(std::string(kServer) + R"("locals": [{"protocol": "dns", "local_port": 53,
                     "local_dns_address": "192.0.2.53", "client_cache_size": 5}]})"),
             Catch::Contains("locals[0].client_cache_size: not supported"));
  CHECK_THAT(refused(std::string(kServer) + R"("locals": [{"protocol": "socks", "local_port": 1,
                     "remote_dns_address": "192.0.2.53"}]})"),
             Catch::Contains("are for \"protocol\": \"dns\""));
}

}  // namespace ss
