#pragma once
// Per-session packet-ID replay filter for Shadowsocks 2022 UDP (protocol.md §2.8): the
// WireGuard-style ring of 128 64-bit blocks that sing-shadowsocks and shadowsocks-rust use.
// The newest ID seen is `last`; IDs up to kWindowSize (8128) behind it are tracked bit by bit,
// older ones are rejected, newer ones slide the window forward.
//
// check() and accept() are separate on purpose (SIP022 §3.2.4, hostile-inputs U4): check a
// packet ID as soon as its header decrypts, but accept() it only after the whole packet has
// authenticated and validated, so forged or stale packets never move the window.
// Not thread-safe (one per session, on its loop).
//
// The ring (1 KiB) is allocated lazily: while the IDs accepted within the window form one run
// without a gap (in-order traffic without loss), the window is that run's two ends, and check()
// and accept() behave exactly as with the ring. The first accept() that would leave a gap inside
// the window allocates the ring (once per window, never per packet).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ss {

class SlidingWindow {
 public:
  static constexpr size_t kBlocks = 128;
  static constexpr uint64_t kBlockBits = 64;
  // How far behind the newest ID an ID may be and still be accepted (exactly this far is ok).
  static constexpr uint64_t kWindowSize = (kBlocks - 1) * kBlockBits;  // 8128

  // Would `id` be accepted now? False for a duplicate or an ID more than kWindowSize behind.
  bool check(uint64_t id) const;
  // Records `id` (call only after check(id) and full validation). Slides the window when `id` is
  // ahead, clearing the blocks it skips. Recording an ID that check() would reject is a no-op.
  void accept(uint64_t id);
  // check() then accept(); true if the ID was new. For callers with nothing to validate between.
  bool check_and_accept(uint64_t id);
  // Forgets everything (as constructed).
  void reset();

  // The newest accepted ID (0 before any).
  uint64_t last() const { return last_; }
  // True once a gap made the window allocate its ring (tests, memory accounting).
  bool has_ring() const { return ring_ != nullptr; }

 private:
  // Turns the run [first_, last_] into the ring's bits.
  void make_ring();

  static constexpr uint64_t kRingMask = kBlocks - 1;
  static_assert((kBlocks & kRingMask) == 0, "the ring size must be a power of two");

  std::unique_ptr<std::array<uint64_t, kBlocks>> ring_;  // null: the run below says it all
  uint64_t last_ = 0;
  uint64_t first_ = 0;  // without the ring: the oldest ID of the run [first_, last_] accepted
  bool empty_ = true;   // without the ring: nothing accepted yet
};

}  // namespace ss
