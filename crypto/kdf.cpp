// Key material for classic Shadowsocks (protocol.md §1.2-1.3):
//   master key = EVP_BytesToKey(MD5, no salt, 1 iteration): D1 = MD5(pw), Di = MD5(Di-1 || pw);
//   subkey     = RFC 5869 HKDF-SHA1(IKM = master key, salt, info), HMAC-SHA1 over OpenSSL's SHA-1;
//   base64 keys in the standard or URL-safe alphabet, padding optional (libsodium codecs);
//   randomness and wiping from libsodium.

// SHA1_Init/Update/Final: see hkdf_sha1 below for why.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "crypto/kdf.h"

#include "crypto/aead.h"
#include "crypto/internal.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace ss {
namespace {

constexpr size_t kMd5Len = 16;
constexpr std::string_view kSubkeyInfo = "ss-subkey";

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

// RFC 5869 HKDF-SHA1, with HMAC (RFC 2104) on OpenSSL's low-level SHA-1 (SHA1_Init/Update/
// Final). OpenSSL 3's EVP_KDF "HKDF" fetches HMAC and SHA-1 on every derivation, and even a
// pre-fetched EVP_DigestInit_ex goes through the provider layer each time; callgrind put a
// derivation at about 68,000 instructions with EVP_KDF, 19,000 with EVP digests, and a few
// thousand with these calls. They are deprecated in OpenSSL 3 but present and not going away in
// 3.x; the suppression is confined to this file.
namespace {

constexpr size_t kSha1Len = 20;
constexpr size_t kSha1Block = 64;

struct Sha1Part {
  const uint8_t* data;
  size_t size;
};

void sha1(std::initializer_list<Sha1Part> parts, uint8_t* out) {
  SHA_CTX c;
  SHA1_Init(&c);
  for (const Sha1Part& p : parts) {
    if (p.size > 0) SHA1_Update(&c, p.data, p.size);
  }
  SHA1_Final(out, &c);
  OPENSSL_cleanse(&c, sizeof c);
}

// HMAC-SHA1(key, a || b || c) into out[20].
bool hmac_sha1(std::span<const uint8_t> key, std::span<const uint8_t> a, std::span<const uint8_t> b,
               std::span<const uint8_t> c, uint8_t* out) {
  uint8_t hashed_key[kSha1Len];
  if (key.size() > kSha1Block) {
    // RFC 2104: a key longer than the block is replaced by its hash.
    sha1({{key.data(), key.size()}}, hashed_key);
    key = std::span<const uint8_t>(hashed_key, kSha1Len);
  }
  uint8_t pad[kSha1Block];
  uint8_t inner[kSha1Len];
  for (size_t i = 0; i < kSha1Block; ++i) {
    pad[i] = static_cast<uint8_t>((i < key.size() ? key[i] : 0) ^ 0x36);
  }
  sha1({{pad, sizeof pad}, {a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}},
       inner);
  for (size_t i = 0; i < kSha1Block; ++i) pad[i] ^= 0x36 ^ 0x5c;
  sha1({{pad, sizeof pad}, {inner, sizeof inner}}, out);
  secure_zero(pad);
  secure_zero(inner);
  secure_zero(hashed_key);
  return true;
}

}  // namespace

struct SubkeyDeriver::Impl {
  SHA_CTX inner;  // SHA-1 after the salt's ipad block
  SHA_CTX outer;  // ... and after its opad block
};

SubkeyDeriver::SubkeyDeriver(std::span<const uint8_t> salt) : impl_(new Impl) {
  uint8_t pad[kSha1Block];
  uint8_t hashed[kSha1Len];
  if (salt.size() > kSha1Block) {
    sha1({{salt.data(), salt.size()}}, hashed);
    salt = std::span<const uint8_t>(hashed, kSha1Len);
  }
  for (size_t i = 0; i < kSha1Block; ++i) {
    pad[i] = static_cast<uint8_t>((i < salt.size() ? salt[i] : 0) ^ 0x36);
  }
  SHA1_Init(&impl_->inner);
  SHA1_Update(&impl_->inner, pad, sizeof pad);
  for (size_t i = 0; i < kSha1Block; ++i) pad[i] ^= 0x36 ^ 0x5c;
  SHA1_Init(&impl_->outer);
  SHA1_Update(&impl_->outer, pad, sizeof pad);
  secure_zero(pad);
}

SubkeyDeriver::~SubkeyDeriver() {
  OPENSSL_cleanse(impl_, sizeof *impl_);
  delete impl_;
}

void SubkeyDeriver::derive(std::span<const uint8_t> master_key, std::span<uint8_t> out) const {
  // Extract: PRK = HMAC(salt, master key), from the salt's precomputed pad states.
  uint8_t prk[kSha1Len];
  SHA_CTX c = impl_->inner;
  SHA1_Update(&c, master_key.data(), master_key.size());
  SHA1_Final(prk, &c);
  c = impl_->outer;
  SHA1_Update(&c, prk, sizeof prk);
  SHA1_Final(prk, &c);
  // Expand: T(i) = HMAC(PRK, T(i-1) || "ss-subkey" || i), PRK's pads hashed once for both blocks.
  uint8_t pad[kSha1Block];
  for (size_t i = 0; i < kSha1Block; ++i) pad[i] = (i < kSha1Len ? prk[i] : 0) ^ 0x36;
  SHA_CTX inner;
  SHA1_Init(&inner);
  SHA1_Update(&inner, pad, sizeof pad);
  for (size_t i = 0; i < kSha1Block; ++i) pad[i] ^= 0x36 ^ 0x5c;
  SHA_CTX outer;
  SHA1_Init(&outer);
  SHA1_Update(&outer, pad, sizeof pad);
  uint8_t t[kSha1Len];
  size_t t_len = 0;
  size_t done = 0;
  for (uint8_t i = 1; done < out.size() && i <= 2; ++i) {
    c = inner;
    if (t_len > 0) SHA1_Update(&c, t, t_len);
    SHA1_Update(&c, kSubkeyInfo.data(), kSubkeyInfo.size());
    SHA1_Update(&c, &i, 1);
    SHA1_Final(t, &c);
    c = outer;
    SHA1_Update(&c, t, sizeof t);
    SHA1_Final(t, &c);
    t_len = kSha1Len;
    const size_t take = std::min(kSha1Len, out.size() - done);
    std::memcpy(out.data() + done, t, take);
    done += take;
  }
  OPENSSL_cleanse(&c, sizeof c);
  OPENSSL_cleanse(&inner, sizeof inner);
  OPENSSL_cleanse(&outer, sizeof outer);
  secure_zero(pad);
  secure_zero(prk);
  secure_zero(t);
}

bool hkdf_sha1(std::span<const uint8_t> ikm, std::span<const uint8_t> salt, std::string_view info,
               std::span<uint8_t> out) {
  if (out.empty()) return true;
  if (out.size() > 255 * kSha1Len) return false;
  // Extract: PRK = HMAC(salt, IKM); an absent salt is a block of zeros (RFC 5869 section 2.2).
  uint8_t zeros[kSha1Len] = {};
  uint8_t prk[kSha1Len];
  std::span<const uint8_t> extract_key = salt.empty() ? std::span<const uint8_t>(zeros) : salt;
  if (!hmac_sha1(extract_key, ikm, {}, {}, prk)) return false;
  // Expand: T(i) = HMAC(PRK, T(i-1) || info || i).
  std::span<const uint8_t> info_bytes(reinterpret_cast<const uint8_t*>(info.data()), info.size());
  uint8_t t[kSha1Len];
  size_t t_len = 0;
  size_t done = 0;
  bool ok = true;
  for (uint8_t i = 1; done < out.size(); ++i) {
    const uint8_t counter[1] = {i};
    ok = hmac_sha1(prk, {t, t_len}, info_bytes, counter, t);
    if (!ok) break;
    t_len = kSha1Len;
    const size_t take = std::min(kSha1Len, out.size() - done);
    std::memcpy(out.data() + done, t, take);
    done += take;
  }
  secure_zero(prk);
  secure_zero(t);
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
