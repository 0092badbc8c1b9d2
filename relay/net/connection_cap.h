#pragma once
// The process-wide connection cap (max_connections), shared by every listener of every worker,
// including listeners added later.

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

namespace ss {

// Accepting checks and bumps one relaxed atomic count, without a lock. At the cap, a worker
// evicts its own oldest unfinished handshake; when it has none but another worker has, it takes
// the connection and asks that worker to evict one (a uv_async wake-up: the one path that takes
// the registry's mutex), so the count exceeds `max` only until that worker's loop turns. With no
// unfinished handshake anywhere, the connection is refused.
class ConnectionCap {
 public:
  explicit ConnectionCap(size_t max) : max_(max) {}
  ConnectionCap(const ConnectionCap&) = delete;
  ConnectionCap& operator=(const ConnectionCap&) = delete;

  size_t max() const { return max_; }  // 0: no cap
  bool full() const { return max_ > 0 && live_.load(std::memory_order_relaxed) >= max_; }
  size_t live() const { return live_.load(std::memory_order_relaxed); }
  void add() { live_.fetch_add(1, std::memory_order_relaxed); }
  void sub() { live_.fetch_sub(1, std::memory_order_relaxed); }

  // Sessions that could be evicted, on any worker (Listener::set_evictable keeps it).
  void evictable_changed(bool on) {
    if (on) {
      evictable_.fetch_add(1, std::memory_order_relaxed);
    } else {
      evictable_.fetch_sub(1, std::memory_order_relaxed);
    }
  }

  // A worker at the cap with nothing of its own to evict (so every evictable session is another
  // worker's): true if there is one more than already asked for; one eviction is then owed, and
  // every other registered listener woken to pay it. False: refuse the connection.
  bool ask_eviction(const uv_async_t* self);
  // Takes one owed eviction; false when none is owed.
  bool take_owed();

  // A listener's wake-up (initialised on its loop), woken when evictions are owed. Unregister
  // before closing the handle.
  void enroll(uv_async_t* wake);
  void withdraw(uv_async_t* wake);

 private:
  const size_t max_;
  std::atomic<size_t> live_{0};
  std::atomic<size_t> evictable_{0};
  std::atomic<size_t> owed_{0};
  std::mutex mu_;
  std::vector<uv_async_t*> wakes_;  // guarded by mu_
};

}  // namespace ss
