// Fuzzes the classic AEAD TCP stream codec (crypto/stream.h) under one fixed master key: the
// protocol.md §6.2 key for the password "密码" (16- and 24-byte keys are its prefixes), so the
// §6.2 streams in the seed corpus decrypt.
//
// Input: [cipher selector][split seed][stream bytes...]. The selector picks one of
// classic_ciphers(); the seed drives the split points (and the round trip below).
//   1. Decrypt the bytes as a stream, fed in input-chosen pieces: each feed releases at most
//      max_output(n) (the output buffer is exactly that big, so ASan sees any overrun), Ok means
//      bytes released and NeedMore none, Error is sticky, the held bytes stay bounded, and the
//      released plaintext and the outcome equal those of one feed of the whole stream.
//   2. Round trip: seal the stream bytes as plaintext (input-chosen seal sizes, salt from the
//      seed, sometimes stretched past one chunk) and require the exact plaintext back through an
//      input-chosen split; then flip one input-chosen bit and require that decryption fails and
//      releases only a prefix of the plaintext.

#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "crypto/cipher_spec.h"
#include "crypto/stream.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;
using ss::fuzz::ExactBuffer;
using ss::fuzz::Rng;

// EVP_BytesToKey(MD5) of "密码" (protocol.md §6.2).
constexpr uint8_t kMasterKey[32] = {
    0xa8, 0x10, 0x52, 0x04, 0x60, 0x4a, 0x0b, 0x11, 0xe9, 0x16, 0xf3, 0x87, 0x9a, 0xae, 0x3b, 0x0b,
    0xce, 0x5c, 0x69, 0xf7, 0x58, 0x51, 0x41, 0x49, 0xda, 0x60, 0x5a, 0xbb, 0xf1, 0x68, 0x01, 0x94};

std::span<const uint8_t> key_for(const CipherSpec& spec) {
  return {kMasterKey, spec.key_len};
}

struct Outcome {
  std::vector<uint8_t> plaintext;
  bool error = false;
  bool authenticated = false;
};

// Feeds `stream` in pieces chosen by `rng` (or whole when rng is null), checking every feed.
Outcome decrypt(const CipherSpec& spec, std::span<const uint8_t> stream, Rng* rng) {
  StreamDecryptor dec(spec, key_for(spec));
  Outcome o;
  size_t pos = 0;
  do {
    const size_t n = rng ? rng->piece(std::max<size_t>(stream.size() - pos, 1)) : stream.size();
    const size_t take = std::min(n, stream.size() - pos);
    const size_t cap = dec.max_output(take);
    FUZZ_CHECK(cap >= take);
    ExactBuffer out(cap);
    // An empty feed is legal; pass a real pointer either way.
    const uint8_t* in = stream.data() + pos;
    const StreamDecryptor::Result r = dec.feed(in, take, out.data());
    pos += take;
    FUZZ_CHECK(r.produced <= cap);
    o.plaintext.insert(o.plaintext.end(), out.data(), out.data() + r.produced);
    ss::fuzz::check_feed(r.status, r.produced, o.error);
    // What is held is at most one block: a partial salt, length block or payload block.
    FUZZ_CHECK(dec.buffered() <= std::max(spec.salt_len, kMaxChunkPayload + spec.tag_len));
    if (o.error) FUZZ_CHECK(dec.buffered() == 0);
  } while (pos < stream.size());
  if (o.error) ss::fuzz::check_still_failed(dec);
  o.authenticated = dec.authenticated();
  FUZZ_CHECK(o.plaintext.size() <= stream.size());
  return o;
}

void round_trip(const CipherSpec& spec, std::span<const uint8_t> data, Rng& rng) {
  std::vector<uint8_t> salt(spec.salt_len);
  for (uint8_t& b : salt) b = static_cast<uint8_t>(rng.next());
  std::vector<uint8_t> plaintext(data.begin(), data.end());
  if (!plaintext.empty() && rng.below(8) == 0) {
    // Stretch past one chunk so multi-chunk seals and 0x3FFF boundaries are exercised.
    const size_t target = kMaxChunkPayload - 2 + rng.below(2 * kMaxChunkPayload);
    while (plaintext.size() < target) {
      plaintext.insert(plaintext.end(), data.begin(),
                       data.begin() + static_cast<std::ptrdiff_t>(
                                          std::min(data.size(), target - plaintext.size())));
    }
  }

  StreamEncryptor enc(spec, key_for(spec), salt);
  FUZZ_CHECK(std::equal(enc.salt().begin(), enc.salt().end(), salt.begin(), salt.end()));
  std::vector<uint8_t> stream;
  for (size_t pos = 0; pos < plaintext.size();) {
    const size_t n = rng.piece(plaintext.size() - pos);
    const size_t expect = enc.sealed_size(n);
    ExactBuffer out(expect);
    const size_t wrote = enc.seal(plaintext.data() + pos, n, out.data());
    FUZZ_CHECK(wrote == expect);
    stream.insert(stream.end(), out.data(), out.data() + wrote);
    pos += n;
  }
  FUZZ_CHECK(enc.sealed_size(0) == 0);

  const Outcome o = decrypt(spec, stream, &rng);
  FUZZ_CHECK(!o.error);
  FUZZ_CHECK(o.plaintext == plaintext);
  FUZZ_CHECK(o.authenticated == !plaintext.empty());
  if (stream.empty()) return;

  // Every byte of a sealed stream is authenticated: one flipped bit must fail, and only whole
  // chunks before it may have been released.
  const size_t at = rng.below(stream.size());
  stream[at] ^= static_cast<uint8_t>(1u << rng.below(8));
  const Outcome bad = decrypt(spec, stream, &rng);
  FUZZ_CHECK(bad.error);
  FUZZ_CHECK(bad.plaintext.size() <= plaintext.size());
  FUZZ_CHECK(std::equal(bad.plaintext.begin(), bad.plaintext.end(), plaintext.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::span<const CipherSpec> ciphers = classic_ciphers();
  const CipherSpec& spec = ciphers[data[0] % ciphers.size()];
  Rng rng(data[1] * 0x0101010101010101ULL ^ size);
  const std::span<const uint8_t> stream(data + 2, size - 2);

  const Outcome whole = decrypt(spec, stream, nullptr);
  const Outcome split = decrypt(spec, stream, &rng);
  FUZZ_CHECK(split.plaintext == whole.plaintext);
  FUZZ_CHECK(split.error == whole.error);
  FUZZ_CHECK(split.authenticated == whole.authenticated);

  round_trip(spec, stream, rng);
  return 0;
}
