#pragma once
// One line per event: "2026-11-23 19:20:00 WARN  text", on stderr, a log file or syslog. Never
// log a password or key.
//
// Levels, as the operator picks them: -q errors only; the default adds warnings and notices
// (start-up, shutdown); -v adds one line per connection (Info); -vv adds debugging detail.

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <string>

namespace ss {

enum class LogLevel : int { Error = 0, Warn = 1, Notice = 2, Info = 3, Debug = 4 };

void set_log_level(LogLevel level);
LogLevel log_level();
inline bool log_enabled(LogLevel level) {
  return static_cast<int>(level) <= static_cast<int>(log_level());
}

// Where lines go: stderr (the default), a file opened for appending, or syslog(3) under `ident`
// (facility daemon). Returns an empty string or the reason the file cannot be opened.
std::string log_to_file(const std::string& path);
void log_to_syslog(const char* ident);
// Back to stderr (closes a log file; for tests).
void log_to_stderr();

void log_line(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Milliseconds on a monotonic clock, for rate limits shared by every worker thread.
uint64_t monotonic_ms();

// A warning an operator must see, but not once per connection: counts events and lets at most
// one line through per interval; that line reports how many events happened since the last one.
// Thread-safe: one limiter is shared by every worker.
class WarnLimiter {
 public:
  explicit WarnLimiter(uint64_t interval_ms = 10'000) : interval_ms_(interval_ms) {}
  // Counts one event. Returns 0 if no line is due, else the number of events the line reports
  // (this one included).
  uint64_t hit(uint64_t now_ms = monotonic_ms());

 private:
  static constexpr uint64_t kNever = ~uint64_t{0};
  const uint64_t interval_ms_;
  std::atomic<uint64_t> last_{kNever};
  std::atomic<uint64_t> count_{0};
};

}  // namespace ss

#define SS_LOG(level, ...)                                            \
  do {                                                                \
    if (::ss::log_enabled(level)) ::ss::log_line(level, __VA_ARGS__); \
  } while (0)
#define LOG_ERROR(...) SS_LOG(::ss::LogLevel::Error, __VA_ARGS__)
#define LOG_WARN(...) SS_LOG(::ss::LogLevel::Warn, __VA_ARGS__)
#define LOG_NOTICE(...) SS_LOG(::ss::LogLevel::Notice, __VA_ARGS__)
#define LOG_INFO(...) SS_LOG(::ss::LogLevel::Info, __VA_ARGS__)
#define LOG_DEBUG(...) SS_LOG(::ss::LogLevel::Debug, __VA_ARGS__)
// A rate-limited warning: `limiter` is a WarnLimiter shared by every worker; `n` (uint64_t, the
// events since the last line) may be used in the format arguments.
#define LOG_WARN_LIMITED(limiter, ...)                     \
  do {                                                     \
    if (::ss::log_enabled(::ss::LogLevel::Warn)) {         \
      if (const uint64_t n = (limiter).hit(); n != 0)      \
        ::ss::log_line(::ss::LogLevel::Warn, __VA_ARGS__); \
    }                                                      \
  } while (0)
