#pragma once
// The Shadowsocks 2022 server's replay pool for TCP request salts (SIP022 §3.1.4, protocol.md
// §2.7): an exact set, no false positives (no Bloom filter), each salt remembered from its
// insertion at `now` until the clock passes now + lifetime (kSaltPoolSeconds = 60: a request
// timestamped T is accepted while |now - T| <= 30, so its salt can be replayed with a valid
// timestamp at most 60 s after it was first accepted). Only authenticated salts may be inserted,
// so memory grows with the authenticated connection rate only. Expired entries are dropped on
// every call. Thread-safe (one mutex; used once per connection, never per chunk).
//
// A salt is kept as its 128-bit keyed BLAKE2b digest under a random per-pool key (a false
// positive needs a 2^-128 collision), so the pool can be written to the state file
// (relay/replay_state) without revealing a salt.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

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

  // The state file's section: the digest key and every entry with its insertion time (no salt).
  void export_state(std::vector<uint8_t>& out) const;
  // Replaces the key and the entries with an exported state, dropping those expired by `now`.
  // False, with the reason in *why and the pool unchanged, if it is malformed.
  bool import_state(std::span<const uint8_t> in, uint64_t now, std::string* why);
  // Changes with every entry added or dropped.
  uint64_t generation() const;

 private:
  struct Key {
    std::array<uint8_t, 16> digest{};  // keyed BLAKE2b of the salt
    bool operator==(const Key& o) const { return digest == o.digest; }
  };
  struct Hash {
    size_t operator()(const Key& k) const;  // the digest is already keyed and uniform
  };
  struct Entry {
    uint64_t inserted;
    const Key* key;  // element of set_ (node-based: stable across rehashing)
  };
  void purge_locked(uint64_t now);

  uint64_t lifetime_;
  uint8_t hash_key_[32];
  mutable std::mutex mu_;
  std::unordered_set<Key, Hash> set_;
  std::deque<Entry> order_;  // insertion order
  uint64_t generation_ = 0;
};

}  // namespace ss
