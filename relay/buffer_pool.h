#pragma once
// Fixed-size I/O blocks on a per-thread free list. A block carries its own uv_write_t, so a queued
// write owns both its request and its bytes until the write callback returns the block.
// Each block is its own anonymous mapping: only the pages a block has used count in RSS, and a
// block the free list does not keep goes back to the OS at once (no heap to fragment).

#include <uv.h>

#include <cstddef>
#include <cstdint>

#include "crypto/cipher_spec.h"
#include "relay/address.h"

namespace ss {

// One read: four full AEAD chunks of plaintext.
inline constexpr size_t kReadSize = 4 * kMaxChunkPayload;
// Room for the transform of one read: a decrypt may add one buffered partial chunk (up to 0xFFFF
// bytes in the 2022 edition); an encrypt adds the salt, request headers with up to 900 bytes of
// padding, the address header and per-chunk overhead.
inline constexpr size_t kBlockCapacity =
    kReadSize + 0xFFFF + 2 + 2 * kTagLen + kMaxSaltLen + kMaxAddressLen + 2048;

struct Block {
  uv_write_t req;
  Block* next;
  uint32_t len;      // bytes of data in use
  uint32_t off;      // bytes already written by uv_try_write
  uint32_t dropped;  // bytes from data whose whole pages went back to the OS (drop_written)
  alignas(16) uint8_t data[kBlockCapacity];
};

class BlockPool {
 public:
  // The calling thread's pool.
  static BlockPool& local();
  ~BlockPool();

  // Never fails short of memory exhaustion (which aborts, as operator new does).
  Block* acquire();
  void release(Block* b);
  // The sink took the first `written` bytes and the rest has waited a while: the whole pages
  // before b->data + written go back to the OS (the sink is read slowly; the block will wait).
  // One madvise at most, none if those pages already went back.
  void drop_written(Block* b, size_t written);
  size_t free_blocks() const { return free_count_; }
  size_t live_blocks() const { return live_; }

  // The free list keeps kMinFree blocks plus as many as were in use at once lately (the peak of
  // the current and the previous kPeakWindowMs: what a load that comes and goes needs again
  // soon), at most kMaxFree. A release above the limit unmaps. So a fluctuating load maps
  // nothing once warm (each unmap was a TLB shootdown across the CPUs, and each new mapping page
  // faults: together about a fifth of the proxies' CPU per new connection), and 1 to 2 windows
  // after the load fell the list is back down to what it needs: on the next release, or trim().
  static constexpr size_t kMinFree = 4;
  static constexpr size_t kMaxFree = 64;
  static constexpr uint64_t kPeakWindowMs = 1000;
  size_t free_limit() const {
    const size_t peak = recent_peak_ > window_peak_ ? recent_peak_ : window_peak_;
    const size_t n = kMinFree + peak;
    return n < kMaxFree ? n : kMaxFree;
  }
  // Moves the peak window on and unmaps the free blocks above the limit: for a thread that may
  // have gone idle after a burst (a release does this by itself).
  void trim();

 private:
  void roll();
  void shrink();

  Block* free_ = nullptr;
  size_t free_count_ = 0;
  size_t live_ = 0;
  size_t window_peak_ = 0;  // most blocks live at once in the current window
  size_t recent_peak_ = 0;  // ... in the previous one
  uint64_t window_start_ms_ = 0;
};

// Recovers the block from the buffer libuv hands back to a read callback.
inline Block* block_from_base(char* base) {
  return reinterpret_cast<Block*>(reinterpret_cast<uint8_t*>(base) - offsetof(Block, data));
}

}  // namespace ss
