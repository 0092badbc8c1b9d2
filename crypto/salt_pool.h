#pragma once
// The Shadowsocks 2022 server's replay pool for TCP request salts (SIP022 §3.1.4, protocol.md
// §2.7): an exact set, no false positives (no Bloom filter), each salt remembered from its
// insertion at `now` until the clock passes now + lifetime (kSaltPoolSeconds = 60: a request
// timestamped T is accepted while |now - T| <= 30, so its salt can be replayed with a valid
// timestamp at most 60 s after it was first accepted). Only authenticated salts may be inserted,
// so memory grows with the authenticated connection rate only. Expired entries are dropped on
// every call. Thread-safe (one mutex; used once per connection, never per chunk).

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <unordered_set>

#include "crypto/aead2022.h"

namespace ss {

class SaltPool {
 public:
  explicit SaltPool(uint64_t lifetime_seconds = kSaltPoolSeconds);
  ~SaltPool();
  SaltPool(const SaltPool&) = delete;
  SaltPool& operator=(const SaltPool&) = delete;

  // False if `salt` (at most 32 bytes) is remembered (a replay; nothing changes); true if it is
  // new, and then it is remembered from now on. `now` is Unix seconds; a clock that steps back
  // only makes entries live longer, never shorter.
  bool check_and_insert(std::span<const uint8_t> salt, uint64_t now);
  // Drops the entries that expired by `now` (check_and_insert does this too).
  void purge(uint64_t now);
  size_t size() const;

 private:
  struct Key {
    std::array<uint8_t, 32> bytes{};
    uint8_t len = 0;
    bool operator==(const Key& o) const { return len == o.len && bytes == o.bytes; }
  };
  struct Hash {
    const uint8_t* key;  // SipHash key, random per pool
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    uint64_t inserted;
    const Key* key;  // element of set_ (node-based: stable across rehashing)
  };
  void purge_locked(uint64_t now);

  uint64_t lifetime_;
  uint8_t hash_key_[16];
  mutable std::mutex mu_;
  std::unordered_set<Key, Hash> set_;
  std::deque<Entry> order_;  // insertion order
};

}  // namespace ss
