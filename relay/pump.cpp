// The pump's limiter pause and the token bucket (see pump.h). The bucket counts thousandths of a
// byte, so that refilling `rate` bytes per second over a whole number of milliseconds is exact.

#include "relay/pump.h"

#include <algorithm>

namespace ss {

TokenBucket::TokenBucket(uint64_t rate, uint64_t burst)
    : rate_(std::max<uint64_t>(rate, 1)),
      burst_milli_(static_cast<int64_t>(std::max<uint64_t>(burst, 1)) * 1000),
      tokens_milli_(burst_milli_) {}

void TokenBucket::refill(uint64_t now_ms) {
  if (!started_) {
    started_ = true;
    last_ms_ = now_ms;
    return;
  }
  if (now_ms <= last_ms_) return;
  const uint64_t dt = now_ms - last_ms_;
  last_ms_ = now_ms;
  // Capped before multiplying: a long idle only fills the bucket.
  const uint64_t room = static_cast<uint64_t>(burst_milli_ - std::min(tokens_milli_, burst_milli_));
  const uint64_t add = dt >= room / rate_ + 1 ? room : dt * rate_;
  tokens_milli_ = std::min(burst_milli_, tokens_milli_ + static_cast<int64_t>(add));
}

void TokenBucket::consume(size_t n, uint64_t now_ms) {
  refill(now_ms);
  tokens_milli_ -= static_cast<int64_t>(n) * 1000;
}

uint64_t TokenBucket::wait_ms(uint64_t now_ms) {
  refill(now_ms);
  if (tokens_milli_ > 0) return 0;
  // Until the bucket holds at least one byte again.
  const uint64_t need = static_cast<uint64_t>(1000 - tokens_milli_);
  return (need + rate_ - 1) / rate_;
}

int64_t TokenBucket::tokens(uint64_t now_ms) {
  refill(now_ms);
  return tokens_milli_ / 1000;
}

bool Pump::charge_limiter(size_t n, uint64_t now_ms) {
  limiter_->consume(n, now_ms);
  const uint64_t wait = limiter_->wait_ms(now_ms);
  if (wait == 0) return false;
  const bool started = !limited_;
  limited_ = true;
  resume_at_ = now_ms + wait;
  return started;
}

bool Pump::retry(uint64_t now_ms) {
  if (!limited_ || now_ms < resume_at_) return false;
  const uint64_t wait = limiter_ ? limiter_->wait_ms(now_ms) : 0;
  if (wait != 0) {
    resume_at_ = now_ms + wait;
    return false;
  }
  limited_ = false;
  return true;
}

}  // namespace ss
