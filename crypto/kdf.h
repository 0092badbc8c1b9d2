#pragma once
// Key material: password to master key, session subkeys, base64 keys, randomness.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ss {

// OpenSSL's EVP_BytesToKey with MD5, no salt, one iteration, as every Shadowsocks implementation
// derives the classic master key from a password: D1 = MD5(pw), Di = MD5(Di-1 || pw).
std::vector<uint8_t> derive_master_key(std::string_view password, size_t key_len);

// RFC 5869 HKDF with SHA-1: IKM = master key, salt = the stream's salt, info = "ss-subkey".
// Fills all of `out`. Returns false only if the underlying library fails.
bool hkdf_sha1(std::span<const uint8_t> ikm, std::span<const uint8_t> salt, std::string_view info,
               std::span<uint8_t> out);

// The session subkey HKDF-SHA1(master key, salt, "ss-subkey") for one salt and many master keys
// (key trial, crypto/key_trial.h): the salt is HKDF-Extract's HMAC key, so its two padded blocks
// are hashed once here and each derive() starts from those states.
class SubkeyDeriver {
 public:
  explicit SubkeyDeriver(std::span<const uint8_t> salt);
  ~SubkeyDeriver();
  SubkeyDeriver(const SubkeyDeriver&) = delete;
  SubkeyDeriver& operator=(const SubkeyDeriver&) = delete;
  // Fills all of `out` (at most 40 bytes), exactly as hkdf_sha1(master_key, salt, "ss-subkey").
  void derive(std::span<const uint8_t> master_key, std::span<uint8_t> out) const;

 private:
  struct Impl;
  Impl* impl_;
};

// Decodes base64 in the standard or the URL-safe alphabet, with or without padding.
// nullopt on any invalid character or a malformed length.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);
// Standard alphabet, with padding.
std::string base64_encode(std::span<const uint8_t> bytes);

// Cryptographically secure random bytes (libsodium).
void random_bytes(std::span<uint8_t> out);
// Zeroes memory in a way the compiler may not elide (libsodium).
void secure_zero(std::span<uint8_t> bytes);

}  // namespace ss
