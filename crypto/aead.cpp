// One AEAD context per direction, no associated data, 16-byte tag appended to the ciphertext.
// Backends, chosen by measurement (docs/crypto-backends.md):
//   AES-128/192/256-GCM and ChaCha20-Poly1305 (RFC 8439): OpenSSL EVP. The EVP_CIPHER_CTX is
//     created once; set_key re-keys it (key only); each message only re-initialises the IV.
//   XChaCha20-Poly1305: libsodium (OpenSSL 3.0 has none), detached tag, key kept in Impl.
// Nothing is allocated per message. On a failed open the output is wiped.

#include "crypto/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <array>
#include <climits>
#include <cstring>

#include "crypto/internal.h"
#include "crypto/kdf.h"

namespace ss {
namespace {

// Fetched once per process and shared by every context (EVP_CIPHER objects are immutable and
// reference counted); avoids an implicit fetch per Aead.
const EVP_CIPHER* openssl_cipher(CipherKind kind) {
  switch (kind) {
    case CipherKind::Aes128Gcm: {
      static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
      return c;
    }
    case CipherKind::Aes192Gcm: {
      static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "AES-192-GCM", nullptr);
      return c;
    }
    case CipherKind::Aes256Gcm: {
      static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
      return c;
    }
    case CipherKind::ChaCha20Poly1305: {
      static EVP_CIPHER* const c = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
      return c;
    }
    case CipherKind::XChaCha20Poly1305:
      break;
  }
  return nullptr;
}

bool uses_sodium(CipherKind kind) {
  return kind == CipherKind::XChaCha20Poly1305;
}

}  // namespace

struct Aead::Impl {
  EVP_CIPHER_CTX* ctx = nullptr;          // OpenSSL backends
  std::array<uint8_t, kMaxKeyLen> key{};  // libsodium backend
  bool keyed = false;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    EVP_CIPHER_CTX_free(ctx);  // cleanses the key schedule
    secure_zero(key);
  }
};

Aead::Aead(const CipherSpec& spec) : spec_(&spec), impl_(std::make_unique<Impl>()) {
  if (uses_sodium(spec.kind)) {
    detail::ensure_sodium();  // selects libsodium's fastest ChaCha20 implementation
    return;
  }
  const EVP_CIPHER* cipher = openssl_cipher(spec.kind);
  EVP_CIPHER_CTX* ctx = cipher != nullptr ? EVP_CIPHER_CTX_new() : nullptr;
  if (ctx == nullptr) return;  // set_key will report the failure
  if (EVP_CipherInit_ex(ctx, cipher, nullptr, nullptr, nullptr, 1) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(spec.nonce_len),
                          nullptr) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return;
  }
  impl_->ctx = ctx;
}

Aead::~Aead() = default;
Aead::Aead(Aead&&) noexcept = default;
Aead& Aead::operator=(Aead&&) noexcept = default;

bool Aead::set_key(std::span<const uint8_t> key) {
  if (!impl_ || key.size() != spec_->key_len) return false;
  impl_->keyed = false;
  if (uses_sodium(spec_->kind)) {
    std::memcpy(impl_->key.data(), key.data(), key.size());
  } else {
    if (impl_->ctx == nullptr) return false;
    // Key only: the direction (-1 = unchanged) and the IV are given per message.
    if (EVP_CipherInit_ex(impl_->ctx, nullptr, nullptr, key.data(), nullptr, -1) != 1) {
      ERR_clear_error();
      return false;
    }
  }
  impl_->keyed = true;
  return true;
}

bool Aead::seal(const uint8_t* nonce, const uint8_t* pt, size_t n, uint8_t* out) {
  if (!impl_ || !impl_->keyed) return false;
  const size_t tag = spec_->tag_len;
  if (uses_sodium(spec_->kind)) {
    return crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
               out, out + n, nullptr, pt, n, nullptr, 0, nullptr, nonce, impl_->key.data()) == 0;
  }
  if (n > static_cast<size_t>(INT_MAX)) return false;
  EVP_CIPHER_CTX* ctx = impl_->ctx;
  int len = 0;
  int fin = 0;
  const bool ok =
      EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, nonce, 1) == 1 &&
      (n == 0 || EVP_CipherUpdate(ctx, out, &len, pt, static_cast<int>(n)) == 1) &&
      EVP_CipherFinal_ex(ctx, out + len, &fin) == 1 && static_cast<size_t>(len + fin) == n &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(tag), out + n) == 1;
  if (!ok) ERR_clear_error();
  return ok;
}

bool Aead::open(const uint8_t* nonce, const uint8_t* ct, size_t n, uint8_t* out) {
  const size_t tag = spec_->tag_len;
  if (!impl_ || !impl_->keyed || n < tag) return false;
  const size_t len = n - tag;
  if (uses_sodium(spec_->kind)) {
    // Verifies before decrypting: `out` is not written on failure.
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
               out, nullptr, ct, len, ct + len, nullptr, 0, nonce, impl_->key.data()) == 0;
  }
  if (len > static_cast<size_t>(INT_MAX)) return false;
  EVP_CIPHER_CTX* ctx = impl_->ctx;
  int outl = 0;
  int fin = 0;
  // The expected tag is handed over before any plaintext is written, so out == ct is safe.
  const bool ok = EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, nonce, 0) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag),
                                      const_cast<uint8_t*>(ct + len)) == 1 &&
                  (len == 0 || EVP_CipherUpdate(ctx, out, &outl, ct, static_cast<int>(len)) == 1) &&
                  EVP_CipherFinal_ex(ctx, out + outl, &fin) == 1 &&
                  static_cast<size_t>(outl + fin) == len;
  if (!ok) {
    // OpenSSL decrypts before it checks the tag: never leave that plaintext behind.
    if (len > 0) secure_zero({out, len});
    ERR_clear_error();
  }
  return ok;
}

bool aead_open_once(Aead& scratch, std::span<const uint8_t> key, const uint8_t* nonce,
                    const uint8_t* ct, size_t n, uint8_t* out) {
  const CipherSpec& spec = scratch.spec();
  if (key.size() != spec.key_len || n < spec.tag_len) return false;
  const size_t len = n - spec.tag_len;
  if (spec.kind == CipherKind::ChaCha20Poly1305) {
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, nullptr, ct, len, ct + len,
                                                              nullptr, 0, nonce, key.data()) == 0;
  }
  if (spec.kind == CipherKind::XChaCha20Poly1305) {
    return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, nullptr, ct, len, ct + len,
                                                               nullptr, 0, nonce, key.data()) == 0;
  }
  return scratch.set_key(key) && scratch.open(nonce, ct, n, out);
}

}  // namespace ss
