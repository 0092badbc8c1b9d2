#pragma once
// Shared helpers and protocol.md §6 vectors for the crypto tests.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cipher_spec.h"

namespace ss::test {

inline std::vector<uint8_t> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    return static_cast<uint8_t>(c - 'A' + 10);
  };
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return out;
}

inline std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 0xF];
  }
  return s;
}

inline std::vector<uint8_t> bytes_of(std::string_view s) {
  return {s.begin(), s.end()};
}

inline const CipherSpec& cipher(std::string_view name) {
  const CipherSpec* spec = find_cipher(name);
  if (spec == nullptr) throw std::string("unknown cipher in test: ") + std::string(name);
  return *spec;
}

// §6.2: password 密码, every stream is salt || chunk(7 bytes) || chunk(rest).
inline constexpr std::string_view kPassword62 = "\xe5\xaf\x86\xe7\xa0\x81";
inline constexpr std::string_view kMasterKey62 =
    "a8105204604a0b11e916f3879aae3b0bce5c69f758514149da605abbf1680194";
inline constexpr std::string_view kP1 =
    "Glib jocks quiz nymph to vex dwarf.1145141919810!"
    "\xe8\xbf\x99\xe6\x98\xaf\xe5\x8e\x9f\xe6\x96\x87\xef\xbc\x81";
inline constexpr std::string_view kP2 = "\xe8\xbf\x99\xe6\x98\xaf\xe5\x8e\x9f\xe6\x96\x87";

struct StreamVector {
  std::string_view method;
  std::string_view plaintext;
  std::string_view stream_hex;
};

inline constexpr StreamVector kStreams62[] = {
    {"aes-128-gcm", kP1,
     "9b0006e19ff614e5eb44a5c9190268d243b5356463c8760d52db2dcb4ca3cd00747f4237ba8e94d3e498e0d8101d"
     "7610752766785190b9a869d3aee3db4db5411eea5a6b0e16d1bbd469bfab72a8cc6745a70b71472ec76aa189363c"
     "f5d71d98f46a6dbde1acca5de7083c8e27dc386daa6c460540eea8f0d223e8d890d34f45cd5b912b7fcfc3cc2015"
     "6d1cbbd3066e5cadce99"},
    {"aes-128-gcm", kP2,
     "c3b3e419f8de8c2d4701d94f5258915a967bf7b27a9e97e4cee0c00d67caa7c992f4f41d83109f0a9a6710871501"
     "b64851ffa1588c0603c168e00a4ac50b4d729203aecfddd1475b78e338bfe943662fe25f2fe49afc1f5eb0038911"
     "3d417e5e"},
    {"aes-192-gcm", kP1,
     "f3cebc6fb635c16cf1c5d7dfc1350c9c5fd1c51bdd93c68b49be9a856c9230db07e8619cea8c05cf66417fd19628"
     "38b822e455f915b594393a6486041c740e41470986d32e091461d5fe2739888195db181909e13fe867764fca8730"
     "a437709a577f486cccabdc2f3918d4d0fa3fb96fddc35d8ae6d18073c54570aed05291c558d2817b3a1ef23af4be"
     "14a36c297d034844f1780de3b6f7c143ac9a"},
    {"aes-192-gcm", kP2,
     "c58266923546894ea26c786e1cb6e35a4a15ac9b5ba83cbdf43187f7b1d53bd0bb4e61821d519c71eb2fdcea0573"
     "aaaa0a7a0ba59a3e4e966b51750b2602c740f293720a31665f879332974ad715b0cd7a8e1428d9b7c4b71f5ed07c"
     "539f7f1a296dd39ffe354924"},
    {"aes-256-gcm", kP1,
     "4fb44de9876054b81d156438024560fc0ef0118e294eb0950490acc0f2083595ba06df583bafcb96e7ac2916e7d0"
     "64cc1f8e687aba688cb29e500cef11cb91223c17d62e0f8b7bc15d2ff7a18658f30e4e1b66a80cb3f70cfa110fce"
     "aa2c50a2271d533f3c15ba427a9ebf96cc7f0426d79c85e6dfbd3c7b26cd2a663629125feafe65659942d0fe2994"
     "5e3a80b6a7e253bb400c7f0f0fcad0eb3e455d66d178af51f51a"},
    {"aes-256-gcm", kP2,
     "5648a2d3e86fe68d7c137ad894294f8e8b57ce55eb545cb7da69b93708e2a689a4a8798171d001ed9ef8d3e1b1c8"
     "9d862604ce7e0803584719ea65e0c4025800187a0e0a2c5408519e93b2279358fb81842e9c913a76ee93ee25d4dd"
     "bfb4729fcc64411054411a01a4ada4f22c5e401e"},
    {"chacha20-ietf-poly1305", kP1,
     "8094ac0782801abeb1e60778767df9b4310cacf43d6e52f19371e19fcc7716dd5ccf2b739de27db535ab0571ebeb"
     "2b30a3652ffedfaa77d47d9a97f21b015d056902d4aa198cc2e5588a8dddd36a8abd9dd3154c3837e86cf36f6471"
     "eead1166ed485cd4da93fd7caa27be5682788cf61e36371ab700803e18633b1011dd08df6553df8b7e5adc7bfc6c"
     "2f58b531039b044437f74f86a739dc70410f5db04b387988cc8e"},
    {"chacha20-ietf-poly1305", kP2,
     "8bd996a259f861d54c4b27e740a6ad23381631dae3ab69e5c0377625752fa0f5dc68c4ae6a4c6b2c4f6bdda92ffa"
     "d4e11fbf5b63bf05809d419cd0b562e927b370c627f14f42b18e146c832bfb6e6bd1f58cc71333ac60943d5592a8"
     "f8148687d6008defd21c791fc199efe26dc136e5"},
    {"xchacha20-ietf-poly1305", kP1,
     "72771304872876d38cfbf36aaabece33a08b68d4649f35de5ed93d3d16d1481e0cf9959111c2c474f51294d72a57"
     "dca30e4b9188999885e313ba10d62531d1ffa4454a97d38861169a2b30d9555ba701e55327cb5162b9dd8d9d0815"
     "e027d33452a5288641e956ae65860475f64392faec12428e705ba001229563fa15a4ded235039b55b749d9bc6f04"
     "3398d73863f89f74b875c5824f0c313d3e1e211485f7837fde0c"},
    {"xchacha20-ietf-poly1305", kP2,
     "1dca4629620bfecd77133488d3e34d9594155982cf514f554f8d0332a4007742979d66ac9524d52d03d82bad6594"
     "da985a20b53a52138b5dfc95e9ead17f1e7281568e90111b0b8d26dd11a74eb36457de35505dbb99d91ef4a4848f"
     "a9c4dffb1e5938c1a9537b3c09f1bcba762a2f64"},
};

// §6.2 negative vector (aes-128-gcm, password 密码): the first length decrypts to 0x4000.
inline constexpr std::string_view kNegative62 =
    "9fe197e9b49097273bd814f2955f2056527fcedc730b1c28b37f37520900ad518fb91bd61e4b8226cdb5a69109c7"
    "13e2c37db1ffb980b09aafc3a56857df3eec3cb3b10edd9aa8e257851cff2250d4cbc952cf9c5103e8311c4e9b18"
    "fa68e0734716294747c1abcc906be8a0ce33d41438795cd682cdf7b4e1949b398656543ca03ed7af3cfbcb670064"
    "6c241baa3bb39a3f175f5d127d27649876cb055d8b271f48a5abeead43ad5f9d9ac2d47b12997fa8d45f4c370dd4"
    "9b683c772b30ed092f6326980c5c";

}  // namespace ss::test
