#pragma once
// Process-wide counters, sharded per thread: each worker thread adds to its own shard (relaxed
// atomics on a cache line of its own, so no contention and no lock on the data path), and a
// reader sums every shard. A shard is registered once per thread, at its first add, and lives as
// long as the process, so what a thread counted still counts after it ends and a gauge raised on
// one thread may be lowered on another.
//
// A sum is not a snapshot: shards are read one after another while workers go on counting. It is
// exact once the counting stops, and a gauge that only falls (connections while draining) reads
// between its values at the start and the end of the read. Limits that must hold exactly (the
// connection cap) are kept by each worker on its own count (see Listener), not read from here.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ss {

enum class Counter : uint8_t {
  LiveConnections,    // TCP connections accepted and not yet freed (gauge)
  OrphanedLookups,    // connections closed while their DNS lookup runs in libuv's pool (gauge)
  Accepted,           // TCP connections accepted
  Refused,            // TCP connections refused or evicted at the connection limit
  ClientAuthFailed,   // ss-server: clients that failed authentication
  ClientReplays,      // ss-server: replayed requests refused
  ProxyAuthFailed,    // ss-local: clients that failed the proxy's own authentication
  ServerUnreachable,  // ss-local/ss-tunnel: failed connections to ss-server
  kCount,
};

namespace counters {

struct alignas(64) Shard {
  std::array<std::atomic<int64_t>, static_cast<size_t>(Counter::kCount)> values{};
};

// The calling thread's shard (registered at its first use).
Shard& local_shard();

inline void add(Counter c, int64_t delta = 1) {
  local_shard().values[static_cast<size_t>(c)].fetch_add(delta, std::memory_order_relaxed);
}
inline void sub(Counter c, int64_t delta = 1) {
  add(c, -delta);
}

// The sum over every shard.
int64_t read(Counter c);

}  // namespace counters
}  // namespace ss
