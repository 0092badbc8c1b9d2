// Ping-pong Bloom filters for salts. Sizing: m = -n ln p / (ln 2)^2 bits and k = (m / n) ln 2
// hash functions per filter, with k indexes derived by double hashing from one keyed 128-bit
// SipHash (libsodium crypto_shorthash, two keys).

#include "crypto/replay_filter.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "crypto/kdf.h"

namespace ss {

ReplayFilter::ReplayFilter(size_t capacity, double fp_rate)
    : capacity_(std::max<size_t>(1, capacity)) {
  fp_rate = std::clamp(fp_rate, 1e-30, 0.5);
  double ln2 = std::log(2.0);
  double m = -static_cast<double>(capacity_) * std::log(fp_rate) / (ln2 * ln2);
  bits_ = std::max<size_t>(64, static_cast<size_t>(std::ceil(m / 64.0)) * 64);
  hashes_ =
      std::clamp(static_cast<int>(std::lround(m / static_cast<double>(capacity_) * ln2)), 1, 64);
  random_bytes(key_);
  for (Bloom& b : filters_) {
    b.words.reset(static_cast<uint64_t*>(std::calloc(bits_ / 64, sizeof(uint64_t))));
    if (!b.words) throw std::bad_alloc();  // at start-up only
  }
}

void ReplayFilter::hash(std::span<const uint8_t> salt, uint64_t& h1, uint64_t& h2) const {
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, salt.data(), salt.size(), key_);
  std::memcpy(&h1, out, 8);
  uint8_t key2[16];
  for (int i = 0; i < 16; ++i) key2[i] = static_cast<uint8_t>(key_[i] ^ 0x5c);
  crypto_shorthash(out, salt.data(), salt.size(), key2);
  std::memcpy(&h2, out, 8);
  h2 |= 1;  // odd, so the k probes differ
}

bool ReplayFilter::contains(const Bloom& b, uint64_t h1, uint64_t h2) const {
  for (int i = 0; i < hashes_; ++i) {
    uint64_t bit = (h1 + static_cast<uint64_t>(i) * h2) % bits_;
    if ((b.words[bit / 64] & (uint64_t{1} << (bit % 64))) == 0) return false;
  }
  return true;
}

void ReplayFilter::add(Bloom& b, uint64_t h1, uint64_t h2) {
  for (int i = 0; i < hashes_; ++i) {
    uint64_t bit = (h1 + static_cast<uint64_t>(i) * h2) % bits_;
    b.words[bit / 64] |= uint64_t{1} << (bit % 64);
  }
  ++b.count;
}

void ReplayFilter::add_locked(uint64_t h1, uint64_t h2) {
  if (filters_[current_].count >= capacity_) {
    current_ ^= 1;
    std::memset(filters_[current_].words.get(), 0, bits_ / 8);
    filters_[current_].count = 0;
  }
  add(filters_[current_], h1, h2);
}

bool ReplayFilter::check_and_insert(std::span<const uint8_t> salt) {
  uint64_t h1, h2;
  hash(salt, h1, h2);
  std::lock_guard<std::mutex> lock(mu_);
  if (contains(filters_[0], h1, h2) || contains(filters_[1], h1, h2)) return true;
  add_locked(h1, h2);
  return false;
}

void ReplayFilter::insert(std::span<const uint8_t> salt) {
  uint64_t h1, h2;
  hash(salt, h1, h2);
  std::lock_guard<std::mutex> lock(mu_);
  add_locked(h1, h2);
}

}  // namespace ss
