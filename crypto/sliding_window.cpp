// Packet-ID replay window (protocol.md §2.8). Layout: bit (id % 64) of block ((id / 64) % 128)
// stands for `id`. The block holding `last_` and the 127 before it are live, so every ID in
// [last_ - 8128, last_] has its own bit (last_ - 8128 lies in the oldest live block). Moving
// `last_` forward clears the blocks between the old and the new newest block (at most the whole
// ring), which forgets the IDs that fell out of the window. An ID within the window therefore has
// its bit set exactly when it was accepted; the ring-less form keeps that set as one run.

#include "crypto/sliding_window.h"

namespace ss {

bool SlidingWindow::check(uint64_t id) const {
  if (id > last_) return true;  // ahead: its bit will be clear once the window slides
  if (last_ - id > kWindowSize) return false;
  if (!ring_) return empty_ || id < first_;
  const uint64_t block = (id / kBlockBits) & kRingMask;
  const uint64_t bit = uint64_t{1} << (id % kBlockBits);
  return ((*ring_)[block] & bit) == 0;
}

void SlidingWindow::make_ring() {
  ring_ = std::make_unique<std::array<uint64_t, kBlocks>>();
  ring_->fill(0);
  if (empty_) return;
  // Only the IDs still within the window: older bits would be cleared before they mattered.
  const uint64_t from = last_ - first_ > kWindowSize ? last_ - kWindowSize : first_;
  for (uint64_t id = from;; ++id) {
    (*ring_)[(id / kBlockBits) & kRingMask] |= uint64_t{1} << (id % kBlockBits);
    if (id == last_) break;
  }
}

void SlidingWindow::accept(uint64_t id) {
  if (!ring_) {
    if (empty_) {
      // The first ID (never behind last_, which is still 0).
      empty_ = false;
      first_ = last_ = id;
      return;
    } else if (id == last_ + 1 && last_ != UINT64_MAX) {
      last_ = id;
      return;
    } else if (id > last_ && id - last_ > kWindowSize) {
      // The whole run falls out of the window.
      first_ = last_ = id;
      return;
    } else if (id < first_ && first_ - id == 1 && last_ - id <= kWindowSize) {
      first_ = id;
      return;
    } else if (id <= last_ && (last_ - id > kWindowSize || id >= first_)) {
      return;  // out of the window, or already in the run: a no-op, as with the ring
    }
    make_ring();
  }
  auto& ring = *ring_;
  if (id > last_) {
    const uint64_t current = last_ / kBlockBits;
    const uint64_t target = id / kBlockBits;
    uint64_t skipped = target - current;
    if (skipped > kBlocks) skipped = kBlocks;
    for (uint64_t i = 1; i <= skipped; ++i) ring[(current + i) & kRingMask] = 0;
    last_ = id;
  } else if (last_ - id > kWindowSize) {
    return;
  }
  ring[(id / kBlockBits) & kRingMask] |= uint64_t{1} << (id % kBlockBits);
}

bool SlidingWindow::check_and_accept(uint64_t id) {
  if (!check(id)) return false;
  accept(id);
  return true;
}

void SlidingWindow::reset() {
  ring_.reset();
  last_ = 0;
  first_ = 0;
  empty_ = true;
}

}  // namespace ss
