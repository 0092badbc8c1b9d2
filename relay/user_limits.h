#pragma once
// Per-user quotas and rate limits of ss-server (issue 14 item 6): what a user entry's
// "quota_bytes", "quota_period" and "rate_limit_bytes_per_second" become at run time.
//
// Each limited user has one UserState for the whole process, shared by every worker and every
// port the user is on (a user is its name). Its counters are atomics: a read charges the quota
// with one fetch_add and the rate limit with one compare-exchange, with no lock on the data path.
// The states live in a UserLimits table, sorted by name; a connection finds its user's state once,
// after authentication. A new snapshot (a reload) builds a new table and takes over the old
// one's states by name (keep_states_of), so counters and buckets survive it.
//
// What is counted: every byte ss-server reads for the user's connections, from the client (as
// it comes on the wire, AEAD overhead included) and from the target, both directions summed. The
// rate limit is one token bucket over the same bytes (both directions summed).
//
// The quota state file keeps, per user, the start of the current period and the bytes used in
// it (format in user_limits.cpp), written atomically (temporary file, fsync, rename).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "relay/config.h"
#include "relay/pump.h"

namespace ss {

// ---- periods (UTC) ----------------------------------------------------------------------------

// The start (seconds since the epoch) of the period that holds `now_s`: 0 for None (a lifetime
// quota), midnight UTC for Day, 00:00 UTC on the 1st for Month.
int64_t quota_period_start(QuotaPeriod p, int64_t now_s);
// The start of the next period after the one that starts at `start_s` (INT64_MAX for None).
int64_t quota_period_end(QuotaPeriod p, int64_t start_s);
// "none", "day", "month".
const char* quota_period_name(QuotaPeriod p);

// ---- the shared rate limit --------------------------------------------------------------------

// A token bucket shared by every pump of a user, on every worker: `rate` bytes per second on
// average, at most `burst` bytes at once after an idle while. Kept as the time at which the
// bucket would be full again ("theoretical arrival time", GCRA), in nanoseconds of the loops'
// monotonic clock (uv_now: the same clock on every loop), in one atomic: a read costs one
// compare-exchange. Reading waits while that time is more than burst/rate ahead of now.
class SharedRateLimiter final : public PumpLimiter {
 public:
  SharedRateLimiter(uint64_t rate, uint64_t burst);
  void consume(size_t n, uint64_t now_ms) override;
  uint64_t wait_ms(uint64_t now_ms) override;
  uint64_t rate() const { return rate_; }

  // The burst the rate gets: a tenth of a second's worth, at least one byte.
  static uint64_t default_burst(uint64_t rate) { return rate / 10 > 0 ? rate / 10 : 1; }

 private:
  uint64_t rate_;
  uint64_t tau_ns_;  // burst / rate, in ns
  std::atomic<uint64_t> tat_ns_{0};
};

// ---- one user's state -------------------------------------------------------------------------

class UserState {
 public:
  UserState(std::string name, uint64_t quota_bytes, QuotaPeriod period, uint64_t rate);

  const std::string& name() const { return name_; }
  uint64_t quota() const { return quota_; }  // 0: no quota
  QuotaPeriod period() const { return period_; }
  // The user's rate limit for its pumps; null: none.
  const std::shared_ptr<PumpLimiter>& limiter() const { return limiter_; }

  // Bytes used in the period that holds `now_s` (a new period starts at 0).
  uint64_t used(int64_t now_s);
  // The start of the current period.
  int64_t period_start(int64_t now_s);
  // True if the user has a quota and has used it all.
  bool over_quota(int64_t now_s) { return quota_ != 0 && used(now_s) >= quota_; }
  // Counts `n` bytes. With a quota, false if they would take the user past it: they are then
  // not counted (the caller drops them), so what was relayed never exceeds the quota, and the
  // user's count becomes its quota (it is used up: what is left is less than that read).
  bool charge(uint64_t n, int64_t now_s);
  // Counts `n` bytes whatever the quota (bytes already relayed).
  void add(uint64_t n, int64_t now_s);
  // From the state file: `used` bytes in the period that started at `start_s`. Taken if that is
  // the current period; an older one has ended (its count is dropped). True if taken.
  bool restore(int64_t start_s, uint64_t used, int64_t now_s);

 private:
  // Starts a new period if `now_s` is past the current one.
  void roll(int64_t now_s) {
    if (now_s >= end_.load(std::memory_order_acquire)) roll_slow(now_s);
  }
  void roll_slow(int64_t now_s);

  std::string name_;
  uint64_t quota_;
  QuotaPeriod period_;
  std::shared_ptr<PumpLimiter> limiter_;
  std::atomic<uint64_t> used_{0};
  std::atomic<int64_t> start_{0};
  std::atomic<int64_t> end_{INT64_MIN};  // the first use computes the period
  std::mutex roll_mu_;                   // only at a period's end
};

// ---- the table --------------------------------------------------------------------------------

class UserLimits {
 public:
  // The limited users of `specs`' inbounds (those with a quota or a rate). Null if none. A name
  // that appears on several ports with different limits is refused (*error names the key).
  static std::shared_ptr<UserLimits> make(const Specs& specs, std::string* error);

  // The user's state, or null (not limited).
  UserState* find(std::string_view name) const;
  const std::vector<std::shared_ptr<UserState>>& states() const { return states_; }

  // Reload: takes over `old`'s state of every user kept with the same limits (its counters and
  // bucket go on); a user whose limits changed starts a new state with the old counters.
  void keep_states_of(const UserLimits& old);

  // The wall clock used for periods: time(nullptr) plus the configured clock offset.
  int64_t now_s() const;
  void set_clock_offset(int64_t s) { clock_offset_ = s; }
  // Tests: a fixed clock instead (null: the real one).
  void set_clock(std::function<int64_t()> clock) { clock_ = std::move(clock); }

 private:
  std::vector<std::shared_ptr<UserState>> states_;  // sorted by name
  int64_t clock_offset_ = 0;
  std::function<int64_t()> clock_;
};

// ---- the state file ---------------------------------------------------------------------------

// The file's text for the table's users with a quota, as of `now_s`.
std::string encode_quota_state(UserLimits& limits, int64_t now_s);
// Loads `text` into the table. Empty on success, else why the file is refused (nothing is loaded
// then). `*restored` / `*dropped`: users whose count was taken / whose period had ended or who
// are no longer limited.
std::string decode_quota_state(std::string_view text, UserLimits& limits, int64_t now_s,
                               size_t* restored = nullptr, size_t* dropped = nullptr);

class QuotaStateFile {
 public:
  QuotaStateFile(std::string path, std::shared_ptr<UserLimits> limits);
  const std::string& path() const { return path_; }
  // At start. A missing file is fine; an unreadable or corrupt one is an error (returned, the
  // caller exits): starting from zero would give every user its quota again.
  std::string load();
  // Writes the counters if they changed since the last load or save. A failure is logged.
  void save();

 private:
  std::string path_;
  std::shared_ptr<UserLimits> limits_;
  std::string last_text_;
  std::string last_error_;
};

}  // namespace ss
