// SOCKS5 server-side parser: greeting, request, replies and UDP headers (hostile-inputs §4.1).

#include "client/socks5.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace ss::socks5 {
namespace {

using Bytes = std::vector<uint8_t>;

std::span<const uint8_t> view(const Bytes& b, size_t n) {
  return {b.data(), n};
}
std::span<const uint8_t> view(const Bytes& b) {
  return {b.data(), b.size()};
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes domain_request(uint8_t cmd, std::string_view host, uint16_t port) {
  Bytes b{5, cmd, 0, 3, static_cast<uint8_t>(host.size())};
  for (char c : host) b.push_back(static_cast<uint8_t>(c));
  b.push_back(static_cast<uint8_t>(port >> 8));
  b.push_back(static_cast<uint8_t>(port & 0xFF));
  return b;
}

const Bytes kConnectV4{5, 1, 0, 1, 93, 184, 216, 34, 0x00, 0x50};  // 93.184.216.34:80
const Bytes kConnectV6{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xBB};

struct RequestResult {
  ParseStatus status;
  Request request;
  size_t consumed = 0;
  std::optional<Reply> reply;
};

RequestResult request(std::span<const uint8_t> in) {
  RequestResult r{};
  r.status = parse_request(in, r.request, r.consumed, r.reply);
  return r;
}
RequestResult request(const Bytes& b) {
  return request(view(b));
}

ParseStatus greeting(const Bytes& b, Greeting& g, size_t& consumed) {
  return parse_greeting(view(b), g, consumed);
}

}  // namespace

// --- Greeting ---

TEST_CASE("S1: greeting with a version other than 5 is Error (silent close)", "[client]") {
  for (uint8_t first : {uint8_t{0x04}, uint8_t{'G'}, uint8_t{0x16}, uint8_t{0x00}, uint8_t{0xFF}}) {
    INFO("first byte " << int{first});
    Greeting g;
    size_t consumed = 0;
    CHECK(greeting(Bytes{first}, g, consumed) == ParseStatus::Error);
    CHECK(greeting(Bytes{first, 1, 0}, g, consumed) == ParseStatus::Error);
  }
  // A real HTTP request line and TLS record start.
  Greeting g;
  size_t consumed = 0;
  CHECK(greeting(Bytes{'G', 'E', 'T', ' ', '/'}, g, consumed) == ParseStatus::Error);
  CHECK(greeting(Bytes{0x16, 0x03, 0x01, 0x02, 0x00}, g, consumed) == ParseStatus::Error);
  // SOCKS4 CONNECT.
  CHECK(greeting(Bytes{0x04, 0x01, 0x00, 0x50, 127, 0, 0, 1, 0}, g, consumed) ==
        ParseStatus::Error);
}

TEST_CASE("S2: NMETHODS = 0 is Ok with nothing offered", "[client]") {
  Greeting g;
  g.offers_no_auth = true;  // must be reset
  size_t consumed = 0;
  REQUIRE(greeting(Bytes{5, 0}, g, consumed) == ParseStatus::Ok);
  CHECK(consumed == 2);
  CHECK_FALSE(g.offers_no_auth);
  CHECK_FALSE(g.offers_user_pass);
}

TEST_CASE("S4: methods without 0x00", "[client]") {
  Greeting g;
  size_t consumed = 0;
  REQUIRE(greeting(Bytes{5, 1, 0x02}, g, consumed) == ParseStatus::Ok);
  CHECK_FALSE(g.offers_no_auth);
  CHECK(g.offers_user_pass);
  REQUIRE(greeting(Bytes{5, 1, 0x80}, g, consumed) == ParseStatus::Ok);
  CHECK_FALSE(g.offers_no_auth);
  CHECK_FALSE(g.offers_user_pass);
  REQUIRE(greeting(Bytes{5, 3, 0x01, 0x80, 0xFE}, g, consumed) == ParseStatus::Ok);
  CHECK(consumed == 5);
  CHECK_FALSE(g.offers_no_auth);
}

TEST_CASE("greeting offering no-auth", "[client]") {
  Greeting g;
  size_t consumed = 0;
  REQUIRE(greeting(Bytes{5, 2, 0x02, 0x00}, g, consumed) == ParseStatus::Ok);
  CHECK(g.offers_no_auth);
  CHECK(g.offers_user_pass);
  CHECK(consumed == 4);
}

TEST_CASE("greeting: every strict prefix is NeedMore, trailing bytes not consumed", "[client]") {
  const Bytes full{5, 3, 0x00, 0x01, 0x02};
  for (size_t n = 0; n < full.size(); ++n) {
    Greeting g;
    size_t consumed = 0;
    INFO("prefix " << n);
    CHECK(parse_greeting(view(full, n), g, consumed) == ParseStatus::NeedMore);
  }
  Greeting g;
  size_t consumed = 0;
  const Bytes pipelined = concat(full, kConnectV4);
  REQUIRE(greeting(pipelined, g, consumed) == ParseStatus::Ok);
  CHECK(consumed == full.size());
}

TEST_CASE("S3: NMETHODS = 255 with only 3 methods is NeedMore", "[client]") {
  Greeting g;
  size_t consumed = 0;
  CHECK(greeting(Bytes{5, 255, 0, 1, 2}, g, consumed) == ParseStatus::NeedMore);
  Bytes full{5, 255};
  for (int i = 0; i < 255; ++i) full.push_back(static_cast<uint8_t>(i));
  REQUIRE(greeting(full, g, consumed) == ParseStatus::Ok);
  CHECK(consumed == 257);
  CHECK(consumed == kMaxGreetingLen);
  CHECK(g.offers_no_auth);
}

// --- Request ---

TEST_CASE("request: CONNECT IPv4, IPv6 and domain", "[client]") {
  auto v4 = request(kConnectV4);
  REQUIRE(v4.status == ParseStatus::Ok);
  CHECK(v4.consumed == 10);
  CHECK(v4.request.command == Command::Connect);
  CHECK(v4.request.target.to_string() == "93.184.216.34:80");
  CHECK_FALSE(v4.reply);

  auto v6 = request(kConnectV6);
  REQUIRE(v6.status == ParseStatus::Ok);
  CHECK(v6.consumed == 22);
  CHECK(v6.request.target.to_string() == "[::1]:443");

  auto d = request(domain_request(1, "example.com", 443));
  REQUIRE(d.status == ParseStatus::Ok);
  CHECK(d.consumed == 7 + 11);
  CHECK(d.request.target.type == Address::Type::Domain);
  CHECK(d.request.target.host == "example.com");
  CHECK(d.request.target.port == 443);
}

TEST_CASE("request: every strict prefix is NeedMore", "[client]") {
  for (const Bytes& full :
       {kConnectV4, kConnectV6, domain_request(1, "example.com", 443), domain_request(3, "x", 53),
        domain_request(1, std::string(255, 'h'), 1)}) {
    for (size_t n = 0; n < full.size(); ++n) {
      INFO("size " << full.size() << " prefix " << n);
      auto r = request(view(full, n));
      CHECK(r.status == ParseStatus::NeedMore);
      CHECK_FALSE(r.reply);
    }
    CHECK(request(full).status == ParseStatus::Ok);
  }
}

TEST_CASE("S7: request VER != 5 closes silently", "[client]") {
  for (uint8_t ver : {uint8_t{4}, uint8_t{0}, uint8_t{6}, uint8_t{0xFF}}) {
    Bytes b = kConnectV4;
    b[0] = ver;
    auto r = request(b);
    CHECK(r.status == ParseStatus::Error);
    CHECK_FALSE(r.reply);
    auto first = request(view(b, 1));
    CHECK(first.status == ParseStatus::Error);
    CHECK_FALSE(first.reply);
  }
}

TEST_CASE("S8: BIND parses, unknown commands reply 07", "[client]") {
  Bytes bind = kConnectV4;
  bind[1] = 2;
  auto b = request(bind);
  REQUIRE(b.status == ParseStatus::Ok);
  CHECK(b.request.command == Command::Bind);

  Bytes udp = kConnectV4;
  udp[1] = 3;
  auto u = request(udp);
  REQUIRE(u.status == ParseStatus::Ok);
  CHECK(u.request.command == Command::UdpAssociate);

  for (uint8_t cmd : {uint8_t{0x00}, uint8_t{0x04}, uint8_t{0xFF}}) {
    INFO("CMD " << int{cmd});
    Bytes bad = kConnectV4;
    bad[1] = cmd;
    auto r = request(bad);
    CHECK(r.status == ParseStatus::Error);
    REQUIRE(r.reply);
    CHECK(*r.reply == Reply::CommandNotSupported);
    // Decidable from the first two bytes.
    auto early = request(view(bad, 2));
    CHECK(early.status == ParseStatus::Error);
    REQUIRE(early.reply);
    CHECK(*early.reply == Reply::CommandNotSupported);
  }
}

TEST_CASE("S9: RSV != 0 is tolerated", "[client]") {
  for (uint8_t rsv : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
    Bytes b = kConnectV4;
    b[2] = rsv;
    auto r = request(b);
    CHECK(r.status == ParseStatus::Ok);
    CHECK(r.consumed == 10);
    CHECK_FALSE(r.reply);
  }
}

TEST_CASE("S10: unknown ATYP replies 08", "[client]") {
  for (uint8_t atyp : {uint8_t{0x00}, uint8_t{0x02}, uint8_t{0x05}, uint8_t{0x11}, uint8_t{0xFF}}) {
    INFO("ATYP " << int{atyp});
    Bytes b = kConnectV4;
    b[3] = atyp;
    auto r = request(b);
    CHECK(r.status == ParseStatus::Error);
    REQUIRE(r.reply);
    CHECK(*r.reply == Reply::AddressTypeNotSupported);
    auto early = request(view(b, 4));
    CHECK(early.status == ParseStatus::Error);
    REQUIRE(early.reply);
    CHECK(*early.reply == Reply::AddressTypeNotSupported);
  }
}

TEST_CASE("S11: bad domains", "[client]") {
  SECTION("length 0 replies 01") {
    auto r = request(Bytes{5, 1, 0, 3, 0, 0, 80});
    CHECK(r.status == ParseStatus::Error);
    REQUIRE(r.reply);
    CHECK(*r.reply == Reply::GeneralFailure);
    auto early = request(Bytes{5, 1, 0, 3, 0});
    CHECK(early.status == ParseStatus::Error);
    CHECK(early.reply == Reply::GeneralFailure);
  }
  SECTION("length 255 with fewer bytes is NeedMore") {
    Bytes b{5, 1, 0, 3, 255};
    b.insert(b.end(), 100, 'a');
    auto r = request(b);
    CHECK(r.status == ParseStatus::NeedMore);
    CHECK_FALSE(r.reply);
  }
  SECTION("bad bytes reply 01") {
    for (std::string host :
         {std::string("a\0b", 3), std::string("a b"), std::string("a\tb"), std::string("a\nb"),
          std::string("a\x7F"), std::string("\xFF\xFE"), std::string("\xC0\x80")}) {
      auto r = request(domain_request(1, host, 80));
      CHECK(r.status == ParseStatus::Error);
      REQUIRE(r.reply);
      CHECK(*r.reply == Reply::GeneralFailure);
    }
  }
}

TEST_CASE("S12: IP literal domain stays a Domain", "[client]") {
  for (const char* host : {"127.0.0.1", "[::1]", "::1"}) {
    auto r = request(domain_request(1, host, 80));
    REQUIRE(r.status == ParseStatus::Ok);
    CHECK(r.request.target.type == Address::Type::Domain);
    CHECK(r.request.target.host == host);
  }
}

TEST_CASE("S13: port 0 replies 01, except for UDP ASSOCIATE", "[client]") {
  for (uint8_t cmd : {uint8_t{1}, uint8_t{2}}) {
    auto v4 = request(Bytes{5, cmd, 0, 1, 1, 2, 3, 4, 0, 0});
    CHECK(v4.status == ParseStatus::Error);
    CHECK(v4.reply == Reply::GeneralFailure);
    auto d = request(domain_request(cmd, "example.com", 0));
    CHECK(d.status == ParseStatus::Error);
    CHECK(d.reply == Reply::GeneralFailure);
  }
  // RFC 1928: the client sends DST all zeros when it does not know its UDP address.
  auto udp = request(Bytes{5, 3, 0, 1, 0, 0, 0, 0, 0, 0});
  REQUIRE(udp.status == ParseStatus::Ok);
  CHECK(udp.request.command == Command::UdpAssociate);
  CHECK(udp.request.target.port == 0);
}

TEST_CASE("S14: request followed by payload consumes exactly the request", "[client]") {
  const Bytes hello{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5};
  for (const Bytes& req : {kConnectV4, kConnectV6, domain_request(1, "example.com", 443)}) {
    auto r = request(concat(req, hello));
    REQUIRE(r.status == ParseStatus::Ok);
    CHECK(r.consumed == req.size());
  }
}

// --- Replies ---

TEST_CASE("make_reply: full replies", "[client]") {
  uint8_t out[kMaxReplyLen];
  SECTION("null bind is 0.0.0.0:0") {
    const size_t n = make_reply(Reply::Succeeded, nullptr, out);
    CHECK(Bytes(out, out + n) == Bytes{5, 0, 0, 1, 0, 0, 0, 0, 0, 0});
  }
  SECTION("error codes keep the 10-byte form") {
    const size_t n = make_reply(Reply::CommandNotSupported, nullptr, out);
    CHECK(Bytes(out, out + n) == Bytes{5, 7, 0, 1, 0, 0, 0, 0, 0, 0});
    const size_t m = make_reply(Reply::AddressTypeNotSupported, nullptr, out);
    CHECK(Bytes(out, out + m) == Bytes{5, 8, 0, 1, 0, 0, 0, 0, 0, 0});
  }
  SECTION("IPv4 bind") {
    const Address a = *make_address("127.0.0.1", 1080);
    const size_t n = make_reply(Reply::Succeeded, &a, out);
    CHECK(Bytes(out, out + n) == Bytes{5, 0, 0, 1, 127, 0, 0, 1, 0x04, 0x38});
  }
  SECTION("IPv6 bind is 22 bytes") {
    const Address a = *make_address("::1", 443);
    const size_t n = make_reply(Reply::GeneralFailure, &a, out);
    REQUIRE(n == 22);
    CHECK(out[0] == 5);
    CHECK(out[1] == 1);
    CHECK(out[2] == 0);
    CHECK(out[3] == 4);
    CHECK(out[19] == 1);
    CHECK(out[20] == 0x01);
    CHECK(out[21] == 0xBB);
  }
  SECTION("IPv4-mapped bind is written as IPv4") {
    const Address a = *make_address("::ffff:10.1.2.3", 5353);
    const size_t n = make_reply(Reply::Succeeded, &a, out);
    CHECK(Bytes(out, out + n) == Bytes{5, 0, 0, 1, 10, 1, 2, 3, 0x14, 0xE9});
  }
  SECTION("a domain bind becomes 0.0.0.0 with its port") {
    const Address a = *make_address("example.com", 80);
    const size_t n = make_reply(Reply::Succeeded, &a, out);
    CHECK(Bytes(out, out + n) == Bytes{5, 0, 0, 1, 0, 0, 0, 0, 0, 80});
  }
}

// --- UDP ---

TEST_CASE("parse_udp_header", "[client]") {
  const Bytes v4{0, 0, 0, 1, 8, 8, 8, 8, 0, 53, 'd', 'a', 't', 'a'};
  SECTION("IPv4 with data") {
    uint8_t frag = 0xAA;
    Address target;
    size_t header_len = 0;
    REQUIRE(parse_udp_header(view(v4), frag, target, header_len) == ParseStatus::Ok);
    CHECK(frag == 0);
    CHECK(header_len == 10);
    CHECK(target.to_string() == "8.8.8.8:53");
  }
  SECTION("domain and IPv6") {
    Bytes d{0, 0, 0, 3, 3, 'a', '.', 'b', 0, 80};
    uint8_t frag = 1;
    Address target;
    size_t header_len = 0;
    REQUIRE(parse_udp_header(view(d), frag, target, header_len) == ParseStatus::Ok);
    CHECK(header_len == d.size());  // empty payload is fine
    CHECK(target.host == "a.b");

    Bytes v6{0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53, 'x'};
    REQUIRE(parse_udp_header(view(v6), frag, target, header_len) == ParseStatus::Ok);
    CHECK(header_len == 22);
    CHECK(target.type == Address::Type::IPv6);
  }
  SECTION("S19: FRAG is reported") {
    Bytes f = v4;
    f[2] = 0x81;
    uint8_t frag = 0;
    Address target;
    size_t header_len = 0;
    REQUIRE(parse_udp_header(view(f), frag, target, header_len) == ParseStatus::Ok);
    CHECK(frag == 0x81);
  }
  SECTION("S21: short datagrams are Error") {
    for (size_t n = 0; n < 10; ++n) {
      uint8_t frag = 0;
      Address target;
      size_t header_len = 0;
      INFO("length " << n);
      CHECK(parse_udp_header(view(v4, n), frag, target, header_len) == ParseStatus::Error);
    }
  }
  SECTION("S21: bad ATYP and bad domain are Error") {
    for (uint8_t atyp : {uint8_t{0}, uint8_t{2}, uint8_t{5}, uint8_t{0x11}}) {
      Bytes b = v4;
      b[3] = atyp;
      uint8_t frag = 0;
      Address target;
      size_t header_len = 0;
      CHECK(parse_udp_header(view(b), frag, target, header_len) == ParseStatus::Error);
    }
    Bytes zero_len{0, 0, 0, 3, 0, 0, 80};
    uint8_t frag = 0;
    Address target;
    size_t header_len = 0;
    CHECK(parse_udp_header(view(zero_len), frag, target, header_len) == ParseStatus::Error);
  }
}

TEST_CASE("make_udp_header round trip", "[client]") {
  for (const char* host : {"1.2.3.4", "2001:db8::5", "example.net"}) {
    const Address a = *make_address(host, 4242);
    uint8_t out[kMaxUdpHeaderLen];
    const size_t n = make_udp_header(a, out);
    CHECK(n == 3 + a.encoded_size());
    CHECK(out[0] == 0);
    CHECK(out[1] == 0);
    CHECK(out[2] == 0);
    uint8_t frag = 9;
    Address back;
    size_t header_len = 0;
    REQUIRE(parse_udp_header(std::span<const uint8_t>(out, n), frag, back, header_len) ==
            ParseStatus::Ok);
    CHECK(frag == 0);
    CHECK(header_len == n);
    CHECK(back == a);
  }
}

}  // namespace ss::socks5
