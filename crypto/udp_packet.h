#pragma once
// Classic AEAD UDP packets: [salt][ciphertext][tag], a fresh salt per packet, all-zero nonce,
// subkey = HKDF-SHA1(master key, salt, "ss-subkey"). Each packet stands alone.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "crypto/aead.h"

namespace ss {

inline size_t udp_sealed_size(const CipherSpec& spec, size_t n) {
  return spec.salt_len + n + spec.tag_len;
}

// Seals n bytes into out (capacity >= udp_sealed_size). `aead` is a scratch context of the same
// spec (re-keyed per packet). Returns bytes written, 0 on a library failure.
size_t udp_seal(Aead& aead, std::span<const uint8_t> master_key, const uint8_t* pt, size_t n,
                uint8_t* out);

// Opens a packet of n bytes into out (capacity >= n). nullopt if it is too short or does not
// authenticate; otherwise the plaintext length.
std::optional<size_t> udp_open(Aead& aead, std::span<const uint8_t> master_key, const uint8_t* in,
                               size_t n, uint8_t* out);

}  // namespace ss
