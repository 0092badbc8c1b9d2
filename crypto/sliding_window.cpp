// Packet-ID replay window (protocol.md §2.8). Layout: bit (id % 64) of block ((id / 64) % 128)
// stands for `id`. The block holding `last_` and the 127 before it are live, so every ID in
// [last_ - 8128, last_] has its own bit (last_ - 8128 lies in the oldest live block). Moving
// `last_` forward clears the blocks between the old and the new newest block (at most the whole
// ring), which forgets the IDs that fell out of the window.

#include "crypto/sliding_window.h"

namespace ss {

bool SlidingWindow::check(uint64_t id) const {
  if (id > last_) return true;  // ahead: its bit will be clear once the window slides
  if (last_ - id > kWindowSize) return false;
  const uint64_t block = (id / kBlockBits) & kRingMask;
  const uint64_t bit = uint64_t{1} << (id % kBlockBits);
  return (ring_[block] & bit) == 0;
}

void SlidingWindow::accept(uint64_t id) {
  if (id > last_) {
    const uint64_t current = last_ / kBlockBits;
    const uint64_t target = id / kBlockBits;
    uint64_t skipped = target - current;
    if (skipped > kBlocks) skipped = kBlocks;
    for (uint64_t i = 1; i <= skipped; ++i) ring_[(current + i) & kRingMask] = 0;
    last_ = id;
  } else if (last_ - id > kWindowSize) {
    return;
  }
  ring_[(id / kBlockBits) & kRingMask] |= uint64_t{1} << (id % kBlockBits);
}

bool SlidingWindow::check_and_accept(uint64_t id) {
  if (!check(id)) return false;
  accept(id);
  return true;
}

void SlidingWindow::reset() {
  ring_.fill(0);
  last_ = 0;
}

}  // namespace ss
