// The packet-suite interface (crypto/udp_cipher.h) for every edition: a client session's request
// opens on the server in two steps, the server session's response opens on the client, replays
// are refused (2022: by every worker's opener, the windows being process-wide), and packets of
// one suite do not open with another's keys.

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "crypto/aead2022.h"
#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "crypto/udp_cipher.h"

namespace ss {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes random_key(size_t n) {
  Bytes k(n);
  random_bytes(k);
  return k;
}

std::shared_ptr<const UdpCipherSuite> client_2022(const Method2022& m, const Bytes& psk) {
  Udp2022Options o;
  o.method = &m;
  o.client_keys = {psk};
  return make_2022_udp_suite(std::move(o));
}

std::shared_ptr<const UdpCipherSuite> server_2022(const Method2022& m, const Bytes& psk) {
  Udp2022Options o;
  o.method = &m;
  o.server_psk = psk;
  return make_2022_udp_suite(std::move(o));
}

struct Pair {
  std::shared_ptr<const UdpCipherSuite> client;
  std::shared_ptr<const UdpCipherSuite> server;
  bool sessions;  // 2022: packets name a session and replays are refused
};

Pair make_pair(const std::string& name) {
  if (name == "none") return {make_none_udp_suite(), make_none_udp_suite(), false};
  if (const CipherSpec* spec = find_cipher(name)) {
    const Bytes key = random_key(spec->key_len);
    return {make_classic_udp_suite(*spec, key), make_classic_udp_suite(*spec, key), false};
  }
  const Method2022& m = *find_2022_method(name);
  const Bytes psk = random_key(m.key_len);
  return {client_2022(m, psk), server_2022(m, psk), true};
}

// A request: address header 127.0.0.1:53 + payload.
const Bytes kAddress = {1, 127, 0, 0, 1, 0, 53};

}  // namespace

TEST_CASE("UDP suites: request and response round trip through the interface", "[crypto]") {
  const std::string name = GENERATE(as<std::string>{}, "none", "aes-128-gcm",
                                    "chacha20-ietf-poly1305", "2022-blake3-aes-128-gcm",
                                    "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305");
  INFO(name);
  Pair p = make_pair(name);
  REQUIRE(p.client);
  REQUIRE(p.server);
  auto client = p.client->client_session();
  auto opener = p.server->server_opener();
  const Bytes payload = random_key(1200);
  Bytes wire(70000), open(70000), sealed(70000), back(70000);

  const size_t n = client->seal(kAddress, payload, wire);
  REQUIRE(n > 0);
  CHECK(n <= kAddress.size() + payload.size() + p.client->max_overhead());
  UdpSessionId id;
  REQUIRE(opener->open_header({wire.data(), n}, open, id).ok());
  CHECK(id.by_address == !p.sessions);
  UdpPacket req;
  std::unique_ptr<UdpServerSession> session;
  REQUIRE(opener->open_body(nullptr, req, session).ok());
  REQUIRE(session);
  CHECK(Bytes(req.address.begin(), req.address.end()) == kAddress);
  CHECK(Bytes(req.payload.begin(), req.payload.end()) == payload);

  const Bytes reply = random_key(300);
  const size_t m = session->seal(kAddress, reply, sealed);
  REQUIRE(m > 0);
  UdpPacket resp;
  REQUIRE(client->open({sealed.data(), m}, back, resp).ok());
  CHECK(Bytes(resp.address.begin(), resp.address.end()) == kAddress);
  CHECK(Bytes(resp.payload.begin(), resp.payload.end()) == reply);

  // A flipped bit: refused (not for "none", which authenticates nothing).
  if (name != "none") {
    wire[n / 2] ^= 0x01;
    UdpSessionId id2;
    UdpStatus st = opener->open_header({wire.data(), n}, open, id2);
    if (st.ok()) {
      UdpPacket r2;
      std::unique_ptr<UdpServerSession> s2;
      st = opener->open_body(session.get(), r2, s2);
    }
    CHECK_FALSE(st.ok());
  }
}

TEST_CASE("UDP suites: a 2022 replay is refused by another worker's opener too", "[crypto]") {
  const std::string name =
      GENERATE(as<std::string>{}, "2022-blake3-aes-128-gcm", "2022-blake3-chacha20-poly1305");
  INFO(name);
  Pair p = make_pair(name);
  auto client = p.client->client_session();
  auto worker1 = p.server->server_opener();
  auto worker2 = p.server->server_opener();
  const Bytes payload = {1, 2, 3};
  Bytes wire(2048), open(2048);
  const size_t n = client->seal(kAddress, payload, wire);
  REQUIRE(n > 0);

  UdpSessionId id;
  UdpPacket req;
  std::unique_ptr<UdpServerSession> s1;
  REQUIRE(worker1->open_header({wire.data(), n}, open, id).ok());
  REQUIRE(worker1->open_body(nullptr, req, s1).ok());
  // The same packet again, on the same worker (known session) and on another (new to it).
  std::unique_ptr<UdpServerSession> none;
  REQUIRE(worker1->open_header({wire.data(), n}, open, id).ok());
  CHECK(worker1->open_body(s1.get(), req, none).drop == UdpDrop::Replay);
  REQUIRE(worker2->open_header({wire.data(), n}, open, id).ok());
  CHECK(worker2->open_body(nullptr, req, none).drop == UdpDrop::Replay);
  CHECK_FALSE(none);
  // The next packet of the session is fine on the other worker, which then has the session.
  const size_t n2 = client->seal(kAddress, payload, wire);
  REQUIRE(worker2->open_header({wire.data(), n2}, open, id).ok());
  std::unique_ptr<UdpServerSession> s2;
  CHECK(worker2->open_body(nullptr, req, s2).ok());
  CHECK(s2);
}

TEST_CASE("UDP suites: another key does not open, and keys that do not suit fail", "[crypto]") {
  const Method2022& m = *find_2022_method("2022-blake3-aes-128-gcm");
  auto client = client_2022(m, random_key(16))->client_session();
  auto opener = server_2022(m, random_key(16))->server_opener();
  Bytes wire(2048), open(2048);
  const size_t n = client->seal(kAddress, Bytes{9}, wire);
  UdpSessionId id;
  UdpStatus st = opener->open_header({wire.data(), n}, open, id);
  if (st.ok()) {
    UdpPacket req;
    std::unique_ptr<UdpServerSession> s;
    st = opener->open_body(nullptr, req, s);
  }
  CHECK(st.drop == UdpDrop::Auth);

  std::string error;
  Udp2022Options bad;
  bad.method = &m;
  bad.server_psk = random_key(32);
  CHECK_FALSE(make_2022_udp_suite(std::move(bad), &error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("UDP suites: a client's own request sent back as the reply is dropped", "[crypto]") {
  const std::string name =
      GENERATE(as<std::string>{}, "aes-128-gcm", "aes-192-gcm", "aes-256-gcm",
               "chacha20-ietf-poly1305", "xchacha20-ietf-poly1305", "2022-blake3-aes-128-gcm",
               "2022-blake3-aes-256-gcm", "2022-blake3-chacha20-poly1305");
  INFO(name);
  Pair p = make_pair(name);
  auto client = p.client->client_session();
  Bytes wire(2000), back(2000), first(2000);
  const Bytes payload = random_key(100);
  const size_t n0 = client->seal(kAddress, payload, first);
  REQUIRE(n0 > 0);
  // The first request, sent back after 63 more (the last 64 are remembered).
  for (int i = 0; i < 62; ++i) REQUIRE(client->seal(kAddress, payload, wire) > 0);
  const size_t n = client->seal(kAddress, payload, wire);
  UdpPacket r;
  CHECK_FALSE(client->open({wire.data(), n}, back, r).ok());
  CHECK_FALSE(client->open({first.data(), n0}, back, r).ok());
  // A genuine reply still opens.
  auto opener = p.server->server_opener();
  UdpSessionId id;
  Bytes open(2000), sealed(2000);
  REQUIRE(opener->open_header({wire.data(), n}, open, id).ok());
  UdpPacket req;
  std::unique_ptr<UdpServerSession> session;
  REQUIRE(opener->open_body(nullptr, req, session).ok());
  const size_t m = session->seal(kAddress, payload, sealed);
  CHECK(client->open({sealed.data(), m}, back, r).ok());
}

}  // namespace ss
