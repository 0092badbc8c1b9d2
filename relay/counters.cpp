// Sharded process-wide counters (see counters.h): a thread-local pointer to a shard that is kept
// in a registry for the reader; the registry's lock is taken once per thread and per read, never
// on an add.

#include "relay/counters.h"

#include <deque>
#include <mutex>

namespace ss::counters {
namespace {

struct Registry {
  std::mutex mutex;
  std::deque<Shard> shards;  // a deque: registering a shard never moves the others
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: threads may count during exit
  return *r;
}

Shard* register_shard() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return &r.shards.emplace_back();
}

}  // namespace

Shard& local_shard() {
  thread_local Shard* shard = register_shard();
  return *shard;
}

int64_t read(Counter c) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  int64_t sum = 0;
  for (const Shard& s : r.shards) {
    sum += s.values[static_cast<size_t>(c)].load(std::memory_order_relaxed);
  }
  return sum;
}

}  // namespace ss::counters
