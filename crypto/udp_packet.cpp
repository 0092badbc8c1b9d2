// Classic AEAD UDP packets (protocol.md §1.5): [salt][ciphertext][tag], a fresh random salt per
// packet, subkey = HKDF-SHA1(master key, salt, "ss-subkey"), all-zero nonce, no associated data.
// In-place use: udp_seal accepts pt == out + salt_len, udp_open accepts out == in + salt_len;
// other overlaps between input and output are not supported.

#include "crypto/udp_packet.h"

#include "crypto/internal.h"
#include "crypto/kdf.h"
#include "crypto/random_pool.h"

namespace ss {

size_t udp_seal(Aead& aead, std::span<const uint8_t> master_key, const uint8_t* pt, size_t n,
                uint8_t* out) {
  const CipherSpec& spec = aead.spec();
  const std::span<uint8_t> salt(out, spec.salt_len);
  pooled_random_bytes(salt);
  const uint8_t nonce[kMaxNonceLen] = {};
  if (!detail::set_session_key(aead, master_key, salt) ||
      !aead.seal(nonce, pt, n, out + spec.salt_len)) {
    return 0;
  }
  return udp_sealed_size(spec, n);
}

std::optional<size_t> udp_open(Aead& aead, std::span<const uint8_t> master_key, const uint8_t* in,
                               size_t n, uint8_t* out) {
  const CipherSpec& spec = aead.spec();
  if (in == nullptr || n < spec.salt_len + spec.tag_len) return std::nullopt;
  const uint8_t nonce[kMaxNonceLen] = {};
  if (!detail::set_session_key(aead, master_key, {in, spec.salt_len}) ||
      !aead.open(nonce, in + spec.salt_len, n - spec.salt_len, out)) {
    return std::nullopt;
  }
  return n - spec.salt_len - spec.tag_len;
}

}  // namespace ss
