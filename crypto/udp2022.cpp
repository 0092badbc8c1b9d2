// Shadowsocks 2022 UDP packet codec (protocol.md §2.8, §2.9, §2.11). All integers big-endian;
// timestamps are Unix seconds; session IDs are 8 bytes, handled here as the u64 they read as.
//
// AES methods (2022-blake3-aes-128-gcm / -256-gcm), PSK of 16 / 32 bytes:
//   packet = AES-ECB(K_hdr, separate header)                                   16
//            [ EIH_1 .. EIH_n ]                          requests only, SIP023  16 each
//            AEAD(subkey, nonce, body) || tag                                   body + 16
//   separate header = session ID (8) || packet ID (8)
//   subkey = BLAKE3.derive_key("shadowsocks 2022 session subkey", PSK || session ID), key length
//   nonce  = bytes 4..15 of the plaintext separate header
//   K_hdr  = the PSK; for requests with identity headers, iPSK_1
//   EIH_i  = AES-ECB(iPSK_i, BLAKE3(next key)[0..16] XOR plaintext separate header), next key =
//            iPSK_(i+1), or the uPSK after the last iPSK; the body and the responses use the uPSK
//            (responses carry no EIH and their header is encrypted with the uPSK)
// ChaCha method (2022-blake3-chacha20-poly1305), 32-byte PSK, no separate header, no subkey:
//   packet = nonce (24, random) || XChaCha20-Poly1305(PSK, nonce, session ID || packet ID || body)
//            || tag
// Bodies (after the IDs for ChaCha):
//   client→server: type 0x00 (1) | timestamp (8) | padding length P (2) | padding (P) |
//                  target address (ATYP, address, port) | payload
//   server→client: type 0x01 (1) | timestamp (8) | client session ID (8) | padding length P (2) |
//                  padding (P) | source address (ATYP, address, port) | payload
// Validation on receipt: the tag, the type for the direction, |timestamp - now| <= 30 s, the
// padding inside the body, an address header of a known type that fits. The packet-ID window is
// the caller's (see udp2022.h for the order).
//
// Sealing writes the body in place in `out` and seals it there, then adds the identity headers
// and encrypts the separate header (the body needs the plaintext header for its nonce).

#include "crypto/udp2022.h"
#include "crypto/udp_cipher.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "crypto/kdf.h"

namespace ss {
namespace {

void put_be64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

uint64_t get_be64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

void put_be16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

size_t get_be16(const uint8_t* p) {
  return static_cast<size_t>(p[0]) << 8 | p[1];
}

}  // namespace

size_t udp_address_header_len(const uint8_t* p, size_t n) {
  if (n < 1) return 0;
  size_t len = 0;
  switch (p[0]) {
    case 1:
      len = 1 + 4 + 2;
      break;
    case 4:
      len = 1 + 16 + 2;
      break;
    case 3:
      if (n < 2 || p[1] == 0) return 0;
      len = 1 + 1 + size_t{p[1]} + 2;
      break;
    default:
      return 0;
  }
  return len <= n ? len : 0;
}

namespace {

Udp2022Status err(Udp2022Error e) {
  return Udp2022Status{e, 0};
}

// |ts - now| <= kMaxTimeDiff2022, with the difference saturated rather than overflowing.
Udp2022Status check_time(uint64_t ts, int64_t now) {
  int64_t skew = 0;
  if (ts > static_cast<uint64_t>(INT64_MAX)) {
    skew = INT64_MAX;
  } else if (__builtin_sub_overflow(static_cast<int64_t>(ts), now, &skew)) {
    skew = now < 0 ? INT64_MAX : INT64_MIN;
  }
  if (skew > kMaxTimeDiff2022 || skew < -kMaxTimeDiff2022) {
    return Udp2022Status{Udp2022Error::Timestamp, skew};
  }
  return {};
}

// Common tail of both bodies: padding length at p[0..2), then padding, address, payload.
Udp2022Status parse_tail(const uint8_t* p, size_t n, std::span<const uint8_t>& address,
                         std::span<const uint8_t>& payload) {
  const size_t pad = get_be16(p);
  if (2 + pad > n) return err(Udp2022Error::BadPadding);
  const uint8_t* a = p + 2 + pad;
  const size_t rest = n - 2 - pad;
  const size_t alen = udp_address_header_len(a, rest);
  if (alen == 0) return err(Udp2022Error::BadAddress);
  address = {a, alen};
  payload = {a + alen, rest - alen};
  return {};
}

Udp2022Status parse_request_body(const uint8_t* p, size_t n, int64_t now, Udp2022Request& r) {
  if (n < kUdp2022RequestFixedLen) return err(Udp2022Error::TooShort);
  if (p[0] != 0x00) return err(Udp2022Error::WrongType);
  r.timestamp = get_be64(p + 1);
  if (Udp2022Status st = check_time(r.timestamp, now); !st.ok()) return st;
  return parse_tail(p + 9, n - 9, r.address, r.payload);
}

Udp2022Status parse_response_body(const uint8_t* p, size_t n, int64_t now, Udp2022Response& r) {
  if (n < kUdp2022ResponseFixedLen) return err(Udp2022Error::TooShort);
  if (p[0] != 0x01) return err(Udp2022Error::WrongType);
  r.timestamp = get_be64(p + 1);
  if (Udp2022Status st = check_time(r.timestamp, now); !st.ok()) return st;
  r.client_session_id = get_be64(p + 9);
  return parse_tail(p + 17, n - 17, r.address, r.payload);
}

const EVP_CIPHER* ecb_cipher(size_t key_len) {
  if (key_len == 16) {
    static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
    return c;
  }
  if (key_len == 32) {
    static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "AES-256-ECB", nullptr);
    return c;
  }
  return nullptr;
}

const CipherSpec& xchacha_spec() {
  static const CipherSpec* const spec = find_cipher("xchacha20-ietf-poly1305");
  return *spec;
}

bool is_aes(const Method2022& m) {
  return m.kind != Kind2022::ChaCha20Poly1305;
}

// Bytes in front of the fixed body fields: separate header + identity headers, or nonce + IDs.
size_t body_prefix(const Method2022& m, size_t identity_headers) {
  return is_aes(m) ? kUdp2022HeaderLen + identity_headers * kUdp2022EihLen
                   : kUdp2022NonceLen + kUdp2022ChaChaIdsLen;
}

void wipe(std::vector<uint8_t>& v) {
  secure_zero(v);
}

// What differs between sealing a request and a response (see seal_packet()).
struct PacketSeal {
  const Method2022* method = nullptr;
  // Identity headers between the separate header and the body (AES requests only).
  size_t identities = 0;
  uint64_t session_id = 0;  // the sender's
  uint64_t packet_id = 0;
  uint8_t type = 0;                           // 0x00 request, 0x01 response
  std::optional<uint64_t> client_session_id;  // responses only
  // ChaCha: the AEAD keyed with the PSK, and the source of the nonce.
  Aead* xchacha = nullptr;
  Udp2022RandomFn random = nullptr;
  // AES: the PSK behind the session subkey; per identity header BLAKE3(next key)[0..16] and the
  // block that encrypts it; the block that encrypts the separate header.
  std::span<const uint8_t> body_psk;
  std::span<const std::array<uint8_t, kUdp2022EihLen>> eih_hashes;
  std::span<AesBlock> eih_enc;
  AesBlock* header_enc = nullptr;
};

// Lays out and seals one packet in `packet` (exactly the sealed size): the body in place
// (payload first, as it may already sit at its final place), then its seal; for AES the identity
// headers and the separate header after. Returns packet.size(), 0 if a library call failed.
size_t seal_packet(const PacketSeal& s, Udp2022SessionKey& key, std::span<const uint8_t> address,
                   size_t padding, std::span<const uint8_t> payload, int64_t now,
                   std::span<uint8_t> packet) {
  const size_t total = packet.size();
  uint8_t* const p = packet.data();
  const bool aes = is_aes(*s.method);
  const size_t body_off =
      aes ? kUdp2022HeaderLen + s.identities * kUdp2022EihLen : kUdp2022NonceLen;
  uint8_t* const body = p + body_off;
  uint8_t* const fixed = aes ? body : body + kUdp2022ChaChaIdsLen;
  const size_t fixed_len = s.client_session_id ? kUdp2022ResponseFixedLen : kUdp2022RequestFixedLen;
  const size_t payload_off = static_cast<size_t>(fixed - p) + fixed_len + padding + address.size();

  // The payload first: it may already sit at its final place, or elsewhere (then memmove).
  if (!payload.empty() && payload.data() != p + payload_off) {
    std::memmove(p + payload_off, payload.data(), payload.size());
  }
  fixed[0] = s.type;
  put_be64(fixed + 1, static_cast<uint64_t>(now));
  if (s.client_session_id) put_be64(fixed + 9, *s.client_session_id);
  put_be16(fixed + fixed_len - 2, padding);
  std::memset(fixed + fixed_len, 0, padding);
  if (!address.empty()) {
    std::memcpy(fixed + fixed_len + padding, address.data(), address.size());
  }
  const size_t body_len = total - body_off - kUdp2022TagLen;

  if (!aes) {
    put_be64(body, s.session_id);
    put_be64(body + 8, s.packet_id);
    s.random({p, kUdp2022NonceLen});
    return s.xchacha->seal(p, body, body_len, body) ? total : 0;
  }
  std::array<uint8_t, kUdp2022HeaderLen> hdr;
  put_be64(hdr.data(), s.session_id);
  put_be64(hdr.data() + 8, s.packet_id);
  Aead* aead = key.ensure(s.body_psk, s.session_id) ? key.aead() : nullptr;
  if (aead == nullptr || !aead->seal(hdr.data() + 4, body, body_len, body)) return 0;
  for (size_t i = 0; i < s.identities; ++i) {
    uint8_t block[kUdp2022EihLen];
    for (size_t j = 0; j < kUdp2022EihLen; ++j) block[j] = s.eih_hashes[i][j] ^ hdr[j];
    if (!s.eih_enc[i].apply(block, p + kUdp2022HeaderLen + i * kUdp2022EihLen)) return 0;
  }
  return s.header_enc->apply(hdr.data(), p) ? total : 0;
}

}  // namespace

// ---- Udp2022Status

std::string_view Udp2022Status::describe(std::span<char> buf) const {
  switch (error) {
    case Udp2022Error::None:
      return "ok";
    case Udp2022Error::TooShort:
      return "too short";
    case Udp2022Error::BadTag:
      return "bad tag";
    case Udp2022Error::UnknownUser:
      return "unknown user";
    case Udp2022Error::WrongType:
      return "wrong packet type";
    case Udp2022Error::BadPadding:
      return "padding exceeds the packet";
    case Udp2022Error::BadAddress:
      return "bad address header";
    case Udp2022Error::OutputTooSmall:
      return "output buffer too small";
    case Udp2022Error::Crypto:
      return "cipher unavailable";
    case Udp2022Error::Timestamp:
      break;
  }
  const uint64_t mag = skew < 0 ? 0 - static_cast<uint64_t>(skew) : static_cast<uint64_t>(skew);
  constexpr std::string_view kHead = "timestamp ";
  const std::string_view tail = skew < 0 ? " s behind" : " s ahead";
  if (buf.size() < kHead.size() + 20 + tail.size()) return "timestamp out of range";
  char* p = std::copy(kHead.begin(), kHead.end(), buf.data());
  p = std::to_chars(p, buf.data() + buf.size(), mag).ptr;
  p = std::copy(tail.begin(), tail.end(), p);
  return {buf.data(), static_cast<size_t>(p - buf.data())};
}

std::string Udp2022Status::message() const {
  char buf[48];
  return std::string(describe(buf));
}

// ---- AesBlock

AesBlock::AesBlock(std::span<const uint8_t> key, Dir dir) {
  const EVP_CIPHER* cipher = ecb_cipher(key.size());
  if (cipher == nullptr) return;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return;
  if (EVP_CipherInit_ex(ctx, cipher, nullptr, key.data(), nullptr, dir == Dir::Encrypt ? 1 : 0) !=
          1 ||
      EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return;
  }
  ctx_ = ctx;
}

AesBlock::~AesBlock() {
  EVP_CIPHER_CTX_free(ctx_);  // cleanses the key schedule
}

AesBlock::AesBlock(AesBlock&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

AesBlock& AesBlock::operator=(AesBlock&& other) noexcept {
  if (this != &other) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
  }
  return *this;
}

bool AesBlock::apply(const uint8_t* in, uint8_t* out) {
  if (ctx_ == nullptr) return false;
  // ECB without padding keeps no state between blocks: no re-initialisation per call.
  int len = 0;
  if (EVP_CipherUpdate(ctx_, out, &len, in, 16) != 1 || len != 16) {
    ERR_clear_error();
    return false;
  }
  return true;
}

// ---- Udp2022SessionKey

namespace {

// The thread's AES-GCM context per method, and which session key it was last keyed for.
struct ThreadAead {
  const CipherSpec* spec;
  Aead aead;
  uint64_t serial = 0;
};

std::atomic<uint64_t> next_key_serial{1};

}  // namespace

Udp2022SessionKey::Udp2022SessionKey(const Method2022& method) : method_(&method) {}

Udp2022SessionKey::~Udp2022SessionKey() {
  secure_zero(psk_);
  secure_zero(subkey_);
}

Udp2022SessionKey::Udp2022SessionKey(Udp2022SessionKey&& other) noexcept
    : method_(other.method_),
      psk_(other.psk_),
      subkey_(other.subkey_),
      session_id_(other.session_id_),
      serial_(other.serial_),
      keyed_(std::exchange(other.keyed_, false)) {
  secure_zero(other.psk_);
  secure_zero(other.subkey_);
}

Udp2022SessionKey& Udp2022SessionKey::operator=(Udp2022SessionKey&& other) noexcept {
  if (this != &other) {
    method_ = other.method_;
    psk_ = other.psk_;
    subkey_ = other.subkey_;
    session_id_ = other.session_id_;
    serial_ = other.serial_;
    keyed_ = std::exchange(other.keyed_, false);
    secure_zero(other.psk_);
    secure_zero(other.subkey_);
  }
  return *this;
}

bool Udp2022SessionKey::keyed_for(std::span<const uint8_t> psk, uint64_t session_id) const {
  if (psk.size() != method_->key_len) return false;
  if (!is_aes(*method_)) return true;  // ChaCha: nothing per session
  return keyed_ && session_id == session_id_ &&
         std::memcmp(psk.data(), psk_.data(), psk.size()) == 0;
}

bool Udp2022SessionKey::ensure(std::span<const uint8_t> psk, uint64_t session_id) {
  if (keyed_for(psk, session_id)) return true;
  keyed_ = false;
  if (!is_aes(*method_) || psk.size() != method_->key_len) return false;
  const size_t len = method_->key_len;
  uint8_t salt[8];
  put_be64(salt, session_id);
  session_subkey_2022(psk, salt, {subkey_.data(), len});
  std::memcpy(psk_.data(), psk.data(), len);
  session_id_ = session_id;
  serial_ = next_key_serial.fetch_add(1, std::memory_order_relaxed);
  keyed_ = true;
  return true;
}

Aead* Udp2022SessionKey::aead() {
  if (!keyed_) return nullptr;
  thread_local std::vector<std::unique_ptr<ThreadAead>> contexts;
  ThreadAead* t = nullptr;
  for (auto& c : contexts) {
    if (c->spec == method_->aead) t = c.get();
  }
  if (t == nullptr) {
    contexts.push_back(
        std::make_unique<ThreadAead>(ThreadAead{method_->aead, Aead(*method_->aead)}));
    t = contexts.back().get();
  }
  if (t->serial != serial_) {
    t->serial = 0;
    if (!t->aead.set_key({subkey_.data(), method_->key_len})) return nullptr;
    t->serial = serial_;
  }
  return &t->aead;
}

// ---- padding

size_t udp2022_padding(Udp2022Padding policy, std::span<const uint8_t> address,
                       size_t payload_len) {
  if (policy == Udp2022Padding::None) return 0;
  if (policy == Udp2022Padding::Dns) {
    if (address.size() < 2 || get_be16(address.data() + address.size() - 2) != 53) return 0;
  }
  if (payload_len >= kMaxPadding2022) return 0;
  uint8_t r[2];
  random_bytes(r);
  return 1 + get_be16(r) % (kMaxPadding2022 - payload_len);
}

// ---- Udp2022Header

Udp2022Status Udp2022Header::open(const Method2022& method, AesBlock& header_dec, Aead* xchacha,
                                  std::span<const uint8_t> packet, std::span<uint8_t> out,
                                  size_t prefix, size_t fixed_len) {
  const size_t n = packet.size();
  if (n < prefix + fixed_len + kUdp2022TagLen) return err(Udp2022Error::TooShort);
  if (out.size() < n) return err(Udp2022Error::OutputTooSmall);
  if (is_aes(method)) {
    if (!header_dec.apply(packet.data(), plain_.data())) return err(Udp2022Error::Crypto);
    session_id = get_be64(plain_.data());
    packet_id = get_be64(plain_.data() + 8);
    body_offset_ = prefix;
  } else {
    if (!xchacha->open(packet.data(), packet.data() + kUdp2022NonceLen, n - kUdp2022NonceLen,
                       out.data())) {
      return err(Udp2022Error::BadTag);
    }
    plain_len_ = n - kUdp2022NonceLen - kUdp2022TagLen;
    session_id = get_be64(out.data());
    packet_id = get_be64(out.data() + 8);
    opened_ = true;
  }
  packet_ = packet.data();
  packet_len_ = n;
  out_ = out.data();
  return {};
}

Udp2022Status Udp2022Header::open_body(Udp2022SessionKey& key, std::span<const uint8_t> psk,
                                       std::span<const uint8_t>& body) const {
  if (opened_) {
    body = {out_ + kUdp2022ChaChaIdsLen, plain_len_ - kUdp2022ChaChaIdsLen};
    return {};
  }
  Aead* aead = key.ensure(psk, session_id) ? key.aead() : nullptr;
  if (aead == nullptr) return err(Udp2022Error::Crypto);
  const size_t sealed = packet_len_ - body_offset_;
  if (!aead->open(plain_.data() + 4, packet_ + body_offset_, sealed, out_)) {
    return err(Udp2022Error::BadTag);
  }
  body = {out_, sealed - kUdp2022TagLen};
  return {};
}

// ---- Udp2022Client

Udp2022Client::Udp2022Client(const Method2022& method, std::span<const std::vector<uint8_t>> keys)
    : method_(&method), random_(&random_bytes) {
  if (keys.empty()) return;
  for (const std::vector<uint8_t>& k : keys) {
    if (k.size() != method.key_len) return;
  }
  keys_.assign(keys.begin(), keys.end());
  const size_t identities = keys.size() - 1;
  if (!is_aes(method)) {
    if (identities != 0) return;  // SIP023 is defined for the AES methods only
    xchacha_.emplace(xchacha_spec());
    if (!xchacha_->set_key(keys_[0])) return;
    valid_ = true;
    return;
  }
  header_enc_ = AesBlock(keys_.front(), AesBlock::Dir::Encrypt);
  header_dec_ = AesBlock(keys_.back(), AesBlock::Dir::Decrypt);
  if (!header_enc_.valid() || !header_dec_.valid()) return;
  eih_hashes_.resize(identities);
  eih_enc_.reserve(identities);
  for (size_t i = 0; i < identities; ++i) {
    eih_enc_.emplace_back(keys_[i], AesBlock::Dir::Encrypt);
    if (!eih_enc_.back().valid()) return;
    blake3_hash(keys_[i + 1], eih_hashes_[i]);
  }
  valid_ = true;
}

Udp2022Client::~Udp2022Client() {
  for (std::vector<uint8_t>& k : keys_) wipe(k);
  for (auto& h : eih_hashes_) secure_zero(h);
}

std::span<const uint8_t> Udp2022Client::user_key() const {
  if (keys_.empty()) return {};
  return keys_.back();
}

size_t Udp2022Client::request_payload_offset(size_t address_len, size_t padding) const {
  const size_t identities = keys_.empty() ? 0 : keys_.size() - 1;
  return body_prefix(*method_, identities) + kUdp2022RequestFixedLen + padding + address_len;
}

size_t Udp2022Client::request_size(size_t address_len, size_t padding, size_t payload_len) const {
  return request_payload_offset(address_len, padding) + payload_len + kUdp2022TagLen;
}

size_t Udp2022Client::seal_request(Udp2022SessionKey& key, uint64_t session_id, uint64_t packet_id,
                                   std::span<const uint8_t> address, size_t padding,
                                   std::span<const uint8_t> payload, int64_t now,
                                   std::span<uint8_t> out) {
  if (!valid_ || padding > 0xFFFF) return 0;
  const size_t total = request_size(address.size(), padding, payload.size());
  if (out.size() < total) return 0;
  PacketSeal s;
  s.method = method_;
  s.identities = keys_.size() - 1;
  s.session_id = session_id;
  s.packet_id = packet_id;
  s.type = 0x00;
  s.xchacha = xchacha_ ? &*xchacha_ : nullptr;
  s.random = random_;
  s.body_psk = keys_.back();
  s.eih_hashes = eih_hashes_;
  s.eih_enc = eih_enc_;
  s.header_enc = &header_enc_;
  return seal_packet(s, key, address, padding, payload, now, out.first(total));
}

Udp2022Status Udp2022Client::open_response_header(std::span<const uint8_t> packet,
                                                  std::span<uint8_t> out, Udp2022Header& h) {
  h = Udp2022Header{};
  if (!valid_) return err(Udp2022Error::Crypto);
  return h.open(*method_, header_dec_, xchacha_ ? &*xchacha_ : nullptr, packet, out,
                body_prefix(*method_, 0), kUdp2022ResponseFixedLen);
}

Udp2022Status Udp2022Client::open_response_body(const Udp2022Header& h, Udp2022SessionKey& key,
                                                int64_t now, Udp2022Response& r) {
  r = Udp2022Response{};
  if (!valid_ || h.packet_ == nullptr || h.request_) return err(Udp2022Error::Crypto);
  std::span<const uint8_t> body;
  if (Udp2022Status st = h.open_body(key, keys_.back(), body); !st.ok()) return st;
  r.server_session_id = h.session_id;
  r.packet_id = h.packet_id;
  return parse_response_body(body.data(), body.size(), now, r);
}

// ---- Udp2022Server

bool Udp2022Server::set_error(std::string msg) {
  error_ = std::move(msg);
  valid_ = false;
  return false;
}

Udp2022Server::Udp2022Server(const Method2022& method, std::span<const uint8_t> psk,
                             std::span<const Udp2022User> users, bool users_only)
    : method_(&method), multi_user_(!users.empty() || users_only), random_(&random_bytes) {
  const std::string size_hint =
      std::string(method.name) + " needs " + std::to_string(method.key_len) + "-byte keys";
  if (psk.size() != method.key_len) {
    set_error("PSK: " + size_hint);
    return;
  }
  if (multi_user_ && !is_aes(method)) {
    set_error("users (identity headers) need an AES method, not " + std::string(method.name));
    return;
  }
  psk_.assign(psk.begin(), psk.end());
  if (!is_aes(method)) {
    xchacha_.emplace(xchacha_spec());
    if (!xchacha_->set_key(psk_)) {
      set_error("XChaCha20-Poly1305 unavailable");
      return;
    }
    valid_ = true;
    return;
  }
  header_dec_ = AesBlock(psk_, AesBlock::Dir::Decrypt);
  if (!multi_user_) {
    header_enc_ = AesBlock(psk_, AesBlock::Dir::Encrypt);
  } else {
    eih_dec_ = AesBlock(psk_, AesBlock::Dir::Decrypt);
  }
  if (!header_dec_.valid() || (!multi_user_ ? !header_enc_.valid() : !eih_dec_.valid())) {
    set_error("AES-ECB unavailable");
    return;
  }
  users_.reserve(users.size());
  by_hash_.reserve(users.size());
  for (const Udp2022User& u : users) {
    if (u.key.size() != method.key_len) {
      set_error("user " + u.name + ": " + size_hint);
      return;
    }
    UserEntry& e = users_.emplace_back();
    e.name = u.name;
    e.key = u.key;
    e.header_enc = AesBlock(e.key, AesBlock::Dir::Encrypt);
    if (!e.header_enc.valid()) {
      set_error("AES-ECB unavailable");
      return;
    }
    HashEntry& h = by_hash_.emplace_back();
    blake3_hash(e.key, h.hash);
    h.user = users_.size() - 1;
  }
  std::sort(by_hash_.begin(), by_hash_.end(),
            [](const HashEntry& a, const HashEntry& b) { return a.hash < b.hash; });
  for (size_t i = 1; i < by_hash_.size(); ++i) {
    if (by_hash_[i].hash == by_hash_[i - 1].hash) {
      set_error("users " + users_[by_hash_[i - 1].user].name + " and " +
                users_[by_hash_[i].user].name + " have the same key");
      return;
    }
  }
  valid_ = true;
}

Udp2022Server::~Udp2022Server() {
  wipe(psk_);
  for (UserEntry& u : users_) wipe(u.key);
  for (HashEntry& h : by_hash_) secure_zero(h.hash);
}

std::string_view Udp2022Server::user_name(size_t user) const {
  return user < users_.size() ? std::string_view(users_[user].name) : std::string_view();
}

std::span<const uint8_t> Udp2022Server::body_key(size_t user) const {
  if (user == kUdp2022NoUser) return psk_;
  if (user < users_.size()) return users_[user].key;
  return {};
}

Udp2022Status Udp2022Server::open_request_header(std::span<const uint8_t> packet,
                                                 std::span<uint8_t> out, Udp2022Header& h) {
  h = Udp2022Header{};
  if (!valid_) return err(Udp2022Error::Crypto);
  const size_t identities = multi_user_ ? 1 : 0;
  if (Udp2022Status st = h.open(*method_, header_dec_, xchacha_ ? &*xchacha_ : nullptr, packet, out,
                                body_prefix(*method_, identities), kUdp2022RequestFixedLen);
      !st.ok()) {
    return st;
  }
  h.request_ = true;
  if (identities == 0) return {};
  // The identity header names the user by BLAKE3(uPSK)[0..16] XOR the plaintext separate header.
  HashEntry probe{};
  if (!eih_dec_.apply(packet.data() + kUdp2022HeaderLen, probe.hash.data())) {
    h = Udp2022Header{};
    return err(Udp2022Error::Crypto);
  }
  for (size_t j = 0; j < kUdp2022EihLen; ++j) probe.hash[j] ^= h.plain_[j];
  const auto it =
      std::lower_bound(by_hash_.begin(), by_hash_.end(), probe,
                       [](const HashEntry& a, const HashEntry& b) { return a.hash < b.hash; });
  if (it == by_hash_.end() || it->hash != probe.hash) {
    h = Udp2022Header{};
    return err(Udp2022Error::UnknownUser);
  }
  h.user = it->user;
  return {};
}

Udp2022Status Udp2022Server::open_request_body(const Udp2022Header& h, Udp2022SessionKey& key,
                                               int64_t now, Udp2022Request& r) {
  r = Udp2022Request{};
  if (!valid_ || h.packet_ == nullptr || !h.request_) return err(Udp2022Error::Crypto);
  std::span<const uint8_t> body;
  if (Udp2022Status st = h.open_body(key, body_key(h.user), body); !st.ok()) return st;
  r.session_id = h.session_id;
  r.packet_id = h.packet_id;
  r.user = h.user;
  r.user_name = user_name(h.user);
  return parse_request_body(body.data(), body.size(), now, r);
}

size_t Udp2022Server::response_payload_offset(size_t address_len, size_t padding) const {
  return body_prefix(*method_, 0) + kUdp2022ResponseFixedLen + padding + address_len;
}

size_t Udp2022Server::response_size(size_t address_len, size_t padding, size_t payload_len) const {
  return response_payload_offset(address_len, padding) + payload_len + kUdp2022TagLen;
}

size_t Udp2022Server::seal_response(Udp2022SessionKey& key, size_t user, uint64_t server_session_id,
                                    uint64_t packet_id, uint64_t client_session_id,
                                    std::span<const uint8_t> address, size_t padding,
                                    std::span<const uint8_t> payload, int64_t now,
                                    std::span<uint8_t> out) {
  if (!valid_ || padding > 0xFFFF) return 0;
  // With users every session belongs to one; without, there is only the PSK.
  if (!multi_user_ ? user != kUdp2022NoUser : user >= users_.size()) return 0;
  const size_t total = response_size(address.size(), padding, payload.size());
  if (out.size() < total) return 0;
  PacketSeal s;
  s.method = method_;
  s.session_id = server_session_id;
  s.packet_id = packet_id;
  s.type = 0x01;
  s.client_session_id = client_session_id;
  s.xchacha = xchacha_ ? &*xchacha_ : nullptr;
  s.random = random_;
  s.body_psk = body_key(user);
  s.header_enc = !multi_user_ ? &header_enc_ : &users_[user].header_enc;
  return seal_packet(s, key, address, padding, payload, now, out.first(total));
}

}  // namespace ss
