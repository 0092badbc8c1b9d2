#pragma once
// Shared by the Shadowsocks 2022 targets (fuzz_tcp2022, fuzz_udp2022): the known keys, the
// setup byte that picks method and users, and target address headers.
//
// Keys, each key_len bytes counting up from its first byte (the protocol.md §6.4 worked examples
// use the first three, so the §6.4 flights in the seed corpora open):
//   PSK             00 01 02 ...   (no users)
//   iPSK            a0 a1 a2 ...   (SIP023: the server's identity key)
//   user k's uPSK   b0+16k ...     (k = 0, 1, 2: users "u0", "u1", "u2"; §6.4 (e)/(f) use u0)
//   stranger        e0 e1 e2 ...   (a well-formed uPSK no server knows)
// Timestamps: the examples' kT0.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crypto/aead2022.h"
#include "tests/fuzz/fuzz_util.h"

namespace ss::fuzz {

inline constexpr uint64_t kT0 = 1700000000;
inline constexpr size_t kUsers = 3;
inline constexpr size_t kStranger = kUsers;  // user index of the key no server knows

inline std::vector<uint8_t> counting_key(size_t len, uint8_t first) {
  std::vector<uint8_t> k(len);
  for (size_t i = 0; i < len; ++i) k[i] = static_cast<uint8_t>(first + i);
  return k;
}

struct Setup2022 {
  const Method2022* method = nullptr;
  bool users = false;  // SIP023: the server has a users table, requests carry an identity header
  size_t user = 0;     // the client's user, 0..kStranger (only with users)

  bool aes() const { return method->kind != Kind2022::ChaCha20Poly1305; }
  // The server's key: the PSK, or with users the iPSK.
  std::vector<uint8_t> server_key() const {
    return counting_key(method->key_len, users ? 0xa0 : 0x00);
  }
  // User k's uPSK (kStranger: the unknown one).
  std::vector<uint8_t> user_key(size_t k) const {
    return counting_key(method->key_len,
                        static_cast<uint8_t>(k == kStranger ? 0xe0 : 0xb0 + 16 * k));
  }
  static std::string user_name(size_t k) { return "u" + std::to_string(k); }
  // A client's parsed password: [PSK], or with users [iPSK, uPSK of user k].
  std::vector<std::vector<uint8_t>> client_keys(size_t k) const {
    if (!users) return {server_key()};
    return {server_key(), user_key(k)};
  }
};

// The setup byte c: method c % 3 (methods_2022() order: aes-128, aes-256, chacha20); users when
// (c / 3) % 2 == 1 and the method is AES; the client's user (c / 6) % 4 (3: the stranger).
inline Setup2022 decode_setup(uint8_t c) {
  Setup2022 s;
  const std::span<const Method2022> methods = methods_2022();
  s.method = &methods[c % methods.size()];
  s.users = (c / 3) % 2 == 1 && s.aes();
  s.user = s.users ? (c / 6) % (kUsers + 1) : 0;
  return s;
}

// A well-formed address header (ATYP, address, port) of kind % 3: IPv4, IPv6 or a domain of
// 1..255 bytes, the contents drawn from rng.
inline std::vector<uint8_t> address_header(unsigned kind, Rng& rng) {
  std::vector<uint8_t> a;
  switch (kind % 3) {
    case 0:
      a.assign(1 + 4 + 2, 0);
      a[0] = 0x01;
      break;
    case 1:
      a.assign(1 + 16 + 2, 0);
      a[0] = 0x04;
      break;
    default: {
      const size_t len = 1 + rng.below(255);
      a.assign(1 + 1 + len + 2, 0);
      a[0] = 0x03;
      a[1] = static_cast<uint8_t>(len);
      break;
    }
  }
  for (size_t i = a[0] == 0x03 ? 2 : 1; i < a.size(); ++i) a[i] = static_cast<uint8_t>(rng.next());
  return a;
}

// Length of the address header at the start of p as the 2022 codecs check it (type, size, a
// non-empty domain); 0 if there is none.
inline size_t address_header_len(std::span<const uint8_t> p) {
  if (p.empty()) return 0;
  size_t len = 0;
  switch (p[0]) {
    case 0x01:
      len = 1 + 4 + 2;
      break;
    case 0x04:
      len = 1 + 16 + 2;
      break;
    case 0x03:
      if (p.size() < 2 || p[1] == 0) return 0;
      len = 1 + 1 + size_t{p[1]} + 2;
      break;
    default:
      return 0;
  }
  return len <= p.size() ? len : 0;
}

// Is `part` a prefix of `whole`?
inline bool is_prefix(std::span<const uint8_t> part, std::span<const uint8_t> whole) {
  return part.size() <= whole.size() && std::equal(part.begin(), part.end(), whole.begin());
}

}  // namespace ss::fuzz
