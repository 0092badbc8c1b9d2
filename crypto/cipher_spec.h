#pragma once
// The table of supported methods: names exactly as shadowsocks-libev spells them, and sizes.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace ss {

enum class CipherKind : uint8_t {
  Aes128Gcm,
  Aes192Gcm,
  Aes256Gcm,
  ChaCha20Poly1305,
  XChaCha20Poly1305,
};

struct CipherSpec {
  std::string_view name;
  CipherKind kind;
  size_t key_len;
  size_t salt_len;
  size_t nonce_len;
  size_t tag_len;
};

// Largest payload in one classic AEAD TCP chunk; the two top bits of the length are reserved.
inline constexpr size_t kMaxChunkPayload = 0x3FFF;
inline constexpr size_t kTagLen = 16;
inline constexpr size_t kMaxSaltLen = 32;
inline constexpr size_t kMaxKeyLen = 32;
inline constexpr size_t kMaxNonceLen = 24;

// nullptr when the name is not a supported method.
const CipherSpec* find_cipher(std::string_view name);
// Every classic AEAD method, in a stable order (for tests, help texts and the README table).
std::span<const CipherSpec> classic_ciphers();

}  // namespace ss
