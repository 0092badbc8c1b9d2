// Minimal leveled logger: one formatted line per call, written with a single fputs so lines from
// several worker threads do not interleave.

#include "relay/log.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>

namespace ss {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
const char* const kNames[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};
}  // namespace

void set_log_level(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
LogLevel log_level() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

void log_line(LogLevel level, const char* fmt, ...) {
  char line[1024];
  time_t now = time(nullptr);
  struct tm tm_now;
  localtime_r(&now, &tm_now);
  size_t n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S ", &tm_now);
  n += snprintf(line + n, sizeof line - n, "%s ", kNames[static_cast<int>(level)]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  n = (m < 0) ? n : std::min(n + static_cast<size_t>(m), sizeof line - 2);
  line[n++] = '\n';
  line[n] = '\0';
  fputs(line, stderr);
}

}  // namespace ss
