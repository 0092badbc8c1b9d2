// Key material for classic Shadowsocks (protocol.md §1.2-1.3):
//   master key = EVP_BytesToKey(MD5, no salt, 1 iteration): D1 = MD5(pw), Di = MD5(Di-1 || pw);
//   subkey     = RFC 5869 HKDF-SHA1(IKM = master key, salt, info), via OpenSSL 3's EVP_KDF "HKDF";
//   base64 keys in the standard or URL-safe alphabet, padding optional (libsodium codecs);
//   randomness and wiping from libsodium.

#include "crypto/kdf.h"

#include "crypto/aead.h"
#include "crypto/internal.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace ss {
namespace {

constexpr size_t kMd5Len = 16;
constexpr std::string_view kSubkeyInfo = "ss-subkey";

// Fetched once and shared: EVP_KDF objects are reference counted and safe to use from any thread.
EVP_KDF* hkdf_method() {
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
  return kdf;
}

}  // namespace

namespace detail {

void ensure_sodium() {
  // C++ guarantees a thread-safe one-time initialisation of function-local statics.
  static const bool ok = sodium_init() >= 0;
  // Without a working CSPRNG every salt would be predictable: refuse to continue.
  if (!ok) std::abort();
}

bool set_session_key(Aead& aead, std::span<const uint8_t> master_key,
                     std::span<const uint8_t> salt) {
  const size_t key_len = aead.spec().key_len;
  if (master_key.size() < key_len || key_len > kMaxKeyLen) return false;
  uint8_t subkey[kMaxKeyLen];
  const std::span<uint8_t> sub(subkey, key_len);
  const bool ok = hkdf_sha1(master_key.first(key_len), salt, kSubkeyInfo, sub) && aead.set_key(sub);
  secure_zero(sub);
  return ok;
}

}  // namespace detail

std::vector<uint8_t> derive_master_key(std::string_view password, size_t key_len) {
  std::vector<uint8_t> key;
  key.reserve(key_len);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return {};
  uint8_t digest[kMd5Len];
  bool ok = true;
  while (key.size() < key_len) {
    unsigned int len = 0;
    ok = EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) == 1 &&
         (key.empty() || EVP_DigestUpdate(ctx, digest, sizeof digest) == 1) &&
         EVP_DigestUpdate(ctx, password.data(), password.size()) == 1 &&
         EVP_DigestFinal_ex(ctx, digest, &len) == 1 && len == kMd5Len;
    if (!ok) break;
    const size_t take = std::min(kMd5Len, key_len - key.size());
    key.insert(key.end(), digest, digest + take);
  }
  EVP_MD_CTX_free(ctx);
  secure_zero(digest);
  if (!ok) {
    secure_zero(key);
    return {};
  }
  return key;
}

bool hkdf_sha1(std::span<const uint8_t> ikm, std::span<const uint8_t> salt, std::string_view info,
               std::span<uint8_t> out) {
  if (out.empty()) return true;
  EVP_KDF* kdf = hkdf_method();
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  if (ctx == nullptr) return false;

  static char digest_name[] = "SHA1";
  OSSL_PARAM params[5];
  size_t i = 0;
  params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest_name, 0);
  params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                                  const_cast<uint8_t*>(ikm.data()), ikm.size());
  // An absent salt means HashLen zero bytes, which HMAC treats exactly like an empty one.
  if (!salt.empty()) {
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                                    const_cast<uint8_t*>(salt.data()), salt.size());
  }
  if (!info.empty()) {
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                    const_cast<char*>(info.data()), info.size());
  }
  params[i] = OSSL_PARAM_construct_end();

  const bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);  // cleanses the copies of key and PRK it held
  if (!ok) secure_zero(out);
  return ok;
}

std::optional<std::vector<uint8_t>> base64_decode(std::string_view text) {
  if (text.empty()) return std::vector<uint8_t>{};
  // libsodium 1.0.18 reads every byte >= 0x80 as 63, so check the alphabet ourselves: a stray
  // non-ASCII byte in a key must be an error, not a different key.
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '-' || c == '_' || c == '=';
    if (!ok) return std::nullopt;
  }
  // The two alphabets differ only in characters 62 and 63; libsodium rejects the other
  // alphabet's spelling, so a string mixing both fails below.
  const bool url_safe = text.find_first_of("-_") != std::string_view::npos;
  const bool padded = text.back() == '=';
  int variant;
  if (url_safe) {
    variant = padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  } else {
    variant = padded ? sodium_base64_VARIANT_ORIGINAL : sodium_base64_VARIANT_ORIGINAL_NO_PADDING;
  }
  std::vector<uint8_t> bin(text.size() / 4 * 3 + 3);
  size_t bin_len = 0;
  // No ignore set and no end pointer: libsodium then fails on any character it does not consume,
  // on non-zero trailing bits, on a dangling single character and on wrong padding.
  if (sodium_base642bin(bin.data(), bin.size(), text.data(), text.size(), nullptr, &bin_len,
                        nullptr, variant) != 0) {
    return std::nullopt;
  }
  bin.resize(bin_len);
  return bin;
}

std::string base64_encode(std::span<const uint8_t> bytes) {
  const size_t with_nul = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string text(with_nul, '\0');
  sodium_bin2base64(text.data(), text.size(), bytes.data(), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  text.resize(with_nul - 1);
  return text;
}

void random_bytes(std::span<uint8_t> out) {
  detail::ensure_sodium();
  if (!out.empty()) randombytes_buf(out.data(), out.size());
}

void secure_zero(std::span<uint8_t> bytes) {
  if (!bytes.empty()) sodium_memzero(bytes.data(), bytes.size());
}

}  // namespace ss
