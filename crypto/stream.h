#pragma once
// Classic AEAD TCP stream framing (SIP004/SIP007), one direction each:
//   [salt][len(2, BE) + tag][payload + tag][len + tag][payload + tag]...
// Subkey = HKDF-SHA1(master key, salt, "ss-subkey"); nonce = little-endian counter, +1 per seal.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "crypto/aead.h"
#include "crypto/cipher_spec.h"

namespace ss {

class StreamEncryptor {
 public:
  // Picks a fresh random salt.
  StreamEncryptor(const CipherSpec& spec, std::span<const uint8_t> master_key);
  // Uses the given salt (spec.salt_len bytes): for tests and vectors only.
  StreamEncryptor(const CipherSpec& spec, std::span<const uint8_t> master_key,
                  std::span<const uint8_t> salt);

  // Exactly the number of bytes seal(n) will write: the salt if not yet sent, plus n bytes in
  // chunks of at most kMaxChunkPayload, each with 2 + 2 * tag bytes of overhead. 0 for n == 0.
  size_t sealed_size(size_t n) const;

  // Seals n > 0 plaintext bytes into `out` (capacity >= sealed_size(n)); the first call writes the
  // salt first. Returns the number of bytes written (0 if n == 0 or on a library failure).
  size_t seal(const uint8_t* pt, size_t n, uint8_t* out);

  std::span<const uint8_t> salt() const { return {salt_.data(), spec_->salt_len}; }
  const CipherSpec& spec() const { return *spec_; }

 private:
  const CipherSpec* spec_;
  Aead aead_;
  std::array<uint8_t, kMaxSaltLen> salt_{};
  std::array<uint8_t, kMaxNonceLen> nonce_{};
  bool salt_sent_ = false;
  bool ready_ = false;  // keyed; false after a library failure (seal then returns 0)
};

enum class DecryptStatus { NeedMore, Ok, Error };

class StreamDecryptor {
 public:
  StreamDecryptor(const CipherSpec& spec, std::span<const uint8_t> master_key);
  ~StreamDecryptor();

  struct Result {
    DecryptStatus status;  // Ok: produced > 0; NeedMore: nothing to release yet; Error: sticky
    size_t produced;       // plaintext bytes written to `out`
  };

  // Most plaintext a feed of n bytes can release (n plus what is already buffered).
  size_t max_output(size_t n) const;

  // Consumes all n bytes of `in` (any split of the stream is accepted). Writes the plaintext of
  // every chunk that `in` completes and that authenticates to `out` (capacity >=
  // max_output(n)); keeps an incomplete trailing chunk internally. Never releases
  // unauthenticated bytes. A bad tag, or a length with reserved bits set, is an Error, and every
  // later call returns Error. A zero-length chunk is skipped (never treated as EOF).
  Result feed(const uint8_t* in, size_t n, uint8_t* out);

  bool has_salt() const { return salt_filled_ == spec_->salt_len; }
  std::span<const uint8_t> salt() const { return {salt_.data(), salt_filled_}; }
  // True once at least one whole chunk (length and payload) has authenticated.
  bool authenticated() const { return authenticated_; }
  // Bytes held waiting for the rest of a chunk (or of the salt).
  size_t buffered() const;
  const CipherSpec& spec() const { return *spec_; }

 private:
  enum class State : uint8_t { Salt, Length, Payload, Failed };
  const CipherSpec* spec_;
  std::array<uint8_t, kMaxKeyLen> master_key_{};
  Aead aead_;
  std::array<uint8_t, kMaxSaltLen> salt_{};
  size_t salt_filled_ = 0;
  std::array<uint8_t, kMaxNonceLen> nonce_{};
  State state_ = State::Salt;
  bool authenticated_ = false;
  size_t payload_len_ = 0;  // of the chunk being read, once its length authenticated
  // Partial chunk storage, allocated on first need (idle sessions hold none).
  std::unique_ptr<uint8_t[]> partial_;
  size_t partial_len_ = 0;

  // Returns the `need`-byte block starting at in[pos] (advancing pos), either in place or, once
  // completed, from partial_; nullptr when it is still incomplete (all input buffered) or on
  // failure.
  const uint8_t* take_block(const uint8_t* in, size_t n, size_t& pos, size_t need);
  void fail();
};

}  // namespace ss
