// Key trial for classic-AEAD users on one port (crypto/key_trial.h): the trial order (most
// recently used from this IP, then most recently used overall; bounded per IP and in IPs), the
// TCP suite (each user's client is told apart and answered with its own key, a stranger gets an
// Error, the replay filter sees a salt only after a key authenticated it, any split of the first
// flight works) and the UDP suite (trial on an association's first packet only).

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "crypto/key_trial.h"
#include "crypto/replay_filter.h"
#include "crypto/tcp_cipher.h"
#include "crypto/udp_cipher.h"
#include "tests/crypto/test_util.h"

namespace {

using Bytes = std::vector<uint8_t>;
using ss::DecryptStatus;
using ss::KeyTrialOrder;

KeyTrialOrder::Ip ip_of(uint8_t last) {
  const uint8_t v4[4] = {192, 0, 2, last};
  return ss::trial_ip_v4(v4);
}

std::vector<ss::TrialUser> users_for(const ss::CipherSpec& spec, size_t n) {
  std::vector<ss::TrialUser> users;
  for (size_t i = 0; i < n; ++i) {
    users.push_back({"user" + std::to_string(i),
                     ss::derive_master_key("pw-" + std::to_string(i), spec.key_len)});
  }
  return users;
}

Bytes request(ss::TcpSealer& s, const Bytes& pt) {
  const Bytes addr = {0x01, 127, 0, 0, 1, 0, 80};
  Bytes out(s.max_sealed_size(pt.size()));
  out.resize(s.seal_request(addr.data(), addr.size(), pt.data(), pt.size(), out.data()));
  return out;
}

struct Fed {
  DecryptStatus status = DecryptStatus::NeedMore;
  Bytes out;
};

// Feeds `in` in pieces of `step` bytes (0: at once), gathering the plaintext.
Fed feed(ss::TcpOpener& o, const Bytes& in, size_t step = 0) {
  Fed f;
  if (step == 0) step = in.size();
  for (size_t at = 0; at < in.size(); at += step) {
    const size_t n = std::min(step, in.size() - at);
    Bytes out(o.max_output(n) + 1);
    auto r = o.feed(in.data() + at, n, out.data());
    f.out.insert(f.out.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(r.produced));
    f.status = r.status;
    if (r.status == DecryptStatus::Error) break;
  }
  return f;
}

}  // namespace

TEST_CASE("key trial order: this IP's recent users first, then most recently used overall",
          "[crypto]") {
  KeyTrialOrder order(5);
  CHECK(order.order(ip_of(1)) == std::vector<uint32_t>{0, 1, 2, 3, 4});
  order.used(ip_of(1), 3);
  CHECK(order.order(ip_of(1)) == std::vector<uint32_t>{3, 0, 1, 2, 4});
  CHECK(order.order(ip_of(2)) == std::vector<uint32_t>{3, 0, 1, 2, 4});
  order.used(ip_of(2), 1);
  // IP 1 still tries its own 3 first; then the overall order, 1 (just used elsewhere) first.
  CHECK(order.order(ip_of(1)) == std::vector<uint32_t>{3, 1, 0, 2, 4});
  CHECK(order.order(ip_of(2)) == std::vector<uint32_t>{1, 3, 0, 2, 4});
  CHECK(order.order(ip_of(9)) == std::vector<uint32_t>{1, 3, 0, 2, 4});
  // Two users behind one IP (a NAT): both first, the latest in front.
  order.used(ip_of(1), 4);
  CHECK(order.order(ip_of(1)) == std::vector<uint32_t>{4, 3, 1, 0, 2});
  order.used(ip_of(1), 3);
  CHECK(order.order(ip_of(1)) == std::vector<uint32_t>{3, 4, 1, 0, 2});
  // IPv4 and its IPv4-mapped IPv6 form are one IP.
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
  CHECK(order.order(ss::trial_ip_v6(mapped)) == order.order(ip_of(1)));
  // find() stops at the first accepted user, and tries each user once.
  std::vector<uint32_t> tried;
  CHECK(order.find(ip_of(1), [&](uint32_t u) {
    tried.push_back(u);
    return u == 1;
  }) == 1);
  CHECK(tried == std::vector<uint32_t>{3, 4, 1});
  CHECK(order.find(ip_of(1), [](uint32_t) { return false; }) == -1);
}

TEST_CASE("key trial order: bounded users per IP and IPs remembered", "[crypto]") {
  KeyTrialOrder order(8, 2);
  for (uint32_t u = 0; u < 6; ++u) order.used(ip_of(1), u);
  // Only the last kPerIp users of IP 1 go first; the overall order follows.
  const auto o = order.order(ip_of(1));
  REQUIRE(o.size() == 8);
  CHECK(std::vector<uint32_t>(o.begin(), o.begin() + 4) == std::vector<uint32_t>{5, 4, 3, 2});
  order.used(ip_of(2), 7);
  CHECK(order.ips() == 2);
  order.used(ip_of(1), 0);  // IP 1 seen again: IP 2 is now the least recently seen
  order.used(ip_of(3), 6);  // a third IP: IP 2 is forgotten
  CHECK(order.ips() == 2);
  CHECK(order.order(ip_of(2)).front() == 6);  // overall order only
  CHECK(order.order(ip_of(1)).front() == 0);
  // An out-of-range user changes nothing.
  order.used(ip_of(1), 99);
  CHECK(order.order(ip_of(1)).front() == 0);
}

TEST_CASE("classic users over TCP: each user's client is told apart and answered with its key",
          "[crypto]") {
  for (const char* name :
       {"aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305"}) {
    INFO(name);
    const ss::CipherSpec& spec = ss::test::cipher(name);
    auto replay = std::make_shared<ss::ReplayFilter>(1000, 1e-9);
    auto server = ss::make_classic_users_suite(spec, users_for(spec, 5), replay);
    auto state = server->server_state();
    REQUIRE(state);
    const Bytes pt = ss::test::bytes_of("GET / HTTP/1.0\r\n\r\n");
    for (size_t i = 0; i < 5; ++i) {
      INFO("user " << i);
      auto client = ss::make_classic_suite(spec, users_for(spec, 5)[i].key);
      auto sealer = client->client_sealer();
      const Bytes flight = request(*sealer, pt);
      // Any split of the first flight: at once, byte by byte, in 7-byte pieces.
      for (size_t step : {size_t{0}, size_t{1}, size_t{7}}) {
        INFO("step " << step);
        auto fresh = ss::make_classic_users_suite(spec, users_for(spec, 5), nullptr);
        auto o = fresh->server_opener_for(fresh->server_state(), ip_of(1));
        const Fed f = feed(*o, flight, step);
        CHECK(f.status != DecryptStatus::Error);
        CHECK(f.out.size() == 7 + pt.size());
        CHECK(o->user() == "user" + std::to_string(i));
      }
      auto opener = server->server_opener_for(state, ip_of(static_cast<uint8_t>(i)));
      const Fed f = feed(*opener, flight);
      REQUIRE(f.status == DecryptStatus::Ok);
      CHECK(Bytes(f.out.begin() + 7, f.out.end()) == pt);
      CHECK(opener->user() == "user" + std::to_string(i));
      CHECK(opener->authenticated());
      // The response is sealed with that user's key: the client opens it.
      auto answer = server->server_sealer(*opener);
      REQUIRE(answer);
      const Bytes reply_pt = ss::test::bytes_of("HTTP/1.0 200 OK\r\n\r\n");
      Bytes reply(answer->max_sealed_size(reply_pt.size()));
      reply.resize(answer->seal(reply_pt.data(), reply_pt.size(), reply.data()));
      auto back = client->client_opener(*sealer);
      const Fed r = feed(*back, reply);
      CHECK(r.status == DecryptStatus::Ok);
      CHECK(r.out == reply_pt);
      // The same first flight again: a replay.
      auto again = server->server_opener_for(state, ip_of(1));
      const Fed g = feed(*again, flight);
      CHECK(g.status == DecryptStatus::Error);
      CHECK(again->failure() == "replayed salt");
    }
  }
}

TEST_CASE("classic users over TCP: a stranger gets an Error and its salt is not recorded",
          "[crypto]") {
  const ss::CipherSpec& spec = ss::test::cipher("aes-256-gcm");
  auto replay = std::make_shared<ss::ReplayFilter>(1000, 1e-9);
  auto server = ss::make_classic_users_suite(spec, users_for(spec, 3), replay);
  auto state = server->server_state();
  auto stranger = ss::make_classic_suite(spec, ss::derive_master_key("not a user", spec.key_len));
  auto sealer = stranger->client_sealer();
  const Bytes flight = request(*sealer, ss::test::bytes_of("hello"));
  auto o = server->server_opener_for(state, ip_of(1));
  // Short of salt + length + tag: nothing decided yet.
  const Fed head = feed(*o, Bytes(flight.begin(), flight.begin() + 40));
  CHECK(head.status == DecryptStatus::NeedMore);
  CHECK(o->buffered() == 40);
  const Fed f = feed(*o, Bytes(flight.begin() + 40, flight.end()));
  CHECK(f.status == DecryptStatus::Error);
  CHECK(f.out.empty());
  CHECK(o->user().empty());
  CHECK_FALSE(o->authenticated());
  CHECK(o->failure() == "no user's key opens the first chunk");
  CHECK(server->server_sealer(*o) == nullptr);
  // Its salt never reached the filter: it is new to it now.
  CHECK_FALSE(replay->check_and_insert(std::span<const uint8_t>(flight.data(), spec.salt_len)));
}

TEST_CASE("classic users over UDP: trial on the first packet, then the association's key",
          "[crypto]") {
  const ss::CipherSpec& spec = ss::test::cipher("chacha20-ietf-poly1305");
  auto users = users_for(spec, 4);
  auto server = ss::make_classic_users_udp_suite(spec, users);
  auto opener = server->server_opener();
  const Bytes addr = {0x01, 127, 0, 0, 1, 0, 53};
  auto seal = [&](ss::UdpClientSession& c, const Bytes& payload) {
    Bytes out(addr.size() + payload.size() + 64);
    out.resize(c.seal(addr, payload, out));
    return out;
  };
  auto open = [&](const Bytes& packet, ss::UdpServerSession* session,
                  std::unique_ptr<ss::UdpServerSession>& created, ss::UdpPacket& result) {
    static Bytes scratch(65536);
    opener->set_sender(ip_of(1));
    ss::UdpSessionId id;
    ss::UdpStatus st = opener->open_header(packet, scratch, id);
    CHECK(id.by_address);
    if (!st.ok()) return st;
    return opener->open_body(session, result, created);
  };
  // (A client session uses its suite's key: the suites stay alive.)
  auto client_suite = ss::make_classic_udp_suite(spec, users[2].key);
  auto client = client_suite->client_session();
  std::unique_ptr<ss::UdpServerSession> session;
  ss::UdpPacket result;
  REQUIRE(open(seal(*client, ss::test::bytes_of("query")), nullptr, session, result).ok());
  REQUIRE(session);
  CHECK(session->user() == "user2");
  CHECK(Bytes(result.payload.begin(), result.payload.end()) == ss::test::bytes_of("query"));
  // The response, sealed with user 2's key, opens at the client.
  Bytes reply(256);
  reply.resize(session->seal(addr, ss::test::bytes_of("answer"), reply));
  Bytes back(256);
  ss::UdpPacket got;
  REQUIRE(client->open(reply, back, got).ok());
  CHECK(Bytes(got.payload.begin(), got.payload.end()) == ss::test::bytes_of("answer"));
  // Later packets of the association open with its key; another user's packet on it does not.
  std::unique_ptr<ss::UdpServerSession> none;
  CHECK(open(seal(*client, ss::test::bytes_of("more")), session.get(), none, result).ok());
  CHECK_FALSE(none);
  auto other_suite = ss::make_classic_udp_suite(spec, users[1].key);
  auto other = other_suite->client_session();
  CHECK(open(seal(*other, ss::test::bytes_of("x")), session.get(), none, result).drop ==
        ss::UdpDrop::Auth);
  // A stranger's first packet: dropped, no association.
  auto stranger_suite =
      ss::make_classic_udp_suite(spec, ss::derive_master_key("nobody", spec.key_len));
  auto stranger = stranger_suite->client_session();
  CHECK(open(seal(*stranger, ss::test::bytes_of("x")), nullptr, none, result).drop ==
        ss::UdpDrop::Auth);
  CHECK_FALSE(none);
}

TEST_CASE("key trial's subkey derivation and one-shot open equal hkdf_sha1 and Aead::open",
          "[crypto]") {
  for (const char* name : {"aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "chacha20-ietf-poly1305",
                           "xchacha20-ietf-poly1305"}) {
    INFO(name);
    const ss::CipherSpec& spec = ss::test::cipher(name);
    Bytes salt(spec.salt_len);
    ss::random_bytes(salt);
    const ss::SubkeyDeriver derive(salt);
    ss::Aead scratch(spec);
    for (int i = 0; i < 3; ++i) {
      const Bytes master = ss::derive_master_key("pw" + std::to_string(i), spec.key_len);
      Bytes expected(spec.key_len), got(spec.key_len);
      REQUIRE(ss::hkdf_sha1(master, salt, "ss-subkey", expected));
      derive.derive(master, got);
      CHECK(got == expected);
      // A message sealed under that subkey opens once, and not under another key.
      ss::Aead a(spec);
      REQUIRE(a.set_key(expected));
      const Bytes nonce(spec.nonce_len, 0);
      const Bytes pt = {0x12, 0x34};
      Bytes ct(pt.size() + spec.tag_len);
      REQUIRE(a.seal(nonce.data(), pt.data(), pt.size(), ct.data()));
      Bytes out(pt.size());
      CHECK(ss::aead_open_once(scratch, got, nonce.data(), ct.data(), ct.size(), out.data()));
      CHECK(out == pt);
      got[0] ^= 1;
      CHECK_FALSE(ss::aead_open_once(scratch, got, nonce.data(), ct.data(), ct.size(), out.data()));
    }
  }
}
