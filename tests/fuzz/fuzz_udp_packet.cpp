// Fuzzes classic AEAD UDP packets (crypto/udp_packet.h) under one known master key:
// EVP_BytesToKey(MD5) of "password", whose 16-byte prefix is the key of protocol.md §6.4 (g), so
// that vector (aes-128-gcm) in the seed corpus opens.
//
// Input: [cipher selector][packet bytes...].
//   1. udp_open on the packet, into a buffer of exactly n bytes and in place (out = in + salt):
//      both agree, and Ok means exactly n - salt - tag bytes;
//   2. round trip: udp_seal the packet bytes as plaintext into exactly udp_sealed_size() bytes,
//      open it back (both ways) to the same plaintext, and check that a flipped bit (position
//      chosen by the input) or a truncation never opens.

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "crypto/aead.h"
#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "crypto/udp_packet.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using ss::fuzz::ExactBuffer;

const std::vector<uint8_t>& master_key() {
  static const std::vector<uint8_t> key = derive_master_key("password", kMaxKeyLen);
  return key;
}

std::span<const uint8_t> key_for(const CipherSpec& spec) {
  return {master_key().data(), spec.key_len};
}

struct Opened {
  std::optional<size_t> len;
  std::vector<uint8_t> plaintext;
};

// Opens into a separate buffer of exactly n bytes and in place; both must agree.
Opened open_both(Aead& aead, const CipherSpec& spec, std::span<const uint8_t> packet) {
  const size_t n = packet.size();
  ExactBuffer in(n);
  if (n > 0) std::memcpy(in.data(), packet.data(), n);
  ExactBuffer out(n);
  Opened r;
  r.len = udp_open(aead, key_for(spec), in.data(), n, out.data());
  if (r.len) {
    FUZZ_CHECK(n >= spec.salt_len + spec.tag_len);
    FUZZ_CHECK(*r.len == n - spec.salt_len - spec.tag_len);
    r.plaintext.assign(out.data(), out.data() + *r.len);
  }
  if (n >= spec.salt_len) {
    const std::optional<size_t> again =
        udp_open(aead, key_for(spec), in.data(), n, in.data() + spec.salt_len);
    FUZZ_CHECK(again == r.len);
    if (again) {
      FUZZ_CHECK(std::equal(r.plaintext.begin(), r.plaintext.end(), in.data() + spec.salt_len));
    }
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::span<const CipherSpec> ciphers = classic_ciphers();
  const CipherSpec& spec = ciphers[data[0] % ciphers.size()];
  const std::span<const uint8_t> packet(data + 1, size - 1);
  Aead aead(spec);

  const Opened got = open_both(aead, spec, packet);
  if (packet.size() < spec.salt_len + spec.tag_len) FUZZ_CHECK(!got.len);

  // Round trip with the packet bytes as plaintext.
  const size_t sealed_len = udp_sealed_size(spec, packet.size());
  ExactBuffer sealed(sealed_len);
  FUZZ_CHECK(udp_seal(aead, key_for(spec), packet.data(), packet.size(), sealed.data()) ==
             sealed_len);
  std::vector<uint8_t> wire(sealed.data(), sealed.data() + sealed_len);
  const Opened back = open_both(aead, spec, wire);
  FUZZ_CHECK(back.len == packet.size());
  FUZZ_CHECK(
      std::equal(back.plaintext.begin(), back.plaintext.end(), packet.begin(), packet.end()));

  // In-place sealing (pt == out + salt_len) gives a packet that opens to the same plaintext.
  ExactBuffer in_place(sealed_len);
  if (!packet.empty()) std::memcpy(in_place.data() + spec.salt_len, packet.data(), packet.size());
  FUZZ_CHECK(udp_seal(aead, key_for(spec), in_place.data() + spec.salt_len, packet.size(),
                      in_place.data()) == sealed_len);
  const Opened back2 = open_both(aead, spec, std::span<const uint8_t>(in_place.data(), sealed_len));
  FUZZ_CHECK(back2.len == packet.size() && back2.plaintext == back.plaintext);

  // Any flipped bit, or any truncation, must fail to open.
  const uint64_t h = ss::fuzz::hash_bytes(packet);
  std::vector<uint8_t> flipped = wire;
  flipped[h % flipped.size()] ^= static_cast<uint8_t>(1u << ((h >> 32) % 8));
  FUZZ_CHECK(!open_both(aead, spec, flipped).len);
  const size_t cut = (h >> 40) % wire.size();
  FUZZ_CHECK(!open_both(aead, spec, std::span<const uint8_t>(wire.data(), cut)).len);
  return 0;
}
