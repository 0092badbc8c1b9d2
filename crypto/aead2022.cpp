// Shadowsocks 2022 (SIP022/SIP023, protocol.md §2.1-2.3, §2.11): the method table, PSK parsing
// and the BLAKE3 derivations every 2022 codec (TCP and UDP) builds on.
//
// Wire-relevant formats defined here:
//   password     base64(PSK)  or  base64(iPSK_1) ":" ... ":" base64(iPSK_n) ":" base64(uPSK)
//                (standard alphabet, padding optional; every key exactly key_len bytes; several
//                keys only for the AES methods)
//   session key  BLAKE3.derive_key("shadowsocks 2022 session subkey",  key || salt)[0..len]
//   identity key BLAKE3.derive_key("shadowsocks 2022 identity subkey", iPSK || salt)[0..len]
// BLAKE3's output is an extendable stream, so a 16-byte subkey is the prefix of the 32-byte one.
// The BLAKE3 C reference code comes from Debian's librust-blake3-dev (crypto/CMakeLists.txt).

#include "crypto/aead2022.h"

#include <blake3.h>

#include <array>

#include "crypto/kdf.h"

namespace ss {
namespace {

constexpr std::string_view kSessionContext = "shadowsocks 2022 session subkey";
constexpr std::string_view kIdentityContext = "shadowsocks 2022 identity subkey";

const std::array<Method2022, 3>& method_table() {
  // Built on first use (thread-safe): the AEAD specs live in cipher_spec.cpp's table.
  static const std::array<Method2022, 3> table = {{
      {"2022-blake3-aes-128-gcm", Kind2022::Aes128Gcm, 16, find_cipher("aes-128-gcm")},
      {"2022-blake3-aes-256-gcm", Kind2022::Aes256Gcm, 32, find_cipher("aes-256-gcm")},
      {"2022-blake3-chacha20-poly1305", Kind2022::ChaCha20Poly1305, 32,
       find_cipher("chacha20-ietf-poly1305")},
  }};
  return table;
}

bool supports_eih(const Method2022& m) {
  return m.kind == Kind2022::Aes128Gcm || m.kind == Kind2022::Aes256Gcm;
}

// derive_key(context, a || b) without building the concatenation.
void derive2(std::string_view context, std::span<const uint8_t> a, std::span<const uint8_t> b,
             std::span<uint8_t> out) {
  blake3_hasher h;
  blake3_hasher_init_derive_key_raw(&h, context.data(), context.size());
  blake3_hasher_update(&h, a.data(), a.size());
  blake3_hasher_update(&h, b.data(), b.size());
  blake3_hasher_finalize(&h, out.data(), out.size());
  secure_zero({reinterpret_cast<uint8_t*>(&h), sizeof h});  // holds key material
}

}  // namespace

std::span<const Method2022> methods_2022() {
  return method_table();
}

const Method2022* find_2022_method(std::string_view name) {
  for (const Method2022& m : method_table()) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

Psk2022 parse_2022_password(const Method2022& method, std::string_view password) {
  Psk2022 result;
  const std::string expected = std::to_string(method.key_len) + "-byte";
  size_t count = 0;
  for (size_t start = 0;;) {
    const size_t colon = password.find(':', start);
    const std::string_view part = password.substr(
        start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
    ++count;
    auto key = base64_decode(part);
    if (!key || key->size() != method.key_len) {
      if (key) secure_zero(*key);
      for (auto& k : result.keys) secure_zero(k);
      result.keys.clear();
      result.error =
          std::string(method.name) + ": key " + std::to_string(count) + " of the " +
          "password is not a base64 " + expected + " key" + (part.empty() ? " (empty)" : "") +
          " (generate one with: openssl rand -base64 " + std::to_string(method.key_len) + ")";
      return result;
    }
    result.keys.push_back(std::move(*key));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (result.keys.size() > 1 && !supports_eih(method)) {
    for (auto& k : result.keys) secure_zero(k);
    result.keys.clear();
    result.error = std::string(method.name) +
                   ": several keys (iPSK:...:uPSK, SIP023 identity headers) are supported only by "
                   "the AES methods; give one base64 " +
                   expected + " key";
  }
  return result;
}

std::string generate_2022_key(const Method2022& method) {
  std::array<uint8_t, 32> key{};
  random_bytes({key.data(), method.key_len});
  std::string text = base64_encode({key.data(), method.key_len});
  secure_zero(key);
  return text;
}

void blake3_hash(std::span<const uint8_t> in, std::span<uint8_t> out) {
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, in.data(), in.size());
  blake3_hasher_finalize(&h, out.data(), out.size());
  secure_zero({reinterpret_cast<uint8_t*>(&h), sizeof h});  // the input may be a key
}

void blake3_derive_key(std::string_view context, std::span<const uint8_t> material,
                       std::span<uint8_t> out) {
  derive2(context, material, {}, out);
}

void session_subkey_2022(std::span<const uint8_t> key, std::span<const uint8_t> salt,
                         std::span<uint8_t> out) {
  derive2(kSessionContext, key, salt, out);
}

void identity_subkey_2022(std::span<const uint8_t> ipsk, std::span<const uint8_t> salt,
                          std::span<uint8_t> out) {
  derive2(kIdentityContext, ipsk, salt, out);
}

}  // namespace ss
