// Leveled logger: one formatted line per call, written with a single write (fputs on a line, or
// one syslog call) so lines from several worker threads do not interleave.

// <syslog.h> defines LOG_INFO, LOG_DEBUG and LOG_NOTICE as priorities; take the values before
// our logging macros of the same names are defined.
#include <syslog.h>

namespace {
constexpr int kSyslogPriority[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};
}  // namespace
#undef LOG_INFO
#undef LOG_DEBUG
#undef LOG_NOTICE

#include "relay/log.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace ss {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Notice)};
const char* const kNames[] = {"ERROR", "WARN ", "INFO ", "INFO ", "DEBUG"};

enum class Sink { Stderr, File, Syslog };
// Set at start-up, before the worker threads exist; read by every thread afterwards.
std::mutex g_sink_mutex;
Sink g_sink = Sink::Stderr;
FILE* g_file = nullptr;
}  // namespace

void set_log_level(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
LogLevel log_level() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

std::string log_to_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) return std::strerror(errno);
  setvbuf(f, nullptr, _IOLBF, 0);
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = f;
  g_sink = Sink::File;
  return {};
}

void log_to_syslog(const char* ident) {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
  g_sink = Sink::Syslog;
}

void log_to_stderr() {
  std::lock_guard<std::mutex> lock(g_sink_mutex);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = nullptr;
  if (g_sink == Sink::Syslog) closelog();
  g_sink = Sink::Stderr;
}

void log_line(LogLevel level, const char* fmt, ...) {
  char line[1024];
  const int lvl = std::clamp(static_cast<int>(level), 0, 4);
  size_t n = 0;
  if (g_sink != Sink::Syslog) {
    time_t now = time(nullptr);
    struct tm tm_now;
    localtime_r(&now, &tm_now);
    n = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S ", &tm_now);
    n += snprintf(line + n, sizeof line - n, "%s ", kNames[lvl]);
  }
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  n = (m < 0) ? n : std::min(n + static_cast<size_t>(m), sizeof line - 2);
  if (g_sink == Sink::Syslog) {
    line[n] = '\0';
    syslog(kSyslogPriority[lvl], "%s", line);
    return;
  }
  line[n++] = '\n';
  line[n] = '\0';
  fputs(line, g_sink == Sink::File && g_file != nullptr ? g_file : stderr);
}

uint64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

uint64_t WarnLimiter::hit(uint64_t now_ms) {
  count_.fetch_add(1, std::memory_order_relaxed);
  uint64_t last = last_.load(std::memory_order_relaxed);
  if (last != kNever && now_ms - last < interval_ms_) return 0;
  if (!last_.compare_exchange_strong(last, now_ms)) return 0;  // another thread logs it
  return count_.exchange(0, std::memory_order_relaxed);
}

}  // namespace ss
