#pragma once
// One object per thread and owner, shared by that thread's users while any of them holds it: the
// per-worker state of a packet suite (a cipher context keyed by a pre-shared key, a scratch
// buffer) that its many per-association sessions would otherwise each carry. Sessions live on
// one worker's thread, so nothing here is locked; the object goes when its last holder does.

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace ss {

// An owner's identity for thread_shared(): never reused, unlike an address.
inline uint64_t next_thread_shared_owner() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// This thread's T for `owner`, made by `make()` (returning std::shared_ptr<T>) when none is alive.
template <class T, class Make>
std::shared_ptr<T> thread_shared(uint64_t owner, Make&& make) {
  thread_local std::vector<std::pair<uint64_t, std::weak_ptr<T>>> items;
  std::erase_if(items, [](const auto& e) { return e.second.expired(); });
  for (const auto& [id, weak] : items) {
    if (id == owner) return weak.lock();
  }
  std::shared_ptr<T> made = make();
  items.emplace_back(owner, made);
  return made;
}

}  // namespace ss
