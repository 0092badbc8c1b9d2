// Classic AEAD UDP packets: the §6.4(g) vector, round trips, truncation, corruption, size limits.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/udp_packet.h"
#include "tests/crypto/test_util.h"

using ss::test::from_hex;
using ss::test::to_hex;

namespace {

constexpr size_t kMaxUdpPayload = 65507;

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::vector<uint8_t> seal(ss::Aead& aead, const std::vector<uint8_t>& key,
                          const std::vector<uint8_t>& pt) {
  std::vector<uint8_t> out(ss::udp_sealed_size(aead.spec(), pt.size()));
  const size_t n = ss::udp_seal(aead, key, pt.data(), pt.size(), out.data());
  REQUIRE(n == out.size());
  return out;
}

}  // namespace

TEST_CASE("§6.4(g) classic UDP packet: subkey, exact bytes, udp_open", "[crypto]") {
  const ss::CipherSpec& spec = ss::test::cipher("aes-128-gcm");
  const std::vector<uint8_t> key = ss::derive_master_key("password", spec.key_len);
  REQUIRE(to_hex(key) == "5f4dcc3b5aa765d61d8327deb882cf99");
  const std::vector<uint8_t> packet = from_hex(
      "000102030405060708090a0b0c0d0e0f5d51eb74016db72edf50b8847ceb0f8eb20d56131e36cff055ae2293");
  const std::vector<uint8_t> pt = from_hex("017f00000114e968656c6c6f");
  const std::vector<uint8_t> salt(packet.begin(), packet.begin() + 16);

  std::vector<uint8_t> subkey(16);
  REQUIRE(ss::hkdf_sha1(key, salt, "ss-subkey", subkey));
  CHECK(to_hex(subkey) == "ed2a618d9490d1701de885d82aa80616");

  // Sealing with this fixed salt (subkey + all-zero nonce) reproduces the packet exactly.
  ss::Aead manual(spec);
  REQUIRE(manual.set_key(subkey));
  const std::vector<uint8_t> zero_nonce(spec.nonce_len, 0);
  std::vector<uint8_t> body(pt.size() + spec.tag_len);
  REQUIRE(manual.seal(zero_nonce.data(), pt.data(), pt.size(), body.data()));
  CHECK(std::equal(body.begin(), body.end(), packet.begin() + 16, packet.end()));

  ss::Aead aead(spec);
  std::vector<uint8_t> out(packet.size());
  const auto n = ss::udp_open(aead, key, packet.data(), packet.size(), out.data());
  REQUIRE(n.has_value());
  CHECK(*n == pt.size());
  CHECK(std::equal(pt.begin(), pt.end(), out.begin()));
}

TEST_CASE("UDP round trips every cipher and size, with a fresh salt per packet", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = ss::derive_master_key("udp secret", spec.key_len);
    ss::Aead sealer(spec), opener(spec);  // scratch contexts, re-keyed per packet
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1400}, kMaxUdpPayload}) {
      INFO("payload " << n);
      const std::vector<uint8_t> pt = pattern(n, static_cast<uint32_t>(n));
      const std::vector<uint8_t> a = seal(sealer, key, pt);
      const std::vector<uint8_t> b = seal(sealer, key, pt);
      CHECK(a.size() == spec.salt_len + n + spec.tag_len);
      CHECK_FALSE(std::equal(a.begin(), a.begin() + static_cast<long>(spec.salt_len), b.begin()));
      for (const auto* packet : {&a, &b}) {
        std::vector<uint8_t> out(packet->size());
        const auto got = ss::udp_open(opener, key, packet->data(), packet->size(), out.data());
        REQUIRE(got.has_value());
        CHECK(*got == n);
        CHECK(std::equal(pt.begin(), pt.end(), out.begin()));
      }
    }
  }
}

TEST_CASE("UDP in place: payload after the salt headroom, plaintext over the ciphertext",
          "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = ss::derive_master_key("in place", spec.key_len);
    ss::Aead aead(spec);
    const std::vector<uint8_t> pt = pattern(500, 3);
    std::vector<uint8_t> buf(ss::udp_sealed_size(spec, pt.size()));
    std::copy(pt.begin(), pt.end(), buf.begin() + static_cast<long>(spec.salt_len));
    REQUIRE(ss::udp_seal(aead, key, buf.data() + spec.salt_len, pt.size(), buf.data()) ==
            buf.size());
    const auto n = ss::udp_open(aead, key, buf.data(), buf.size(), buf.data() + spec.salt_len);
    REQUIRE(n.has_value());
    CHECK(*n == pt.size());
    CHECK(std::equal(pt.begin(), pt.end(), buf.begin() + static_cast<long>(spec.salt_len)));
  }
}

TEST_CASE("UDP rejects truncated, corrupted, foreign and random packets", "[crypto]") {
  std::mt19937 rng(99);
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = ss::derive_master_key("udp secret", spec.key_len);
    ss::Aead aead(spec);
    const std::vector<uint8_t> packet = seal(aead, key, pattern(40, 5));
    std::vector<uint8_t> out(kMaxUdpPayload + 64);

    for (size_t n : {size_t{0}, size_t{1}, spec.salt_len - 1, spec.salt_len,
                     spec.salt_len + spec.tag_len - 1}) {
      INFO("truncated to " << n);
      CHECK_FALSE(ss::udp_open(aead, key, packet.data(), n, out.data()).has_value());
    }
    CHECK_FALSE(ss::udp_open(aead, key, nullptr, 0, out.data()).has_value());
    // Any shorter prefix fails authentication.
    for (size_t n = spec.salt_len + spec.tag_len; n < packet.size(); ++n) {
      CHECK_FALSE(ss::udp_open(aead, key, packet.data(), n, out.data()).has_value());
    }
    // An empty payload is the shortest valid packet.
    const std::vector<uint8_t> empty = seal(aead, key, {});
    REQUIRE(empty.size() == spec.salt_len + spec.tag_len);
    CHECK(ss::udp_open(aead, key, empty.data(), empty.size(), out.data()) == size_t{0});

    size_t accepted = 0;
    for (size_t i = 0; i < packet.size(); ++i) {
      std::vector<uint8_t> bad(packet);
      bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
      if (ss::udp_open(aead, key, bad.data(), bad.size(), out.data())) ++accepted;
    }
    CHECK(accepted == 0);

    const std::vector<uint8_t> other = ss::derive_master_key("other secret", spec.key_len);
    CHECK_FALSE(ss::udp_open(aead, other, packet.data(), packet.size(), out.data()));
    const std::vector<uint8_t> short_key(key.begin(), key.end() - 1);
    CHECK_FALSE(ss::udp_open(aead, short_key, packet.data(), packet.size(), out.data()));
    std::vector<uint8_t> sealed(ss::udp_sealed_size(spec, 4));
    const uint8_t four[4] = {1, 2, 3, 4};
    CHECK(ss::udp_seal(aead, short_key, four, 4, sealed.data()) == 0);

    // Random datagrams of every size class, up to the largest UDP payload.
    for (size_t n :
         {size_t{1}, spec.salt_len + spec.tag_len, size_t{100}, size_t{1500}, kMaxUdpPayload}) {
      std::vector<uint8_t> junk(n);
      for (uint8_t& b : junk) b = static_cast<uint8_t>(rng());
      CHECK_FALSE(ss::udp_open(aead, key, junk.data(), junk.size(), out.data()).has_value());
    }
    // Still usable after all the failures.
    CHECK(ss::udp_open(aead, key, packet.data(), packet.size(), out.data()) == size_t{40});
  }
}
