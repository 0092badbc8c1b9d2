#pragma once
// The classic-AEAD replay filter: remembers salts in a ping-pong pair of Bloom filters. When the
// current filter holds `capacity` salts, the older one is cleared and becomes current, so between
// `capacity` and 2 * `capacity` of the most recent salts are always remembered, with a false
// positive rate of at most about 2 * `fp_rate`. Salts are hashed with SipHash under a random
// key, so nobody outside the process can aim at particular bits. Thread-safe (one mutex; it is
// used once per connection, never per chunk).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace ss {

class ReplayFilter {
 public:
  ReplayFilter(size_t capacity, double fp_rate);

  // True if the salt may have been seen (then it is not added); false if it is new (and it is
  // added now).
  bool check_and_insert(std::span<const uint8_t> salt);
  // Adds without checking (the server's own outgoing salts, so a reflected stream is refused).
  void insert(std::span<const uint8_t> salt);

  // The state file's section (relay/replay_state): the sizing, the SipHash key and both filters'
  // bits, zero runs compressed. It holds no salt: a bit array under a random key only answers
  // "maybe seen?" for a salt one already has. Taken under the lock (a few ms for the default
  // size); appended to `out`.
  void export_state(std::vector<uint8_t>& out) const;
  // Replaces the key and the bits with an exported state. False, with the reason in *why and the
  // filter unchanged, if it is malformed or sized for another capacity or rate.
  bool import_state(std::span<const uint8_t> in, std::string* why);
  // Changes with every salt added: the state file is rewritten only when it moved.
  uint64_t generation() const;

  // One block per page: a salt's k bits all fall in one (see replay_filter.cpp).
  static constexpr size_t kBlockBits = 4096 * 8;

  size_t capacity() const { return capacity_; }
  size_t bits_per_filter() const { return bits_; }
  int hashes() const { return hashes_; }

 private:
  struct Bloom {
    // Anonymous pages of their own (mmap, see map_words): zero pages cost no memory until a salt
    // sets a bit in them, and each block is one page, aligned.
    struct Unmap {
      size_t bytes;
      void operator()(uint64_t* p) const;
    };
    std::unique_ptr<uint64_t[], Unmap> words;
    size_t count = 0;
  };
  static std::unique_ptr<uint64_t[], Bloom::Unmap> map_words(size_t words);
  void hash(std::span<const uint8_t> salt, uint64_t& h1, uint64_t& h2) const;
  bool contains(const Bloom& b, uint64_t h1, uint64_t h2) const;
  void add(Bloom& b, uint64_t h1, uint64_t h2);
  void add_locked(uint64_t h1, uint64_t h2);

  size_t capacity_;
  size_t bits_;
  int hashes_;
  uint8_t key_[16];
  mutable std::mutex mu_;
  Bloom filters_[2];
  int current_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace ss
