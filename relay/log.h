#pragma once
// One line per event on stderr: "2026-11-23 19:20:00 INFO  text". Never log a password or key.

#include <cstdarg>

namespace ss {

enum class LogLevel : int { Error = 0, Warn = 1, Info = 2, Debug = 3 };

void set_log_level(LogLevel level);
LogLevel log_level();
inline bool log_enabled(LogLevel level) {
  return static_cast<int>(level) <= static_cast<int>(log_level());
}

void log_line(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace ss

#define SS_LOG(level, ...)                                            \
  do {                                                                \
    if (::ss::log_enabled(level)) ::ss::log_line(level, __VA_ARGS__); \
  } while (0)
#define LOG_ERROR(...) SS_LOG(::ss::LogLevel::Error, __VA_ARGS__)
#define LOG_WARN(...) SS_LOG(::ss::LogLevel::Warn, __VA_ARGS__)
#define LOG_INFO(...) SS_LOG(::ss::LogLevel::Info, __VA_ARGS__)
#define LOG_DEBUG(...) SS_LOG(::ss::LogLevel::Debug, __VA_ARGS__)
