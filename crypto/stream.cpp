// Classic AEAD TCP stream framing (SIP004/SIP007, protocol.md §1.4), one direction each:
//   [salt][BE u16 length, sealed: 2 + tag][payload, sealed: L + tag]...
// subkey = HKDF-SHA1(master key, salt, "ss-subkey"); nonce = little-endian counter from 0, +1 per
// AEAD operation (chunk i: 2i for its length, 2i + 1 for its payload). 1 <= L <= 0x3FFF on send;
// on receive a length with either reserved top bit set is an error and L == 0 is a skipped chunk.
// The decryptor is a push parser: salt -> length block -> payload block -> length block ...
// Blocks wholly inside one feed are opened where they lie; only a block that straddles two feeds
// is copied into a lazily allocated buffer. Payloads are opened straight into the caller's buffer.

#include "crypto/stream.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "crypto/internal.h"
#include "crypto/kdf.h"
#include "crypto/random_pool.h"

namespace ss {
namespace {

constexpr size_t kLenSize = 2;

size_t chunk_overhead(const CipherSpec& spec) {
  return kLenSize + 2 * spec.tag_len;
}

}  // namespace

namespace detail {

const uint8_t* take_block(std::unique_ptr<uint8_t[]>& partial, size_t& held, size_t capacity,
                          const uint8_t* in, size_t n, size_t& pos, size_t need) {
  if (held == 0 && n - pos >= need) {
    const uint8_t* block = in + pos;
    pos += need;
    return block;
  }
  if (!partial) {
    partial.reset(new (std::nothrow) uint8_t[capacity]);
    if (!partial) return nullptr;
  }
  const size_t take = std::min(need - held, n - pos);
  std::memcpy(partial.get() + held, in + pos, take);
  held += take;
  pos += take;
  if (held < need) return nullptr;
  held = 0;  // the block stays intact in partial until the next copy
  return partial.get();
}

}  // namespace detail

StreamEncryptor::StreamEncryptor(const CipherSpec& spec, std::span<const uint8_t> master_key)
    : spec_(&spec), aead_(spec) {
  pooled_random_bytes({salt_.data(), spec.salt_len});
  ready_ = detail::set_session_key(aead_, master_key, salt());
}

StreamEncryptor::StreamEncryptor(const CipherSpec& spec, std::span<const uint8_t> master_key,
                                 std::span<const uint8_t> salt)
    : spec_(&spec), aead_(spec) {
  if (salt.size() != spec.salt_len) return;  // not ready: seal() writes nothing
  std::memcpy(salt_.data(), salt.data(), salt.size());
  ready_ = detail::set_session_key(aead_, master_key, this->salt());
}

size_t StreamEncryptor::sealed_size(size_t n) const {
  if (n == 0) return 0;
  const size_t chunks = (n + kMaxChunkPayload - 1) / kMaxChunkPayload;
  return (salt_sent_ ? 0 : spec_->salt_len) + n + chunks * chunk_overhead(*spec_);
}

size_t StreamEncryptor::seal(const uint8_t* pt, size_t n, uint8_t* out) {
  if (n == 0 || !ready_) return 0;
  const size_t tag = spec_->tag_len;
  size_t w = 0;
  if (!salt_sent_) {
    std::memcpy(out, salt_.data(), spec_->salt_len);
    w = spec_->salt_len;
  }
  for (size_t off = 0; off < n;) {
    const size_t len = std::min(n - off, kMaxChunkPayload);
    uint8_t* chunk = out + w;
    chunk[0] = static_cast<uint8_t>(len >> 8);
    chunk[1] = static_cast<uint8_t>(len & 0xFF);
    if (!aead_.seal(nonce_.data(), chunk, kLenSize, chunk)) break;
    increment_nonce(nonce_.data(), spec_->nonce_len);
    if (!aead_.seal(nonce_.data(), pt + off, len, chunk + kLenSize + tag)) break;
    increment_nonce(nonce_.data(), spec_->nonce_len);
    w += len + chunk_overhead(*spec_);
    off += len;
    if (off == n) {
      salt_sent_ = true;
      return w;
    }
  }
  // A library failure mid-stream desynchronises the nonce: the stream is unusable from here on.
  ready_ = false;
  return 0;
}

StreamDecryptor::StreamDecryptor(const CipherSpec& spec, std::span<const uint8_t> master_key)
    : spec_(&spec), aead_(spec) {
  if (master_key.size() < spec.key_len || spec.key_len > kMaxKeyLen) {
    state_ = State::Failed;  // every feed reports Error
    return;
  }
  std::memcpy(master_key_.data(), master_key.data(), spec.key_len);
}

StreamDecryptor::~StreamDecryptor() {
  secure_zero(master_key_);
}

size_t StreamDecryptor::buffered() const {
  return state_ == State::Salt ? salt_filled_ : partial_len_;
}

size_t StreamDecryptor::max_output(size_t n) const {
  // Every released plaintext byte comes from a distinct ciphertext byte either held or fed.
  return n + buffered();
}

void StreamDecryptor::fail() {
  state_ = State::Failed;
  partial_len_ = 0;
  payload_len_ = 0;
  partial_.reset();  // a failed stream may be kept open for a long time (anti-probing)
  secure_zero(master_key_);
}

const uint8_t* StreamDecryptor::take_block(const uint8_t* in, size_t n, size_t& pos, size_t need) {
  const uint8_t* block =
      detail::take_block(partial_, partial_len_, kMaxChunkPayload + kTagLen, in, n, pos, need);
  if (block == nullptr && !partial_) fail();
  return block;
}

StreamDecryptor::Result StreamDecryptor::feed(const uint8_t* in, size_t n, uint8_t* out) {
  const size_t tag = spec_->tag_len;
  size_t produced = 0;
  size_t pos = 0;
  while (pos < n && state_ != State::Failed) {
    if (state_ == State::Salt) {
      const size_t take = std::min(spec_->salt_len - salt_filled_, n - pos);
      std::memcpy(salt_.data() + salt_filled_, in + pos, take);
      salt_filled_ += take;
      pos += take;
      if (salt_filled_ < spec_->salt_len) break;
      const bool keyed = detail::set_session_key(aead_, master_key_, salt());
      secure_zero(master_key_);  // not needed once the subkey is derived
      if (!keyed) {
        fail();
        break;
      }
      state_ = State::Length;
      continue;
    }

    const bool is_length = state_ == State::Length;
    const uint8_t* block = take_block(in, n, pos, is_length ? kLenSize + tag : payload_len_ + tag);
    if (block == nullptr) break;  // all input buffered, or failed

    if (is_length) {
      uint8_t len_be[kLenSize];
      if (!aead_.open(nonce_.data(), block, kLenSize + tag, len_be)) {
        fail();
        break;
      }
      increment_nonce(nonce_.data(), spec_->nonce_len);
      const size_t len = (static_cast<size_t>(len_be[0]) << 8) | len_be[1];
      if (len > kMaxChunkPayload) {  // a reserved top bit is set
        fail();
        break;
      }
      payload_len_ = len;  // decrypted once, kept until the payload is complete
      state_ = State::Payload;
    } else {
      if (!aead_.open(nonce_.data(), block, payload_len_ + tag, out + produced)) {
        fail();
        break;
      }
      increment_nonce(nonce_.data(), spec_->nonce_len);
      produced += payload_len_;  // 0 for an empty chunk: skipped, not EOF
      payload_len_ = 0;
      authenticated_ = true;
      state_ = State::Length;
    }
  }
  // On Error, `produced` still counts the chunks of this feed that authenticated before the bad
  // one; nothing of the bad chunk is released.
  if (state_ == State::Failed) return {DecryptStatus::Error, produced};
  return {produced > 0 ? DecryptStatus::Ok : DecryptStatus::NeedMore, produced};
}

}  // namespace ss
