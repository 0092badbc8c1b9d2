#pragma once
// One AEAD key schedule for one direction: re-keyed in place, never re-allocated per chunk.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "crypto/cipher_spec.h"

namespace ss {

class Aead {
 public:
  explicit Aead(const CipherSpec& spec);
  ~Aead();
  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  const CipherSpec& spec() const { return *spec_; }

  // `key` must be spec().key_len bytes. Returns false if the library refuses it.
  bool set_key(std::span<const uint8_t> key);

  // Seals n bytes of `pt` into `out` (n + tag bytes: ciphertext then tag). `out` may equal `pt`.
  // `nonce` is spec().nonce_len bytes. No associated data.
  bool seal(const uint8_t* nonce, const uint8_t* pt, size_t n, uint8_t* out);

  // Opens `n` bytes (ciphertext then tag, n >= tag) into `out` (n - tag bytes). `out` may equal
  // `ct`. Returns false, and leaves no usable plaintext, if the tag does not verify.
  [[nodiscard]] bool open(const uint8_t* nonce, const uint8_t* ct, size_t n, uint8_t* out);

 private:
  struct Impl;
  const CipherSpec* spec_;
  std::unique_ptr<Impl> impl_;
};

// Opens one message under a key used for it alone (key trial): ChaCha20-Poly1305 and
// XChaCha20-Poly1305 through libsodium, which takes the key per call (no context to set up), the
// AES-GCM methods through `scratch` (a context of the same spec) re-keyed. `key` is
// scratch.spec().key_len bytes; otherwise as Aead::open.
[[nodiscard]] bool aead_open_once(Aead& scratch, std::span<const uint8_t> key, const uint8_t* nonce,
                                  const uint8_t* ct, size_t n, uint8_t* out);

// Adds one to a little-endian counter of any width (the Shadowsocks nonce).
inline void increment_nonce(uint8_t* nonce, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    if (++nonce[i] != 0) break;
  }
}

}  // namespace ss
