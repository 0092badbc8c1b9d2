#pragma once
// One direction of a relayed connection: bytes read from a source side go through a transform
// (open, seal or identity: the sides' cipher states, applied by the connection) to the sink side.
// The Pump holds that direction's flow control: the sink's watermarks (at most 128/32 KiB; see
// Pump), and one extra pause condition, a PumpLimiter (a rate limit, a quota) that may hold
// reading back for a while. With no limiter (the default) the extra condition costs one null
// check per read.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "relay/buffer_pool.h"

namespace ss {

// Holds back the reading of the pumps it is given to (one or many, on one loop): each read is
// charged after the fact (a read's size is only known once it is done), and the pump asks before
// reading on. A pump may thus overdraw by at most one read.
class PumpLimiter {
 public:
  virtual ~PumpLimiter() = default;
  // `n` bytes were read at `now_ms` (the loop's clock, in ms).
  virtual void consume(size_t n, uint64_t now_ms) = 0;
  // 0 if reading may go on now; otherwise how many ms to wait before asking again.
  virtual uint64_t wait_ms(uint64_t now_ms) = 0;
};

// A token bucket: `rate` bytes per second on average, at most `burst` bytes at once after an idle
// while. Reading waits while the bucket is empty or overdrawn.
class TokenBucket final : public PumpLimiter {
 public:
  // rate > 0, burst > 0 (bytes per second, bytes). The bucket starts full.
  TokenBucket(uint64_t rate, uint64_t burst);
  void consume(size_t n, uint64_t now_ms) override;
  uint64_t wait_ms(uint64_t now_ms) override;
  // Tokens now (bytes; negative when overdrawn), after refilling up to `now_ms`.
  int64_t tokens(uint64_t now_ms);

 private:
  void refill(uint64_t now_ms);
  uint64_t rate_;
  int64_t burst_milli_;   // burst, in thousandths of a byte
  int64_t tokens_milli_;  // thousandths of a byte: rate * ms adds exactly, with no rounding
  uint64_t last_ms_ = 0;
  bool started_ = false;
};

// The limiters a listener gives its connections' pumps: reading from the client (uploads) and
// from the remote (downloads). Null: no limit.
struct PumpLimiters {
  std::shared_ptr<PumpLimiter> from_client;
  std::shared_ptr<PumpLimiter> from_remote;
};

class Pump {
 public:
  // Backpressure marks on the sink's queued (handed to its stream, not yet written) bytes: the
  // ceiling. A pump starts with a high mark of kStartHigh and the low mark is always a quarter
  // of the high one. Each time the sink drains to the low mark within kFastDrainMs of the pause
  // that the high mark started, the high mark doubles, up to kHighWater; a pause that lasts
  // kSlowDrainMs or more halves it, down to kStartHigh. A sink that keeps up (a bulk transfer
  // into a fast reader) gets the full 128/32 KiB after four quick pauses; a sink read slowly
  // holds little in user space (its kernel socket buffer holds more), so a slow reader costs
  // little memory.
  static constexpr size_t kHighWater = 128 * 1024;
  static constexpr size_t kLowWater = 32 * 1024;
  static constexpr size_t kStartHigh = 8 * 1024;
  static constexpr uint64_t kFastDrainMs = 100;
  static constexpr uint64_t kSlowDrainMs = 1000;

  // The marks now.
  size_t high_water() const { return high_; }
  size_t low_water() const { return high_ / 4; }

  // How many bytes the next read from the source may take, given the sink's queue. An empty
  // queue (the sink takes what it is given) gets a whole read (kReadSize), so a bulk transfer
  // into a fast sink reads 64 KiB at a time at any mark. Otherwise the room left under the high
  // mark, at most kReadSize, at least one byte (a source is only read while its sink is below
  // the mark). So a sink's queue ends at the high mark plus what the transform adds to one read
  // (AEAD overhead, or a chunk an opener held back), or at what is left of the one whole read
  // that found the sink full (a sink that stays throttled gives the pages already written back:
  // Stream::trim).
  size_t read_size(size_t sink_queued) const {
    if (sink_queued == 0) return kReadSize;
    const size_t room = sink_queued < high_ ? high_ - sink_queued : 1;
    return std::min(room, kReadSize);
  }

  // The source is read only while neither pause holds.
  bool paused() const { return throttled_ || limited_; }
  // The watermark pause: the sink's queue went above the high mark and has not fallen to the low.
  bool throttled() const { return throttled_; }
  // The limiter's pause, until resume_at().
  bool limited() const { return limited_; }
  // Absolute loop time at which a limited pump asks its limiter again; 0 if not limited.
  uint64_t resume_at() const { return limited_ ? resume_at_ : 0; }

  void set_limiter(std::shared_ptr<PumpLimiter> limiter) { limiter_ = std::move(limiter); }

  // The sink's queue after a write at `now_ms` (the loop's clock): true if it reached the high
  // mark (the source must stop).
  bool sink_queued(size_t queued, uint64_t now_ms) {
    if (queued < high_) return false;
    if (!throttled_) paused_at_ = now_ms;
    throttled_ = true;
    return true;
  }
  // The sink's queue after a write completed at `now_ms`: true if that ended the watermark pause
  // (and the marks adapt to how long it lasted).
  bool sink_written(size_t queued, uint64_t now_ms) {
    if (!throttled_ || queued > low_water()) return false;
    throttled_ = false;
    adapt(now_ms - std::min(now_ms, paused_at_));
    return true;
  }
  // `n` bytes were read from the source: charges the limiter, if any. True if that started the
  // limiter's pause.
  bool charge(size_t n, uint64_t now_ms) {
    if (!limiter_) return false;
    return charge_limiter(n, now_ms);
  }
  // At or after resume_at(): asks the limiter again. True if the pause ended.
  bool retry(uint64_t now_ms);
  // Both pauses end (the connection stops relaying and drains its client).
  void release() {
    throttled_ = false;
    limited_ = false;
  }

 private:
  bool charge_limiter(size_t n, uint64_t now_ms);
  void adapt(uint64_t paused_ms) {
    if (paused_ms < kFastDrainMs) {
      high_ = std::min(high_ * 2, kHighWater);
    } else if (paused_ms >= kSlowDrainMs) {
      high_ = std::max(high_ / 2, kStartHigh);
    }
  }

  std::shared_ptr<PumpLimiter> limiter_;
  size_t high_ = kStartHigh;
  uint64_t paused_at_ = 0;
  uint64_t resume_at_ = 0;
  bool throttled_ = false;
  bool limited_ = false;
};

}  // namespace ss
