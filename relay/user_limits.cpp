// Per-user quotas and rate limits (see user_limits.h): UTC period arithmetic, the shared token
// bucket in GCRA form (one atomic "theoretical arrival time"), the per-user counters with their
// period roll-over, and the quota state file.
//
// State file format, version 1 (text, one line each, '\n'-terminated):
//   ss-quota 1
//   <period start, seconds since the epoch> <bytes used> <user name>     (one line per user)
//   end <number of user lines>
// A user name has no control characters (config.cpp refuses them), so it ends the line. The
// trailing "end" line catches a truncated file; anything else out of form refuses the file.

#include "relay/user_limits.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <ctime>
#include <span>

#include "relay/log.h"
#include "relay/read_file.h"
#include "relay/replay_state.h"

namespace ss {

// ---- periods ----------------------------------------------------------------------------------

namespace {

constexpr int64_t kDay = 86'400;

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Seconds since the epoch of 00:00 UTC on the 1st of month `mon` (0-11, may overflow into the
// next year) of `year`.
int64_t month_start(int64_t year, int64_t mon) {
  year += floor_div(mon, 12);
  mon -= floor_div(mon, 12) * 12;
  tm t{};
  t.tm_year = static_cast<int>(year - 1900);
  t.tm_mon = static_cast<int>(mon);
  t.tm_mday = 1;
  return static_cast<int64_t>(timegm(&t));
}

}  // namespace

int64_t quota_period_start(QuotaPeriod p, int64_t now_s) {
  switch (p) {
    case QuotaPeriod::None:
      return 0;
    case QuotaPeriod::Day:
      return floor_div(now_s, kDay) * kDay;
    case QuotaPeriod::Month: {
      const time_t t = static_cast<time_t>(now_s);
      tm parts{};
      gmtime_r(&t, &parts);
      return month_start(parts.tm_year + 1900, parts.tm_mon);
    }
  }
  return 0;
}

int64_t quota_period_end(QuotaPeriod p, int64_t start_s) {
  switch (p) {
    case QuotaPeriod::None:
      return INT64_MAX;
    case QuotaPeriod::Day:
      return start_s + kDay;
    case QuotaPeriod::Month: {
      const time_t t = static_cast<time_t>(start_s);
      tm parts{};
      gmtime_r(&t, &parts);
      return month_start(parts.tm_year + 1900, parts.tm_mon + 1);
    }
  }
  return INT64_MAX;
}

const char* quota_period_name(QuotaPeriod p) {
  switch (p) {
    case QuotaPeriod::None:
      return "none";
    case QuotaPeriod::Day:
      return "day";
    case QuotaPeriod::Month:
      return "month";
  }
  return "none";
}

// ---- the shared rate limit --------------------------------------------------------------------

SharedRateLimiter::SharedRateLimiter(uint64_t rate, uint64_t burst)
    : rate_(std::max<uint64_t>(rate, 1)),
      tau_ns_(std::max<uint64_t>(burst, 1) * 1'000'000'000ull / rate_) {}

void SharedRateLimiter::consume(size_t n, uint64_t now_ms) {
  const uint64_t now = now_ms * 1'000'000ull;
  // n is at most one read (64 KiB): n * 1e9 fits in 64 bits for any n below 18 GB.
  const uint64_t cost = static_cast<uint64_t>(n) * 1'000'000'000ull / rate_;
  uint64_t old = tat_ns_.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    next = std::max(old, now) + cost;
  } while (!tat_ns_.compare_exchange_weak(old, next, std::memory_order_relaxed));
}

uint64_t SharedRateLimiter::wait_ms(uint64_t now_ms) {
  const uint64_t limit = now_ms * 1'000'000ull + tau_ns_;
  const uint64_t tat = tat_ns_.load(std::memory_order_relaxed);
  if (tat <= limit) return 0;
  return (tat - limit + 999'999) / 1'000'000;
}

// ---- one user's state -------------------------------------------------------------------------

UserState::UserState(std::string name, uint64_t quota_bytes, QuotaPeriod period, uint64_t rate)
    : name_(std::move(name)), quota_(quota_bytes), period_(period) {
  if (rate != 0) {
    limiter_ = std::make_shared<SharedRateLimiter>(rate, SharedRateLimiter::default_burst(rate));
  }
}

void UserState::roll_slow(int64_t now_s) {
  std::lock_guard<std::mutex> lock(roll_mu_);
  if (now_s < end_.load(std::memory_order_relaxed)) return;  // another thread rolled it
  const int64_t start = quota_period_start(period_, now_s);
  const bool first = end_.load(std::memory_order_relaxed) == INT64_MIN;
  if (!first && start != start_.load(std::memory_order_relaxed)) {
    // A new period. Bytes counted by another thread between the check and here may be lost
    // into the old period: at most one read per live session, once a period.
    used_.store(0, std::memory_order_relaxed);
    LOG_NOTICE("quota: user %s: a new %s begins; its count starts again from 0", name_.c_str(),
               quota_period_name(period_));
  }
  start_.store(start, std::memory_order_relaxed);
  end_.store(quota_period_end(period_, start), std::memory_order_release);
}

uint64_t UserState::used(int64_t now_s) {
  roll(now_s);
  return used_.load(std::memory_order_relaxed);
}

int64_t UserState::period_start(int64_t now_s) {
  roll(now_s);
  return start_.load(std::memory_order_relaxed);
}

bool UserState::charge(uint64_t n, int64_t now_s) {
  roll(now_s);
  const uint64_t before = used_.fetch_add(n, std::memory_order_relaxed);
  if (quota_ == 0 || before + n <= quota_) return true;
  // Refused: the user has reached its quota (what is left is less than one read), so its count
  // becomes the quota, and new connections are refused from now on (and after a restart).
  used_.fetch_sub(n, std::memory_order_relaxed);
  uint64_t cur = used_.load(std::memory_order_relaxed);
  while (cur < quota_ && !used_.compare_exchange_weak(cur, quota_, std::memory_order_relaxed)) {
  }
  return false;
}

void UserState::add(uint64_t n, int64_t now_s) {
  roll(now_s);
  used_.fetch_add(n, std::memory_order_relaxed);
}

bool UserState::restore(int64_t start_s, uint64_t used, int64_t now_s) {
  roll(now_s);
  if (start_s != start_.load(std::memory_order_relaxed)) return false;
  used_.store(used, std::memory_order_relaxed);
  return true;
}

// ---- the table --------------------------------------------------------------------------------

std::shared_ptr<UserLimits> UserLimits::make(const Specs& specs, std::string* error) {
  auto table = std::make_shared<UserLimits>();
  table->clock_offset_ = specs.clock_offset;
  for (size_t i = 0; i < specs.inbounds.size(); ++i) {
    for (const UserSpec& u : specs.inbounds[i].users) {
      if (u.quota_bytes == 0 && u.rate_limit == 0) continue;
      auto same = std::find_if(table->states_.begin(), table->states_.end(),
                               [&](const auto& s) { return s->name() == u.name; });
      if (same != table->states_.end()) {
        const UserState& s = **same;
        const uint64_t rate =
            s.limiter() ? static_cast<SharedRateLimiter&>(*s.limiter()).rate() : 0;
        if (s.quota() != u.quota_bytes || s.period() != u.quota_period || rate != u.rate_limit) {
          if (error != nullptr) {
            *error = "users: user \"" + u.name +
                     "\" is on several ports with different quota_bytes, quota_period or "
                     "rate_limit_bytes_per_second: a user's limits are the same everywhere";
          }
          return nullptr;
        }
        continue;
      }
      table->states_.push_back(
          std::make_shared<UserState>(u.name, u.quota_bytes, u.quota_period, u.rate_limit));
    }
  }
  if (table->states_.empty()) return nullptr;
  std::sort(table->states_.begin(), table->states_.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  return table;
}

UserState* UserLimits::find(std::string_view name) const {
  auto it = std::lower_bound(states_.begin(), states_.end(), name,
                             [](const auto& s, std::string_view n) { return s->name() < n; });
  return it != states_.end() && (*it)->name() == name ? it->get() : nullptr;
}

void UserLimits::keep_states_of(const UserLimits& old) {
  const int64_t now = now_s();
  for (auto& s : states_) {
    UserState* before = old.find(s->name());
    if (before == nullptr) continue;
    const auto* a = static_cast<const SharedRateLimiter*>(before->limiter().get());
    const auto* b = static_cast<const SharedRateLimiter*>(s->limiter().get());
    const bool same_rate = (a == nullptr) == (b == nullptr) && (!a || a->rate() == b->rate());
    if (before->quota() == s->quota() && before->period() == s->period() && same_rate) {
      for (const auto& o : old.states_) {
        if (o.get() == before) s = o;
      }
    } else {
      s->restore(before->period_start(now), before->used(now), now);
    }
  }
}

int64_t UserLimits::now_s() const {
  if (clock_) return clock_();
  return static_cast<int64_t>(time(nullptr)) + clock_offset_;
}

// ---- the state file ---------------------------------------------------------------------------

namespace {

constexpr std::string_view kHeader = "ss-quota 1";

bool parse_i64(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.front() == '-') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string encode_quota_state(UserLimits& limits, int64_t now_s) {
  std::string out(kHeader);
  out += '\n';
  size_t n = 0;
  for (const auto& s : limits.states()) {
    if (s->quota() == 0) continue;
    out += std::to_string(s->period_start(now_s)) + ' ' + std::to_string(s->used(now_s)) + ' ' +
           s->name() + '\n';
    ++n;
  }
  out += "end " + std::to_string(n) + '\n';
  return out;
}

std::string decode_quota_state(std::string_view text, UserLimits& limits, int64_t now_s,
                               size_t* restored, size_t* dropped) {
  struct Entry {
    int64_t start;
    uint64_t used;
    std::string_view name;
  };
  std::vector<Entry> entries;
  size_t line_no = 0;
  bool ended = false;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    if (nl == std::string_view::npos) return "line " + std::to_string(line_no + 1) + ": cut short";
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    const std::string at = "line " + std::to_string(line_no) + ": ";
    if (ended) return at + "text after the end line";
    if (line_no == 1) {
      if (line != kHeader) return at + "not a quota state file (expected \"ss-quota 1\")";
      continue;
    }
    if (line.starts_with("end ")) {
      uint64_t n = 0;
      if (!parse_u64(line.substr(4), n) || n != entries.size()) {
        return at + "the end line does not count the lines before it";
      }
      ended = true;
      continue;
    }
    const size_t a = line.find(' ');
    const size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    Entry e{};
    if (b == std::string_view::npos || !parse_i64(line.substr(0, a), e.start) ||
        !parse_u64(line.substr(a + 1, b - a - 1), e.used) || b + 1 >= line.size()) {
      return at + "expected \"<period start> <bytes used> <user>\"";
    }
    e.name = line.substr(b + 1);
    for (const Entry& other : entries) {
      if (other.name == e.name) return at + "user \"" + std::string(e.name) + "\" appears twice";
    }
    entries.push_back(e);
  }
  if (line_no == 0) return "empty";
  if (!ended) return "no end line (cut short)";
  size_t taken = 0, gone = 0;
  for (const Entry& e : entries) {
    UserState* s = limits.find(e.name);
    if (s != nullptr && s->quota() != 0 && s->restore(e.start, e.used, now_s)) {
      ++taken;
    } else {
      ++gone;
    }
  }
  if (restored != nullptr) *restored = taken;
  if (dropped != nullptr) *dropped = gone;
  return {};
}

QuotaStateFile::QuotaStateFile(std::string path, std::shared_ptr<UserLimits> limits)
    : path_(std::move(path)), limits_(std::move(limits)) {}

std::string QuotaStateFile::load() {
  if (::access(path_.c_str(), F_OK) != 0 && errno == ENOENT) {
    LOG_INFO("quota: no state file %s yet: every user starts from 0", path_.c_str());
    return {};
  }
  std::string text;
  if (std::string why = read_regular_file(path_, 1u << 24, text); !why.empty()) {
    return "cannot read " + path_ + ": " + why;
  }
  const int64_t now = limits_->now_s();
  size_t restored = 0, dropped = 0;
  const std::string err = decode_quota_state(text, *limits_, now, &restored, &dropped);
  if (!err.empty()) {
    return path_ + ": " + err + "; fix or remove the file (removing it gives every user " +
           "its whole quota again)";
  }
  LOG_NOTICE(
      "quota: loaded %s: restored the counts of %zu user%s, dropped %zu (period over, or "
      "no longer limited)",
      path_.c_str(), restored, restored == 1 ? "" : "s", dropped);
  last_text_ = encode_quota_state(*limits_, now);
  return {};
}

void QuotaStateFile::save() {
  const std::string text = encode_quota_state(*limits_, limits_->now_s());
  if (text == last_text_) return;
  if (const size_t slash = path_.rfind('/'); slash != std::string::npos && slash > 0) {
    ::mkdir(path_.substr(0, slash).c_str(), 0700);  // the default state_dir, on first save
  }
  const std::string err = write_file_atomically(
      path_, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  if (!err.empty()) {
    if (err != last_error_) LOG_ERROR("quota: cannot write the state file: %s", err.c_str());
    last_error_ = err;
    return;
  }
  last_error_.clear();
  last_text_ = text;
}

}  // namespace ss
