// Address header codec: parse_address, encode_address, Address helpers, parse_host_port,
// make_address, literal_to_sockaddr.

#include "relay/address.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

namespace ss {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes domain_header(std::string_view host, uint16_t port) {
  Bytes b;
  b.reserve(host.size() + 4);
  b.push_back(3);
  b.push_back(static_cast<uint8_t>(host.size()));
  for (char c : host) b.push_back(static_cast<uint8_t>(c));
  b.push_back(static_cast<uint8_t>(port >> 8));
  b.push_back(static_cast<uint8_t>(port & 0xFF));
  return b;
}

const Bytes kIPv4Header{1, 192, 168, 1, 2, 0x1F, 0x90};  // 192.168.1.2:8080
const Bytes kIPv6Header{4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xBB};

ParseStatus parse(const Bytes& b, Address& a, size_t& consumed) {
  return parse_address(std::span<const uint8_t>(b.data(), b.size()), a, consumed);
}

ParseStatus parse(const Bytes& b) {
  Address a;
  size_t consumed = 0;
  return parse(b, a, consumed);
}

// Every strict prefix of a valid header is NeedMore; the whole header is Ok.
void check_prefixes(const Bytes& header) {
  for (size_t n = 0; n < header.size(); ++n) {
    Address a;
    size_t consumed = 0;
    INFO("prefix length " << n);
    CHECK(parse_address(std::span<const uint8_t>(header.data(), n), a, consumed) ==
          ParseStatus::NeedMore);
  }
  Address a;
  size_t consumed = 0;
  CHECK(parse(header, a, consumed) == ParseStatus::Ok);
  CHECK(consumed == header.size());
}

}  // namespace

TEST_CASE("parse_address: IPv4", "[relay]") {
  Bytes b = kIPv4Header;
  b.push_back(0xAA);  // trailing payload is not consumed
  Address a;
  size_t consumed = 0;
  REQUIRE(parse(b, a, consumed) == ParseStatus::Ok);
  CHECK(consumed == 7);
  CHECK(a.type == Address::Type::IPv4);
  CHECK(a.ip[0] == 192);
  CHECK(a.ip[3] == 2);
  CHECK(a.port == 8080);
  CHECK(a.host.empty());
  CHECK(a.to_string() == "192.168.1.2:8080");
  CHECK(a.encoded_size() == 7);
}

TEST_CASE("parse_address: IPv6", "[relay]") {
  Address a;
  size_t consumed = 0;
  REQUIRE(parse(kIPv6Header, a, consumed) == ParseStatus::Ok);
  CHECK(consumed == 19);
  CHECK(a.type == Address::Type::IPv6);
  CHECK(a.port == 443);
  CHECK(a.to_string() == "[2001:db8::1]:443");
  CHECK(a.encoded_size() == 19);
}

TEST_CASE("parse_address: domain", "[relay]") {
  const Bytes b = domain_header("example.com", 80);
  Address a;
  size_t consumed = 0;
  REQUIRE(parse(b, a, consumed) == ParseStatus::Ok);
  CHECK(consumed == 4 + 11);
  CHECK(a.type == Address::Type::Domain);
  CHECK(a.host == "example.com");
  CHECK(a.port == 80);
  CHECK(a.to_string() == "example.com:80");
  CHECK(a.encoded_size() == 15);
}

TEST_CASE("parse_address: every strict prefix is NeedMore", "[relay]") {
  check_prefixes(kIPv4Header);
  check_prefixes(kIPv6Header);
  check_prefixes(domain_header("a", 1));
  check_prefixes(domain_header("example.com", 443));
  check_prefixes(domain_header(std::string(255, 'x'), 65535));
  const std::string utf8_host = "b\u00FC\u00DFe.example";  // multi-byte UTF-8
  check_prefixes(domain_header(utf8_host, 443));
}

TEST_CASE("parse_address: unknown ATYP is Error", "[relay]") {
  for (int atyp : {0x00, 0x02, 0x05, 0x11, 0x13, 0x14, 0x81, 0xFF}) {
    INFO("ATYP " << atyp);
    CHECK(parse(Bytes{static_cast<uint8_t>(atyp)}) == ParseStatus::Error);
    Bytes full = kIPv4Header;
    full[0] = static_cast<uint8_t>(atyp);
    CHECK(parse(full) == ParseStatus::Error);
  }
}

TEST_CASE("parse_address: bad domains are Error", "[relay]") {
  SECTION("length 0") {
    CHECK(parse(Bytes{3, 0}) == ParseStatus::Error);
    CHECK(parse(Bytes{3, 0, 0, 80}) == ParseStatus::Error);
  }
  SECTION("NUL") {
    CHECK(parse(domain_header(std::string("a\0b", 3), 80)) == ParseStatus::Error);
  }
  SECTION("space") {
    CHECK(parse(domain_header("a b", 80)) == ParseStatus::Error);
  }
  SECTION("control characters and DEL") {
    for (char c : {'\x01', '\t', '\n', '\r', '\x1F', '\x7F'}) {
      std::string host = "ab";
      host.insert(1, 1, c);
      INFO("byte " << static_cast<int>(c));
      CHECK(parse(domain_header(host, 80)) == ParseStatus::Error);
    }
  }
  SECTION("invalid UTF-8") {
    for (const char* host : {"\x80", "a\xFF", "\xC0\xAF", "\xC3", "\xED\xA0\x80",
                             "\xF4\x90\x80\x80", "\xE0\x80\x80", "\xC3(", "\xF8\x88\x80\x80\x80"}) {
      INFO("host " << host);
      CHECK(parse(domain_header(host, 80)) == ParseStatus::Error);
    }
  }
  SECTION("a bad byte fails before the rest arrives") {
    Bytes partial{3, 200, 'a', ' '};
    CHECK(parse(partial) == ParseStatus::Error);
    Bytes partial_utf8{3, 200, 'a', 0xFF};
    CHECK(parse(partial_utf8) == ParseStatus::Error);
    // A multi-byte sequence cut off at the end of the buffer is not an error yet.
    Bytes cut{3, 200, 'a', 0xC3};
    CHECK(parse(cut) == ParseStatus::NeedMore);
  }
}

TEST_CASE("parse_address: valid UTF-8 domain is accepted", "[relay]") {
  Address a;
  size_t consumed = 0;
  const std::string host = "\xE4\xBE\x8B\xE5\xAD\x90.\xF0\x9F\x98\x80.example";
  REQUIRE(parse(domain_header(host, 443), a, consumed) == ParseStatus::Ok);
  CHECK(a.host == host);
}

TEST_CASE("parse_address: 255-byte domain, the maximum", "[relay]") {
  const std::string host(255, 'a');
  const Bytes b = domain_header(host, 53);
  Address a;
  size_t consumed = 0;
  REQUIRE(parse(b, a, consumed) == ParseStatus::Ok);
  CHECK(consumed == 4 + 255);
  CHECK(consumed == kMaxAddressLen);
  CHECK(a.host == host);
  CHECK(a.encoded_size() == kMaxAddressLen);
}

TEST_CASE("parse_address: IP literal domain stays a domain", "[relay]") {
  for (const char* host : {"127.0.0.1", "::1", "[::1]"}) {
    Address a;
    size_t consumed = 0;
    INFO(host);
    REQUIRE(parse(domain_header(host, 80), a, consumed) == ParseStatus::Ok);
    CHECK(a.type == Address::Type::Domain);
    CHECK(a.host == host);
  }
}

TEST_CASE("parse_address: port 0 parses (policy is the caller's)", "[relay]") {
  Address a;
  size_t consumed = 0;
  REQUIRE(parse(Bytes{1, 0, 0, 0, 0, 0, 0}, a, consumed) == ParseStatus::Ok);
  CHECK(a.port == 0);
}

TEST_CASE("encode_address / parse_address round trip", "[relay]") {
  std::vector<Address> cases;
  cases.push_back(*make_address("10.0.0.1", 1));
  cases.push_back(*make_address("::ffff:1.2.3.4", 65535));
  cases.push_back(*make_address("2001:db8::42", 8388));
  cases.push_back(*make_address("example.org", 443));
  cases.push_back(*make_address(std::string(255, 'z'), 7));
  for (const Address& a : cases) {
    INFO(a.to_string());
    uint8_t buf[kMaxAddressLen];
    const size_t n = encode_address(a, buf);
    CHECK(n == a.encoded_size());
    Address back;
    size_t consumed = 0;
    REQUIRE(parse_address(std::span<const uint8_t>(buf, n), back, consumed) == ParseStatus::Ok);
    CHECK(consumed == n);
    CHECK(back == a);
  }
}

TEST_CASE("encode_address bytes", "[relay]") {
  uint8_t buf[kMaxAddressLen];
  const size_t n = encode_address(*make_address("192.168.1.2", 8080), buf);
  CHECK(Bytes(buf, buf + n) == kIPv4Header);
  const size_t m = encode_address(*make_address("example.com", 80), buf);
  CHECK(Bytes(buf, buf + m) == domain_header("example.com", 80));
}

TEST_CASE("Address: sockaddr round trip", "[relay]") {
  SECTION("IPv4") {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(1080);
    REQUIRE(inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr) == 1);
    const Address a = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin));
    CHECK(a.type == Address::Type::IPv4);
    CHECK(a.to_string() == "127.0.0.1:1080");
    sockaddr_storage ss{};
    REQUIRE(a.to_sockaddr(ss));
    CHECK(ss.ss_family == AF_INET);
    const auto* back = reinterpret_cast<const sockaddr_in*>(&ss);
    CHECK(back->sin_port == sin.sin_port);
    CHECK(back->sin_addr.s_addr == sin.sin_addr.s_addr);
  }
  SECTION("IPv6") {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    REQUIRE(inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr) == 1);
    const Address a = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&sin6));
    CHECK(a.type == Address::Type::IPv6);
    CHECK(a.to_string() == "[fe80::1]:443");
    sockaddr_storage ss{};
    REQUIRE(a.to_sockaddr(ss));
    CHECK(ss.ss_family == AF_INET6);
    const auto* back = reinterpret_cast<const sockaddr_in6*>(&ss);
    CHECK(back->sin6_port == sin6.sin6_port);
    CHECK(std::memcmp(&back->sin6_addr, &sin6.sin6_addr, 16) == 0);
  }
  SECTION("domain has no sockaddr") {
    sockaddr_storage ss{};
    CHECK_FALSE(make_address("example.com", 80)->to_sockaddr(ss));
  }
}

TEST_CASE("literal_to_sockaddr: IP literals with or without brackets, no names", "[relay]") {
  sockaddr_storage ss{};
  REQUIRE(literal_to_sockaddr("192.0.2.1", 8388, ss));
  CHECK(Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).to_string() ==
        "192.0.2.1:8388");
  REQUIRE(literal_to_sockaddr("[192.0.2.1]", 53, ss));
  CHECK(Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).to_string() ==
        "192.0.2.1:53");
  for (const char* host : {"2001:db8::1", "[2001:db8::1]"}) {
    INFO(host);
    REQUIRE(literal_to_sockaddr(host, 443, ss));
    CHECK(ss.ss_family == AF_INET6);
    CHECK(Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).to_string() ==
          "[2001:db8::1]:443");
  }
  for (const char* host : {"example.com", "", "[]", "[example.com]", "1.2.3", "[::1", "::1]"}) {
    INFO(host);
    CHECK_FALSE(literal_to_sockaddr(host, 80, ss));
    CHECK(ss.ss_family == 0);
  }
}

TEST_CASE("make_address", "[relay]") {
  auto v4 = make_address("1.2.3.4", 80);
  REQUIRE(v4);
  CHECK(v4->type == Address::Type::IPv4);
  CHECK(v4->port == 80);

  for (const char* host : {"::1", "[::1]"}) {
    auto v6 = make_address(host, 53);
    REQUIRE(v6);
    CHECK(v6->type == Address::Type::IPv6);
    CHECK(v6->to_string() == "[::1]:53");
  }

  auto d = make_address("example.com", 0);
  REQUIRE(d);
  CHECK(d->type == Address::Type::Domain);
  CHECK(d->host == "example.com");

  CHECK(make_address(std::string(255, 'a'), 1));
  CHECK_FALSE(make_address(std::string(256, 'a'), 1));
  CHECK_FALSE(make_address("", 80));
  CHECK_FALSE(make_address("a b", 80));
  CHECK_FALSE(make_address(std::string("a\0b", 3), 80));
  CHECK_FALSE(make_address("a\x7F", 80));
  CHECK_FALSE(make_address("\xC0\xAF", 80));
  CHECK_FALSE(make_address("[example.com]", 80));
  CHECK_FALSE(make_address("[::1", 80));
  // Not a valid dotted quad, so a name for the resolver.
  CHECK(make_address("1.2.3.256", 80)->type == Address::Type::Domain);
}

TEST_CASE("parse_host_port", "[relay]") {
  SECTION("accepted forms") {
    auto a = parse_host_port("[::1]:53");
    REQUIRE(a);
    CHECK(a->type == Address::Type::IPv6);
    CHECK(a->port == 53);

    auto b = parse_host_port("1.2.3.4:65535");
    REQUIRE(b);
    CHECK(b->type == Address::Type::IPv4);
    CHECK(b->port == 65535);

    auto d = parse_host_port("dns.example:853");
    REQUIRE(d);
    CHECK(d->type == Address::Type::Domain);
    CHECK(d->host == "dns.example");
    CHECK(d->port == 853);
    CHECK(d->to_string() == "dns.example:853");
  }
  SECTION("rejected forms") {
    for (const char* text :
         {"1.2.3.4:0", "host:99999", "host:65536", "host", "host:", ":80", "[::1]", "[::1]53",
          "a:b:80", "[::1]:", "::1:53", "host:-1", "host:+80", "host:8o", "[example.com]:80",
          "a b:80", "", "host:123456"}) {
      INFO(text);
      CHECK_FALSE(parse_host_port(text));
    }
  }
}

TEST_CASE("Address::unmapped: IPv4-mapped IPv6 to IPv4, anything else unchanged", "[relay]") {
  const Address mapped = *make_address("::ffff:10.201.0.1", 80);
  CHECK(mapped.type == Address::Type::IPv6);
  CHECK(mapped.unmapped() == *make_address("10.201.0.1", 80));
  for (const char* host :
       {"10.201.0.1", "fd00::1", "::1", "::", "::ffff:0:1.2.3.4", "example.com"}) {
    INFO(host);
    const Address a = *make_address(host, 443);
    CHECK(a.unmapped() == a);
  }
}

}  // namespace ss
