// Per-thread block pool: blocks are taken for one read or one queued write and given back as
// soon as that I/O completes, so an idle connection holds none. Blocks are mapped one by one
// (mmap), and the free list is bounded by the recent peak of the load (BlockPool::free_limit):
// a load that comes and goes reuses its blocks, and a second or two after a burst the blocks it
// no longer needs are unmapped, so RSS falls with the load. The window's clock is
// CLOCK_MONOTONIC_COARSE (read in user space, no system call).

#include "relay/buffer_pool.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <new>

namespace ss {

namespace {

size_t page_size() {
  static const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

size_t mapping_size() {
  static const size_t size = (sizeof(Block) + page_size() - 1) / page_size() * page_size();
  return size;
}

Block* map_block() {
  void* p =
      mmap(nullptr, mapping_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return new (p) Block;  // default-initialised: nothing is written, no page is touched yet
}

void unmap_block(Block* b) {
  b->~Block();
  munmap(b, mapping_size());
}

uint64_t coarse_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

}  // namespace

void BlockPool::drop_written(Block* b, size_t written) {
  const auto page = static_cast<uintptr_t>(page_size());  // no sysconf per call
  const auto base = reinterpret_cast<uintptr_t>(b->data);
  const auto begin = std::max((base + page - 1) & ~(page - 1), base + b->dropped);
  const auto end = (base + written) & ~(page - 1);
  if (end <= begin) return;
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  b->dropped = static_cast<uint32_t>(end - base);
}

BlockPool& BlockPool::local() {
  thread_local BlockPool pool;
  return pool;
}

BlockPool::~BlockPool() {
  while (free_ != nullptr) {
    Block* b = free_;
    free_ = b->next;
    unmap_block(b);
  }
}

Block* BlockPool::acquire() {
  Block* b = free_;
  if (b != nullptr) {
    free_ = b->next;
    --free_count_;
  } else {
    b = map_block();
  }
  ++live_;
  roll();  // the peak counts in the window it happens in
  if (live_ > window_peak_) window_peak_ = live_;
  b->next = nullptr;
  b->len = 0;
  b->off = 0;
  b->dropped = 0;
  return b;
}

void BlockPool::roll() {
  const uint64_t now = coarse_ms();
  if (now - window_start_ms_ < kPeakWindowMs) return;
  // After a pause longer than a window, the window before it ended long ago: its peak is over.
  recent_peak_ = now - window_start_ms_ < 2 * kPeakWindowMs ? window_peak_ : live_;
  window_peak_ = live_;
  window_start_ms_ = now;
}

void BlockPool::trim() {
  roll();
  shrink();
}

void BlockPool::release(Block* b) {
  if (b == nullptr) return;
  --live_;
  b->next = free_;
  free_ = b;
  ++free_count_;
  if (free_count_ > kMinFree) trim();
}

void BlockPool::shrink() {
  // Back down to the limit, which falls with the load (usually nothing, or this block alone).
  const size_t limit = free_limit();
  while (free_count_ > limit) {
    Block* extra = free_;
    free_ = extra->next;
    --free_count_;
    unmap_block(extra);
  }
}

}  // namespace ss
