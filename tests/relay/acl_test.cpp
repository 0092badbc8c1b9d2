// ACL files (relay/acl.*): every section, precedence, `|`/`||`, CIDRs v4/v6, regexes and the
// regexes recognised as plain domain rules, errors with their line numbers.

#include "relay/acl.h"

#include <catch2/catch.hpp>
#include <string>

namespace ss {
namespace {

std::unique_ptr<const Acl> parse_ok(const std::string& text) {
  std::string err;
  auto acl = Acl::parse(text, &err);
  INFO(err);
  REQUIRE(acl != nullptr);
  return acl;
}

std::string parse_error(const std::string& text) {
  std::string err;
  auto acl = Acl::parse(text, &err);
  REQUIRE(acl == nullptr);
  return err;
}

Address addr(const std::string& host) {
  return *make_address(host, 443);
}

sockaddr_storage sa(const std::string& ip) {
  sockaddr_storage s{};
  REQUIRE(literal_to_sockaddr(ip, 80, s));
  return s;
}

}  // namespace

TEST_CASE("ACL: the default mode proxies, rules before any section go to the bypass list",
          "[relay]") {
  auto acl = parse_ok("# comment\n\n10.0.0.0/8\n(^|\\.)example\\.com$   # trailing comment\n");
  CHECK(acl->mode() == Acl::Mode::ProxyAll);
  CHECK(acl->bypass(addr("10.1.2.3")));
  CHECK_FALSE(acl->bypass(addr("11.1.2.3")));
  CHECK(acl->bypass(addr("example.com")));
  CHECK(acl->bypass(addr("www.Example.COM")));
  CHECK(acl->bypass(addr("www.example.com.")));
  CHECK_FALSE(acl->bypass(addr("notexample.com")));
  CHECK_FALSE(acl->bypass(addr("example.com.evil.org")));
  CHECK(acl->bypass_list().domain_rules() == 1);
  CHECK(acl->bypass_list().regex_rules() == 0);
}

TEST_CASE("ACL: bypass_all with a proxy list, and its aliases", "[relay]") {
  for (const char* head : {"[bypass_all]\n[proxy_list]\n", "[reject_all]\n[white_list]\n"}) {
    auto acl = parse_ok(std::string(head) + "192.0.2.0/24\n||proxied.test\n");
    CHECK(acl->mode() == Acl::Mode::BypassAll);
    CHECK_FALSE(acl->bypass(addr("192.0.2.200")));
    CHECK(acl->bypass(addr("192.0.3.1")));
    CHECK_FALSE(acl->bypass(addr("a.b.proxied.test")));
    CHECK_FALSE(acl->bypass(addr("proxied.test")));
    CHECK(acl->bypass(addr("other.test")));
  }
}

TEST_CASE("ACL: the bypass list wins over the proxy list (libev's order)", "[relay]") {
  auto acl = parse_ok(
      "[proxy_all]\n[proxy_list]\n10.0.0.0/8\n||both.test\n[bypass_list]\n10.1.0.0/16\n"
      "||both.test\n");
  CHECK(acl->bypass(addr("10.1.0.1")));
  CHECK_FALSE(acl->bypass(addr("10.2.0.1")));
  CHECK(acl->bypass(addr("x.both.test")));
}

TEST_CASE("ACL: | is the name only, || the name and its subdomains", "[relay]") {
  auto acl = parse_ok("[bypass_list]\n|exact.test\n||tree.test\n");
  CHECK(acl->bypass(addr("exact.test")));
  CHECK_FALSE(acl->bypass(addr("www.exact.test")));
  CHECK(acl->bypass(addr("tree.test")));
  CHECK(acl->bypass(addr("a.b.tree.test")));
  CHECK_FALSE(acl->bypass(addr("xtree.test")));
}

TEST_CASE("ACL: regexes recognised as plain rules match as the regexes would", "[relay]") {
  auto acl = parse_ok("^exact\\.test$\n\\.sub\\.test$\n^.*\\.star\\.test$\n(?:^|\\.)nc\\.test$\n");
  CHECK(acl->bypass_list().regex_rules() == 0);
  CHECK(acl->bypass_list().domain_rules() == 4);
  CHECK(acl->bypass(addr("exact.test")));
  CHECK_FALSE(acl->bypass(addr("a.exact.test")));
  CHECK_FALSE(acl->bypass(addr("sub.test")));
  CHECK(acl->bypass(addr("a.sub.test")));
  CHECK_FALSE(acl->bypass(addr("star.test")));
  CHECK(acl->bypass(addr("x.y.star.test")));
  CHECK(acl->bypass(addr("nc.test")));
  CHECK(acl->bypass(addr("w.nc.test")));
}

TEST_CASE("ACL: real regexes are searched anywhere in the name, case-insensitively", "[relay]") {
  // `google` alone is a regex (libev): it matches anywhere. An unescaped dot matches any byte.
  auto acl = parse_ok("google\n^ads?[0-9]+\\.\nexample.org$\n");
  CHECK(acl->bypass_list().regex_rules() == 3);
  CHECK(acl->bypass(addr("www.GOOGLE.com")));
  CHECK(acl->bypass(addr("mygoogleapis.net")));
  CHECK(acl->bypass(addr("ad12.tracker.net")));
  CHECK_FALSE(acl->bypass(addr("xad12.tracker.net")));
  CHECK(acl->bypass(addr("exampleXorg")));
  CHECK_FALSE(acl->bypass(addr("example.org.net")));
  CHECK_FALSE(acl->bypass(addr("other.net")));
}

TEST_CASE("ACL: IPv4 and IPv6 addresses and CIDRs, host bits ignored, mapped addresses",
          "[relay]") {
  auto acl = parse_ok(
      "[bypass_list]\n203.0.113.7\n198.51.100.77/24\n0.0.0.0/0\n"
      "[proxy_list]\n2001:db8::/32\n::1\n2001:db9:1::/48\n");
  const AclRules& b = acl->bypass_list();
  CHECK(b.ipv4_ranges() == 1);  // merged into 0.0.0.0/0
  CHECK(b.match_ip(addr("255.255.255.255")));
  const AclRules& p = acl->proxy_list();
  CHECK(p.match_ip(addr("2001:db8:ffff::1")));
  CHECK_FALSE(p.match_ip(addr("2001:db7::1")));
  CHECK(p.match_ip(addr("::1")));
  CHECK_FALSE(p.match_ip(addr("::2")));
  CHECK(p.match_ip(addr("2001:db9:1:ffff::")));
  CHECK_FALSE(p.match_ip(addr("2001:db9:2::")));
  CHECK(p.ipv6_ranges() == 3);

  auto v4 = parse_ok("198.51.100.77/24\n");
  CHECK(v4->bypass(addr("198.51.100.1")));
  CHECK(v4->bypass(addr("::ffff:198.51.100.200")));
  CHECK_FALSE(v4->bypass(addr("198.51.101.1")));
  sockaddr_storage s = sa("198.51.100.9");
  CHECK(v4->bypass_list().match_ip(reinterpret_cast<sockaddr*>(&s)));
}

TEST_CASE("ACL: adjacent and overlapping ranges merge, lookups at the edges", "[relay]") {
  auto acl = parse_ok("10.0.0.0/25\n10.0.0.128/25\n10.0.0.5\n10.0.2.0/24\n");
  CHECK(acl->bypass_list().ipv4_ranges() == 2);
  CHECK(acl->bypass(addr("10.0.0.0")));
  CHECK(acl->bypass(addr("10.0.0.255")));
  CHECK_FALSE(acl->bypass(addr("10.0.1.0")));
  CHECK(acl->bypass(addr("10.0.2.255")));
  CHECK_FALSE(acl->bypass(addr("10.0.3.0")));
  CHECK_FALSE(acl->bypass(addr("9.255.255.255")));
}

TEST_CASE("ACL: names no rule decides are resolved only if IP rules could decide", "[relay]") {
  auto acl = parse_ok(
      "[proxy_all]\n[bypass_list]\n198.51.100.0/24\n||direct.test\n"
      "[proxy_list]\n||proxied.test\n");
  CHECK(acl->needs_address(addr("other.test")));
  CHECK_FALSE(acl->needs_address(addr("a.direct.test")));
  CHECK_FALSE(acl->needs_address(addr("proxied.test")));
  CHECK_FALSE(acl->needs_address(addr("198.51.100.1")));
  sockaddr_storage in = sa("198.51.100.9"), out = sa("192.0.2.1");
  CHECK(acl->bypass_resolved(reinterpret_cast<sockaddr*>(&in)));
  CHECK_FALSE(acl->bypass_resolved(reinterpret_cast<sockaddr*>(&out)));
  // proxy_all: only the bypass list's IP rules could change the default.
  CHECK_FALSE(parse_ok("[proxy_list]\n10.0.0.0/8\n")->needs_address(addr("x.test")));
  auto bypass_all = parse_ok("[bypass_all]\n[proxy_list]\n198.51.100.0/24\n");
  CHECK(bypass_all->needs_address(addr("x.test")));
  CHECK_FALSE(bypass_all->bypass_resolved(reinterpret_cast<sockaddr*>(&in)));
  CHECK(bypass_all->bypass_resolved(reinterpret_cast<sockaddr*>(&out)));
}

TEST_CASE("ACL: server outbound block and allow lists", "[relay]") {
  auto acl = parse_ok(
      "[outbound_block_list]\n127.0.0.0/8\n||blocked.test\n::1\n"
      "[outbound_allow_list]\n127.0.0.9\n|allowed.test\n");
  CHECK(acl->has_outbound_rules());
  CHECK_FALSE(acl->has_client_rules());
  CHECK(acl->outbound(addr("127.0.0.1")) == Acl::Verdict::Block);
  CHECK(acl->outbound(addr("127.0.0.9")) == Acl::Verdict::Block);  // block wins
  CHECK(acl->outbound(addr("::1")) == Acl::Verdict::Block);
  CHECK(acl->outbound(addr("192.0.2.1")) == Acl::Verdict::Allow);
  CHECK(acl->outbound(addr("www.blocked.test")) == Acl::Verdict::Block);
  CHECK(acl->outbound(addr("allowed.test")) == Acl::Verdict::Allow);
  CHECK(acl->outbound(addr("other.test")) == Acl::Verdict::Undecided);
  sockaddr_storage lo = sa("127.0.0.2"), pub = sa("192.0.2.1");
  CHECK(acl->outbound_blocked(reinterpret_cast<sockaddr*>(&lo)));
  CHECK_FALSE(acl->outbound_blocked(reinterpret_cast<sockaddr*>(&pub)));

  auto strict = parse_ok("[outbound_block_all]\n[outbound_allow_list]\n192.0.2.0/24\n");
  CHECK(strict->outbound(addr("192.0.2.1")) == Acl::Verdict::Allow);
  CHECK(strict->outbound(addr("198.51.100.1")) == Acl::Verdict::Block);
  CHECK(strict->outbound_blocked(reinterpret_cast<sockaddr*>(&lo)));
  CHECK_FALSE(strict->outbound_blocked(reinterpret_cast<sockaddr*>(&pub)));
}

TEST_CASE("ACL: server client lists, accept_all and reject_all", "[relay]") {
  sockaddr_storage a = sa("192.0.2.1"), b = sa("198.51.100.1");
  auto accept = parse_ok("[accept_all]\n[black_list]\n192.0.2.0/24\n");
  CHECK(accept->has_client_rules());
  CHECK(accept->client_blocked(reinterpret_cast<sockaddr*>(&a)));
  CHECK_FALSE(accept->client_blocked(reinterpret_cast<sockaddr*>(&b)));
  auto reject = parse_ok("[reject_all]\n[white_list]\n192.0.2.0/24\n");
  CHECK_FALSE(reject->client_blocked(reinterpret_cast<sockaddr*>(&a)));
  CHECK(reject->client_blocked(reinterpret_cast<sockaddr*>(&b)));
  auto none = parse_ok("[outbound_block_list]\n10.0.0.0/8\n");
  CHECK_FALSE(none->has_client_rules());
}

TEST_CASE("ACL: bad lines are errors naming their line", "[relay]") {
  CHECK(parse_error("[proxy_all]\n\n[nonsense]\n") == "line 3: unknown section [nonsense]");
  CHECK(parse_error("10.0.0.0/33\n") == "line 1: bad prefix length in 10.0.0.0/33");
  CHECK(parse_error("# x\n::1/129\n") == "line 2: bad prefix length in ::1/129");
  CHECK(parse_error("10.0.0.0/\n") == "line 1: bad prefix length in 10.0.0.0/");
  CHECK(parse_error("a\nb\n(unclosed\n")
            .rfind("line 3: not a valid regular expression: (unclosed", 0) == 0);
  CHECK(parse_error("||bad name.test\n") == "line 1: not a domain name: bad name.test");
  CHECK(parse_error("|\n") == "line 1: not a domain name: ");
  CHECK(parse_error("ok\n\xc3\xa9t\xc3\xa9\n") == "line 2: a byte that is not printable ASCII");
}

TEST_CASE("ACL: load names the file", "[relay]") {
  std::string err;
  CHECK(Acl::load("/nonexistent/acl.txt", &err) == nullptr);
  CHECK(err.rfind("/nonexistent/acl.txt: cannot be read", 0) == 0);
}

}  // namespace ss
