// SOCKS4 / SOCKS4a request parser and reply encoder (client/inbound/socks4.h).

#include "client/inbound/socks4.h"

#include <array>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ss::socks4 {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// VN CD DSTPORT DSTIP USERID NUL [host NUL]
Bytes request_bytes(uint8_t cd, uint16_t port, std::array<uint8_t, 4> ip, std::string_view user,
                    std::optional<std::string_view> host = std::nullopt) {
  // push_back, not insert: GCC 12 reports a false -Warray-bounds for inserting the array.
  Bytes b{4, cd, static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port & 0xFF)};
  for (uint8_t x : ip) b.push_back(x);
  for (char c : user) b.push_back(static_cast<uint8_t>(c));
  b.push_back(0);
  if (host) {
    for (char c : *host) b.push_back(static_cast<uint8_t>(c));
    b.push_back(0);
  }
  return b;
}

Bytes socks4a(std::string_view host, std::string_view user = "", uint16_t port = 80) {
  return request_bytes(1, port, {0, 0, 0, 1}, user, host);
}

struct Result {
  ParseStatus status;
  Request request;
  size_t consumed = 0;
  Failure failure = Failure::None;
};

Result parse(std::span<const uint8_t> in) {
  Result r{};
  r.status = parse_request(in, r.request, r.consumed, r.failure);
  return r;
}
Result parse(const Bytes& b) {
  return parse(std::span<const uint8_t>(b.data(), b.size()));
}

// `prefix` followed by `max` non-NUL bytes is still NeedMore; one more non-NUL byte fails with
// `failure`.
void check_field_bound(Bytes prefix, size_t max, Failure failure) {
  prefix.insert(prefix.end(), max, 'x');
  CHECK(parse(prefix).status == ParseStatus::NeedMore);
  prefix.push_back('x');
  const Result too_long = parse(prefix);
  CHECK(too_long.status == ParseStatus::Error);
  CHECK(too_long.failure == failure);
}

const Bytes kConnect = request_bytes(1, 80, {93, 184, 216, 34}, "alice");

}  // namespace

TEST_CASE("socks4: CONNECT to an IPv4 address with a USERID", "[client]") {
  const Result r = parse(kConnect);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.consumed == kConnect.size());
  CHECK(r.failure == Failure::None);
  CHECK(r.request.target.type == Address::Type::IPv4);
  CHECK(r.request.target.to_string() == "93.184.216.34:80");
  CHECK(r.request.user_id == "alice");
  CHECK_FALSE(r.request.socks4a);
}

TEST_CASE("socks4: the example request of the SOCKS4 text with an empty USERID", "[client]") {
  // CONNECT 127.0.0.1:1080, USERID empty: 04 01 04 38 7F 00 00 01 00
  const Result r = parse(Bytes{4, 1, 0x04, 0x38, 127, 0, 0, 1, 0});
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.consumed == 9);
  CHECK(r.request.target.to_string() == "127.0.0.1:1080");
  CHECK(r.request.user_id.empty());
}

TEST_CASE("socks4a: host name after the USERID", "[client]") {
  const Bytes b = socks4a("example.com", "bob", 443);
  const Result r = parse(b);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.consumed == b.size());
  CHECK(r.request.socks4a);
  CHECK(r.request.user_id == "bob");
  CHECK(r.request.target.type == Address::Type::Domain);
  CHECK(r.request.target.to_string() == "example.com:443");
  // Any x != 0 in 0.0.0.x marks SOCKS4a.
  const Result r2 = parse(request_bytes(1, 80, {0, 0, 0, 255}, "", "h.example"));
  REQUIRE(r2.status == ParseStatus::Ok);
  CHECK(r2.request.target.to_string() == "h.example:80");
}

TEST_CASE("socks4a: an IP literal host is treated like the numeric form", "[client]") {
  const Result v4 = parse(socks4a("127.0.0.1"));
  REQUIRE(v4.status == ParseStatus::Ok);
  CHECK(v4.request.target.type == Address::Type::IPv4);
  CHECK(v4.request.target.to_string() == "127.0.0.1:80");
  const Result v6 = parse(socks4a("::1"));
  REQUIRE(v6.status == ParseStatus::Ok);
  CHECK(v6.request.target.type == Address::Type::IPv6);
  const Result bracketed = parse(socks4a("[::1]"));
  REQUIRE(bracketed.status == ParseStatus::Ok);
  CHECK(bracketed.request.target.to_string() == "[::1]:80");
}

TEST_CASE("socks4: DSTIP 0.0.0.0 is plain SOCKS4, not 4a", "[client]") {
  const Bytes b = request_bytes(1, 80, {0, 0, 0, 0}, "");
  const Result r = parse(concat(b, bytes("example.com")));
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.consumed == b.size());
  CHECK_FALSE(r.request.socks4a);
  CHECK(r.request.target.to_string() == "0.0.0.0:80");
}

TEST_CASE("socks4: every strict prefix is NeedMore", "[client]") {
  for (const Bytes& full : {kConnect, socks4a("example.com", "carol")}) {
    for (size_t n = 0; n < full.size(); ++n) {
      INFO("prefix " << n << " of " << full.size());
      CHECK(parse(std::span<const uint8_t>(full.data(), n)).status == ParseStatus::NeedMore);
    }
  }
}

TEST_CASE("socks4: byte-by-byte feeding reaches the same result", "[client]") {
  const Bytes full = concat(socks4a("example.org", "dave", 8080), bytes("GET / HTTP/1.1\r\n"));
  Bytes buf;
  Result last{};
  size_t fed = 0;
  for (uint8_t b : full) {
    buf.push_back(b);
    ++fed;
    last = parse(buf);
    if (last.status != ParseStatus::NeedMore) break;
  }
  REQUIRE(last.status == ParseStatus::Ok);
  CHECK(last.consumed == fed);
  CHECK(fed == socks4a("example.org", "dave", 8080).size());
  CHECK(last.request.target.to_string() == "example.org:8080");
}

TEST_CASE("S14 (SOCKS4): request followed by payload consumes exactly the request", "[client]") {
  const Bytes payload{0x16, 3, 1, 0, 5};
  const Result r = parse(concat(kConnect, payload));
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.consumed == kConnect.size());
  const Bytes a = socks4a("example.com");
  const Result r4a = parse(concat(a, payload));
  REQUIRE(r4a.status == ParseStatus::Ok);
  CHECK(r4a.consumed == a.size());
}

TEST_CASE("socks4: VN != 4 is NotSocks4 (close without a reply)", "[client]") {
  for (uint8_t first : {uint8_t{5}, uint8_t{'G'}, uint8_t{0x16}, uint8_t{0}, uint8_t{0xFF}}) {
    INFO("first byte " << int{first});
    const Result r = parse(Bytes{first});
    CHECK(r.status == ParseStatus::Error);
    CHECK(r.failure == Failure::NotSocks4);
  }
}

TEST_CASE("socks4: BIND and unknown commands are UnsupportedCommand at byte 2", "[client]") {
  for (uint8_t cd : {uint8_t{0}, uint8_t{2}, uint8_t{3}, uint8_t{0xFF}}) {
    INFO("CD " << int{cd});
    const Result early = parse(Bytes{4, cd});
    CHECK(early.status == ParseStatus::Error);
    CHECK(early.failure == Failure::UnsupportedCommand);
    const Result whole = parse(request_bytes(cd, 80, {1, 2, 3, 4}, ""));
    CHECK(whole.failure == Failure::UnsupportedCommand);
  }
}

TEST_CASE("S13 (SOCKS4): port 0 is rejected once the port is in", "[client]") {
  const Result early = parse(Bytes{4, 1, 0, 0});
  CHECK(early.status == ParseStatus::Error);
  CHECK(early.failure == Failure::PortZero);
  CHECK(parse(socks4a("example.com", "", 0)).failure == Failure::PortZero);
  CHECK(parse(Bytes{4, 1, 0}).status == ParseStatus::NeedMore);
}

TEST_CASE("socks4: USERID is bounded at 255 bytes", "[client]") {
  const std::string max(kMaxUserIdLen, 'u');
  const Result ok = parse(request_bytes(1, 80, {1, 2, 3, 4}, max));
  REQUIRE(ok.status == ParseStatus::Ok);
  CHECK(ok.request.user_id == max);
  CHECK(ok.consumed == kMaxRequestLen - kMaxHostLen - 1);

  check_field_bound(Bytes{4, 1, 0, 80, 1, 2, 3, 4}, kMaxUserIdLen, Failure::UserIdTooLong);
}

TEST_CASE("socks4a: host name is bounded at 255 bytes", "[client]") {
  const std::string max(kMaxHostLen, 'h');
  const Bytes longest = socks4a(max, std::string(kMaxUserIdLen, 'u'), 65535);
  CHECK(longest.size() == kMaxRequestLen);
  const Result ok = parse(longest);
  REQUIRE(ok.status == ParseStatus::Ok);
  CHECK(ok.consumed == kMaxRequestLen);
  CHECK(ok.request.target.host == max);

  check_field_bound(request_bytes(1, 80, {0, 0, 0, 1}, ""), kMaxHostLen, Failure::HostTooLong);
}

TEST_CASE("S11 (SOCKS4a): empty host and bad bytes are BadHost", "[client]") {
  CHECK(parse(socks4a("")).failure == Failure::BadHost);
  for (std::string_view bad :
       {std::string_view("a b"), std::string_view("a\tb"),
        std::string_view("a\x01"
                         "b"),
        std::string_view("a\x7f"), std::string_view("\xc0\xaf"), std::string_view("\xff")}) {
    INFO("host " << bad.size() << " bytes");
    const Result r = parse(socks4a(bad));
    CHECK(r.status == ParseStatus::Error);
    CHECK(r.failure == Failure::BadHost);
  }
  // Valid UTF-8 is allowed, as for SOCKS5 domain names.
  CHECK(parse(socks4a("b\xc3\xbc"
                      "cher.example"))
            .status == ParseStatus::Ok);
}

TEST_CASE("socks4: USERID bytes are reported as they are", "[client]") {
  const Result r = parse(request_bytes(1, 80, {1, 2, 3, 4}, "a b\x01\xff"));
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.request.user_id == std::string("a b\x01\xff"));
}

TEST_CASE("socks4: make_reply writes 8 exact bytes", "[client]") {
  uint8_t out[kReplyLen];
  CHECK(make_reply(Reply::Granted, nullptr, out) == kReplyLen);
  CHECK(Bytes(out, out + kReplyLen) == Bytes{0x00, 0x5A, 0, 0, 0, 0, 0, 0});
  CHECK(make_reply(Reply::Rejected, nullptr, out) == kReplyLen);
  CHECK(Bytes(out, out + kReplyLen) == Bytes{0x00, 0x5B, 0, 0, 0, 0, 0, 0});

  const Address bind = *make_address("192.0.2.7", 0x1F90);
  make_reply(Reply::Granted, &bind, out);
  CHECK(Bytes(out, out + kReplyLen) == Bytes{0x00, 0x5A, 0x1F, 0x90, 192, 0, 2, 7});
  // No IPv4 form: zeros.
  const Address v6 = *make_address("::1", 443);
  make_reply(Reply::Granted, &v6, out);
  CHECK(Bytes(out, out + kReplyLen) == Bytes{0x00, 0x5A, 0, 0, 0, 0, 0, 0});
}

}  // namespace ss::socks4
