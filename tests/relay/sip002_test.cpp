// SIP002 ss:// URIs: protocol.md §6.5's round-trip vectors, the 2022 form, the legacy form, and
// what is refused.

#include "relay/sip002.h"

#include <catch2/catch.hpp>
#include <string>

namespace ss {
namespace {

Sip002 parsed(const std::string& uri) {
  std::string error;
  std::optional<Sip002> s = parse_sip002(uri, &error);
  INFO(uri << ": " << error);
  REQUIRE(s.has_value());
  return *s;
}

TEST_CASE("SIP002 vector 1: base64url userinfo, tag", "[relay]") {
  const std::string uri = "ss://YWVzLTEyOC1nY206dGVzdA@192.168.100.1:8888/#Example1";
  const Sip002 s = parsed(uri);
  CHECK(s.method == "aes-128-gcm");
  CHECK(s.password == "test");
  CHECK(s.host == "192.168.100.1");
  CHECK(s.port == 8888);
  CHECK(s.tag == "Example1");
  CHECK(s.plugin.empty());
  CHECK(format_sip002(s) == uri);
}

TEST_CASE("SIP002 vector 2: a plugin with options", "[relay]") {
  const std::string uri =
      "ss://cmM0LW1kNTpwYXNzd2Q@192.168.100.1:8888/?plugin=obfs-local%3bobfs%3dhttp#Example2";
  const Sip002 s = parsed(uri);
  CHECK(s.method == "rc4-md5");
  CHECK(s.password == "passwd");
  CHECK(s.plugin == "obfs-local");
  CHECK(s.plugin_opts == "obfs=http");
  CHECK(s.tag == "Example2");
  CHECK(format_sip002(s) == uri);
}

TEST_CASE("SIP002 vector 3: a literal %20 in the base64 password, a UTF-8 tag", "[relay]") {
  const std::string uri =
      "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTpzYWR4czslMjA4NDhzMTUxMg@localhost.local:114/"
      "?plugin=simple-obfs%3bobfs%3dhttp%3bobfs-host%3dexample.com#"
      "%e7%a9%ba%e6%a0%bc%20%e6%b5%8b%e8%af%95";
  const Sip002 s = parsed(uri);
  CHECK(s.method == "chacha20-ietf-poly1305");
  CHECK(s.password == "sadxs;%20848s1512");
  CHECK(s.host == "localhost.local");
  CHECK(s.port == 114);
  CHECK(s.plugin == "simple-obfs");
  CHECK(s.plugin_opts == "obfs=http;obfs-host=example.com");
  CHECK(s.tag == "\xe7\xa9\xba\xe6\xa0\xbc \xe6\xb5\x8b\xe8\xaf\x95");
  CHECK(format_sip002(s) == uri);
}

TEST_CASE("SIP002 2022 form: percent-encoded method:base64key", "[relay]") {
  const Sip002 s = parsed(
      "ss://2022-blake3-aes-256-gcm:YctPZ6U7xPPcU%2Bgp3u%2B0tx%2FtRizJN9K8y%2BuKlW2qjlI%3D"
      "@192.168.100.1:8888#Example3");
  CHECK(s.method == "2022-blake3-aes-256-gcm");
  CHECK(s.password == "YctPZ6U7xPPcU+gp3u+0tx/tRizJN9K8y+uKlW2qjlI=");
  CHECK(s.port == 8888);
  CHECK(s.tag == "Example3");
  // Written back: never base64 for a 2022 method, escapes in lower case.
  CHECK(format_sip002(s) ==
        "ss://2022-blake3-aes-256-gcm:YctPZ6U7xPPcU%2bgp3u%2b0tx%2ftRizJN9K8y%2buKlW2qjlI%3d"
        "@192.168.100.1:8888/#Example3");
  CHECK(parsed(format_sip002(s)).password == s.password);
  // SIP023's iPSK:uPSK keeps its ':' escaped.
  Sip002 eih = s;
  eih.method = "2022-blake3-aes-128-gcm";
  eih.password = "MTIzNDU2Nzg5MDEyMzQ1Ng==:YWJjZGVmZ2hpamtsbW5vcA==";
  eih.tag.clear();
  const std::string uri = format_sip002(eih);
  CHECK(uri.find("%3a") != std::string::npos);
  CHECK(parsed(uri).password == eih.password);
}

TEST_CASE("SIP002 padded base64, IPv6, no port, legacy form", "[relay]") {
  CHECK(parsed("ss://YWVzLTEyOC1nY206dGVzdA==@192.168.100.1:8888").password == "test");
  CHECK(parsed("ss://YWVzLTEyOC1nY206dGVzdA%3D%3D@h:1").password == "test");
  const Sip002 v6 = parsed("ss://YWVzLTEyOC1nY206dGVzdA@[2001:db8::1]:443");
  CHECK(v6.host == "2001:db8::1");
  CHECK(v6.port == 443);
  CHECK(format_sip002(v6) == "ss://YWVzLTEyOC1nY206dGVzdA@[2001:db8::1]:443");
  CHECK(parsed("ss://YWVzLTEyOC1nY206dGVzdA@example.com").port == 8388);
  const Sip002 legacy = parsed(
      "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTp0ZXN0LyFAIzpAMTkyLjE2OC4xMDAuMTo4ODg4#example-server");
  CHECK(legacy.method == "chacha20-ietf-poly1305");
  CHECK(legacy.password == "test/!@#:");
  CHECK(legacy.host == "192.168.100.1");
  CHECK(legacy.port == 8888);
  CHECK(legacy.tag == "example-server");
}

TEST_CASE("SIP002 malformed URIs are refused with a reason", "[relay]") {
  for (const char* bad : {"http://x", "ss://", "ss://@h:1", "ss://YWVzLTEyOC1nY206dGVzdA@h:0",
                          "ss://YWVzLTEyOC1nY206dGVzdA@h:70000", "ss://YWVzLTEyOC1nY206dGVzdA@h:x",
                          "ss://a:b@2001:db8::1:80", "ss://a:b@[::1", "ss://a:%zz@h:1",
                          "ss://bm9jb2xvbg@h:1", "ss://!!!"}) {
    std::string error;
    INFO(bad);
    CHECK_FALSE(parse_sip002(bad, &error).has_value());
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("percent encoding round trip", "[relay]") {
  const std::string all = "a b/c:d@e%f+g=h;i~j-k.l_m\xe7";
  CHECK(percent_decode(percent_encode(all)) == all);
  CHECK_FALSE(percent_decode("%4").has_value());
  CHECK_FALSE(percent_decode("%").has_value());
}

}  // namespace
}  // namespace ss
