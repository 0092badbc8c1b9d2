// The cipher table and the Aead backends (seal/open, in place, re-keying, tag failures), with a
// cross-check of the OpenSSL ChaCha20-Poly1305 and AES-256-GCM paths against libsodium.

#include <sodium.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crypto/aead.h"
#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "tests/crypto/test_util.h"

namespace {

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

bool all_equal(const uint8_t* p, size_t n, uint8_t value) {
  return std::all_of(p, p + n, [value](uint8_t b) { return b == value; });
}

const size_t kSizes[] = {0, 1, 2, 15, 16, 17, 63, 64, 1000, 0x3FFF, 65507};

}  // namespace

TEST_CASE("cipher table: names, sizes and unknown methods", "[crypto]") {
  struct Expected {
    std::string_view name;
    ss::CipherKind kind;
    size_t key, nonce;
  };
  const Expected expected[] = {
      {"aes-128-gcm", ss::CipherKind::Aes128Gcm, 16, 12},
      {"aes-192-gcm", ss::CipherKind::Aes192Gcm, 24, 12},
      {"aes-256-gcm", ss::CipherKind::Aes256Gcm, 32, 12},
      {"chacha20-ietf-poly1305", ss::CipherKind::ChaCha20Poly1305, 32, 12},
      {"xchacha20-ietf-poly1305", ss::CipherKind::XChaCha20Poly1305, 32, 24},
  };
  for (const Expected& e : expected) {
    INFO(e.name);
    const ss::CipherSpec* spec = ss::find_cipher(e.name);
    REQUIRE(spec != nullptr);
    CHECK(spec->name == e.name);
    CHECK(spec->kind == e.kind);
    CHECK(spec->key_len == e.key);
    CHECK(spec->salt_len == e.key);
    CHECK(spec->nonce_len == e.nonce);
    CHECK(spec->tag_len == 16);
  }
  const auto all = ss::classic_ciphers();
  REQUIRE(all.size() == 5);
  std::set<std::string_view> names;
  for (const ss::CipherSpec& c : all) {
    names.insert(c.name);
    CHECK(ss::find_cipher(c.name) == &c);
    CHECK(c.key_len <= ss::kMaxKeyLen);
    CHECK(c.salt_len <= ss::kMaxSaltLen);
    CHECK(c.nonce_len <= ss::kMaxNonceLen);
  }
  CHECK(names.size() == 5);
  for (std::string_view unknown :
       {"", "AES-128-GCM", "aes-128-gcm ", " aes-128-gcm", "aes-128", "rc4-md5", "aes-256-cfb",
        "chacha20-poly1305", "chacha20-ietf", "2022-blake3-aes-128-gcm", "none", "plain"}) {
    INFO("'" << std::string(unknown) << "'");
    CHECK(ss::find_cipher(unknown) == nullptr);
  }
}

TEST_CASE("increment_nonce is a little-endian counter", "[crypto]") {
  uint8_t n[3] = {0xfe, 0xff, 0x00};
  ss::increment_nonce(n, 3);
  CHECK((n[0] == 0xff && n[1] == 0xff && n[2] == 0x00));
  ss::increment_nonce(n, 3);
  CHECK((n[0] == 0x00 && n[1] == 0x00 && n[2] == 0x01));
  uint8_t all[2] = {0xff, 0xff};
  ss::increment_nonce(all, 2);
  CHECK((all[0] == 0 && all[1] == 0));
}

TEST_CASE("Aead round trips every cipher and size, out of place and in place", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    ss::Aead aead(spec);
    const std::vector<uint8_t> key = pattern(spec.key_len, 1);
    REQUIRE(aead.set_key(key));
    std::vector<uint8_t> nonce = pattern(spec.nonce_len, 2);
    for (size_t n : kSizes) {
      INFO("size " << n);
      const std::vector<uint8_t> pt = pattern(n, static_cast<uint32_t>(n));
      std::vector<uint8_t> sealed(n + spec.tag_len);
      REQUIRE(aead.seal(nonce.data(), pt.data(), n, sealed.data()));
      if (n >= 16) CHECK(!std::equal(pt.begin(), pt.end(), sealed.begin()));

      // In place gives the same bytes.
      std::vector<uint8_t> inplace(pt);
      inplace.resize(n + spec.tag_len);
      REQUIRE(aead.seal(nonce.data(), inplace.data(), n, inplace.data()));
      CHECK(inplace == sealed);

      std::vector<uint8_t> opened(n + 1, 0xEE);
      REQUIRE(aead.open(nonce.data(), sealed.data(), sealed.size(), opened.data()));
      CHECK(std::equal(pt.begin(), pt.end(), opened.begin()));
      CHECK(opened[n] == 0xEE);  // exactly n bytes written

      REQUIRE(aead.open(nonce.data(), inplace.data(), inplace.size(), inplace.data()));
      CHECK(std::equal(pt.begin(), pt.end(), inplace.begin()));
      ss::increment_nonce(nonce.data(), nonce.size());
    }
  }
}

TEST_CASE("Aead rejects a bad tag, ciphertext, nonce or key and wipes its output", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    ss::Aead aead(spec);
    const std::vector<uint8_t> key = pattern(spec.key_len, 3);
    REQUIRE(aead.set_key(key));
    const std::vector<uint8_t> nonce = pattern(spec.nonce_len, 4);
    const std::vector<uint8_t> pt = pattern(100, 5);
    std::vector<uint8_t> sealed(pt.size() + spec.tag_len);
    REQUIRE(aead.seal(nonce.data(), pt.data(), pt.size(), sealed.data()));

    for (size_t i = 0; i < sealed.size(); ++i) {
      INFO("flipped byte " << i);
      std::vector<uint8_t> bad(sealed);
      bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
      std::vector<uint8_t> out(pt.size(), 0xAA);
      CHECK_FALSE(aead.open(nonce.data(), bad.data(), bad.size(), out.data()));
      // Either untouched (libsodium verifies first) or wiped (OpenSSL): never the plaintext.
      CHECK((all_equal(out.data(), out.size(), 0xAA) || all_equal(out.data(), out.size(), 0)));
      // In place: the buffer keeps the ciphertext or is wiped.
      std::vector<uint8_t> inplace(bad);
      CHECK_FALSE(aead.open(nonce.data(), inplace.data(), inplace.size(), inplace.data()));
      CHECK((std::equal(inplace.begin(), inplace.begin() + pt.size(), bad.begin()) ||
             all_equal(inplace.data(), pt.size(), 0)));
    }
    std::vector<uint8_t> out(pt.size());
    std::vector<uint8_t> other_nonce(nonce);
    ss::increment_nonce(other_nonce.data(), other_nonce.size());
    CHECK_FALSE(aead.open(other_nonce.data(), sealed.data(), sealed.size(), out.data()));
    // Still usable after failures.
    REQUIRE(aead.open(nonce.data(), sealed.data(), sealed.size(), out.data()));
    CHECK(out == pt);

    ss::Aead other(spec);
    REQUIRE(other.set_key(pattern(spec.key_len, 6)));
    CHECK_FALSE(other.open(nonce.data(), sealed.data(), sealed.size(), out.data()));
    // Too short to hold a tag.
    CHECK_FALSE(aead.open(nonce.data(), sealed.data(), spec.tag_len - 1, out.data()));
    CHECK_FALSE(aead.open(nonce.data(), sealed.data(), 0, out.data()));
  }
}

TEST_CASE("Aead: key length checks, unkeyed use, re-keying, moves", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> nonce(spec.nonce_len, 0);
    const std::vector<uint8_t> pt = pattern(40, 7);
    std::vector<uint8_t> buf(pt.size() + spec.tag_len);

    ss::Aead aead(spec);
    CHECK(&aead.spec() == &spec);
    CHECK_FALSE(aead.seal(nonce.data(), pt.data(), pt.size(), buf.data()));  // no key yet
    CHECK_FALSE(aead.set_key(pattern(spec.key_len - 1, 8)));
    CHECK_FALSE(aead.set_key(pattern(spec.key_len + 1, 8)));
    CHECK_FALSE(aead.set_key({}));

    const std::vector<uint8_t> k1 = pattern(spec.key_len, 9), k2 = pattern(spec.key_len, 10);
    REQUIRE(aead.set_key(k1));
    std::vector<uint8_t> c1(buf.size()), c2(buf.size()), fresh(buf.size());
    REQUIRE(aead.seal(nonce.data(), pt.data(), pt.size(), c1.data()));
    REQUIRE(aead.set_key(k2));  // re-key the same context
    REQUIRE(aead.seal(nonce.data(), pt.data(), pt.size(), c2.data()));
    CHECK(c1 != c2);
    ss::Aead reference(spec);
    REQUIRE(reference.set_key(k2));
    REQUIRE(reference.seal(nonce.data(), pt.data(), pt.size(), fresh.data()));
    CHECK(c2 == fresh);
    CHECK_FALSE(aead.open(nonce.data(), c1.data(), c1.size(), buf.data()));
    REQUIRE(aead.open(nonce.data(), c2.data(), c2.size(), buf.data()));

    // Alternating seal and open on one context (the direction is set per message).
    for (int i = 0; i < 4; ++i) {
      REQUIRE(aead.seal(nonce.data(), pt.data(), pt.size(), c1.data()));
      REQUIRE(aead.open(nonce.data(), c1.data(), c1.size(), buf.data()));
      CHECK(std::equal(pt.begin(), pt.end(), buf.begin()));
    }

    ss::Aead moved(std::move(aead));
    REQUIRE(moved.open(nonce.data(), c2.data(), c2.size(), buf.data()));
    CHECK(&moved.spec() == &spec);
    ss::Aead assigned(spec);
    assigned = std::move(moved);
    REQUIRE(assigned.open(nonce.data(), c2.data(), c2.size(), buf.data()));
  }
}

TEST_CASE("OpenSSL ChaCha20-Poly1305 and AES-256-GCM agree with libsodium", "[crypto]") {
  REQUIRE(sodium_init() >= 0);
  const std::vector<uint8_t> key = pattern(32, 11);
  const std::vector<uint8_t> nonce = pattern(12, 12);
  ss::Aead chacha(ss::test::cipher("chacha20-ietf-poly1305"));
  ss::Aead aes(ss::test::cipher("aes-256-gcm"));
  REQUIRE(chacha.set_key(key));
  REQUIRE(aes.set_key(key));
  const bool have_aes = crypto_aead_aes256gcm_is_available() != 0;
  for (size_t n : kSizes) {
    INFO("size " << n);
    const std::vector<uint8_t> pt = pattern(n, 13);
    std::vector<uint8_t> ours(n + 16), theirs(n + 16);
    unsigned long long len = 0;
    REQUIRE(chacha.seal(nonce.data(), pt.data(), n, ours.data()));
    REQUIRE(crypto_aead_chacha20poly1305_ietf_encrypt(theirs.data(), &len, pt.data(), n, nullptr, 0,
                                                      nullptr, nonce.data(), key.data()) == 0);
    CHECK(ours == theirs);
    if (have_aes) {
      REQUIRE(aes.seal(nonce.data(), pt.data(), n, ours.data()));
      REQUIRE(crypto_aead_aes256gcm_encrypt(theirs.data(), &len, pt.data(), n, nullptr, 0, nullptr,
                                            nonce.data(), key.data()) == 0);
      CHECK(ours == theirs);
    }
  }
}
