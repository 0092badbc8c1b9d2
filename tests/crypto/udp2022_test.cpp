// Shadowsocks 2022 UDP codec: the §6.4 (c)/(d)/(f) worked packets, packets built and taken apart
// with raw OpenSSL/libsodium/BLAKE3 calls, round trips for every method, SIP023 users, and the
// hostile inputs U1, U3, U4 (with the two-phase receive and the sliding window as a relay runs
// them), type/timestamp/padding/address validation, and no allocation per packet.

#include <openssl/evp.h>
#include <sodium.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/aead2022.h"
#include "crypto/kdf.h"
#include "crypto/sliding_window.h"
#include "crypto/udp2022.h"
#include "tests/crypto/alloc_counter.h"
#include "tests/crypto/test_util.h"

namespace {

using Bytes = std::vector<uint8_t>;
using ss::Udp2022Error;
using ss::test::from_hex;
using ss::test::to_hex;

constexpr int64_t kNow = 1700000000;  // §6.4: 00000000 6553f100
constexpr size_t kMaxDatagram = 65507;
constexpr uint64_t kSid = 0x0102030405060708;

const ss::Method2022& method(std::string_view name) {
  const ss::Method2022* m = ss::find_2022_method(name);
  if (m == nullptr) throw std::string("unknown method in test: ") + std::string(name);
  return *m;
}

constexpr std::string_view kAes128 = "2022-blake3-aes-128-gcm";
constexpr std::string_view kAes256 = "2022-blake3-aes-256-gcm";
constexpr std::string_view kChaCha = "2022-blake3-chacha20-poly1305";
constexpr std::string_view kMethods[] = {kAes128, kAes256, kChaCha};

Bytes seq(uint8_t first, size_t n) {
  Bytes v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(first + i);
  return v;
}

Bytes pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes be64(uint64_t v) {
  Bytes b(8);
  for (int i = 7; i >= 0; --i, v >>= 8) b[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
  return b;
}

Bytes be16(size_t v) {
  return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

Bytes str(std::string_view s) {
  return {s.begin(), s.end()};
}

const Bytes kAddrV4 = from_hex("017f00000114e9");                          // 127.0.0.1:5353
const Bytes kAddrV6 = from_hex("0420010db800000000000000000000000101bb");  // [2001:db8::1]:443
const Bytes kAddrDomain = cat({from_hex("030b"), str("example.com"), from_hex("0050")});
const Bytes kAddrDns = from_hex("01080808080035");  // 8.8.8.8:53

// §6.4 (d) nonce: bytes 40..57.
void nonce_40(std::span<uint8_t> out) {
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(0x40 + i);
}

// ---- raw primitives, independent of the codec

Bytes raw_ecb(const Bytes& key, const Bytes& block, bool encrypt) {
  const EVP_CIPHER* c = key.size() == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes out(16);
  int len = 0;
  REQUIRE(EVP_CipherInit_ex(ctx, c, nullptr, key.data(), nullptr, encrypt ? 1 : 0) == 1);
  REQUIRE(EVP_CIPHER_CTX_set_padding(ctx, 0) == 1);
  REQUIRE(EVP_CipherUpdate(ctx, out.data(), &len, block.data(), 16) == 1);
  REQUIRE(len == 16);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

Bytes raw_gcm_seal(const Bytes& key, const Bytes& nonce, const Bytes& pt) {
  const EVP_CIPHER* c = key.size() == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes out(pt.size() + 16);
  int len = 0;
  int fin = 0;
  REQUIRE(EVP_EncryptInit_ex(ctx, c, nullptr, nullptr, nullptr) == 1);
  REQUIRE(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1);
  REQUIRE(EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), nonce.data()) == 1);
  REQUIRE(EVP_EncryptUpdate(ctx, out.data(), &len, pt.data(), static_cast<int>(pt.size())) == 1);
  REQUIRE(EVP_EncryptFinal_ex(ctx, out.data() + len, &fin) == 1);
  REQUIRE(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out.data() + pt.size()) == 1);
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

std::optional<Bytes> raw_gcm_open(const Bytes& key, const Bytes& nonce, const uint8_t* ct,
                                  size_t n) {
  const EVP_CIPHER* c = key.size() == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes out(n - 16);
  int len = 0;
  int fin = 0;
  bool ok =
      EVP_DecryptInit_ex(ctx, c, nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx, nullptr, nullptr, key.data(), nonce.data()) == 1 &&
      EVP_DecryptUpdate(ctx, out.data(), &len, ct, static_cast<int>(n - 16)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, const_cast<uint8_t*>(ct + n - 16)) == 1 &&
      EVP_DecryptFinal_ex(ctx, out.data() + len, &fin) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return std::nullopt;
  return out;
}

Bytes raw_xchacha_seal(const Bytes& key, const Bytes& nonce, const Bytes& pt) {
  Bytes out(pt.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long len = 0;
  REQUIRE(crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &len, pt.data(), pt.size(),
                                                     nullptr, 0, nullptr, nonce.data(),
                                                     key.data()) == 0);
  return out;
}

std::optional<Bytes> raw_xchacha_open(const Bytes& key, const uint8_t* nonce, const uint8_t* ct,
                                      size_t n) {
  Bytes out(n - 16);
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &len, nullptr, ct, n, nullptr, 0,
                                                 nonce, key.data()) != 0) {
    return std::nullopt;
  }
  return out;
}

// BLAKE3 derive_key with the context spelled out here (not via session_subkey_2022).
Bytes raw_subkey(const Bytes& psk, uint64_t sid) {
  Bytes out(psk.size());
  ss::blake3_derive_key("shadowsocks 2022 session subkey", cat({psk, be64(sid)}), out);
  return out;
}

Bytes raw_hash16(const Bytes& key) {
  Bytes out(32);
  ss::blake3_hash(key, out);
  out.resize(16);
  return out;
}

Bytes xor16(const Bytes& a, const Bytes& b) {
  Bytes out(16);
  for (size_t i = 0; i < 16; ++i) out[i] = a[i] ^ b[i];
  return out;
}

Bytes request_body(int64_t ts, size_t padding, const Bytes& addr, const Bytes& payload) {
  return cat({Bytes{0x00}, be64(static_cast<uint64_t>(ts)), be16(padding), Bytes(padding, 0xAB),
              addr, payload});
}

Bytes response_body(int64_t ts, uint64_t csid, size_t padding, const Bytes& addr,
                    const Bytes& payload) {
  return cat({Bytes{0x01}, be64(static_cast<uint64_t>(ts)), be64(csid), be16(padding),
              Bytes(padding, 0xCD), addr, payload});
}

// A complete AES packet built by hand: ECB header with hdr_key, optional EIHs, GCM body keyed
// with subkey(body_psk, sid) and the nonce from header bytes 4..15.
Bytes raw_aes_packet(const Bytes& hdr_key, const Bytes& body_psk, uint64_t sid, uint64_t pid,
                     const Bytes& body, const Bytes& eih = {}) {
  const Bytes hdr = cat({be64(sid), be64(pid)});
  const Bytes nonce(hdr.begin() + 4, hdr.end());
  return cat(
      {raw_ecb(hdr_key, hdr, true), eih, raw_gcm_seal(raw_subkey(body_psk, sid), nonce, body)});
}

Bytes raw_chacha_packet(const Bytes& psk, const Bytes& nonce, uint64_t sid, uint64_t pid,
                        const Bytes& body) {
  return cat({nonce, raw_xchacha_seal(psk, nonce, cat({be64(sid), be64(pid), body}))});
}

// ---- codec wrappers

Bytes seal_request(ss::Udp2022Client& c, ss::Udp2022SessionKey& key, uint64_t sid, uint64_t pid,
                   const Bytes& addr, size_t padding, const Bytes& payload, int64_t now) {
  Bytes out(c.request_size(addr.size(), padding, payload.size()));
  const size_t n = c.seal_request(key, sid, pid, addr, padding, payload, now, out);
  REQUIRE(n == out.size());
  return out;
}

Bytes seal_response(ss::Udp2022Server& s, ss::Udp2022SessionKey& key, size_t user, uint64_t ssid,
                    uint64_t pid, uint64_t csid, const Bytes& addr, size_t padding,
                    const Bytes& payload, int64_t now) {
  Bytes out(s.response_size(addr.size(), padding, payload.size()));
  const size_t n = s.seal_response(key, user, ssid, pid, csid, addr, padding, payload, now, out);
  REQUIRE(n == out.size());
  return out;
}

// Both phases at once, no window (for tests that are not about replay).
struct Opened {
  ss::Udp2022Status status;
  ss::Udp2022Header header;
  ss::Udp2022Request request;
  ss::Udp2022Response response;
  Bytes out;
  Bytes payload() const {
    const auto& p = request.payload.empty() ? response.payload : request.payload;
    return {p.begin(), p.end()};
  }
  Bytes request_address() const { return {request.address.begin(), request.address.end()}; }
  Bytes response_address() const { return {response.address.begin(), response.address.end()}; }
};

std::unique_ptr<Opened> open_request(ss::Udp2022Server& s, ss::Udp2022SessionKey& key,
                                     const Bytes& packet, int64_t now) {
  auto o = std::make_unique<Opened>();
  o->out.resize(packet.size());
  o->status = s.open_request_header(packet, o->out, o->header);
  if (o->status.ok()) o->status = s.open_request_body(o->header, key, now, o->request);
  return o;
}

std::unique_ptr<Opened> open_request(ss::Udp2022Server& s, const Bytes& packet, int64_t now) {
  ss::Udp2022SessionKey key(s.method());
  return open_request(s, key, packet, now);
}

std::unique_ptr<Opened> open_response(ss::Udp2022Client& c, ss::Udp2022SessionKey& key,
                                      const Bytes& packet, int64_t now) {
  auto o = std::make_unique<Opened>();
  o->out.resize(packet.size());
  o->status = c.open_response_header(packet, o->out, o->header);
  if (o->status.ok()) o->status = c.open_response_body(o->header, key, now, o->response);
  return o;
}

std::unique_ptr<Opened> open_response(ss::Udp2022Client& c, const Bytes& packet, int64_t now) {
  ss::Udp2022SessionKey key(c.method());
  return open_response(c, key, packet, now);
}

// What the relay does on ss-server, in the documented order, with per-session state.
struct ServerSession {
  explicit ServerSession(const ss::Method2022& m) : key(m) {}
  size_t user = ss::kUdp2022NoUser;
  ss::SlidingWindow window;
  ss::Udp2022SessionKey key;
};

struct RelayModel {
  explicit RelayModel(ss::Udp2022Server& s) : server(s) {}
  ss::Udp2022Server& server;
  std::map<uint64_t, std::unique_ptr<ServerSession>> sessions;
  Bytes out = Bytes(kMaxDatagram);

  // "" if accepted, else the reason it was dropped.
  std::string receive(const Bytes& packet, int64_t now, ss::Udp2022Request* got = nullptr) {
    ss::Udp2022Header h;
    ss::Udp2022Status st = server.open_request_header(packet, out, h);  // 1
    if (!st.ok()) return st.message();
    auto it = sessions.find(h.session_id);
    std::unique_ptr<ServerSession> fresh;
    ServerSession* s = nullptr;
    if (it != sessions.end()) {
      s = it->second.get();
      if (s->user != h.user) return "session of another user";
    } else {
      fresh = std::make_unique<ServerSession>(server.method());
      fresh->user = h.user;
      s = fresh.get();
    }
    if (!s->window.check(h.packet_id)) return "replayed packet id";  // 2
    ss::Udp2022Request r;
    st = server.open_request_body(h, s->key, now, r);  // 3
    if (!st.ok()) return st.message();                 // a fresh session is discarded
    s->window.accept(h.packet_id);                     // 4
    if (fresh) sessions.emplace(h.session_id, std::move(fresh));
    if (got != nullptr) *got = r;
    return "";
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// §6.4 worked examples

TEST_CASE("§6.4(c) UDP request aes-128-gcm: exact packet and subkey and server open", "[crypto]") {
  const ss::Method2022& m = method(kAes128);
  const Bytes psk = seq(0x00, 16);
  const Bytes payload = str("hello");
  const std::string expected =
      "18ba69bb4661fee5a7cc9ec1a731e278"
      "0f887748f59fbaddc74035aa8ff890410dcc937ae67325c95a8618615dc83e25a079a65a63b2eb";

  CHECK(to_hex(raw_subkey(psk, kSid)) == "b8473b44792f673ee36a405dfa755cc4");
  CHECK(to_hex(request_body(kNow, 0, kAddrV4, payload)) ==
        "00000000006553f1000000017f00000114e968656c6c6f");

  ss::Udp2022Client client(m, std::vector<Bytes>{psk});
  REQUIRE(client.valid());
  ss::Udp2022SessionKey key(m);
  const Bytes packet = seal_request(client, key, kSid, 0, kAddrV4, 0, payload, kNow);
  CHECK(packet.size() == 55);
  CHECK(to_hex(packet) == expected);
  CHECK(key.keyed_for(psk, kSid));

  // The same bytes from raw primitives.
  CHECK(to_hex(raw_aes_packet(psk, psk, kSid, 0, request_body(kNow, 0, kAddrV4, payload))) ==
        expected);

  ss::Udp2022Server server(m, psk);
  REQUIRE(server.valid());
  const auto o = open_request(server, from_hex(expected), kNow);
  REQUIRE(o->status.ok());
  CHECK(o->request.session_id == kSid);
  CHECK(o->request.packet_id == 0);
  CHECK(o->request.timestamp == 1700000000u);
  CHECK(o->request.user == ss::kUdp2022NoUser);
  CHECK(o->request.user_name.empty());
  CHECK(o->request_address() == kAddrV4);
  CHECK(o->payload() == payload);
}

TEST_CASE("§6.4(d) UDP request chacha20-poly1305: exact packet and server open", "[crypto]") {
  const ss::Method2022& m = method(kChaCha);
  const Bytes psk = seq(0x00, 32);
  const Bytes payload = str("hello");
  const std::string expected =
      "404142434445464748494a4b4c4d4e4f5051525354555657"
      "d53b0674d5e67e1e8ff487beaf9c659292baadc4133c006b6a31fd447604239102106a0b39feeb755066be"
      "7ae3334734a9b8393834aa22";

  ss::Udp2022Client client(m, std::vector<Bytes>{psk});
  REQUIRE(client.valid());
  client.set_random_source(nonce_40);
  ss::Udp2022SessionKey key(m);
  const Bytes packet = seal_request(client, key, kSid, 0, kAddrV4, 0, payload, kNow);
  CHECK(packet.size() == 79);
  CHECK(to_hex(packet) == expected);
  CHECK(to_hex(raw_chacha_packet(psk, seq(0x40, 24), kSid, 0,
                                 request_body(kNow, 0, kAddrV4, payload))) == expected);

  ss::Udp2022Server server(m, psk);
  REQUIRE(server.valid());
  const auto o = open_request(server, from_hex(expected), kNow);
  REQUIRE(o->status.ok());
  CHECK(o->request.session_id == kSid);
  CHECK(o->request.packet_id == 0);
  CHECK(o->request.timestamp == 1700000000u);
  CHECK(o->request_address() == kAddrV4);
  CHECK(o->payload() == payload);
}

TEST_CASE("§6.4(f) UDP request with an identity header: exact packet and user lookup", "[crypto]") {
  const ss::Method2022& m = method(kAes128);
  const Bytes ipsk = seq(0xa0, 16);
  const Bytes upsk = seq(0xb0, 16);
  const Bytes payload = str("hello");
  const std::string expected =
      "4b606595983a2c933d2109e4c23245df"
      "efee03887611ce07d6e6a4214938b04e"
      "f39c4f20cc0395dcc558ae5b4810895560b30cd305461616bcbc629066ffbe5349b06f1558e63c";

  CHECK(to_hex(raw_hash16(upsk)) == "4cd2740678ca81d3d33b72a7cd437e92");
  CHECK(to_hex(raw_subkey(upsk, kSid)) == "c1f8271f98de8e8952158875ec51e31e");
  const Bytes plain_hdr = cat({be64(kSid), be64(0)});
  const Bytes eih = raw_ecb(ipsk, xor16(raw_hash16(upsk), plain_hdr), true);
  CHECK(to_hex(eih) == "efee03887611ce07d6e6a4214938b04e");
  CHECK(to_hex(raw_aes_packet(ipsk, upsk, kSid, 0, request_body(kNow, 0, kAddrV4, payload), eih)) ==
        expected);

  // Parsed the way a config gives it: "iPSK:uPSK".
  const ss::Psk2022 parsed =
      ss::parse_2022_password(m, "oKGio6SlpqeoqaqrrK2urw==:sLGys7S1tre4ubq7vL2+vw==");
  REQUIRE(parsed.error.empty());
  ss::Udp2022Client client(m, parsed.keys);
  REQUIRE(client.valid());
  CHECK(Bytes(client.user_key().begin(), client.user_key().end()) == upsk);
  ss::Udp2022SessionKey key(m);
  const Bytes packet = seal_request(client, key, kSid, 0, kAddrV4, 0, payload, kNow);
  CHECK(packet.size() == 71);
  CHECK(to_hex(packet) == expected);

  const std::vector<ss::Udp2022User> users = {
      {"alice", seq(0x10, 16)}, {"bob", upsk}, {"carol", seq(0x30, 16)}};
  ss::Udp2022Server server(m, ipsk, users);
  REQUIRE(server.valid());
  const auto o = open_request(server, from_hex(expected), kNow);
  REQUIRE(o->status.ok());
  CHECK(o->request.user == 1);
  CHECK(o->request.user_name == "bob");
  CHECK(o->request.session_id == kSid);
  CHECK(o->payload() == payload);
}

// ---------------------------------------------------------------------------------------------
// Independent construction

TEST_CASE("AES: hand-built requests open and our requests decode by hand", "[crypto]") {
  for (std::string_view name : {kAes128, kAes256}) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 1);
    ss::Udp2022Server server(m, psk);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    REQUIRE(server.valid());
    REQUIRE(client.valid());

    // Hand-built, with padding, a domain target, and a large packet ID.
    const uint64_t sid = 0xfedcba9876543210;
    const uint64_t pid = 0x0123456789abcdef;
    const Bytes payload = pattern(300, 2);
    const Bytes packet =
        raw_aes_packet(psk, psk, sid, pid, request_body(kNow + 7, 13, kAddrDomain, payload));
    const auto o = open_request(server, packet, kNow);
    REQUIRE(o->status.ok());
    CHECK(o->request.session_id == sid);
    CHECK(o->request.packet_id == pid);
    CHECK(o->request.timestamp == static_cast<uint64_t>(kNow + 7));
    CHECK(o->request_address() == kAddrDomain);
    CHECK(o->payload() == payload);

    // Ours, decoded with raw calls.
    ss::Udp2022SessionKey key(m);
    const Bytes ours = seal_request(client, key, sid, pid, kAddrV6, 21, payload, kNow);
    const Bytes hdr = raw_ecb(psk, Bytes(ours.begin(), ours.begin() + 16), false);
    CHECK(hdr == cat({be64(sid), be64(pid)}));
    const auto body = raw_gcm_open(raw_subkey(psk, sid), Bytes(hdr.begin() + 4, hdr.end()),
                                   ours.data() + 16, ours.size() - 16);
    REQUIRE(body.has_value());
    Bytes expect = request_body(kNow, 21, kAddrV6, payload);
    std::fill(expect.begin() + 11, expect.begin() + 11 + 21, 0);  // our padding is zeros
    CHECK(*body == expect);
  }
}

TEST_CASE("AES: our responses decode by hand and hand-built responses open", "[crypto]") {
  for (std::string_view name : {kAes128, kAes256}) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 3);
    ss::Udp2022Server server(m, psk);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    const uint64_t ssid = 0x1111222233334444;
    const Bytes payload = pattern(77, 4);

    ss::Udp2022SessionKey key(m);
    const Bytes ours =
        seal_response(server, key, ss::kUdp2022NoUser, ssid, 9, kSid, kAddrV4, 0, payload, kNow);
    const Bytes hdr = raw_ecb(psk, Bytes(ours.begin(), ours.begin() + 16), false);
    CHECK(hdr == cat({be64(ssid), be64(9)}));
    const auto body = raw_gcm_open(raw_subkey(psk, ssid), Bytes(hdr.begin() + 4, hdr.end()),
                                   ours.data() + 16, ours.size() - 16);
    REQUIRE(body.has_value());
    CHECK(*body == response_body(kNow, kSid, 0, kAddrV4, payload));

    const Bytes hand =
        raw_aes_packet(psk, psk, ssid, 10, response_body(kNow - 3, kSid, 5, kAddrV6, payload));
    const auto o = open_response(client, hand, kNow);
    REQUIRE(o->status.ok());
    CHECK(o->response.server_session_id == ssid);
    CHECK(o->response.packet_id == 10);
    CHECK(o->response.client_session_id == kSid);
    CHECK(o->response.timestamp == static_cast<uint64_t>(kNow - 3));
    CHECK(o->response_address() == kAddrV6);
    CHECK(o->payload() == payload);
  }
}

TEST_CASE("ChaCha: hand-built packets open and ours decode with libsodium", "[crypto]") {
  const ss::Method2022& m = method(kChaCha);
  const Bytes psk = pattern(32, 5);
  ss::Udp2022Server server(m, psk);
  ss::Udp2022Client client(m, std::vector<Bytes>{psk});
  const Bytes payload = pattern(1000, 6);
  const Bytes nonce = pattern(24, 7);

  const Bytes req =
      raw_chacha_packet(psk, nonce, kSid, 42, request_body(kNow, 3, kAddrDomain, payload));
  const auto o = open_request(server, req, kNow);
  REQUIRE(o->status.ok());
  CHECK(o->request.session_id == kSid);
  CHECK(o->request.packet_id == 42);
  CHECK(o->request_address() == kAddrDomain);
  CHECK(o->payload() == payload);

  const Bytes resp =
      raw_chacha_packet(psk, nonce, 0x77, 43, response_body(kNow, kSid, 0, kAddrV4, payload));
  const auto r = open_response(client, resp, kNow);
  REQUIRE(r->status.ok());
  CHECK(r->response.server_session_id == 0x77);
  CHECK(r->response.packet_id == 43);
  CHECK(r->response.client_session_id == kSid);
  CHECK(r->payload() == payload);

  ss::Udp2022SessionKey key(m);
  const Bytes ours = seal_request(client, key, kSid, 5, kAddrV4, 0, payload, kNow);
  const auto body = raw_xchacha_open(psk, ours.data(), ours.data() + 24, ours.size() - 24);
  REQUIRE(body.has_value());
  CHECK(*body == cat({be64(kSid), be64(5), request_body(kNow, 0, kAddrV4, payload)}));
  // Fresh random nonce per packet.
  const Bytes again = seal_request(client, key, kSid, 5, kAddrV4, 0, payload, kNow);
  CHECK_FALSE(std::equal(ours.begin(), ours.begin() + 24, again.begin()));

  const Bytes ours_resp =
      seal_response(server, key, ss::kUdp2022NoUser, 0x99, 1, kSid, kAddrV6, 0, payload, kNow);
  const auto rbody =
      raw_xchacha_open(psk, ours_resp.data(), ours_resp.data() + 24, ours_resp.size() - 24);
  REQUIRE(rbody.has_value());
  CHECK(*rbody == cat({be64(0x99), be64(1), response_body(kNow, kSid, 0, kAddrV6, payload)}));
}

TEST_CASE("EIH: a two-layer client packet decodes by hand", "[crypto]") {
  const ss::Method2022& m = method(kAes256);
  const Bytes i1 = pattern(32, 11), i2 = pattern(32, 12), u = pattern(32, 13);
  ss::Udp2022Client client(m, std::vector<Bytes>{i1, i2, u});
  REQUIRE(client.valid());
  ss::Udp2022SessionKey key(m);
  const Bytes payload = str("layered");
  const Bytes p = seal_request(client, key, kSid, 3, kAddrV4, 0, payload, kNow);
  REQUIRE(p.size() == 16 + 16 + 16 + 11 + 7 + payload.size() + 16);
  const Bytes hdr = cat({be64(kSid), be64(3)});
  CHECK(raw_ecb(i1, Bytes(p.begin(), p.begin() + 16), false) == hdr);
  CHECK(Bytes(p.begin() + 16, p.begin() + 32) == raw_ecb(i1, xor16(raw_hash16(i2), hdr), true));
  CHECK(Bytes(p.begin() + 32, p.begin() + 48) == raw_ecb(i2, xor16(raw_hash16(u), hdr), true));
  const auto body = raw_gcm_open(raw_subkey(u, kSid), Bytes(hdr.begin() + 4, hdr.end()),
                                 p.data() + 48, p.size() - 48);
  REQUIRE(body.has_value());
  CHECK(*body == request_body(kNow, 0, kAddrV4, payload));

  // The first layer, as a relay holding i1 would see it: the "user" named is i2's hash.
  ss::Udp2022Server first(m, i1, std::vector<ss::Udp2022User>{{"next-hop", i2}});
  ss::Udp2022Header h;
  Bytes out(p.size());
  REQUIRE(first.open_request_header(p, out, h).ok());
  CHECK(h.user == 0);
  CHECK(h.session_id == kSid);
  CHECK(h.packet_id == 3);
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST_CASE("Round trips: every method with padding and address types and payload sizes",
          "[crypto]") {
  for (std::string_view name : kMethods) {
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 20);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    REQUIRE(client.valid());
    REQUIRE(server.valid());
    ss::Udp2022SessionKey c_send(m), c_recv(m), s_recv(m), s_send(m);
    uint64_t pid = 0;
    for (size_t padding : {size_t{0}, size_t{1}, size_t{900}}) {
      for (const Bytes* addr : {&kAddrV4, &kAddrV6, &kAddrDomain}) {
        for (size_t n : {size_t{0}, size_t{1}, size_t{1400}, size_t{8000}}) {
          INFO(name << " padding " << padding << " addr " << to_hex(*addr) << " payload " << n);
          const Bytes payload = pattern(n, static_cast<uint32_t>(n + padding));
          const Bytes req = seal_request(client, c_send, kSid, pid, *addr, padding, payload, kNow);
          CHECK(req.size() == client.request_size(addr->size(), padding, n));
          const auto o = open_request(server, s_recv, req, kNow);
          REQUIRE(o->status.ok());
          CHECK(o->request.session_id == kSid);
          CHECK(o->request.packet_id == pid);
          CHECK(o->request_address() == *addr);
          CHECK(o->payload() == payload);

          const uint64_t ssid = 0xabcdef0011223344;
          const Bytes resp = seal_response(server, s_send, ss::kUdp2022NoUser, ssid, pid, kSid,
                                           *addr, padding, payload, kNow);
          const auto r = open_response(client, c_recv, resp, kNow);
          REQUIRE(r->status.ok());
          CHECK(r->response.server_session_id == ssid);
          CHECK(r->response.packet_id == pid);
          CHECK(r->response.client_session_id == kSid);
          CHECK(r->response_address() == *addr);
          CHECK(r->payload() == payload);
          ++pid;
        }
      }
    }
    if (m.kind != ss::Kind2022::ChaCha20Poly1305) {
      CHECK(c_send.keyed_for(psk, kSid));  // derived once, still cached
      CHECK(s_recv.keyed_for(psk, kSid));
      CHECK_FALSE(s_recv.keyed_for(psk, kSid + 1));
    }
  }
}

TEST_CASE("Round trip: largest datagram and payload already in place", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 21);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    ss::Udp2022SessionKey key(m);
    const size_t max_payload = kMaxDatagram - client.request_size(kAddrV4.size(), 0, 0);
    const Bytes payload = pattern(max_payload, 22);
    const Bytes req = seal_request(client, key, kSid, 1, kAddrV4, 0, payload, kNow);
    CHECK(req.size() == kMaxDatagram);
    CHECK(open_request(server, req, kNow)->payload() == payload);

    // No-copy layout: the payload received straight into the output buffer.
    Bytes buf(client.request_size(kAddrDomain.size(), 4, 500));
    const size_t off = client.request_payload_offset(kAddrDomain.size(), 4);
    const Bytes small = pattern(500, 23);
    std::copy(small.begin(), small.end(), buf.begin() + static_cast<long>(off));
    REQUIRE(client.seal_request(key, kSid, 2, kAddrDomain, 4, {buf.data() + off, 500}, kNow, buf) ==
            buf.size());
    const auto o = open_request(server, buf, kNow);
    REQUIRE(o->status.ok());
    CHECK(o->payload() == small);

    // Output too small: nothing sealed.
    Bytes tiny(client.request_size(kAddrV4.size(), 0, 10) - 1);
    CHECK(client.seal_request(key, kSid, 3, kAddrV4, 0, pattern(10, 1), kNow, tiny) == 0);
  }
}

TEST_CASE("Padding policy", "[crypto]") {
  CHECK(ss::udp2022_padding(ss::Udp2022Padding::None, kAddrDns, 10) == 0);
  CHECK(ss::udp2022_padding(ss::Udp2022Padding::Dns, kAddrV4, 10) == 0);
  CHECK(ss::udp2022_padding(ss::Udp2022Padding::Dns, kAddrDns, 900) == 0);
  CHECK(ss::udp2022_padding(ss::Udp2022Padding::Always, kAddrV4, 1400) == 0);
  for (int i = 0; i < 200; ++i) {
    const size_t d = ss::udp2022_padding(ss::Udp2022Padding::Dns, kAddrDns, 100);
    CHECK(d >= 1);
    CHECK(d <= 800);
    const size_t a = ss::udp2022_padding(ss::Udp2022Padding::Always, kAddrV6, 899);
    CHECK(a == 1);
  }
}

TEST_CASE("SIP023: three users round trip and an unknown user is rejected", "[crypto]") {
  for (std::string_view name : {kAes128, kAes256}) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes ipsk = pattern(m.key_len, 30);
    const std::vector<ss::Udp2022User> users = {{"alice", pattern(m.key_len, 31)},
                                                {"bob", pattern(m.key_len, 32)},
                                                {"carol", pattern(m.key_len, 33)}};
    ss::Udp2022Server server(m, ipsk, users);
    REQUIRE(server.valid());
    CHECK(server.user_count() == 3);
    for (size_t i = 0; i < users.size(); ++i) {
      INFO(users[i].name);
      ss::Udp2022Client client(m, std::vector<Bytes>{ipsk, users[i].key});
      REQUIRE(client.valid());
      ss::Udp2022SessionKey c_send(m), c_recv(m), s_recv(m), s_send(m);
      const uint64_t sid = 1000 + i;
      const Bytes payload = pattern(64 + i, static_cast<uint32_t>(i));
      const Bytes req = seal_request(client, c_send, sid, 0, kAddrDomain, 0, payload, kNow);
      const auto o = open_request(server, s_recv, req, kNow);
      REQUIRE(o->status.ok());
      CHECK(o->request.user == i);
      CHECK(o->request.user_name == users[i].name);
      CHECK(o->payload() == payload);
      CHECK(Bytes(server.body_key(i).begin(), server.body_key(i).end()) == users[i].key);

      // The response: no EIH, header and body under the user's PSK.
      const Bytes resp =
          seal_response(server, s_send, o->request.user, 77, 0, sid, kAddrV4, 0, payload, kNow);
      CHECK(resp.size() == 16 + 19 + 7 + payload.size() + 16);
      CHECK(raw_ecb(users[i].key, Bytes(resp.begin(), resp.begin() + 16), false) ==
            cat({be64(77), be64(0)}));
      const auto r = open_response(client, c_recv, resp, kNow);
      REQUIRE(r->status.ok());
      CHECK(r->response.client_session_id == sid);
      CHECK(r->payload() == payload);
      // Another user's response key does not open it.
      ss::Udp2022Client other(m, std::vector<Bytes>{ipsk, users[(i + 1) % 3].key});
      CHECK(open_response(other, resp, kNow)->status.error == Udp2022Error::BadTag);
    }

    const Bytes payload = str("who am i");
    ss::Udp2022SessionKey k(m);
    // Unknown user.
    ss::Udp2022Client dave(m, std::vector<Bytes>{ipsk, pattern(m.key_len, 34)});
    const auto d =
        open_request(server, seal_request(dave, k, 5, 0, kAddrV4, 0, payload, kNow), kNow);
    CHECK(d->status.error == Udp2022Error::UnknownUser);
    CHECK(d->status.message() == "unknown user");
    // Wrong iPSK with a known uPSK.
    ss::Udp2022Client wrong(m, std::vector<Bytes>{pattern(m.key_len, 35), users[0].key});
    CHECK(open_request(server, seal_request(wrong, k, 6, 0, kAddrV4, 0, payload, kNow), kNow)
              ->status.error == Udp2022Error::UnknownUser);
    // No identity header at all (a single-PSK client using the iPSK or a uPSK).
    for (const Bytes& key : {ipsk, users[1].key}) {
      ss::Udp2022Client plain(m, std::vector<Bytes>{key});
      CHECK_FALSE(
          open_request(server, seal_request(plain, k, 7, 0, kAddrV4, 0, payload, kNow), kNow)
              ->status.ok());
    }
    // Responses need a real user.
    Bytes out(1500);
    CHECK(server.seal_response(k, ss::kUdp2022NoUser, 1, 0, 1, kAddrV4, 0, payload, kNow, out) ==
          0);
    CHECK(server.seal_response(k, 3, 1, 0, 1, kAddrV4, 0, payload, kNow, out) == 0);
  }
}

TEST_CASE("users_only: no users means every request is refused, the iPSK alone too", "[crypto]") {
  const ss::Method2022& m = method(kAes128);
  const Bytes ipsk = pattern(m.key_len, 40);
  ss::Udp2022Server server(m, ipsk, {}, true);
  REQUIRE(server.valid());
  CHECK(server.user_count() == 0);
  const Bytes payload = str("anyone?");
  ss::Udp2022SessionKey k(m);
  // A single-PSK client with the iPSK (what a server without users_only would accept).
  ss::Udp2022Client plain(m, std::vector<Bytes>{ipsk});
  CHECK_FALSE(open_request(server, seal_request(plain, k, 1, 0, kAddrV4, 0, payload, kNow), kNow)
                  ->status.ok());
  ss::Udp2022Server single(m, ipsk);
  CHECK(open_request(single, seal_request(plain, k, 2, 0, kAddrV4, 0, payload, kNow), kNow)
            ->status.ok());
  // A client with an identity header names nobody.
  ss::Udp2022Client someone(m, std::vector<Bytes>{ipsk, pattern(m.key_len, 41)});
  CHECK(open_request(server, seal_request(someone, k, 3, 0, kAddrV4, 0, payload, kNow), kNow)
            ->status.error == Udp2022Error::UnknownUser);
  Bytes out(1500);
  CHECK(server.seal_response(k, ss::kUdp2022NoUser, 1, 0, 1, kAddrV4, 0, payload, kNow, out) == 0);
  // Identity headers need AES.
  CHECK_FALSE(ss::Udp2022Server(method(kChaCha), pattern(32, 42), {}, true).valid());
}

TEST_CASE("Construction rejects unusable keys", "[crypto]") {
  const ss::Method2022& aes = method(kAes128);
  const ss::Method2022& chacha = method(kChaCha);
  CHECK_FALSE(ss::Udp2022Client(aes, std::vector<Bytes>{}).valid());
  CHECK_FALSE(ss::Udp2022Client(aes, std::vector<Bytes>{Bytes(32)}).valid());
  CHECK_FALSE(ss::Udp2022Client(chacha, std::vector<Bytes>{Bytes(32), Bytes(32)}).valid());
  CHECK_FALSE(ss::Udp2022Server(aes, Bytes(15)).valid());
  const std::vector<ss::Udp2022User> dup = {{"a", Bytes(16, 1)}, {"b", Bytes(16, 1)}};
  ss::Udp2022Server d(aes, Bytes(16), dup);
  CHECK_FALSE(d.valid());
  CHECK(d.error().find("same key") != std::string::npos);
  ss::Udp2022Server c(chacha, Bytes(32), std::vector<ss::Udp2022User>{{"a", Bytes(32, 1)}});
  CHECK_FALSE(c.valid());
  ss::Udp2022Server s(aes, Bytes(16), std::vector<ss::Udp2022User>{{"short", Bytes(32, 1)}});
  CHECK_FALSE(s.valid());
  CHECK(s.error().find("short") != std::string::npos);

  // An invalid codec fails every call without crashing.
  ss::Udp2022Client bad(aes, std::vector<Bytes>{Bytes(3)});
  ss::Udp2022SessionKey key(aes);
  Bytes out(200);
  CHECK(bad.seal_request(key, 1, 1, kAddrV4, 0, {}, kNow, out) == 0);
  ss::Udp2022Header h;
  CHECK(bad.open_response_header(out, out, h).error == Udp2022Error::Crypto);
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs

TEST_CASE("U1: garbage of every awkward length is rejected", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 40);
    ss::Udp2022Server server(m, psk);
    const bool chacha = m.kind == ss::Kind2022::ChaCha20Poly1305;
    const std::vector<ss::Udp2022User> users =
        chacha ? std::vector<ss::Udp2022User>{}
               : std::vector<ss::Udp2022User>{{"u", pattern(m.key_len, 41)}};
    ss::Udp2022Server multi(m, psk, users);  // users: one identity header expected
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    const size_t hdr = chacha ? 24 : 16;
    std::vector<size_t> lengths = {
        0, 1, hdr - 1, hdr, hdr + 16 - 1, hdr + 16, hdr + 16 + 16 - 1, kMaxDatagram};
    for (size_t n = 0; n < 120; ++n) lengths.push_back(n);
    for (size_t n : lengths) {
      INFO("length " << n);
      for (uint32_t seed = 0; seed < 3; ++seed) {
        const Bytes junk = pattern(n, seed + static_cast<uint32_t>(n));
        const auto o = open_request(server, junk, kNow);
        REQUIRE_FALSE(o->status.ok());
        REQUIRE_FALSE(open_request(multi, junk, kNow)->status.ok());
        REQUIRE_FALSE(open_response(client, junk, kNow)->status.ok());
        RelayModel relay(server);
        REQUIRE_FALSE(relay.receive(junk, kNow).empty());
        REQUIRE(relay.sessions.empty());  // no session (NAT entry) for garbage
      }
    }
    Bytes none;
    CHECK(open_request(server, none, kNow)->status.message() == "too short");
    CHECK(open_request(server, Bytes(hdr + 16 + 10), kNow)->status.message() == "too short");
    CHECK(open_request(server, pattern(kMaxDatagram, 1), kNow)->status.message() == "bad tag");
  }
}

TEST_CASE("Any single flipped bit is rejected", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 42);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    ss::Udp2022SessionKey key(m), skey(m);
    const Bytes good = seal_request(client, key, kSid, 8, kAddrV4, 2, str("payload"), kNow);
    REQUIRE(open_request(server, skey, good, kNow)->status.ok());
    for (size_t i = 0; i < good.size(); ++i) {
      Bytes bad = good;
      bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
      REQUIRE_FALSE(open_request(server, skey, bad, kNow)->status.ok());
    }
  }
  // With users, the identity header bytes too.
  const ss::Method2022& m = method(kAes128);
  const Bytes ipsk = pattern(16, 43), upsk = pattern(16, 44);
  ss::Udp2022Client client(m, std::vector<Bytes>{ipsk, upsk});
  ss::Udp2022Server server(m, ipsk, std::vector<ss::Udp2022User>{{"u", upsk}});
  ss::Udp2022SessionKey key(m);
  const Bytes good = seal_request(client, key, kSid, 8, kAddrV4, 0, str("x"), kNow);
  for (size_t i = 16; i < 32; ++i) {
    Bytes bad = good;
    bad[i] ^= 0x80;
    CHECK(open_request(server, bad, kNow)->status.error == Udp2022Error::UnknownUser);
  }
}

TEST_CASE("U3: replayed packet IDs and IDs older than the window are dropped", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 50);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    RelayModel relay(server);
    ss::Udp2022SessionKey key(m);
    std::vector<Bytes> sent;
    for (uint64_t pid = 0; pid < 5; ++pid) {
      sent.push_back(seal_request(client, key, kSid, pid, kAddrV4, 0, str("hi"), kNow));
      REQUIRE(relay.receive(sent.back(), kNow) == "");
    }
    CHECK(relay.sessions.size() == 1);
    for (const Bytes& p : sent) CHECK(relay.receive(p, kNow) == "replayed packet id");
    // A fresh packet with an old ID (new nonce for ChaCha, same bytes for AES): still a replay.
    CHECK(relay.receive(seal_request(client, key, kSid, 2, kAddrV4, 0, str("x"), kNow), kNow) ==
          "replayed packet id");

    // Jump ahead; an ID 8129 behind the newest is too old, 8128 behind is fine.
    const uint64_t top = 20000;
    REQUIRE(relay.receive(seal_request(client, key, kSid, top, kAddrV4, 0, {}, kNow), kNow) == "");
    CHECK(relay.receive(seal_request(client, key, kSid, top - ss::SlidingWindow::kWindowSize - 1,
                                     kAddrV4, 0, {}, kNow),
                        kNow) == "replayed packet id");
    CHECK(relay.receive(seal_request(client, key, kSid, top - ss::SlidingWindow::kWindowSize,
                                     kAddrV4, 0, {}, kNow),
                        kNow) == "");
    // Another session's window is separate.
    CHECK(relay.receive(seal_request(client, key, kSid + 1, 0, kAddrV4, 0, {}, kNow), kNow) == "");
    CHECK(relay.sessions.size() == 2);
  }
}

TEST_CASE("U4: an authentic packet with a bad timestamp does not move the window", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 60);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    RelayModel relay(server);
    ss::Udp2022SessionKey key(m);
    REQUIRE(relay.receive(seal_request(client, key, kSid, 0, kAddrV4, 0, {}, kNow), kNow) == "");

    const uint64_t n = 5000;  // far ahead: accepting it would slide the window
    const Bytes stale = seal_request(client, key, kSid, n, kAddrV4, 0, str("old"), kNow - 40);
    CHECK(relay.receive(stale, kNow) == "timestamp 40 s behind");
    const Bytes future = seal_request(client, key, kSid, n, kAddrV4, 0, str("new"), kNow + 31);
    CHECK(relay.receive(future, kNow) == "timestamp 31 s ahead");
    const Bytes bad_type = [&] {
      if (m.kind == ss::Kind2022::ChaCha20Poly1305) {
        return raw_chacha_packet(psk, pattern(24, 1), kSid, n,
                                 response_body(kNow, kSid, 0, kAddrV4, {}));
      }
      return raw_aes_packet(psk, psk, kSid, n, response_body(kNow, kSid, 0, kAddrV4, {}));
    }();
    CHECK(relay.receive(bad_type, kNow) == "wrong packet type");
    CHECK(relay.sessions.at(kSid)->window.last() == 0);
    CHECK(relay.sessions.at(kSid)->window.check(n));

    ss::Udp2022Request r;
    const Bytes good = seal_request(client, key, kSid, n, kAddrV4, 0, str("good"), kNow);
    REQUIRE(relay.receive(good, kNow, &r) == "");
    CHECK(r.packet_id == n);
    CHECK(relay.receive(good, kNow) == "replayed packet id");

    // Bad timestamps from a new session create no session.
    CHECK(relay.receive(seal_request(client, key, 999, 0, kAddrV4, 0, {}, kNow + 100), kNow) ==
          "timestamp 100 s ahead");
    CHECK(relay.sessions.count(999) == 0);
  }
}

TEST_CASE("Timestamps: ±29 and ±30 s accepted and ±31 s rejected in both directions", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 70);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    ss::Udp2022SessionKey key(m), skey(m);
    for (int64_t d : {-31, -30, -29, 0, 29, 30, 31, -1000000, 1000000}) {
      INFO("skew " << d);
      const bool ok = d >= -30 && d <= 30;
      const auto o =
          open_request(server, seal_request(client, key, kSid, 0, kAddrV4, 0, {}, kNow + d), kNow);
      CHECK(o->status.ok() == ok);
      const auto r = open_response(
          client,
          seal_response(server, skey, ss::kUdp2022NoUser, 1, 0, kSid, kAddrV4, 0, {}, kNow + d),
          kNow);
      CHECK(r->status.ok() == ok);
      if (!ok) {
        CHECK(o->status.error == Udp2022Error::Timestamp);
        CHECK(o->status.skew == d);
        CHECK(r->status.skew == d);
      }
    }
    // A timestamp that does not fit in int64 and a clock far from the packet: no overflow.
    const Bytes huge = m.kind == ss::Kind2022::ChaCha20Poly1305
                           ? raw_chacha_packet(psk, pattern(24, 2), kSid, 0,
                                               cat({Bytes{0}, be64(UINT64_MAX), be16(0), kAddrV4}))
                           : raw_aes_packet(psk, psk, kSid, 0,
                                            cat({Bytes{0}, be64(UINT64_MAX), be16(0), kAddrV4}));
    const auto h = open_request(server, huge, kNow);
    CHECK(h->status.error == Udp2022Error::Timestamp);
    CHECK(h->status.skew > 0);
    CHECK(open_request(server, seal_request(client, key, kSid, 0, kAddrV4, 0, {}, 0), INT64_MIN)
              ->status.error == Udp2022Error::Timestamp);
  }
  char buf[48];
  CHECK(ss::Udp2022Status{Udp2022Error::Timestamp, INT64_MIN}.describe(buf) ==
        "timestamp 9223372036854775808 s behind");
  CHECK(ss::Udp2022Status{Udp2022Error::BadTag, 0}.message() == "bad tag");
}

TEST_CASE("Type mismatch: requests are not responses and back", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 80);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    ss::Udp2022SessionKey key(m);
    const Bytes payload = pattern(40, 1);
    const Bytes req = seal_request(client, key, kSid, 0, kAddrV4, 0, payload, kNow);
    const Bytes resp =
        seal_response(server, key, ss::kUdp2022NoUser, kSid, 0, kSid, kAddrV4, 0, payload, kNow);
    CHECK(open_response(client, req, kNow)->status.error == Udp2022Error::WrongType);
    CHECK(open_request(server, resp, kNow)->status.error == Udp2022Error::WrongType);
    CHECK(open_request(server, resp, kNow)->status.message() == "wrong packet type");
  }
}

TEST_CASE("Malformed bodies: padding past the end and bad or cut address headers", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 90);
    ss::Udp2022Server server(m, psk);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    auto req = [&](const Bytes& body) {
      return m.kind == ss::Kind2022::ChaCha20Poly1305
                 ? raw_chacha_packet(psk, pattern(24, 3), kSid, 0, body)
                 : raw_aes_packet(psk, psk, kSid, 0, body);
    };
    auto resp = [&](const Bytes& body) {
      return m.kind == ss::Kind2022::ChaCha20Poly1305
                 ? raw_chacha_packet(psk, pattern(24, 3), 9, 0, body)
                 : raw_aes_packet(psk, psk, 9, 0, body);
    };
    const Bytes head = cat({Bytes{0}, be64(kNow)});
    // Padding length larger than what follows.
    CHECK(open_request(server, req(cat({head, be16(20), Bytes(19, 0)})), kNow)->status.error ==
          Udp2022Error::BadPadding);
    CHECK(open_request(server, req(cat({head, be16(0xFFFF), kAddrV4, Bytes(100)})), kNow)
              ->status.error == Udp2022Error::BadPadding);
    // Padding exactly filling the body: no room for an address.
    CHECK(open_request(server, req(cat({head, be16(20), Bytes(20, 0)})), kNow)->status.error ==
          Udp2022Error::BadAddress);
    // Address headers: unknown ATYP, empty domain, IPv4/IPv6/domain cut short.
    for (const Bytes& addr : {from_hex("057f00000114e9"), from_hex("0300"),
                              from_hex("0300"
                                       "0050"),
                              from_hex("017f000001"), Bytes(kAddrV6.begin(), kAddrV6.end() - 1),
                              from_hex("030b6578616d706c65")}) {
      INFO(to_hex(addr));
      CHECK(open_request(server, req(cat({head, be16(0), addr})), kNow)->status.error ==
            Udp2022Error::BadAddress);
    }
    // Well-formed with padding and payload accepted.
    const auto ok =
        open_request(server, req(cat({head, be16(3), Bytes(3, 9), kAddrV4, str("p")})), kNow);
    REQUIRE(ok->status.ok());
    CHECK(ok->payload() == str("p"));
    // The same checks on the response side.
    const Bytes rhead = cat({Bytes{1}, be64(kNow), be64(kSid)});
    CHECK(open_response(client, resp(cat({rhead, be16(50), Bytes(20, 0)})), kNow)->status.error ==
          Udp2022Error::BadPadding);
    CHECK(open_response(client, resp(cat({rhead, be16(0), from_hex("0600000000000000")})), kNow)
              ->status.error == Udp2022Error::BadAddress);
  }
}

TEST_CASE("Output buffers: too small is an error and never an overflow", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 100);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    ss::Udp2022SessionKey key(m);
    const Bytes req = seal_request(client, key, kSid, 0, kAddrV4, 0, pattern(100, 1), kNow);
    Bytes out(req.size() - 1);
    ss::Udp2022Header h;
    CHECK(server.open_request_header(req, out, h).error == Udp2022Error::OutputTooSmall);
    // Phase 2 without a successful phase 1 is refused.
    ss::Udp2022Request r;
    CHECK(server.open_request_body(ss::Udp2022Header{}, key, kNow, r).error ==
          Udp2022Error::Crypto);
    // A response header handed to the request side's phase 2 is refused too.
    const Bytes resp =
        seal_response(server, key, ss::kUdp2022NoUser, 1, 0, kSid, kAddrV4, 0, {}, kNow);
    Bytes rout(resp.size());
    REQUIRE(client.open_response_header(resp, rout, h).ok());
    CHECK(server.open_request_body(h, key, kNow, r).error == Udp2022Error::Crypto);
  }
}

TEST_CASE("No allocation per packet once sessions are keyed", "[crypto]") {
  for (std::string_view name : kMethods) {
    INFO(name);
    const ss::Method2022& m = method(name);
    const Bytes psk = pattern(m.key_len, 110);
    ss::Udp2022Client client(m, std::vector<Bytes>{psk});
    ss::Udp2022Server server(m, psk);
    ss::Udp2022SessionKey c_send(m), c_recv(m), s_recv(m), s_send(m);
    ss::SlidingWindow window;
    const Bytes payload = pattern(1400, 2);
    Bytes packet(2000), out(2000), reply(2000), rout(2000);
    ss::Udp2022Header h;
    ss::Udp2022Request req;
    ss::Udp2022Response resp;
    // One round trip keys every session (the first packet of a session derives its subkey).
    auto round = [&](uint64_t pid) {
      bool ok = true;
      const size_t n = client.seal_request(c_send, kSid, pid, kAddrV4, 0, payload, kNow, packet);
      ok = ok && n > 0 && server.open_request_header({packet.data(), n}, out, h).ok();
      ok = ok && window.check(h.packet_id) && server.open_request_body(h, s_recv, kNow, req).ok();
      if (ok) window.accept(h.packet_id);
      const size_t rn = server.seal_response(s_send, ss::kUdp2022NoUser, 5, pid, kSid, req.address,
                                             0, req.payload, kNow, reply);
      ok = ok && rn > 0 && client.open_response_header({reply.data(), rn}, rout, h).ok();
      ok = ok && client.open_response_body(h, c_recv, kNow, resp).ok();
      // Failures do not allocate either.
      packet[n - 1] ^= 1;
      ok = ok && !(server.open_request_header({packet.data(), n}, out, h).ok() &&
                   server.open_request_body(h, s_recv, kNow, req).ok());
      return ok;
    };
    REQUIRE(round(0));
    bool all_ok = true;
    const size_t before = ss::test::allocation_count();
    for (uint64_t pid = 1; pid < 100; ++pid) all_ok = round(pid) && all_ok;
    const size_t allocations = ss::test::allocation_count() - before;
    CHECK(all_ok);
    CHECK(allocations == 0);
  }
}
