#pragma once
// Shared helpers for the libFuzzer targets: a check that survives NDEBUG, a small deterministic
// generator for input-chosen split points, the prefix rule of stateless parsers, heap buffers
// of an exact size (so that ASan flags any write past the capacity a function promised to
// respect), and the status rules of the stream decoders.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>

// Aborts (a crash libFuzzer records with its input) when `cond` is false.
#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace ss::fuzz {

// SplitMix64: every split point is a function of the input, so a crash reproduces exactly.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for choosing sizes; n > 0.
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }

  // A piece size for splitting a stream of `remaining` bytes (> 0): mostly small (so blocks
  // straddle feeds), sometimes medium, sometimes everything that is left.
  size_t piece(size_t remaining) {
    size_t n = 0;
    switch (below(4)) {
      case 0:
        n = 1 + below(4);
        break;
      case 1:
        n = 1 + below(64);
        break;
      case 2:
        n = 1 + below(1024);
        break;
      default:
        n = remaining;
        break;
    }
    return n < remaining ? n : remaining;
  }

 private:
  uint64_t state_;
};

// FNV-1a of the input, to seed choices that should not consume input bytes.
inline uint64_t hash_bytes(std::span<const uint8_t> in) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (uint8_t b : in) h = (h ^ b) * 0x100000001B3ULL;
  return h;
}

// A stateless parser's results are consistent under resumption: every prefix of `in` up to
// max_len + 1 bytes (no message is longer than max_len) parses to NeedMore or to exactly
// `whole`, the result for all of `in`. `parse` maps a span to a result with a `status` member
// and operator==.
template <typename Parse, typename Result>
void check_prefixes(std::span<const uint8_t> in, size_t max_len, Parse&& parse,
                    const Result& whole) {
  const size_t dense = in.size() < max_len + 1 ? in.size() : max_len + 1;
  for (size_t n = 0; n <= dense; ++n) {
    const Result r = parse(in.first(n));
    FUZZ_CHECK(r.status == decltype(r.status)::NeedMore || r == whole);
  }
}

// A heap buffer of exactly n bytes (n may be 0): ASan reports any access beyond it.
class ExactBuffer {
 public:
  explicit ExactBuffer(size_t n) : data_(new uint8_t[n]), size_(n) {}
  uint8_t* data() { return data_.get(); }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_;
};

// One feed of a stream decoder (StreamDecryptor, TcpOpener): Ok means bytes released, NeedMore
// none, and Error is sticky (nothing more is released after it). `failed` is the stream's state.
template <typename Status>
void check_feed(Status status, size_t produced, bool& failed) {
  switch (status) {
    case Status::Ok:
      FUZZ_CHECK(!failed && produced > 0);
      break;
    case Status::NeedMore:
      FUZZ_CHECK(!failed && produced == 0);
      break;
    case Status::Error:
      if (failed) FUZZ_CHECK(produced == 0);
      failed = true;
      break;
  }
}

// After an Error, a later feed fails again and releases nothing.
template <typename Decoder>
void check_still_failed(Decoder& d) {
  uint8_t one[1] = {0};
  ExactBuffer out(d.max_output(1));
  const auto r = d.feed(one, 1, out.data());
  FUZZ_CHECK(r.status == decltype(r.status)::Error && r.produced == 0);
}

}  // namespace ss::fuzz
