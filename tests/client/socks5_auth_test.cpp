// RFC 1929 username/password subnegotiation (client/inbound/socks5_auth.h), hostile-inputs S6.

#include "client/inbound/socks5_auth.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "client/inbound/users_file.h"

namespace ss::socks5 {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes auth_request(std::string_view user, std::string_view password, uint8_t ver = 1) {
  Bytes b{ver, static_cast<uint8_t>(user.size())};
  b.insert(b.end(), user.begin(), user.end());
  b.push_back(static_cast<uint8_t>(password.size()));
  b.insert(b.end(), password.begin(), password.end());
  return b;
}

struct Result {
  ParseStatus status;
  UserPass creds;
  size_t consumed = 0;
};

Result parse(std::span<const uint8_t> in) {
  Result r{};
  r.status = parse_auth_request(in, r.creds, r.consumed);
  return r;
}
Result parse(const Bytes& b) {
  return parse(std::span<const uint8_t>(b.data(), b.size()));
}

}  // namespace

TEST_CASE("RFC 1929: user name and password", "[client]") {
  const Bytes b = auth_request("alice", "s3cret");
  const Result r = parse(b);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.consumed == b.size());
  CHECK(r.creds.user == "alice");
  CHECK(r.creds.password == "s3cret");
  // Byte-exact wire form: 01 05 'alice' 06 's3cret'.
  CHECK(b == Bytes{1, 5, 'a', 'l', 'i', 'c', 'e', 6, 's', '3', 'c', 'r', 'e', 't'});
}

TEST_CASE("RFC 1929: views point into the parsed buffer, any byte values", "[client]") {
  const std::string user("\x00\xff:u", 4);
  const std::string pass("\x00 \r\n", 4);
  const Bytes b = auth_request(user, pass);
  const Result r = parse(b);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.creds.user == user);
  CHECK(r.creds.password == pass);
  CHECK(reinterpret_cast<const uint8_t*>(r.creds.user.data()) == b.data() + 2);
}

TEST_CASE("RFC 1929: the longest request (255 + 255)", "[client]") {
  const std::string u(255, 'u');
  const std::string p(255, 'p');
  const Bytes b = auth_request(u, p);
  CHECK(b.size() == kMaxAuthRequestLen);
  const Result r = parse(b);
  REQUIRE(r.status == ParseStatus::Ok);
  CHECK(r.consumed == kMaxAuthRequestLen);
  CHECK(r.creds.user == u);
  CHECK(r.creds.password == p);
}

TEST_CASE("S6: truncated at every prefix is NeedMore", "[client]") {
  const Bytes b = auth_request("user", "password");
  for (size_t n = 0; n < b.size(); ++n) {
    INFO("prefix " << n);
    CHECK(parse(std::span<const uint8_t>(b.data(), n)).status == ParseStatus::NeedMore);
  }
}

TEST_CASE("S6: byte-by-byte feeding, then the SOCKS5 request stays unconsumed", "[client]") {
  const Bytes auth = auth_request("u", "p");
  Bytes full = auth;
  for (uint8_t x : {5, 1, 0, 1, 127, 0, 0, 1, 0, 80}) full.push_back(x);
  Bytes buf;
  Result last{};
  for (uint8_t x : full) {
    buf.push_back(x);
    last = parse(buf);
    if (last.status != ParseStatus::NeedMore) break;
  }
  REQUIRE(last.status == ParseStatus::Ok);
  CHECK(buf.size() == auth.size());
  CHECK(parse(full).consumed == auth.size());
}

TEST_CASE("S6: version other than 1 is Error at the first byte", "[client]") {
  for (uint8_t ver : {uint8_t{0}, uint8_t{2}, uint8_t{5}, uint8_t{0xFF}}) {
    INFO("VER " << int{ver});
    CHECK(parse(Bytes{ver}).status == ParseStatus::Error);
    CHECK(parse(auth_request("u", "p", ver)).status == ParseStatus::Error);
  }
}

TEST_CASE("S6: ULEN = 0 and PLEN = 0 are Error as soon as they are seen", "[client]") {
  CHECK(parse(Bytes{1, 0}).status == ParseStatus::Error);
  CHECK(parse(Bytes{1, 0, 1, 'p'}).status == ParseStatus::Error);
  CHECK(parse(Bytes{1, 1, 'u', 0}).status == ParseStatus::Error);
  CHECK(parse(Bytes{1, 1, 'u', 0, 'x', 'y'}).status == ParseStatus::Error);
}

TEST_CASE("S6: wrong credentials get status 01", "[client]") {
  UserTable users;
  REQUIRE(users.add("alice", "right"));
  uint8_t reply[kAuthReplyLen];
  for (const auto& [user, pass, ok] :
       std::vector<std::tuple<std::string, std::string, bool>>{{"alice", "right", true},
                                                               {"alice", "wrong", false},
                                                               {"alice", "righ", false},
                                                               {"alice", "rightt", false},
                                                               {"bob", "right", false},
                                                               {"Alice", "right", false}}) {
    INFO(user << " / " << pass);
    const Bytes wire = auth_request(user, pass);  // the views point into it
    const Result r = parse(wire);
    REQUIRE(r.status == ParseStatus::Ok);
    const bool accepted = users.check(r.creds.user, r.creds.password);
    CHECK(accepted == ok);
    CHECK(make_auth_reply(accepted, reply) == kAuthReplyLen);
    CHECK(reply[0] == 0x01);
    CHECK(reply[1] == (ok ? 0x00 : 0x01));
  }
}

TEST_CASE("RFC 1929: reply encoder", "[client]") {
  uint8_t out[kAuthReplyLen];
  CHECK(make_auth_reply(true, out) == 2);
  CHECK(Bytes(out, out + 2) == Bytes{0x01, 0x00});
  CHECK(make_auth_reply(false, out) == 2);
  CHECK(Bytes(out, out + 2) == Bytes{0x01, 0x01});
}

}  // namespace ss::socks5
