#pragma once
// Per-session packet-ID replay filter for Shadowsocks 2022 UDP (protocol.md §2.8): the
// WireGuard-style ring of 128 64-bit blocks that sing-shadowsocks and shadowsocks-rust use.
// The newest ID seen is `last`; IDs up to kWindowSize (8128) behind it are tracked bit by bit,
// older ones are rejected, newer ones slide the window forward.
//
// check() and accept() are separate on purpose (SIP022 §3.2.4, hostile-inputs U4): check a
// packet ID as soon as its header decrypts, but accept() it only after the whole packet has
// authenticated and validated, so forged or stale packets never move the window.
// Pure data, no allocation; not thread-safe (one per session, on its loop).

#include <array>
#include <cstddef>
#include <cstdint>

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

 private:
  static constexpr uint64_t kRingMask = kBlocks - 1;
  static_assert((kBlocks & kRingMask) == 0, "the ring size must be a power of two");

  std::array<uint64_t, kBlocks> ring_{};
  uint64_t last_ = 0;
};

}  // namespace ss
