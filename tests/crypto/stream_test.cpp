// Classic AEAD TCP framing: the §6.2 vectors (decrypt and bit-exact re-encrypt), arbitrary splits,
// chunk-size boundaries, tampering, reserved length bits, zero-length chunks, sticky errors,
// authenticated(), max_output() and the allocation behaviour of the data path.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/stream.h"
#include "tests/crypto/alloc_counter.h"
#include "tests/crypto/test_util.h"

namespace {

using ss::DecryptStatus;
using ss::kMaxChunkPayload;
using ss::test::from_hex;

constexpr size_t kLenBlock = 2 + ss::kTagLen;
constexpr size_t kCanary = 32;

std::vector<uint8_t> master_key(const ss::CipherSpec& spec) {
  return ss::derive_master_key("correct horse battery staple", spec.key_len);
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::vector<uint8_t> fixed_salt(const ss::CipherSpec& spec, uint8_t first = 0x40) {
  std::vector<uint8_t> salt(spec.salt_len);
  for (size_t i = 0; i < salt.size(); ++i) salt[i] = static_cast<uint8_t>(first + i);
  return salt;
}

// Seals each piece with one seal() call; checks sealed_size() is exact.
std::vector<uint8_t> seal_pieces(ss::StreamEncryptor& enc,
                                 const std::vector<std::vector<uint8_t>>& pieces) {
  std::vector<uint8_t> stream;
  for (const auto& piece : pieces) {
    const size_t expect = enc.sealed_size(piece.size());
    std::vector<uint8_t> out(expect + kCanary, 0x5A);
    const size_t wrote = enc.seal(piece.data(), piece.size(), out.data());
    CHECK(wrote == expect);
    CHECK(std::all_of(out.begin() + static_cast<long>(expect), out.end(),
                      [](uint8_t b) { return b == 0x5A; }));
    stream.insert(stream.end(), out.begin(), out.begin() + static_cast<long>(wrote));
  }
  return stream;
}

// Feeds pieces to a decryptor, checking the per-feed contract; violations are counted rather
// than asserted per byte (byte-by-byte runs make hundreds of thousands of feeds).
struct Feeder {
  ss::StreamDecryptor dec;
  std::vector<uint8_t> plain;
  std::vector<uint8_t> out;
  DecryptStatus last = DecryptStatus::NeedMore;
  size_t violations = 0;
  size_t fed = 0;
  size_t error_at = SIZE_MAX;  // stream offset just past the feed that first returned Error

  Feeder(const ss::CipherSpec& spec, const std::vector<uint8_t>& key) : dec(spec, key) {}

  DecryptStatus feed(const uint8_t* p, size_t n) {
    const size_t bound = dec.max_output(n);
    if (bound < n) ++violations;
    if (out.size() < bound + kCanary) out.resize(bound + kCanary);
    std::fill(out.begin() + static_cast<long>(bound),
              out.begin() + static_cast<long>(bound + kCanary), 0x5A);
    const auto r = dec.feed(p, n, out.data());
    fed += n;
    if (r.produced > bound) ++violations;
    for (size_t i = bound; i < bound + kCanary; ++i) {
      if (out[i] != 0x5A) ++violations;
    }
    if (r.status == DecryptStatus::Ok && r.produced == 0) ++violations;
    if (r.status == DecryptStatus::NeedMore && r.produced != 0) ++violations;
    if (last == DecryptStatus::Error && r.status != DecryptStatus::Error) ++violations;
    if (r.status == DecryptStatus::Error && error_at == SIZE_MAX) error_at = fed;
    plain.insert(plain.end(), out.begin(), out.begin() + static_cast<long>(r.produced));
    last = r.status;
    return r.status;
  }

  void feed_cuts(const std::vector<uint8_t>& stream, const std::vector<size_t>& lengths) {
    size_t pos = 0;
    for (size_t len : lengths) {
      feed(stream.data() + pos, len);
      pos += len;
    }
    if (pos < stream.size()) feed(stream.data() + pos, stream.size() - pos);
  }

  void feed_bytes(const std::vector<uint8_t>& stream) {
    for (size_t i = 0; i < stream.size(); ++i) feed(stream.data() + i, 1);
  }
};

std::vector<size_t> random_lengths(size_t total, std::mt19937& rng) {
  std::vector<size_t> lengths;
  const size_t max_piece = std::uniform_int_distribution<size_t>(1, 3)(rng) == 1 ? 40 : 40000;
  for (size_t pos = 0; pos < total;) {
    size_t len = std::uniform_int_distribution<size_t>(0, max_piece)(rng);  // 0: an empty feed
    len = std::min(len, total - pos);
    lengths.push_back(len);
    pos += len;
  }
  return lengths;
}

std::vector<uint8_t> concat(const std::vector<std::vector<uint8_t>>& pieces) {
  std::vector<uint8_t> all;
  for (const auto& p : pieces) all.insert(all.end(), p.begin(), p.end());
  return all;
}

// Writes chunks with arbitrary length fields, for crafting streams the encryptor never emits.
struct RawWriter {
  ss::Aead aead;
  std::vector<uint8_t> nonce;
  std::vector<uint8_t> bytes;

  RawWriter(const ss::CipherSpec& spec, const std::vector<uint8_t>& key,
            const std::vector<uint8_t>& salt)
      : aead(spec), nonce(spec.nonce_len, 0), bytes(salt) {
    std::vector<uint8_t> subkey(spec.key_len);
    REQUIRE(ss::hkdf_sha1(key, salt, "ss-subkey", subkey));
    REQUIRE(aead.set_key(subkey));
  }

  void seal(const uint8_t* p, size_t n) {
    const size_t at = bytes.size();
    bytes.resize(at + n + ss::kTagLen);
    REQUIRE(aead.seal(nonce.data(), p, n, bytes.data() + at));
    ss::increment_nonce(nonce.data(), nonce.size());
  }

  void chunk(uint16_t length_field, const std::vector<uint8_t>& payload) {
    const uint8_t len[2] = {static_cast<uint8_t>(length_field >> 8),
                            static_cast<uint8_t>(length_field & 0xFF)};
    seal(len, 2);
    seal(payload.data(), payload.size());
  }
  void chunk(const std::vector<uint8_t>& payload) {
    chunk(static_cast<uint16_t>(payload.size()), payload);
  }
};

}  // namespace

TEST_CASE("§6.2 streams decrypt to the exact plaintext for all five ciphers", "[crypto]") {
  const std::vector<uint8_t> master = from_hex(ss::test::kMasterKey62);
  for (const auto& v : ss::test::kStreams62) {
    const ss::CipherSpec& spec = ss::test::cipher(v.method);
    INFO(v.method << " / " << v.plaintext.size() << "-byte plaintext");
    const std::vector<uint8_t> key(master.begin(), master.begin() + spec.key_len);
    const std::vector<uint8_t> stream = from_hex(v.stream_hex);
    REQUIRE(stream.size() == spec.salt_len + v.plaintext.size() + 2 * 34);

    Feeder whole(spec, key);
    CHECK(whole.feed(stream.data(), stream.size()) == DecryptStatus::Ok);
    CHECK(whole.plain == ss::test::bytes_of(v.plaintext));
    CHECK(whole.dec.has_salt());
    CHECK(whole.dec.authenticated());
    CHECK(whole.dec.buffered() == 0);
    CHECK(std::equal(stream.begin(), stream.begin() + static_cast<long>(spec.salt_len),
                     whole.dec.salt().begin(), whole.dec.salt().end()));

    Feeder bytewise(spec, key);
    bytewise.feed_bytes(stream);
    CHECK(bytewise.plain == ss::test::bytes_of(v.plaintext));
    CHECK(bytewise.violations == 0);
    CHECK(bytewise.last == DecryptStatus::Ok);

    // Every two-piece split.
    size_t bad_splits = 0;
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
      Feeder two(spec, key);
      two.feed_cuts(stream, {cut});
      if (two.plain != ss::test::bytes_of(v.plaintext) || two.violations != 0) ++bad_splits;
    }
    CHECK(bad_splits == 0);
  }
}

TEST_CASE("§6.2 streams re-encrypt bit-exactly with the same salt and 7 + rest chunking",
          "[crypto]") {
  const std::vector<uint8_t> master = from_hex(ss::test::kMasterKey62);
  for (const auto& v : ss::test::kStreams62) {
    const ss::CipherSpec& spec = ss::test::cipher(v.method);
    INFO(v.method << " / " << v.plaintext.size() << "-byte plaintext");
    const std::vector<uint8_t> key(master.begin(), master.begin() + spec.key_len);
    const std::vector<uint8_t> stream = from_hex(v.stream_hex);
    const std::vector<uint8_t> salt(stream.begin(), stream.begin() + spec.salt_len);
    const std::vector<uint8_t> pt = ss::test::bytes_of(v.plaintext);

    ss::StreamEncryptor enc(spec, key, salt);
    CHECK(&enc.spec() == &spec);
    CHECK(std::equal(salt.begin(), salt.end(), enc.salt().begin(), enc.salt().end()));
    CHECK(enc.sealed_size(7) == spec.salt_len + 7 + 34);
    const std::vector<uint8_t> again =
        seal_pieces(enc, {std::vector<uint8_t>(pt.begin(), pt.begin() + 7),
                          std::vector<uint8_t>(pt.begin() + 7, pt.end())});
    CHECK(ss::test::to_hex(again) == v.stream_hex);
    CHECK(enc.sealed_size(7) == 7 + 34);  // the salt went out with the first seal
  }
}

TEST_CASE("§6.2 negative vector (length 0x4000) is rejected", "[crypto]") {
  const ss::CipherSpec& spec = ss::test::cipher("aes-128-gcm");
  const std::vector<uint8_t> key = ss::derive_master_key(ss::test::kPassword62, spec.key_len);
  const std::vector<uint8_t> stream = from_hex(ss::test::kNegative62);

  Feeder whole(spec, key);
  CHECK(whole.feed(stream.data(), stream.size()) == DecryptStatus::Error);
  CHECK(whole.plain.empty());
  CHECK_FALSE(whole.dec.authenticated());

  Feeder bytewise(spec, key);
  bytewise.feed_bytes(stream);
  CHECK(bytewise.plain.empty());
  CHECK(bytewise.violations == 0);
  // Detected as soon as the length block is complete.
  CHECK(bytewise.error_at == spec.salt_len + kLenBlock);
}

TEST_CASE("decoder accepts byte-by-byte feeds and random splits of multi-chunk streams",
          "[crypto]") {
  std::mt19937 rng(20240611);
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    const std::vector<std::vector<uint8_t>> pieces = {
        pattern(1, 1),   pattern(7, 2),     pattern(kMaxChunkPayload, 3),
        pattern(100, 4), pattern(40000, 5), pattern(kMaxChunkPayload + 1, 6),
        pattern(3, 7),   pattern(1500, 8),
    };
    const std::vector<uint8_t> expected = concat(pieces);
    ss::StreamEncryptor enc(spec, key);
    const std::vector<uint8_t> stream = seal_pieces(enc, pieces);

    Feeder bytewise(spec, key);
    bytewise.feed_bytes(stream);
    CHECK(bytewise.plain == expected);
    CHECK(bytewise.violations == 0);
    CHECK(bytewise.dec.buffered() == 0);

    for (int round = 0; round < 40; ++round) {
      Feeder split(spec, key);
      split.feed_cuts(stream, random_lengths(stream.size(), rng));
      INFO("round " << round);
      CHECK(split.plain == expected);
      CHECK(split.violations == 0);
      CHECK(split.last != DecryptStatus::Error);
    }
  }
}

TEST_CASE("payloads of 0x3FFF (one chunk) and 0x3FFF + 1 (two chunks) at awkward cuts",
          "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    for (size_t n : {kMaxChunkPayload, kMaxChunkPayload + 1}) {
      INFO("payload " << n);
      const std::vector<uint8_t> pt = pattern(n, static_cast<uint32_t>(n));
      ss::StreamEncryptor enc(spec, key);
      const size_t chunks = n == kMaxChunkPayload ? 1 : 2;
      CHECK(enc.sealed_size(n) == spec.salt_len + n + chunks * 34);
      const std::vector<uint8_t> stream = seal_pieces(enc, {pt});
      REQUIRE(stream.size() == spec.salt_len + n + chunks * 34);

      const size_t s = spec.salt_len;
      const size_t end1 = s + kLenBlock + kMaxChunkPayload + ss::kTagLen;  // first chunk's end
      std::vector<size_t> cuts = {
          1,      s - 1,   s,         s + 1,     s + 2,     s + 17,   s + 18,
          s + 19, s + 100, end1 - 17, end1 - 16, end1 - 15, end1 - 1, stream.size() - 1};
      if (chunks == 2) {
        for (size_t extra :
             {size_t{0}, size_t{1}, size_t{17}, size_t{18}, size_t{19}, size_t{20}}) {
          cuts.push_back(end1 + extra);
        }
      }
      for (size_t cut : cuts) {
        INFO("cut at " << cut);
        Feeder f(spec, key);
        f.feed(stream.data(), cut);
        // The first chunk is released only once it is complete.
        CHECK(f.plain.size() == (cut >= end1 ? kMaxChunkPayload : 0));
        f.feed(stream.data() + cut, stream.size() - cut);
        CHECK(f.plain == pt);
        CHECK(f.violations == 0);
      }
    }
  }
}

TEST_CASE("a flipped bit in any tag byte is an Error and nothing of that chunk is released",
          "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    const std::vector<std::vector<uint8_t>> pieces = {pattern(5, 11), pattern(300, 12),
                                                      pattern(9, 13)};
    ss::StreamEncryptor enc(spec, key, fixed_salt(spec));
    const std::vector<uint8_t> stream = seal_pieces(enc, pieces);

    size_t chunk_start = spec.salt_len;
    size_t released_before = 0;
    for (size_t c = 0; c < pieces.size(); ++c) {
      const size_t len = pieces[c].size();
      const size_t len_tag = chunk_start + 2;
      const size_t payload_tag = chunk_start + kLenBlock + len;
      const std::vector<uint8_t> prefix = concat(
          std::vector<std::vector<uint8_t>>(pieces.begin(), pieces.begin() + static_cast<long>(c)));
      for (size_t tag_at : {len_tag, payload_tag}) {
        for (size_t i = 0; i < ss::kTagLen; ++i) {
          INFO("chunk " << c << ", " << (tag_at == len_tag ? "length" : "payload") << " tag byte "
                        << i);
          std::vector<uint8_t> bad(stream);
          bad[tag_at + i] ^= static_cast<uint8_t>(1u << (i % 8));

          Feeder whole(spec, key);
          CHECK(whole.feed(bad.data(), bad.size()) == DecryptStatus::Error);
          CHECK(whole.plain == prefix);  // the chunks before authenticated and were released
          // The bad chunk's plaintext is not left in `out` either.
          CHECK_FALSE(std::search(whole.out.begin(), whole.out.end(), pieces[c].begin(),
                                  pieces[c].end()) != whole.out.end());
          CHECK(whole.dec.authenticated() == (c > 0));

          Feeder bytewise(spec, key);
          bytewise.feed_bytes(bad);
          CHECK(bytewise.plain == prefix);
          CHECK(bytewise.last == DecryptStatus::Error);
          CHECK(bytewise.violations == 0);
          CHECK(bytewise.error_at == tag_at + ss::kTagLen);  // at the end of the bad block
        }
      }
      released_before += len;
      chunk_start += kLenBlock + len + ss::kTagLen;
    }
    CHECK(released_before == 314);

    // Flipped ciphertext bits (the sealed length and the payload) fail the same way.
    size_t missed = 0;
    for (size_t i = spec.salt_len; i < spec.salt_len + kLenBlock + 5 + ss::kTagLen; ++i) {
      std::vector<uint8_t> bad(stream);
      bad[i] ^= 0x80;
      Feeder f(spec, key);
      if (f.feed(bad.data(), bad.size()) != DecryptStatus::Error || !f.plain.empty()) ++missed;
    }
    CHECK(missed == 0);
  }
}

TEST_CASE("a length with a reserved top bit set is an Error", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    const std::vector<uint8_t> first = pattern(10, 21);

    // Control: the crafting helper writes exactly what the encryptor writes, and 0x3FFF is fine.
    {
      RawWriter raw(spec, key, fixed_salt(spec));
      raw.chunk(first);
      ss::StreamEncryptor enc(spec, key, fixed_salt(spec));
      CHECK(raw.bytes == seal_pieces(enc, {first}));
      const std::vector<uint8_t> max = pattern(kMaxChunkPayload, 22);
      raw.chunk(0x3FFF, max);
      Feeder f(spec, key);
      CHECK(f.feed(raw.bytes.data(), raw.bytes.size()) == DecryptStatus::Ok);
      CHECK(f.plain == concat({first, max}));
    }

    for (uint16_t field : {0x4000, 0x8000, 0xC000, 0x4001, 0x7FFF, 0x8001, 0xFFFF}) {
      INFO("length field " << field);
      RawWriter raw(spec, key, fixed_salt(spec));
      raw.chunk(first);                      // a good chunk first
      raw.chunk(field, pattern(16, field));  // the payload is never reached
      Feeder f(spec, key);
      CHECK(f.feed(raw.bytes.data(), raw.bytes.size()) == DecryptStatus::Error);
      CHECK(f.plain == first);

      Feeder bytewise(spec, key);
      bytewise.feed_bytes(raw.bytes);
      CHECK(bytewise.plain == first);
      CHECK(bytewise.error_at ==
            spec.salt_len + kLenBlock + first.size() + ss::kTagLen + kLenBlock);
      CHECK(bytewise.violations == 0);
    }
  }
}

TEST_CASE("a zero-length chunk is skipped, not taken as EOF", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    RawWriter raw(spec, key, fixed_salt(spec));
    raw.chunk({});
    const size_t after_zero = raw.bytes.size();
    raw.chunk(ss::test::bytes_of("hello"));
    raw.chunk({});
    raw.chunk({});
    raw.chunk(ss::test::bytes_of(" world"));

    Feeder whole(spec, key);
    CHECK(whole.feed(raw.bytes.data(), raw.bytes.size()) == DecryptStatus::Ok);
    CHECK(whole.plain == ss::test::bytes_of("hello world"));

    Feeder first(spec, key);
    CHECK(first.feed(raw.bytes.data(), after_zero) == DecryptStatus::NeedMore);
    CHECK(first.plain.empty());
    CHECK(first.dec.authenticated());  // the empty chunk did verify
    CHECK(first.dec.buffered() == 0);
    CHECK(first.feed(raw.bytes.data() + after_zero, raw.bytes.size() - after_zero) ==
          DecryptStatus::Ok);
    CHECK(first.plain == ss::test::bytes_of("hello world"));

    Feeder bytewise(spec, key);
    bytewise.feed_bytes(raw.bytes);
    CHECK(bytewise.plain == ss::test::bytes_of("hello world"));
    CHECK(bytewise.violations == 0);
    CHECK(bytewise.last != DecryptStatus::Error);

    // A tampered empty chunk is still an error.
    std::vector<uint8_t> bad(raw.bytes);
    bad[after_zero - 1] ^= 1;
    Feeder f(spec, key);
    CHECK(f.feed(bad.data(), bad.size()) == DecryptStatus::Error);
    CHECK(f.plain.empty());
  }
}

TEST_CASE("Error is sticky", "[crypto]") {
  const ss::CipherSpec& spec = ss::test::cipher("chacha20-ietf-poly1305");
  const std::vector<uint8_t> key = master_key(spec);
  ss::StreamEncryptor enc(spec, key);
  std::vector<uint8_t> stream = seal_pieces(enc, {pattern(50, 31), pattern(50, 32)});
  std::vector<uint8_t> bad(stream);
  bad[spec.salt_len + kLenBlock + 50 + ss::kTagLen] ^= 1;  // the second chunk's length

  ss::StreamDecryptor dec(spec, key);
  std::vector<uint8_t> out(dec.max_output(bad.size()));
  auto r = dec.feed(bad.data(), bad.size(), out.data());
  CHECK(r.status == DecryptStatus::Error);
  CHECK(r.produced == 50);  // the first chunk authenticated before the failure
  CHECK(dec.buffered() == 0);

  // Nothing is accepted any more: not the rest, not a fresh valid stream, not an empty feed.
  out.resize(dec.max_output(stream.size()));
  r = dec.feed(stream.data(), stream.size(), out.data());
  CHECK(r.status == DecryptStatus::Error);
  CHECK(r.produced == 0);
  r = dec.feed(nullptr, 0, out.data());
  CHECK(r.status == DecryptStatus::Error);
  CHECK(r.produced == 0);

  // A wrong key fails at the first length block, and stays failed.
  const std::vector<uint8_t> wrong = ss::derive_master_key("wrong", spec.key_len);
  Feeder f(spec, wrong);
  f.feed_bytes(stream);
  CHECK(f.error_at == spec.salt_len + kLenBlock);
  CHECK(f.plain.empty());
  CHECK(f.violations == 0);
  CHECK_FALSE(f.dec.authenticated());
}

TEST_CASE("authenticated(), has_salt() and buffered() track the stream position", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    ss::StreamEncryptor enc(spec, key);
    const std::vector<uint8_t> stream = seal_pieces(enc, {pattern(20, 41), pattern(30, 42)});
    const size_t first_end = spec.salt_len + kLenBlock + 20 + ss::kTagLen;

    ss::StreamDecryptor dec(spec, key);
    CHECK_FALSE(dec.has_salt());
    CHECK(dec.salt().empty());
    CHECK(dec.buffered() == 0);
    CHECK(dec.max_output(0) == 0);
    std::vector<uint8_t> out(64);
    size_t flipped_at = 0, salted_at = 0, wrong_buffered = 0, bad_bounds = 0;
    size_t chunk_pos = 0;  // bytes of the current block held, as the test computes it
    for (size_t i = 0; i < stream.size(); ++i) {
      if (dec.max_output(1) != dec.buffered() + 1) ++bad_bounds;
      const auto r = dec.feed(stream.data() + i, 1, out.data());
      if (r.status == DecryptStatus::Error) FAIL("unexpected Error at byte " << i);
      if (dec.authenticated() && flipped_at == 0) flipped_at = i + 1;
      if (dec.has_salt() && salted_at == 0) salted_at = i + 1;
      // Expected held bytes: salt bytes while reading the salt, then the partial block.
      size_t expect;
      if (i + 1 < spec.salt_len) {
        expect = i + 1;
      } else if (i + 1 == spec.salt_len) {
        expect = 0;
      } else {
        const size_t off = i + 1 - spec.salt_len;  // stream position after the salt
        const size_t c1 = kLenBlock + 20 + ss::kTagLen;
        const size_t in_chunk = off <= c1 ? off : off - c1;
        const size_t len = off <= c1 ? 20 : 30;
        chunk_pos = in_chunk < kLenBlock    ? in_chunk
                    : in_chunk == kLenBlock ? 0
                                            : (in_chunk - kLenBlock) % (len + ss::kTagLen);
        expect = chunk_pos;
      }
      if (dec.buffered() != expect) ++wrong_buffered;
    }
    CHECK(salted_at == spec.salt_len);
    CHECK(flipped_at == first_end);
    CHECK(wrong_buffered == 0);
    CHECK(bad_bounds == 0);
    CHECK(dec.buffered() == 0);
  }
}

TEST_CASE("encryptor: exact sizes, fresh salts, splitting at 0x3FFF, bad inputs", "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    ss::StreamEncryptor a(spec, key), b(spec, key);
    CHECK(a.salt().size() == spec.salt_len);
    CHECK_FALSE(std::equal(a.salt().begin(), a.salt().end(), b.salt().begin()));

    uint8_t dummy[1] = {0};
    CHECK(a.sealed_size(0) == 0);
    CHECK(a.seal(dummy, 0, dummy) == 0);
    CHECK(a.sealed_size(1) == spec.salt_len + 1 + 34);  // the salt is still pending

    const size_t n = 3 * kMaxChunkPayload + 5;  // four chunks
    CHECK(a.sealed_size(n) == spec.salt_len + n + 4 * 34);
    const std::vector<uint8_t> pt = pattern(n, 51);
    const std::vector<uint8_t> stream = seal_pieces(a, {pt, pattern(1, 52)});
    CHECK(stream.size() == spec.salt_len + n + 4 * 34 + 1 + 34);

    // Chunk boundaries: exactly 0x3FFF per chunk.
    Feeder f(spec, key);
    const size_t chunk = kLenBlock + kMaxChunkPayload + ss::kTagLen;
    f.feed(stream.data(), spec.salt_len + chunk);
    CHECK(f.plain.size() == kMaxChunkPayload);
    f.feed(stream.data() + spec.salt_len + chunk, 2 * chunk);
    CHECK(f.plain.size() == 3 * kMaxChunkPayload);
    f.feed(stream.data() + spec.salt_len + 3 * chunk, stream.size() - spec.salt_len - 3 * chunk);
    CHECK(f.plain == concat({pt, pattern(1, 52)}));

    // Unusable configurations write nothing.
    const std::vector<uint8_t> short_key(key.begin(), key.end() - 1);
    ss::StreamEncryptor short_enc(spec, short_key);
    std::vector<uint8_t> out(short_enc.sealed_size(10));
    CHECK(short_enc.seal(pt.data(), 10, out.data()) == 0);
    std::vector<uint8_t> bad_salt(spec.salt_len - 1, 1);
    ss::StreamEncryptor salt_enc(spec, key, bad_salt);
    CHECK(salt_enc.seal(pt.data(), 10, out.data()) == 0);
    Feeder short_dec(spec, short_key);
    CHECK(short_dec.feed(stream.data(), stream.size()) == DecryptStatus::Error);
    CHECK(short_dec.plain.empty());

    // A longer master key uses its first key_len bytes.
    std::vector<uint8_t> long_key(key);
    long_key.push_back(0xAB);
    ss::StreamEncryptor long_enc(spec, long_key, fixed_salt(spec));
    ss::StreamEncryptor exact_enc(spec, key, fixed_salt(spec));
    CHECK(seal_pieces(long_enc, {pattern(10, 53)}) == seal_pieces(exact_enc, {pattern(10, 53)}));
  }
}

TEST_CASE("data path allocations: none per chunk, the decoder buffers only straddling chunks",
          "[crypto]") {
  for (const ss::CipherSpec& spec : ss::classic_ciphers()) {
    INFO(spec.name);
    const std::vector<uint8_t> key = master_key(spec);
    std::vector<std::vector<uint8_t>> pieces;
    for (size_t i = 0; i < 20; ++i) pieces.push_back(pattern(1 + i * 997 % 30000, 60 + i));
    const std::vector<uint8_t> expected = concat(pieces);

    // Encryptor: seal() never allocates.
    ss::StreamEncryptor enc(spec, key);
    std::vector<std::vector<uint8_t>> sealed;
    for (const auto& p : pieces) sealed.emplace_back(enc.sealed_size(p.size()));
    std::vector<size_t> wrote(pieces.size());  // sealed_size() above counted the salt each time
    size_t before = ss::test::allocation_count();
    for (size_t i = 0; i < pieces.size(); ++i) {
      wrote[i] = enc.seal(pieces[i].data(), pieces[i].size(), sealed[i].data());
    }
    const size_t enc_allocs = ss::test::allocation_count() - before;
    CHECK(enc_allocs == 0);
    size_t total = 0;
    for (size_t i = 0; i < pieces.size(); ++i) {
      sealed[i].resize(wrote[i]);
      total += wrote[i];
    }
    const std::vector<uint8_t> stream = concat(sealed);
    REQUIRE(total == stream.size());

    std::vector<uint8_t> out(stream.size());
    // The salt is fed first in each case: keying the session (HKDF inside libcrypto) may
    // allocate, once per stream. After it: whole chunks, or feeds that end on block boundaries,
    // allocate nothing at all.
    const size_t salt_len = spec.salt_len;
    {
      ss::StreamDecryptor dec(spec, key);
      CHECK(dec.feed(stream.data(), salt_len, out.data()).status == DecryptStatus::NeedMore);
      before = ss::test::allocation_count();
      const auto r = dec.feed(stream.data() + salt_len, stream.size() - salt_len, out.data());
      const size_t allocs = ss::test::allocation_count() - before;
      CHECK(allocs == 0);
      CHECK(r.status == DecryptStatus::Ok);
      CHECK(r.produced == expected.size());
      CHECK(std::equal(expected.begin(), expected.end(), out.begin()));
    }
    {
      ss::StreamDecryptor dec(spec, key);
      size_t produced = 0;
      size_t pos = 0;
      const auto feed = [&](size_t n) {
        produced += dec.feed(stream.data() + pos, n, out.data() + produced).produced;
        pos += n;
      };
      feed(salt_len);
      before = ss::test::allocation_count();
      for (const auto& p : pieces) {
        for (size_t off = 0; off < p.size(); off += kMaxChunkPayload) {
          feed(kLenBlock);
          feed(std::min(kMaxChunkPayload, p.size() - off) + ss::kTagLen);
        }
      }
      const size_t allocs = ss::test::allocation_count() - before;
      CHECK(allocs == 0);
      CHECK(pos == stream.size());
      CHECK(produced == expected.size());
    }
    // Straddling feeds: one allocation, the first time a block straddles, never again.
    {
      ss::StreamDecryptor dec(spec, key);
      size_t produced = 0;
      size_t allocs_after_first = 0, allocs_before_first = 0;
      CHECK(dec.feed(stream.data(), salt_len, out.data()).status == DecryptStatus::NeedMore);
      before = ss::test::allocation_count();
      produced += dec.feed(stream.data() + salt_len, 5, out.data()).produced;  // a length block
      size_t pos = salt_len + 5;
      allocs_before_first = ss::test::allocation_count() - before;
      before = ss::test::allocation_count();
      std::mt19937 rng(7);
      while (pos < stream.size()) {
        const size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % 9000);
        produced += dec.feed(stream.data() + pos, n, out.data() + produced).produced;
        pos += n;
      }
      allocs_after_first = ss::test::allocation_count() - before;
      CHECK(allocs_before_first == 1);
      CHECK(allocs_after_first == 0);
      CHECK(produced == expected.size());
      CHECK(std::equal(expected.begin(), expected.end(), out.begin()));
    }
  }
}
