// The classic AEAD method table (SIP004/SIP007, protocol.md §1.1): config names as
// shadowsocks-libev spells them; salt length equals key length; 16-byte tags throughout.

#include "crypto/cipher_spec.h"

#include <array>

namespace ss {
namespace {

constexpr std::array<CipherSpec, 5> kCiphers = {{
    {"aes-128-gcm", CipherKind::Aes128Gcm, 16, 16, 12, kTagLen},
    {"aes-192-gcm", CipherKind::Aes192Gcm, 24, 24, 12, kTagLen},
    {"aes-256-gcm", CipherKind::Aes256Gcm, 32, 32, 12, kTagLen},
    {"chacha20-ietf-poly1305", CipherKind::ChaCha20Poly1305, 32, 32, 12, kTagLen},
    {"xchacha20-ietf-poly1305", CipherKind::XChaCha20Poly1305, 32, 32, 24, kTagLen},
}};

static_assert([] {
  for (const CipherSpec& c : kCiphers) {
    if (c.key_len > kMaxKeyLen || c.salt_len > kMaxSaltLen || c.nonce_len > kMaxNonceLen ||
        c.tag_len != kTagLen || c.salt_len != c.key_len) {
      return false;
    }
  }
  return true;
}());

}  // namespace

const CipherSpec* find_cipher(std::string_view name) {
  for (const CipherSpec& c : kCiphers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::span<const CipherSpec> classic_ciphers() {
  return kCiphers;
}

}  // namespace ss
