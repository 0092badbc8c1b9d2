// The 2022 TCP replay pool (SIP022 §3.1.4): an exact hash set of request salts (SipHash under a
// random per-process key, so nobody outside can aim at buckets) plus a FIFO of (insertion time,
// salt) that drives expiry: an entry inserted at t is dropped once now > t + lifetime.

#include "crypto/salt_pool.h"

#include <sodium.h>

#include <cstring>

#include "crypto/internal.h"
#include "crypto/kdf.h"

namespace ss {

size_t SaltPool::Hash::operator()(const Key& k) const {
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, k.bytes.data(), k.len, key);
  uint64_t h;
  std::memcpy(&h, out, sizeof h);
  return static_cast<size_t>(h);
}

SaltPool::SaltPool(uint64_t lifetime_seconds)
    : lifetime_(lifetime_seconds), set_(16, Hash{hash_key_}) {
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
  }
}

void SaltPool::purge(uint64_t now) {
  std::lock_guard lock(mu_);
  purge_locked(now);
}

bool SaltPool::check_and_insert(std::span<const uint8_t> salt, uint64_t now) {
  Key k;
  if (salt.size() > k.bytes.size()) return false;
  std::memcpy(k.bytes.data(), salt.data(), salt.size());
  k.len = static_cast<uint8_t>(salt.size());
  std::lock_guard lock(mu_);
  purge_locked(now);
  // Out of memory refuses the connection (as a replay would) rather than throwing into the
  // event loop.
  try {
    auto [it, inserted] = set_.insert(k);
    if (!inserted) return false;
    try {
      order_.push_back({now, &*it});
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

}  // namespace ss
