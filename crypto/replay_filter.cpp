// Ping-pong Bloom filters for salts. Sizing: m = -n ln p / (ln 2)^2 bits and k = (m / n) ln 2
// hash functions per filter, with k indexes derived by double hashing from one keyed 128-bit
// SipHash (libsodium crypto_shorthash, two keys).
//
// Page-blocked: the filter is cut into 4 KiB blocks and all k bits of a salt fall in one block
// that the first hash picks. A salt so touches one page, not k random ones: a fresh process's
// filter (its own anonymous pages, so untouched pages cost nothing) grows by one page per salt at
// most, not 33, and a lookup misses the cache once. A block holds about 680 salts at the default
// sizing, so the uneven load between blocks raises the false positive rate only slightly (about 2x
// at most on average for k = 33, so ~2e-10 for the default 1e-10).
//
// Exported state (little-endian): capacity u64, bits u64, hashes u32, current u32, key[16], then
// for each filter its count u64 and its words as runs: zero words u32, literal words u32, the
// literal words (u64 each), until bits / 64 words are covered.

#include "crypto/replay_filter.h"

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>

#include <sys/mman.h>

#include "crypto/kdf.h"
#include "crypto/state_bytes.h"

namespace ss {

void ReplayFilter::Bloom::Unmap::operator()(uint64_t* p) const {
  if (p != nullptr) munmap(p, bytes);
}

// Zeroed words on pages of their own. Not calloc: glibc puts a large block 16 bytes past a page
// boundary, so every 4 KiB block straddled two pages (two page faults and two TLB entries for a
// salt's bits where one was meant).
std::unique_ptr<uint64_t[], ReplayFilter::Bloom::Unmap> ReplayFilter::map_words(size_t words) {
  const size_t bytes = words * sizeof(uint64_t);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return {nullptr, {}};
  return {static_cast<uint64_t*>(p), {bytes}};
}

ReplayFilter::ReplayFilter(size_t capacity, double fp_rate)
    : capacity_(std::max<size_t>(1, capacity)) {
  fp_rate = std::clamp(fp_rate, 1e-30, 0.5);
  double ln2 = std::log(2.0);
  double m = -static_cast<double>(capacity_) * std::log(fp_rate) / (ln2 * ln2);
  bits_ = std::max<size_t>(kBlockBits, static_cast<size_t>(std::ceil(m / kBlockBits)) * kBlockBits);
  hashes_ =
      std::clamp(static_cast<int>(std::lround(m / static_cast<double>(capacity_) * ln2)), 1, 64);
  random_bytes(key_);
  for (Bloom& b : filters_) {
    b.words = map_words(bits_ / 64);
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

// The salt's block is h1 mod the block count; inside it, bit i is a SplitMix64 finaliser of h2
// and i. Not double hashing (start + i * step): modulo a block's power of two, two salts with the
// same low step bits share a shifted run of bits, which made false positives about 10^4 times
// the sizing's (one in ~10 runs of a 20,000-salt test). Mixed bits are independent per salt.
static inline uint64_t block_bit(uint64_t h2, int i) {
  uint64_t z = h2 + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (z ^ (z >> 31)) & (ReplayFilter::kBlockBits - 1);
}

bool ReplayFilter::contains(const Bloom& b, uint64_t h1, uint64_t h2) const {
  const uint64_t* block = b.words.get() + (h1 % (bits_ / kBlockBits)) * (kBlockBits / 64);
  for (int i = 0; i < hashes_; ++i) {
    const uint64_t bit = block_bit(h2, i);
    if ((block[bit / 64] & (uint64_t{1} << (bit % 64))) == 0) return false;
  }
  return true;
}

void ReplayFilter::add(Bloom& b, uint64_t h1, uint64_t h2) {
  uint64_t* block = b.words.get() + (h1 % (bits_ / kBlockBits)) * (kBlockBits / 64);
  for (int i = 0; i < hashes_; ++i) {
    const uint64_t bit = block_bit(h2, i);
    block[bit / 64] |= uint64_t{1} << (bit % 64);
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
  ++generation_;
}

// Page faults: a fresh process's filters are untouched anonymous pages, and a read of one maps the
// shared zero page (a fault) that the first write then replaces (a second fault). So an empty
// filter (count 0: no bit set) is not read at all, and the salt's block in the current filter is
// first touched by a write (an atomic OR of 0: the bits are unchanged), which allocates the page in
// one fault. A new salt on a fresh page so costs one fault instead of three (the standby filter's
// zero page, the current filter's zero page, its copy on write): with the default million salts a
// filter has about 1,460 pages, and a new process's first few thousand connections nearly all
// land on a fresh one.
bool ReplayFilter::check_and_insert(std::span<const uint8_t> salt) {
  std::lock_guard<std::mutex> lock(mu_);  // the key may be replaced by import_state
  uint64_t h1, h2;
  hash(salt, h1, h2);
  const Bloom& standby = filters_[current_ ^ 1];
  if (standby.count > 0 && contains(standby, h1, h2)) return true;
  Bloom& current = filters_[current_];
  if (current.count > 0) {
    uint64_t* block = current.words.get() + (h1 % (bits_ / kBlockBits)) * (kBlockBits / 64);
    std::atomic_ref<uint64_t>(block[block_bit(h2, 0) / 64]).fetch_or(0, std::memory_order_relaxed);
    if (contains(current, h1, h2)) return true;
  }
  add_locked(h1, h2);
  return false;
}

void ReplayFilter::insert(std::span<const uint8_t> salt) {
  std::lock_guard<std::mutex> lock(mu_);  // the key may be replaced by import_state
  uint64_t h1, h2;
  hash(salt, h1, h2);
  add_locked(h1, h2);
}

uint64_t ReplayFilter::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

void ReplayFilter::export_state(std::vector<uint8_t>& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  put_u64(out, capacity_);
  put_u64(out, bits_);
  put_u32(out, static_cast<uint32_t>(hashes_));
  put_u32(out, static_cast<uint32_t>(current_));
  put_bytes(out, key_);
  const size_t words = bits_ / 64;
  for (const Bloom& b : filters_) {
    put_u64(out, b.count);
    size_t i = 0;
    while (i < words) {
      size_t zeros = 0;
      while (i + zeros < words && zeros < UINT32_MAX && b.words[i + zeros] == 0) ++zeros;
      i += zeros;
      size_t lit = 0;
      while (i + lit < words && lit < UINT32_MAX && b.words[i + lit] != 0) ++lit;
      put_u32(out, static_cast<uint32_t>(zeros));
      put_u32(out, static_cast<uint32_t>(lit));
      for (size_t j = 0; j < lit; ++j) put_u64(out, b.words[i + j]);
      i += lit;
    }
  }
}

bool ReplayFilter::import_state(std::span<const uint8_t> in, std::string* why) {
  auto fail = [why](const char* text) {
    if (why) *why = text;
    return false;
  };
  ByteReader r(in);
  const uint64_t capacity = r.u64();
  const uint64_t bits = r.u64();
  const uint32_t hashes = r.u32();
  const uint32_t current = r.u32();
  uint8_t key[sizeof key_];
  r.copy(key);
  if (!r.ok()) return fail("truncated classic filter");
  if (capacity != capacity_ || bits != bits_ || hashes != static_cast<uint32_t>(hashes_)) {
    return fail("the classic filter was sized for another capacity or rate");
  }
  if (current > 1) return fail("malformed classic filter");
  const size_t words = bits_ / 64;
  Bloom loaded[2];
  for (Bloom& b : loaded) {
    b.words = map_words(words);
    if (!b.words) return fail("out of memory");
    b.count = r.u64();
    size_t i = 0;
    while (i < words && r.ok()) {
      const size_t zeros = r.u32();
      const size_t lit = r.u32();
      if (zeros > words - i || lit > words - i - zeros) return fail("malformed classic filter");
      i += zeros;
      // An empty filter (count 0) is never read (check_and_insert), so it must have no bit set.
      if (b.count == 0 && lit > 0) return fail("malformed classic filter");
      for (size_t j = 0; j < lit; ++j) b.words[i + j] = r.u64();
      i += lit;
    }
    if (!r.ok()) return fail("truncated classic filter");
    if (b.count > capacity_) return fail("malformed classic filter");
  }
  if (!r.done()) return fail("malformed classic filter");
  std::lock_guard<std::mutex> lock(mu_);
  std::memcpy(key_, key, sizeof key_);
  for (int i = 0; i < 2; ++i) filters_[i] = std::move(loaded[i]);
  current_ = static_cast<int>(current);
  ++generation_;
  return true;
}

}  // namespace ss
