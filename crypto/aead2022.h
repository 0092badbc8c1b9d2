#pragma once
// Shadowsocks 2022 (SIP022/SIP023): methods, pre-shared keys and BLAKE3 derivations.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cipher_spec.h"

namespace ss {

enum class Kind2022 : uint8_t { Aes128Gcm, Aes256Gcm, ChaCha20Poly1305 };

struct Method2022 {
  std::string_view name;  // e.g. "2022-blake3-aes-128-gcm"
  Kind2022 kind;
  size_t key_len;  // PSK bytes = salt bytes = subkey bytes (16 or 32)
  const CipherSpec*
      aead;  // TCP and UDP-body AEAD: aes-128-gcm, aes-256-gcm or chacha20-ietf-poly1305
};

// nullptr for anything that is not one of the three supported 2022 methods.
const Method2022* find_2022_method(std::string_view name);
std::span<const Method2022> methods_2022();
// True for any name in the 2022 family, supported or not ("2022-..."), so callers can give a
// precise error for e.g. 2022-blake3-chacha8-poly1305.
inline bool is_2022_name(std::string_view name) {
  return name.substr(0, 5) == "2022-";
}

// Parses the 2022 password: one base64 PSK, or "iPSK1:...:iPSKn:uPSK" (SIP023, AES methods
// only). Standard base64, padding optional; every key must decode to exactly key_len bytes.
// On failure `error` is one line naming the method and the expected size, and `keys` is empty.
struct Psk2022 {
  std::vector<std::vector<uint8_t>> keys;  // in order; the last one is the user's (or only) PSK
  std::string error;
};
Psk2022 parse_2022_password(const Method2022& method, std::string_view password);

// A fresh random key for the method, base64 (standard alphabet, padded).
std::string generate_2022_key(const Method2022& method);

// BLAKE3 (C sources from Debian's librust-blake3-dev).
void blake3_hash(std::span<const uint8_t> in, std::span<uint8_t> out);
void blake3_derive_key(std::string_view context, std::span<const uint8_t> material,
                       std::span<uint8_t> out);
// derive_key("shadowsocks 2022 session subkey", key || salt), out.size() bytes.
void session_subkey_2022(std::span<const uint8_t> key, std::span<const uint8_t> salt,
                         std::span<uint8_t> out);
// derive_key("shadowsocks 2022 identity subkey", ipsk || salt), out.size() bytes.
void identity_subkey_2022(std::span<const uint8_t> ipsk, std::span<const uint8_t> salt,
                          std::span<uint8_t> out);

// The 2022 timestamp window: |now - timestamp| <= 30 s.
inline constexpr int64_t kMaxTimeDiff2022 = 30;
// How long the server remembers a request salt.
inline constexpr uint64_t kSaltPoolSeconds = 60;
inline constexpr size_t kMaxPadding2022 = 900;

}  // namespace ss
