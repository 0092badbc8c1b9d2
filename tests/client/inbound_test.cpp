// The inbounds as state machines (relay/inbound.h), bytes in and actions out, with no sockets:
// ss-local's mixed port (MixedInbound: SOCKS5 with and without RFC 1929 authentication, SOCKS4
// and SOCKS4a, HTTP CONNECT and forwarded requests, anything else), ss-tunnel's TunnelInbound
// and ss-server's ShadowsocksInbound. Numbers like S6 refer to hostile-inputs §4.1.
//
// Every flow is fed whole and again in pieces (one byte at a time, and in odd sizes): the
// actions, the reply bytes, the target and what goes upstream (early data, then what
// forwardable() lets through) must be the same.

#include <uv.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/inbound/http1.h"
#include "client/inbound/mixed_inbound.h"
#include "client/inbound/tunnel_inbound.h"
#include "client/inbound/users_file.h"
#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "crypto/replay_filter.h"
#include "crypto/tcp_cipher.h"
#include "relay/address.h"
#include "relay/inbound.h"
#include "server/inbound_ss.h"

namespace ss {
namespace {

using Bytes = std::vector<uint8_t>;
using Factory = std::function<std::unique_ptr<Inbound>()>;

Bytes bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::string text(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

// ---- driving an inbound ----------------------------------------------------------------------

struct Outcome {
  InboundAction action = InboundAction::NeedMore;  // the first action other than NeedMore
  std::string reply;                               // every reply byte of every feed
  Bytes early;                                     // the early data the deciding feed handed over
  Bytes upstream;  // early data, then what forwardable() let through of the later bytes
  Address target;
  size_t fed = 0;  // bytes fed before the action (including its feed)
};

// Feeds `in` in pieces of `piece` bytes (0: all at once) until an action other than NeedMore.
// After Connect the remaining bytes are relayed as the connection would: through forwardable(),
// piece by piece, until it keeps fewer than it was given; or, for a Shadowsocks inbound, opened by
// the inbound's opener. `early_cap` is the early data capacity.
// A Handover is followed as the connection follows it: the next inbound (kept in *owner) gets the
// same bytes.
Outcome drive_impl(Inbound* ib, std::unique_ptr<Inbound>* owner, const Bytes& in, size_t piece,
                   size_t early_cap) {
  Outcome o;
  std::vector<uint8_t> early_buf(early_cap);
  size_t off = 0;
  const size_t step = piece == 0 ? in.size() : piece;
  bool decided = false;
  std::unique_ptr<TcpOpener> opener;
  while (off < in.size() || (!decided && in.empty() && off == 0)) {
    const size_t n = std::min(step, in.size() - off);
    if (decided) {
      if (o.action != InboundAction::Connect) break;
      if (ib->suite() != nullptr) {
        if (!opener) opener = ib->take_opener();
        REQUIRE(opener);
        Bytes plain(opener->max_output(n));
        const TcpOpener::Result r = opener->feed(in.data() + off, n, plain.data());
        REQUIRE(r.status != DecryptStatus::Error);
        o.upstream.insert(o.upstream.end(), plain.begin(),
                          plain.begin() + static_cast<ptrdiff_t>(r.produced));
        off += n;
        continue;
      }
      const size_t keep = ib->forwardable(in.data() + off, n);
      REQUIRE(keep <= n);
      o.upstream.insert(o.upstream.end(), in.begin() + static_cast<ptrdiff_t>(off),
                        in.begin() + static_cast<ptrdiff_t>(off + keep));
      off += n;
      if (keep < n) break;
      continue;
    }
    ReplyBytes reply;
    EarlyData early{early_buf.data(), early_buf.size(), 0};
    InboundAction a = ib->feed(in.data() + off, n, reply, early);
    if (a == InboundAction::Handover) {
      REQUIRE(owner != nullptr);
      std::unique_ptr<Inbound> next = ib->take_next();
      REQUIRE(next);
      *owner = std::move(next);
      ib = owner->get();
      a = ib->feed(in.data() + off, n, reply, early);
      REQUIRE(a != InboundAction::Handover);
    }
    REQUIRE(reply.len <= ReplyBytes::kCapacity);
    REQUIRE(early.len <= early.cap);
    o.reply.append(reinterpret_cast<const char*>(reply.data), reply.len);
    off += n;
    if (a == InboundAction::NeedMore) {
      CHECK(early.len == 0);
      if (in.empty()) break;
      continue;
    }
    decided = true;
    o.action = a;
    o.fed = off;
    o.early.assign(early.data, early.data + early.len);
    o.upstream = o.early;
    o.target = ib->target();
  }
  if (!decided) o.target = ib->target();
  return o;
}

Outcome drive(std::unique_ptr<Inbound>& ib, const Bytes& in, size_t piece,
              size_t early_cap = 1 << 17) {
  return drive_impl(ib.get(), &ib, in, piece, early_cap);
}
// For an inbound that never hands over (tunnel, Shadowsocks).
Outcome drive(Inbound& ib, const Bytes& in, size_t piece, size_t early_cap = 1 << 17) {
  return drive_impl(&ib, nullptr, in, piece, early_cap);
}

std::string action_name(InboundAction a) {
  switch (a) {
    case InboundAction::NeedMore:
      return "NeedMore";
    case InboundAction::Connect:
      return "Connect";
    case InboundAction::UdpAssociate:
      return "UdpAssociate";
    case InboundAction::Reply:
      return "Reply";
    case InboundAction::Close:
      return "Close";
    case InboundAction::Reject:
      return "Reject";
    case InboundAction::Handover:
      return "Handover";
  }
  return "?";
}

// Runs `in` whole, then byte by byte and in pieces of 7 and 100 bytes, each on a new inbound;
// CHECKs that all agree and returns the whole run. `last` receives the inbound of the whole run
// (for connected_reply() and friends).
Outcome run(const Factory& make, const Bytes& in, std::unique_ptr<Inbound>* last = nullptr) {
  std::unique_ptr<Inbound> whole_ib = make();
  const Outcome whole = drive(whole_ib, in, 0);
  for (size_t piece : {1, 7, 100}) {
    std::unique_ptr<Inbound> ib = make();
    const Outcome split = drive(ib, in, piece);
    INFO("pieces of " << piece << " bytes; whole: " << action_name(whole.action)
                      << ", split: " << action_name(split.action));
    CHECK(split.action == whole.action);
    CHECK(split.reply == whole.reply);
    CHECK(split.upstream == whole.upstream);
    CHECK(split.target == whole.target);
  }
  if (last != nullptr) *last = std::move(whole_ib);
  return whole;
}

std::string reply_of(Inbound& ib, void (Inbound::*fn)(ReplyBytes&)) {
  ReplyBytes r;
  (ib.*fn)(r);
  return std::string(reinterpret_cast<const char*>(r.data), r.len);
}

std::string failed_reply(Inbound& ib, int uv_err) {
  ReplyBytes r;
  ib.failed_reply(uv_err, r);
  return std::string(reinterpret_cast<const char*>(r.data), r.len);
}

std::string raw(std::initializer_list<uint8_t> b) {
  return std::string(b.begin(), b.end());
}

// ---- the mixed port --------------------------------------------------------------------------

UserTable make_users() {
  UserTable t;
  REQUIRE(t.add("alice", "secret"));
  REQUIRE(t.add("bob", "hunter2"));
  return t;
}

const UserTable& users() {
  static const UserTable t = make_users();
  return t;
}

Factory mixed(bool with_users, bool connect = true, bool udp = false) {
  const UserTable* u = with_users ? &users() : nullptr;
  return [=] { return std::make_unique<MixedInbound>(connect, udp, u); };
}

// SOCKS5 messages.
const Bytes kGreetNoAuth = {5, 1, 0};
const Bytes kGreetUserPass = {5, 1, 2};

Bytes port_bytes(uint16_t p) {
  return {static_cast<uint8_t>(p >> 8), static_cast<uint8_t>(p & 0xFF)};
}

Bytes s5_request(uint8_t cmd, const Bytes& addr) {
  return cat({{5, cmd, 0}, addr});
}

Bytes v4_addr(std::initializer_list<uint8_t> ip, uint16_t port) {
  Bytes b{1};
  b.insert(b.end(), ip);
  return cat({b, port_bytes(port)});
}

Bytes domain_addr(std::string_view host, uint16_t port) {
  Bytes b{3, static_cast<uint8_t>(host.size())};
  b.insert(b.end(), host.begin(), host.end());
  return cat({b, port_bytes(port)});
}

Bytes v6_addr(uint16_t port) {
  Bytes b{4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return cat({b, port_bytes(port)});
}

Bytes rfc1929(std::string_view user, std::string_view pass, uint8_t ver = 1) {
  Bytes b{ver, static_cast<uint8_t>(user.size())};
  b.insert(b.end(), user.begin(), user.end());
  b.push_back(static_cast<uint8_t>(pass.size()));
  b.insert(b.end(), pass.begin(), pass.end());
  return b;
}

const std::string kS5NoAuth = raw({5, 0});
const std::string kS5UserPass = raw({5, 2});
const std::string kS5NoMethod = raw({5, 0xFF});
const std::string kAuthOk = raw({1, 0});
const std::string kAuthFail = raw({1, 1});

// VER REP RSV with BND 0.0.0.0:0.
std::string s5_reply(uint8_t rep) {
  return raw({5, rep, 0, 1, 0, 0, 0, 0, 0, 0});
}

Address v4(std::initializer_list<uint8_t> ip, uint16_t port) {
  Address a;
  a.type = Address::Type::IPv4;
  std::copy(ip.begin(), ip.end(), a.ip.begin());
  a.port = port;
  return a;
}

Address domain(std::string host, uint16_t port) {
  Address a;
  a.type = Address::Type::Domain;
  a.host = std::move(host);
  a.port = port;
  return a;
}

}  // namespace

TEST_CASE("mixed inbound: SOCKS5 CONNECT without auth answers 05 00 and takes the target",
          "[client]") {
  struct Case {
    Bytes addr;
    Address target;
  };
  Address six;
  six.type = Address::Type::IPv6;
  six.ip = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  six.port = 443;
  const Case cases[] = {
      {v4_addr({192, 0, 2, 1}, 80), v4({192, 0, 2, 1}, 80)},
      {domain_addr("example.com", 8080), domain("example.com", 8080)},
      {v6_addr(443), six},
  };
  for (const Case& c : cases) {
    INFO(c.target.to_string());
    std::unique_ptr<Inbound> ib;
    const Outcome o = run(mixed(false), cat({kGreetNoAuth, s5_request(1, c.addr)}), &ib);
    CHECK(o.action == InboundAction::Connect);
    CHECK(o.reply == kS5NoAuth);  // the reply to CONNECT waits for the outbound
    CHECK(o.early.empty());
    CHECK(o.target == c.target);
    CHECK(reply_of(*ib, &Inbound::connected_reply) == s5_reply(0));
    CHECK(ib->user().empty());
    CHECK_FALSE(ib->auth_failed());
  }
}

TEST_CASE("mixed inbound: a SOCKS5 greeting without an acceptable method gets 05 FF (S2, S4)",
          "[client]") {
  for (const Bytes& greeting : {Bytes{5, 0}, Bytes{5, 1, 2}, Bytes{5, 1, 0x80}, Bytes{5, 2, 1, 2},
                                Bytes{5, 3, 0x80, 0xFE, 0x02}}) {
    INFO("NMETHODS " << int(greeting[1]));
    // The request that follows must not be read.
    const Outcome o = run(mixed(false), cat({greeting, s5_request(1, v4_addr({1, 2, 3, 4}, 80))}));
    CHECK(o.action == InboundAction::Reply);
    CHECK(o.reply == kS5NoMethod);
  }
  // 00 offered among others is accepted.
  const Outcome ok =
      run(mixed(false), cat({{5, 3, 0x80, 2, 0}, s5_request(1, v4_addr({1, 2, 3, 4}, 80))}));
  CHECK(ok.action == InboundAction::Connect);
  CHECK(ok.reply == kS5NoAuth);
}

TEST_CASE("mixed inbound: SOCKS5 requests with a bad version, command, address or port (S7-S13)",
          "[client]") {
  const Bytes dst = v4_addr({192, 0, 2, 1}, 80);
  SECTION("S7: request version other than 5 closes without a request reply") {
    for (uint8_t ver : {0, 4, 6, 0xFF}) {
      const Outcome o = run(mixed(false), cat({kGreetNoAuth, {ver, 1, 0}, dst}));
      CHECK(o.action == InboundAction::Close);
      CHECK(o.reply == kS5NoAuth);
    }
  }
  SECTION("S8: BIND, UDP ASSOCIATE without UDP and unknown commands get 07") {
    for (uint8_t cmd : {2, 3, 0, 4, 0xFF}) {
      INFO("CMD " << int(cmd));
      const Outcome o = run(mixed(false), cat({kGreetNoAuth, s5_request(cmd, dst)}));
      CHECK(o.action == InboundAction::Reply);
      CHECK(o.reply == kS5NoAuth + s5_reply(7));
    }
    // In udp_only mode CONNECT is the one not served.
    const Outcome o =
        run(mixed(false, /*connect=*/false, /*udp=*/true), cat({kGreetNoAuth, s5_request(1, dst)}));
    CHECK(o.action == InboundAction::Reply);
    CHECK(o.reply == kS5NoAuth + s5_reply(7));
  }
  SECTION("S10: unknown ATYP gets 08") {
    for (uint8_t atyp : {0, 2, 5, 0xFF}) {
      const Outcome o = run(mixed(false), cat({kGreetNoAuth, {5, 1, 0, atyp, 1, 2, 3, 4, 0, 80}}));
      CHECK(o.action == InboundAction::Reply);
      CHECK(o.reply == kS5NoAuth + s5_reply(8));
    }
  }
  SECTION("S11: empty and bad domain names get 01, a truncated one waits") {
    for (const Bytes& name :
         {Bytes{3, 0, 0, 80}, domain_addr(std::string("a\0b", 3), 80), domain_addr("a b", 80),
          domain_addr("a\tb", 80), domain_addr("x\x7f", 80), domain_addr("\xc0\xaf.example", 80)}) {
      const Outcome o = run(mixed(false), cat({kGreetNoAuth, s5_request(1, name)}));
      CHECK(o.action == InboundAction::Reply);
      CHECK(o.reply == kS5NoAuth + s5_reply(1));
    }
    // LEN 255 and fewer bytes: no decision (the handshake deadline closes it).
    Bytes partial = {5, 1, 0, 3, 255};
    partial.insert(partial.end(), 200, 'a');
    const Outcome o = run(mixed(false), cat({kGreetNoAuth, partial}));
    CHECK(o.action == InboundAction::NeedMore);
    CHECK(o.reply == kS5NoAuth);
  }
  SECTION("S13: port 0 gets 01") {
    const Outcome o =
        run(mixed(false), cat({kGreetNoAuth, s5_request(1, v4_addr({192, 0, 2, 1}, 0))}));
    CHECK(o.action == InboundAction::Reply);
    CHECK(o.reply == kS5NoAuth + s5_reply(1));
  }
  SECTION("S9: RSV other than 0 is tolerated") {
    const Outcome o = run(mixed(false), cat({kGreetNoAuth, {5, 1, 0x7F}, dst}));
    CHECK(o.action == InboundAction::Connect);
  }
}

TEST_CASE("mixed inbound: SOCKS5 UDP ASSOCIATE when UDP is relayed", "[client]") {
  std::unique_ptr<Inbound> ib;
  const Outcome o =
      run(mixed(false, true, true),
          cat({kGreetNoAuth, s5_request(3, v4_addr({0, 0, 0, 0}, 0)), bytes("x")}), &ib);
  CHECK(o.action == InboundAction::UdpAssociate);
  CHECK(o.reply == kS5NoAuth);
  CHECK(o.target == v4({0, 0, 0, 0}, 0));
  ReplyBytes r;
  ib->udp_reply(v4({127, 0, 0, 1}, 0x1234), r);
  CHECK(std::string(reinterpret_cast<const char*>(r.data), r.len) ==
        raw({5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34}));
}

TEST_CASE("mixed inbound: SOCKS5 payload pipelined after the request is early data (S14)",
          "[client]") {
  Bytes hello = {0x16, 3, 1, 0, 5};
  for (int i = 0; i < 300; ++i) hello.push_back(static_cast<uint8_t>(i * 7));
  const Outcome o =
      run(mixed(false), cat({kGreetNoAuth, s5_request(1, domain_addr("example.com", 443)), hello}));
  CHECK(o.action == InboundAction::Connect);
  CHECK(o.reply == kS5NoAuth);
  CHECK(o.early == hello);
  CHECK(o.target == domain("example.com", 443));

  // More than the early data buffer holds: closed, never written past it.
  auto ib = mixed(false)();
  const Bytes flight = cat({kGreetNoAuth, s5_request(1, v4_addr({1, 2, 3, 4}, 80)), hello});
  const Outcome small = drive(ib, flight, 0, hello.size() - 1);
  CHECK(small.action == InboundAction::Close);
}

TEST_CASE("mixed inbound: SOCKS5 connect errors and refusals map to reply codes (S18)",
          "[client]") {
  std::unique_ptr<Inbound> ib;
  run(mixed(false), cat({kGreetNoAuth, s5_request(1, v4_addr({1, 2, 3, 4}, 80))}), &ib);
  CHECK(failed_reply(*ib, UV_ECONNREFUSED) == s5_reply(5));
  CHECK(failed_reply(*ib, UV_ENETUNREACH) == s5_reply(3));
  CHECK(failed_reply(*ib, UV_EHOSTUNREACH) == s5_reply(4));
  CHECK(failed_reply(*ib, UV_ETIMEDOUT) == s5_reply(4));
  CHECK(failed_reply(*ib, UV_EAI_NONAME) == s5_reply(4));
  CHECK(failed_reply(*ib, UV_ECONNRESET) == s5_reply(1));
  CHECK(reply_of(*ib, &Inbound::refused_reply) == s5_reply(2));
}

TEST_CASE("mixed inbound with users: SOCKS5 username and password (S5, S6)", "[client]") {
  const Bytes req = s5_request(1, v4_addr({192, 0, 2, 1}, 80));
  SECTION("right credentials: 05 02, 01 00, then the request") {
    for (auto [user, pass] : {std::pair{"alice", "secret"}, std::pair{"bob", "hunter2"}}) {
      std::unique_ptr<Inbound> ib;
      const Outcome o = run(mixed(true), cat({kGreetUserPass, rfc1929(user, pass), req}), &ib);
      CHECK(o.action == InboundAction::Connect);
      CHECK(o.reply == kS5UserPass + kAuthOk);
      CHECK(o.target == v4({192, 0, 2, 1}, 80));
      CHECK(ib->user() == user);
      CHECK_FALSE(ib->auth_failed());
      CHECK(reply_of(*ib, &Inbound::connected_reply) == s5_reply(0));
    }
    // Both methods offered: username/password is chosen.
    const Outcome o = run(mixed(true), cat({{5, 2, 0, 2}, rfc1929("alice", "secret"), req}));
    CHECK(o.action == InboundAction::Connect);
    CHECK(o.reply == kS5UserPass + kAuthOk);
  }
  SECTION("S5: only 00 offered gets 05 FF") {
    for (const Bytes& greeting : {Bytes{5, 1, 0}, Bytes{5, 0}, Bytes{5, 2, 0, 1}}) {
      std::unique_ptr<Inbound> ib;
      const Outcome o = run(mixed(true), cat({greeting, req}), &ib);
      CHECK(o.action == InboundAction::Reply);
      CHECK(o.reply == kS5NoMethod);
      CHECK(ib->auth_failed());
    }
  }
  SECTION("S6: wrong credentials and bad subnegotiations get 01 01") {
    const Bytes bad[] = {
        rfc1929("alice", "Secret"),                    // wrong password
        rfc1929("alice", "secre"),                     // a prefix of it
        rfc1929("alice", "secrets"),                   // longer
        rfc1929("mallory", "secret"),                  // unknown user
        rfc1929("bob", "secret"),                      // another user's password
        rfc1929("alice", "secret", 0),                 // VER 0
        rfc1929("alice", "secret", 5),                 // VER 5 (a second greeting)
        Bytes{1, 0, 6, 's', 'e', 'c', 'r', 'e', 't'},  // ULEN 0
        Bytes{1, 5, 'a', 'l', 'i', 'c', 'e', 0},       // PLEN 0
    };
    for (const Bytes& auth : bad) {
      INFO(text(auth));
      std::unique_ptr<Inbound> ib;
      const Outcome o = run(mixed(true), cat({kGreetUserPass, auth, req}), &ib);
      CHECK(o.action == InboundAction::Reply);
      CHECK(o.reply == kS5UserPass + kAuthFail);
      CHECK(ib->auth_failed());
      CHECK_FALSE(ib->failure().empty());
      CHECK(ib->user().empty());
    }
  }
  SECTION("S6: a truncated subnegotiation waits (the handshake deadline ends it)") {
    for (size_t cut : {1, 2, 5, 7, 8, 13}) {
      const Bytes auth = rfc1929("alice", "secret");
      const Outcome o = run(
          mixed(true),
          cat({kGreetUserPass, Bytes(auth.begin(), auth.begin() + static_cast<ptrdiff_t>(cut))}));
      CHECK(o.action == InboundAction::NeedMore);
      CHECK(o.reply == kS5UserPass);
    }
  }
  SECTION("greeting, auth, request and payload in one read: the payload is early data") {
    const Bytes payload = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const Outcome o =
        run(mixed(true), cat({kGreetUserPass, rfc1929("alice", "secret"), req, payload}));
    CHECK(o.action == InboundAction::Connect);
    CHECK(o.reply == kS5UserPass + kAuthOk);
    CHECK(o.early == payload);
  }
  SECTION("the longest greeting, auth and request, then a payload") {
    Bytes greeting = {5, 255};
    for (int i = 0; i < 255; ++i) greeting.push_back(static_cast<uint8_t>(i));
    const std::string long_name(255, 'n');
    const Bytes payload(3000, 0xAB);
    const Outcome o = run(mixed(true), cat({greeting, rfc1929("alice", "secret"),
                                            s5_request(1, domain_addr(long_name, 1)), payload}));
    CHECK(o.action == InboundAction::Connect);
    CHECK(o.reply == kS5UserPass + kAuthOk);
    CHECK(o.target == domain(long_name, 1));
    CHECK(o.early == payload);
  }
}

// ---- SOCKS4 ----------------------------------------------------------------------------------

namespace {

Bytes s4_request(uint8_t cd, uint16_t port, std::initializer_list<uint8_t> ip,
                 std::string_view user, const char* host = nullptr) {
  Bytes b = cat({{4, cd}, port_bytes(port)});
  b.insert(b.end(), ip);
  b.insert(b.end(), user.begin(), user.end());
  b.push_back(0);
  if (host != nullptr) {
    b.insert(b.end(), host, host + std::strlen(host));
    b.push_back(0);
  }
  return b;
}

const std::string kS4Granted = raw({0, 0x5A, 0, 0, 0, 0, 0, 0});
const std::string kS4Rejected = raw({0, 0x5B, 0, 0, 0, 0, 0, 0});

}  // namespace

TEST_CASE("mixed inbound: SOCKS4 and SOCKS4a CONNECT, granted or rejected once connected",
          "[client]") {
  std::unique_ptr<Inbound> ib;
  const Outcome o = run(mixed(false), s4_request(1, 80, {192, 0, 2, 1}, "user"), &ib);
  CHECK(o.action == InboundAction::Connect);
  CHECK(o.reply.empty());  // the reply waits for the outbound
  CHECK(o.target == v4({192, 0, 2, 1}, 80));
  CHECK(reply_of(*ib, &Inbound::connected_reply) == kS4Granted);
  CHECK(failed_reply(*ib, UV_ECONNREFUSED) == kS4Rejected);
  CHECK(reply_of(*ib, &Inbound::refused_reply) == kS4Rejected);

  const Outcome a = run(mixed(false), s4_request(1, 443, {0, 0, 0, 7}, "", "example.com"));
  CHECK(a.action == InboundAction::Connect);
  CHECK(a.target == domain("example.com", 443));
  const Outcome literal = run(mixed(false), s4_request(1, 53, {0, 0, 0, 1}, "u", "10.0.0.1"));
  CHECK(literal.target == v4({10, 0, 0, 1}, 53));
}

TEST_CASE("mixed inbound: bad SOCKS4 requests get 5B at once", "[client]") {
  for (const Bytes& bad : {
           s4_request(2, 80, {1, 2, 3, 4}, ""),                            // BIND
           s4_request(9, 80, {1, 2, 3, 4}, ""),                            // unknown command
           s4_request(1, 0, {1, 2, 3, 4}, ""),                             // port 0
           s4_request(1, 80, {0, 0, 0, 1}, "", ""),                        // SOCKS4a, empty host
           s4_request(1, 80, {0, 0, 0, 1}, "", "a b"),                     // SOCKS4a, bad host
           cat({s4_request(1, 80, {1, 2, 3, 4}, std::string(300, 'u'))}),  // USERID too long
       }) {
    const Outcome o = run(mixed(false), bad);
    CHECK(o.action == InboundAction::Reply);
    CHECK(o.reply == kS4Rejected);
  }
}

TEST_CASE("mixed inbound: SOCKS4 payload pipelined after the request is early data", "[client]") {
  const Bytes payload = bytes("\x16\x03\x01 client hello and more");
  const Outcome o =
      run(mixed(false), cat({s4_request(1, 443, {0, 0, 0, 1}, "id", "example.org"), payload}));
  CHECK(o.action == InboundAction::Connect);
  CHECK(o.early == payload);
  CHECK(o.target == domain("example.org", 443));
}

TEST_CASE("mixed inbound with users: SOCKS4 is refused with 5B", "[client]") {
  std::unique_ptr<Inbound> ib;
  const Outcome o = run(mixed(true), s4_request(1, 80, {192, 0, 2, 1}, "alice"), &ib);
  CHECK(o.action == InboundAction::Reply);
  CHECK(o.reply == kS4Rejected);
  CHECK(ib->auth_failed());
}

TEST_CASE("mixed inbound in udp_only mode: SOCKS4 and HTTP are closed", "[client]") {
  for (const Bytes& in :
       {s4_request(1, 80, {192, 0, 2, 1}, ""), bytes("CONNECT example.com:443 HTTP/1.1\r\n\r\n")}) {
    const Outcome o = run(mixed(false, /*connect=*/false, /*udp=*/true), in);
    CHECK(o.action == InboundAction::Close);
    CHECK(o.reply.empty());
  }
}

// ---- HTTP ------------------------------------------------------------------------------------

namespace {

const std::string kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool has(const std::string& s, std::string_view needle) {
  return s.find(needle) != std::string::npos;
}

// "Basic " + base64("user:pass")
std::string basic(std::string_view user_pass) {
  const Bytes b = bytes(user_pass);
  return "Basic " + base64_encode(b);
}

}  // namespace

TEST_CASE("mixed inbound: HTTP CONNECT answers 200 once connected", "[client]") {
  std::unique_ptr<Inbound> ib;
  const Bytes tls = {0x16, 3, 1, 0, 4, 1, 2, 3, 4};
  const Outcome o = run(mixed(false),
                        cat({bytes("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
                                   "User-Agent: test\r\n\r\n"),
                             tls}),
                        &ib);
  CHECK(o.action == InboundAction::Connect);
  CHECK(o.reply.empty());
  CHECK(o.target == domain("example.com", 443));
  CHECK(o.early == tls);  // a client that did not wait for the 200
  CHECK(reply_of(*ib, &Inbound::connected_reply) == kEstablished);
  // The tunnel carries everything that follows.
  const Bytes more(5000, 'z');
  CHECK(ib->forwardable(more.data(), more.size()) == more.size());

  const Outcome v6 = run(mixed(false), bytes("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n"));
  CHECK(v6.action == InboundAction::Connect);
  CHECK(v6.target.type == Address::Type::IPv6);
  CHECK(v6.target.port == 8443);
}

TEST_CASE("mixed inbound: HTTP connect failures and refusals get 502, 504 and 403", "[client]") {
  for (const char* head :
       {"CONNECT example.com:443 HTTP/1.1\r\n\r\n", "GET http://example.com/ HTTP/1.1\r\n\r\n"}) {
    INFO(head);
    std::unique_ptr<Inbound> ib;
    run(mixed(false), bytes(head), &ib);
    CHECK(starts_with(failed_reply(*ib, UV_ECONNREFUSED), "HTTP/1.1 502 Bad Gateway\r\n"));
    CHECK(starts_with(failed_reply(*ib, UV_EAI_NONAME), "HTTP/1.1 502 Bad Gateway\r\n"));
    CHECK(starts_with(failed_reply(*ib, UV_ETIMEDOUT), "HTTP/1.1 504 Gateway Timeout\r\n"));
    const std::string refused = reply_of(*ib, &Inbound::refused_reply);
    CHECK(starts_with(refused, "HTTP/1.1 403 Forbidden\r\n"));
    CHECK(has(refused, "\r\nConnection: close\r\n"));
    CHECK(has(refused, "\r\nContent-Length: 0\r\n"));
  }
}

TEST_CASE("mixed inbound: an absolute-form GET is rewritten into the early data", "[client]") {
  std::unique_ptr<Inbound> ib;
  const std::string head =
      "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: wrong.example\r\n"
      "User-Agent: test/1\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n";
  const Outcome o = run(mixed(false), bytes(head), &ib);
  CHECK(o.action == InboundAction::Connect);
  CHECK(o.reply.empty());
  CHECK(o.target == domain("example.com", 8080));
  const std::string sent = text(o.early);
  CHECK(starts_with(sent, "GET /a/b?c=d HTTP/1.1\r\n"));
  CHECK(has(sent, "\r\nHost: example.com:8080\r\n"));
  CHECK_FALSE(has(sent, "wrong.example"));
  CHECK_FALSE(has(sent, "Proxy-Connection"));
  CHECK(has(sent, "\r\nUser-Agent: test/1\r\n"));
  CHECK_FALSE(has(sent, "\r\nConnection:"));  // kept alive upstream too
  CHECK(sent.size() >= 4);
  CHECK(sent.substr(sent.size() - 4) == "\r\n\r\n");
  // The origin's response is relayed as it is: nothing from the proxy when connected.
  CHECK(reply_of(*ib, &Inbound::connected_reply).empty());
  // Requests are not pipelined upstream: a second request is held, not forwarded.
  const Bytes next = bytes("GET http://example.com/second HTTP/1.1\r\n\r\n");
  CHECK(ib->request_done());
  CHECK(ib->forwardable(next.data(), next.size()) == 0);

  // Pipelined second request in the same read: also held back, whole or split.
  const Outcome two = run(mixed(false), cat({bytes(head), next}));
  CHECK(two.upstream == o.early);
}

TEST_CASE("mixed inbound: a forwarded request's body is framed by Content-Length and chunked",
          "[client]") {
  SECTION("Content-Length") {
    const std::string head = "POST http://example.com/form HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    const Outcome o =
        run(mixed(false), bytes(head + "hello world" + "GET http://x/ HTTP/1.1\r\n\r\n"));
    CHECK(o.action == InboundAction::Connect);
    const std::string up = text(o.upstream);
    CHECK(starts_with(up, "POST /form HTTP/1.1\r\n"));
    CHECK(has(up, "\r\nContent-Length: 11\r\n"));
    REQUIRE(up.size() >= 15);
    CHECK(up.substr(up.size() - 15) == "\r\n\r\nhello world");

    // A body that arrives after the head: forwardable() takes exactly the rest of it.
    std::unique_ptr<Inbound> ib;
    const Outcome h = run(mixed(false), bytes(head + "hel"), &ib);
    CHECK(text(h.early).substr(h.early.size() - 3) == "hel");
    const Bytes rest = bytes("lo worldEXTRA");
    CHECK(ib->forwardable(rest.data(), rest.size()) == 8);
    CHECK(ib->forwardable(rest.data() + 8, 5) == 0);
  }
  SECTION("chunked") {
    const std::string body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    const Outcome o = run(mixed(false), bytes("POST http://example.com/up HTTP/1.1\r\n"
                                              "Transfer-Encoding: chunked\r\n\r\n" +
                                              body + "TRAILING GARBAGE"));
    CHECK(o.action == InboundAction::Connect);
    const std::string up = text(o.upstream);
    CHECK(has(up, "\r\nTransfer-Encoding: chunked\r\n"));
    CHECK(up.size() > body.size());
    CHECK(up.substr(up.size() - body.size()) == body);
  }
  SECTION("no body: the request ends with its head") {
    std::unique_ptr<Inbound> ib;
    run(mixed(false), bytes("GET http://example.com/ HTTP/1.1\r\n\r\n"), &ib);
    const Bytes b = bytes("x");
    CHECK(ib->forwardable(b.data(), b.size()) == 0);
  }
}

namespace {

// Feeds a response through the inbound's response() hook whole, then split into pieces of
// `piece` bytes; both must agree. Returns the answer and how many bytes belonged to it.
std::pair<ResponseEnd, size_t> respond(Inbound& ib, std::string_view in, size_t piece) {
  size_t total = 0;
  ResponseEnd end = ResponseEnd::No;
  for (size_t at = 0; at < in.size(); at += piece) {
    size_t take = 0;
    const Bytes b = bytes(in.substr(at, piece));
    end = ib.response(b.data(), b.size(), take);
    REQUIRE(take <= b.size());
    total += take;
    if (end != ResponseEnd::No) break;
  }
  return {end, total};
}

// Reads the next request held by (or fed to) the inbound, as the connection does between
// exchanges.
Outcome next_request(Inbound& ib, std::string_view in = {}) {
  Outcome o;
  static std::vector<uint8_t> buf(64 * 1024);
  ReplyBytes reply;
  EarlyData early{buf.data(), buf.size(), 0};
  const Bytes b = bytes(in);
  o.action = ib.feed(b.empty() ? nullptr : b.data(), b.size(), reply, early);
  o.reply.assign(reinterpret_cast<const char*>(reply.data), reply.len);
  o.early.assign(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(early.len));
  o.target = ib.target();
  return o;
}

}  // namespace

TEST_CASE("mixed inbound: HTTP keep-alive, one exchange after another", "[client]") {
  const std::string first =
      "GET http://a.example/1 HTTP/1.1\r\nProxy-Connection: keep-alive\r\n\r\n";
  const std::string second =
      "POST http://b.example:8080/2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  const std::string third = "HEAD http://a.example/3 HTTP/1.1\r\nConnection: close\r\n\r\n";
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  for (const size_t piece : {size_t{1}, size_t{7}, size_t{4096}}) {
    INFO("piece " << piece);
    std::unique_ptr<Inbound> ib;
    // The first request, with the next two pipelined behind it in the same read.
    const Outcome o = run(mixed(false), bytes(first + second + third), &ib);
    REQUIRE(o.action == InboundAction::Connect);
    CHECK(o.target == domain("a.example", 80));
    CHECK(text(o.early) == "GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n");
    CHECK(ib->request_done());
    // Its response ends after exactly its bytes; the connection may go on.
    CHECK(respond(*ib, ok + "EXTRA", piece) == std::pair{ResponseEnd::Reuse, ok.size()});
    CHECK(ib->reuses_upstream());
    // The second request comes from the held bytes: another target, body included.
    const Outcome two = next_request(*ib);
    REQUIRE(two.action == InboundAction::Connect);
    CHECK(two.target == domain("b.example", 8080));
    CHECK(text(two.early) ==
          "POST /2 HTTP/1.1\r\nHost: b.example:8080\r\nContent-Length: 3\r\n\r\nabc");
    CHECK(ib->request_done());
    // A 100 Continue, then a chunked response with a trailer.
    const std::string chunked =
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";
    CHECK(respond(*ib, chunked, piece) == std::pair{ResponseEnd::Reuse, chunked.size()});
    // The third asks to close: upstream too, and its HEAD response has no body.
    const Outcome three = next_request(*ib);
    REQUIRE(three.action == InboundAction::Connect);
    CHECK(three.target == domain("a.example", 80));
    CHECK(has(text(three.early), "\r\nConnection: close\r\n"));
    const std::string head_resp = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    CHECK(respond(*ib, head_resp, piece) == std::pair{ResponseEnd::Last, head_resp.size()});
  }
}

TEST_CASE("mixed inbound: HTTP responses that end the client connection or are bad", "[client]") {
  const std::string get = "GET http://a.example/ HTTP/1.1\r\n\r\n";
  auto fresh = [&] {
    std::unique_ptr<Inbound> ib;
    REQUIRE(run(mixed(false), bytes(get), &ib).action == InboundAction::Connect);
    return ib;
  };
  SECTION("the origin says close") {
    auto ib = fresh();
    const std::string r = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
    CHECK(respond(*ib, r, 3) == std::pair{ResponseEnd::Last, r.size()});
  }
  SECTION("close-delimited: the response goes on until the origin closes") {
    auto ib = fresh();
    CHECK(respond(*ib, "HTTP/1.1 200 OK\r\n\r\nanything at all", 5).first == ResponseEnd::No);
  }
  SECTION("HTTP/1.0 without keep-alive") {
    std::unique_ptr<Inbound> ib;
    const Outcome o = run(mixed(false), bytes("GET http://a.example/ HTTP/1.0\r\n\r\n"), &ib);
    CHECK(has(text(o.early), "\r\nConnection: close\r\n"));
    const std::string r = "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n";
    CHECK(respond(*ib, r, 100) == std::pair{ResponseEnd::Last, r.size()});
  }
  SECTION("HTTP/1.0 with keep-alive asks the origin to keep it too") {
    std::unique_ptr<Inbound> ib;
    const Outcome o =
        run(mixed(false), bytes("GET http://a.example/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            &ib);
    CHECK(has(text(o.early), "\r\nConnection: keep-alive\r\n"));
  }
  SECTION("a bad chunk size") {
    auto ib = fresh();
    const std::string r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    CHECK(respond(*ib, r, 4).first == ResponseEnd::Bad);
  }
  SECTION("Content-Length with Transfer-Encoding") {
    auto ib = fresh();
    CHECK(respond(*ib, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                  1000)
              .first == ResponseEnd::Bad);
  }
  SECTION("an oversized response head") {
    auto ib = fresh();
    const std::string r = "HTTP/1.1 200 OK\r\nX: " + std::string(http1::kMaxHeadLen, 'a');
    CHECK(respond(*ib, r, 1000).first == ResponseEnd::Bad);
  }
  SECTION("bytes after the response ended, before another request") {
    auto ib = fresh();
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    CHECK(respond(*ib, r, 100) == std::pair{ResponseEnd::Reuse, r.size()});
    CHECK(respond(*ib, "junk", 100) == std::pair{ResponseEnd::Bad, size_t{0}});
  }
  SECTION("the next request's head is checked as the first one was") {
    auto ib = fresh();
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    CHECK(respond(*ib, r, 100).first == ResponseEnd::Reuse);
    const Outcome big = next_request(
        *ib, "GET http://a.example/ HTTP/1.1\r\nX: " + std::string(http1::kMaxHeadLen, 'a'));
    CHECK(big.action == InboundAction::Reply);
    CHECK(starts_with(big.reply, "HTTP/1.1 431 "));
  }
}

TEST_CASE("mixed inbound: bad HTTP heads get 400 and too large ones 431", "[client]") {
  for (const char* bad : {
           "GET http://example.com/ HTTP/1.1\nHost: a\n\n",           // bare LF
           "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",             // origin form
           "GET http://example.com/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n",  // obs-fold
           "GET https://example.com/ HTTP/1.1\r\n\r\n",               // not http://
           "CONNECT example.com HTTP/1.1\r\n\r\n",                    // no port
           "POST http://a.example/ HTTP/1.1\r\nContent-Length: 4\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",  // CL and TE
           "GET http://example.com/ HTTP/1.1\r\nBad Name: x\r\n\r\n",
       }) {
    INFO(bad);
    std::unique_ptr<Inbound> ib;
    const Outcome o = run(mixed(false), bytes(bad), &ib);
    CHECK(o.action == InboundAction::Reply);
    CHECK(starts_with(o.reply, "HTTP/1.1 400 Bad Request\r\n"));
    CHECK(has(o.reply, "\r\nConnection: close\r\n"));
    CHECK_FALSE(ib->failure().empty());
    CHECK_FALSE(ib->auth_failed());
  }
  const std::string line = "GET http://example.com/ HTTP/1.1\r\n";
  const std::string kilo = "X-Filler: " + std::string(1000, 'f') + "\r\n";
  // More than 16 KiB without the end of the head, and more than 100 field lines.
  std::string big = line, many = line;
  while (big.size() < 17 * 1024) big += kilo;
  for (int i = 0; i < 101; ++i) many += "X-F: " + std::to_string(i) + "\r\n";
  for (const std::string& too_large : {big, many + "\r\n"}) {
    const Outcome o = run(mixed(false), bytes(too_large));
    CHECK(o.action == InboundAction::Reply);
    CHECK(starts_with(o.reply, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
  }
  // Just under the limits is fine.
  std::string fits = line;
  while (fits.size() < 15 * 1024) fits += kilo;
  CHECK(run(mixed(false), bytes(fits + "\r\n")).action == InboundAction::Connect);
  std::string hundred = line;
  for (int i = 0; i < 100; ++i) hundred += "X-F: " + std::to_string(i) + "\r\n";
  CHECK(run(mixed(false), bytes(hundred + "\r\n")).action == InboundAction::Connect);
}

TEST_CASE("mixed inbound with users: HTTP needs Basic credentials, 407 otherwise", "[client]") {
  const std::string connect = "CONNECT example.com:443 HTTP/1.1\r\n";
  const std::string get = "GET http://example.com/ HTTP/1.1\r\n";
  for (const std::string& line : {connect, get}) {
    INFO(line);
    for (const std::string& fields :
         {std::string(), "Proxy-Authorization: " + basic("alice:wrong") + "\r\n",
          "Proxy-Authorization: " + basic("mallory:secret") + "\r\n",
          "Proxy-Authorization: " + basic("alice") + "\r\n",
          std::string("Proxy-Authorization: Bearer abc\r\n"),
          std::string("Proxy-Authorization: Basic !!!\r\n"),
          "Authorization: " + basic("alice:secret") + "\r\n"}) {
      INFO(fields);
      std::unique_ptr<Inbound> ib;
      const Outcome o = run(mixed(true), bytes(line + fields + "\r\n"), &ib);
      CHECK(o.action == InboundAction::Reply);
      CHECK(starts_with(o.reply, "HTTP/1.1 407 Proxy Authentication Required\r\n"));
      CHECK(has(o.reply, "\r\nProxy-Authenticate: Basic realm=\"shadowsocks-uv\"\r\n"));
      CHECK(ib->auth_failed());
      CHECK(ib->user().empty());
    }
    std::unique_ptr<Inbound> ib;
    const Outcome ok =
        run(mixed(true), bytes(line + "Proxy-Authorization: " + basic("bob:hunter2") + "\r\n\r\n"),
            &ib);
    CHECK(ok.action == InboundAction::Connect);
    CHECK(ok.reply.empty());
    CHECK(ib->user() == "bob");
    CHECK_FALSE(ib->auth_failed());
    // The credentials are the proxy's: never forwarded to the origin.
    CHECK_FALSE(has(text(ok.early), "Proxy-Authorization"));
  }
}

TEST_CASE("mixed inbound: first bytes of no supported protocol are closed without a reply",
          "[client]") {
  for (bool with_users : {false, true}) {
    for (const Bytes& in : {Bytes{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0}, Bytes{0x00, 5, 1, 0},
                            bytes("get http://example.com/ HTTP/1.1\r\n\r\n"), Bytes{0xFF},
                            Bytes{0x06, 1, 0}, bytes("\r\nGET / HTTP/1.1\r\n\r\n")}) {
      INFO("first byte " << int(in[0]) << (with_users ? " with users" : ""));
      std::unique_ptr<Inbound> ib;
      const Outcome o = run(mixed(with_users), in, &ib);
      CHECK(o.action == InboundAction::Close);
      CHECK(o.reply.empty());
      // Nothing to say afterwards either.
      CHECK(reply_of(*ib, &Inbound::connected_reply).empty());
      CHECK(failed_reply(*ib, UV_ECONNREFUSED).empty());
    }
  }
  // No bytes yet: no decision.
  auto ib = mixed(false)();
  ReplyBytes r;
  EarlyData e;
  CHECK(ib->feed(nullptr, 0, r, e) == InboundAction::NeedMore);
}

TEST_CASE("mixed inbound: early data is appended within the room the buffer has left", "[client]") {
  // relay/inbound.h: feed() appends to `early`, bounded by early.cap. Here the buffer already
  // holds 8 bytes and has room for 31 more, and every request below is followed by 32 bytes.
  const Bytes payload(32, 'p');
  const Bytes flights[] = {
      cat({kGreetNoAuth, s5_request(1, v4_addr({192, 0, 2, 1}, 80)), payload}),
      cat({s4_request(1, 80, {192, 0, 2, 1}, ""), payload}),
      cat({bytes("CONNECT example.com:443 HTTP/1.1\r\n\r\n"), payload}),
  };
  for (const Bytes& in : flights) {
    INFO("first byte " << int(in[0]));
    for (size_t room : {31, 32}) {
      constexpr size_t kHeld = 8, kGuard = 64;
      Bytes buf(kHeld + room + kGuard, 0xEE);
      std::fill(buf.begin(), buf.begin() + kHeld, 'h');
      EarlyData early{buf.data(), kHeld + room, kHeld};
      ReplyBytes reply;
      auto ib = mixed(false)();
      InboundAction a = ib->feed(in.data(), in.size(), reply, early);
      if (a == InboundAction::Handover) {  // the mixed port hands over after the first byte
        ib = ib->take_next();
        a = ib->feed(in.data(), in.size(), reply, early);
      }
      CHECK(a == (room < payload.size() ? InboundAction::Close : InboundAction::Connect));
      CHECK(early.len <= early.cap);
      CHECK(std::all_of(buf.begin(), buf.begin() + kHeld, [](uint8_t b) { return b == 'h'; }));
      CHECK(std::all_of(buf.begin() + static_cast<ptrdiff_t>(kHeld + room), buf.end(),
                        [](uint8_t b) { return b == 0xEE; }));
      if (a == InboundAction::Connect) {
        CHECK(early.len == kHeld + payload.size());
        CHECK(Bytes(buf.begin() + kHeld, buf.begin() + kHeld + 32) == payload);
      }
    }
  }
}

// ---- ss-tunnel -------------------------------------------------------------------------------

TEST_CASE("tunnel inbound: connects to its fixed target at accept, with no reply", "[client]") {
  const Address target = v4({127, 0, 0, 1}, 53);
  TunnelInbound ib(target);
  CHECK(ib.start(AcceptInfo{}) == InboundAction::Connect);
  CHECK(ib.target() == target);
  CHECK_FALSE(ib.wants_original_dst());
  ReplyBytes r;
  uint8_t buf[16];
  EarlyData e{buf, sizeof buf, 0};
  const Bytes in = bytes("hello");
  CHECK(ib.feed(in.data(), in.size(), r, e) == InboundAction::NeedMore);
  CHECK(r.len == 0);
  CHECK(e.len == 0);
  CHECK(ib.forwardable(in.data(), in.size()) == in.size());
  CHECK(reply_of(ib, &Inbound::connected_reply).empty());
  CHECK(failed_reply(ib, UV_ECONNREFUSED).empty());
  CHECK(reply_of(ib, &Inbound::refused_reply).empty());
}

// ---- ss-server -------------------------------------------------------------------------------

namespace {

const CipherSpec& spec() {
  return *find_cipher("chacha20-ietf-poly1305");
}

std::unique_ptr<TcpCipherSuite> suite(std::shared_ptr<ReplayFilter> replay = nullptr) {
  return make_classic_suite(spec(), derive_master_key("inbound test", spec().key_len),
                            std::move(replay));
}

// A client's first flight to `target` with `payload` (sealed by the client side of `s`).
Bytes flight(const TcpCipherSuite& s, const Address& target, const Bytes& payload) {
  auto sealer = s.client_sealer();
  uint8_t addr[kMaxAddressLen];
  const size_t addr_len = encode_address(target, addr);
  Bytes out(sealer->max_sealed_size(payload.size()));
  const size_t n = sealer->seal_request(addr, addr_len, payload.data(), payload.size(), out.data());
  REQUIRE(n > 0);
  out.resize(n);
  return out;
}

}  // namespace

TEST_CASE("shadowsocks inbound: a valid first flight connects, whole or split", "[client]") {
  const auto s = suite();
  const Factory make = [&] { return std::make_unique<ShadowsocksInbound>(*s); };
  const Bytes payload = bytes("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  for (const Address& target : {domain("example.com", 80), v4({192, 0, 2, 7}, 8443)}) {
    std::unique_ptr<Inbound> ib;
    const Outcome o = run(make, flight(*s, target, payload), &ib);
    CHECK(o.action == InboundAction::Connect);
    CHECK(o.target == target);
    CHECK(o.early == payload);
    CHECK(o.reply.empty());
    CHECK(ib->take_opener() != nullptr);
    CHECK(ib->suite() == s.get());
  }
  // No payload yet: the address alone connects.
  const Outcome bare = run(make, flight(*s, v4({192, 0, 2, 7}, 80), {}));
  CHECK(bare.action == InboundAction::Connect);
  CHECK(bare.early.empty());
  // A payload over several chunks: all of it that arrived with the flight is early data.
  const Bytes big(40000, 0x5C);
  auto ib = make();
  const Outcome o = drive(*ib, flight(*s, v4({192, 0, 2, 7}, 80), big), 0);
  CHECK(o.action == InboundAction::Connect);
  CHECK(o.early == big);
}

TEST_CASE("shadowsocks inbound: garbage is rejected as an authentication failure", "[client]") {
  const auto s = suite();
  const Factory make = [&] { return std::make_unique<ShadowsocksInbound>(*s); };
  Bytes garbage(200);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<uint8_t>(i * 31 + 7);
  std::unique_ptr<Inbound> ib;
  const Outcome o = run(make, garbage, &ib);
  CHECK(o.action == InboundAction::Reject);
  CHECK(ib->reject_kind() == RejectKind::Auth);
  CHECK(o.reply.empty());
  // Fewer bytes than salt + length + tag: no decision yet.
  const Outcome short_one = run(make, Bytes(garbage.begin(), garbage.begin() + 49));
  CHECK(short_one.action == InboundAction::NeedMore);
  // A valid flight with one byte flipped.
  Bytes flipped = flight(*s, domain("example.com", 80), bytes("hello"));
  flipped[40] ^= 1;
  const Outcome f = run(make, flipped, &ib);
  CHECK(f.action == InboundAction::Reject);
  CHECK(ib->reject_kind() == RejectKind::Auth);
}

TEST_CASE("shadowsocks inbound: a replayed first flight is rejected as a replay", "[client]") {
  const auto s = suite(std::make_shared<ReplayFilter>(1000, 1e-6));
  // The client is another process: its sealer does not record into the server's filter.
  const Bytes f = flight(*suite(), domain("example.com", 443), bytes("payload"));
  ShadowsocksInbound first(*s);
  CHECK(drive(first, f, 0).action == InboundAction::Connect);
  for (size_t piece : {0, 1}) {
    ShadowsocksInbound again(*s);
    const Outcome o = drive(again, f, piece);
    CHECK(o.action == InboundAction::Reject);
    CHECK(again.reject_kind() == RejectKind::Replay);
    CHECK(o.early.empty());
  }
  // Without the filter the same flight connects twice (the test above is not vacuous).
  const auto plain = suite();
  const Bytes g = flight(*plain, domain("example.com", 443), bytes("payload"));
  for (int i = 0; i < 2; ++i) {
    ShadowsocksInbound ib(*plain);
    CHECK(drive(ib, g, 0).action == InboundAction::Connect);
  }
}

TEST_CASE("shadowsocks inbound: a bad address header is a bad request", "[client]") {
  const auto s = suite();
  auto sealer = s->client_sealer();
  // ATYP 9: authenticates, but is no address.
  const uint8_t bad_addr[] = {9, 1, 2, 3, 4, 0, 80};
  Bytes out(sealer->max_sealed_size(0));
  out.resize(sealer->seal_request(bad_addr, sizeof bad_addr, nullptr, 0, out.data()));
  ShadowsocksInbound ib(*s);
  const Outcome o = drive(ib, out, 0);
  CHECK(o.action == InboundAction::Reject);
  CHECK(ib.reject_kind() == RejectKind::BadRequest);
}

}  // namespace ss
