// The 2022 TCP replay pool (SIP022 §3.1.4): a hash set of request salts' keyed digests (BLAKE2b
// under a random per-pool key, so nobody outside can aim at buckets) plus a FIFO of (insertion
// time, digest) that drives expiry: an entry inserted at t is dropped once now > t + lifetime.
//
// Exported state (little-endian): lifetime u64, key[32], count u64, then count entries of
// (insertion time u64, digest[16]) in insertion order.

#include "crypto/salt_pool.h"

#include <sodium.h>

#include <cstring>

#include "crypto/internal.h"
#include "crypto/kdf.h"
#include "crypto/state_bytes.h"

namespace ss {

size_t SaltPool::Hash::operator()(const Key& k) const {
  uint64_t h;
  std::memcpy(&h, k.digest.data(), sizeof h);
  return static_cast<size_t>(h);
}

SaltPool::SaltPool(uint64_t lifetime_seconds) : lifetime_(lifetime_seconds), set_(16) {
  detail::ensure_sodium();
  random_bytes(hash_key_);
}

SaltPool::~SaltPool() {
  secure_zero(hash_key_);
}

void SaltPool::purge_locked(uint64_t now) {
  while (!order_.empty() && now > order_.front().inserted &&
         now - order_.front().inserted > lifetime_) {
    const Key k = *order_.front().key;  // a copy: erase must not read the node it frees
    order_.pop_front();
    set_.erase(k);
    ++generation_;
  }
}

void SaltPool::purge(uint64_t now) {
  std::lock_guard lock(mu_);
  purge_locked(now);
}

bool SaltPool::check_and_insert(std::span<const uint8_t> salt, uint64_t now) {
  Key k;
  if (salt.size() > 32) return false;
  std::lock_guard lock(mu_);  // the key may be replaced by import_state
  crypto_generichash(k.digest.data(), k.digest.size(), salt.data(), salt.size(), hash_key_,
                     sizeof hash_key_);
  purge_locked(now);
  // Out of memory refuses the connection (as a replay would) rather than throwing into the
  // event loop.
  try {
    auto [it, inserted] = set_.insert(k);
    if (!inserted) return false;
    try {
      order_.push_back({now, &*it});
      ++generation_;
    } catch (...) {
      set_.erase(it);
      return false;
    }
  } catch (...) {
    return false;
  }
  return true;
}

size_t SaltPool::size() const {
  std::lock_guard lock(mu_);
  return set_.size();
}

uint64_t SaltPool::generation() const {
  std::lock_guard lock(mu_);
  return generation_;
}

void SaltPool::export_state(std::vector<uint8_t>& out) const {
  std::lock_guard lock(mu_);
  put_u64(out, lifetime_);
  put_bytes(out, hash_key_);
  put_u64(out, order_.size());
  for (const Entry& e : order_) {
    put_u64(out, e.inserted);
    put_bytes(out, e.key->digest);
  }
}

bool SaltPool::import_state(std::span<const uint8_t> in, uint64_t now, std::string* why) {
  auto fail = [why](const char* text) {
    if (why) *why = text;
    return false;
  };
  ByteReader r(in);
  r.u64();  // the writer's lifetime: ours decides what has expired
  uint8_t key[sizeof hash_key_];
  r.copy(key);
  const uint64_t n = r.u64();
  constexpr size_t kEntry = 8 + 16;
  if (!r.ok()) return fail("truncated 2022 salt pool");
  if (n != r.left() / kEntry || r.left() % kEntry != 0) return fail("malformed 2022 salt pool");
  std::unordered_set<Key, Hash> set(16);
  std::deque<Entry> order;
  try {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t inserted = r.u64();
      Key k;
      r.copy(k.digest);
      if (now > inserted && now - inserted > lifetime_) continue;  // expired while we were down
      auto [it, added] = set.insert(k);
      if (added) order.push_back({inserted, &*it});
    }
  } catch (...) {
    return fail("out of memory");
  }
  std::lock_guard lock(mu_);
  std::memcpy(hash_key_, key, sizeof hash_key_);
  secure_zero(key);
  set_ = std::move(set);  // nodes move with the set: order's pointers stay valid
  order_ = std::move(order);
  ++generation_;
  return true;
}

}  // namespace ss
