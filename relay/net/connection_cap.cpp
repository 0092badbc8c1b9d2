// The process-wide connection cap: a relaxed atomic count on the accept path, and evictions
// owed between workers (see connection_cap.h).

#include "relay/net/connection_cap.h"

#include <algorithm>

namespace ss {

bool ConnectionCap::ask_eviction(const uv_async_t* self) {
  size_t owed = owed_.load(std::memory_order_relaxed);
  do {
    if (evictable_.load(std::memory_order_relaxed) <= owed) return false;
  } while (!owed_.compare_exchange_weak(owed, owed + 1, std::memory_order_relaxed));
  std::lock_guard<std::mutex> lock(mu_);
  for (uv_async_t* w : wakes_) {
    if (w != self) uv_async_send(w);
  }
  return true;
}

bool ConnectionCap::take_owed() {
  size_t owed = owed_.load(std::memory_order_relaxed);
  do {
    if (owed == 0) return false;
  } while (!owed_.compare_exchange_weak(owed, owed - 1, std::memory_order_relaxed));
  return true;
}

void ConnectionCap::enroll(uv_async_t* wake) {
  std::lock_guard<std::mutex> lock(mu_);
  wakes_.push_back(wake);
}

void ConnectionCap::withdraw(uv_async_t* wake) {
  std::lock_guard<std::mutex> lock(mu_);
  wakes_.erase(std::remove(wakes_.begin(), wakes_.end(), wake), wakes_.end());
}

}  // namespace ss
