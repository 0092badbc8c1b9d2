// Rate-limited operator warnings (see warnings.h): one WarnLimiter per kind.

#include "relay/warnings.h"

#include <uv.h>

#include "relay/counters.h"
#include "relay/log.h"
#include "relay/metrics.h"

namespace ss::warn {
namespace {

WarnLimiter g_auth, g_replay, g_clock, g_clock_udp, g_refused, g_unreachable, g_server_auth,
    g_silent, g_proxy_auth, g_client_refused, g_quota_cut, g_quota_refused;

const char* g_role = "server";  // set_role(): before the workers start

int len(std::string_view s) {
  return static_cast<int>(s.size());
}

// "" for one event, " (and 4 more since the last such line)" for several.
struct MoreText {
  char text[64];
  explicit MoreText(uint64_t n) {
    if (n <= 1) {
      text[0] = '\0';
    } else {
      snprintf(text, sizeof text, " (%llu such events since the last line)",
               static_cast<unsigned long long>(n));
    }
  }
};

}  // namespace

void client_auth_failed(std::string_view from, std::string_view detail) {
  counters::add(Counter::ClientAuthFailed);
  LOG_WARN_LIMITED(g_auth,
                   "server: a client from %.*s failed authentication (%.*s)%s: check that its "
                   "password and method match the server's, or it is a probe",
                   len(from), from.data(), len(detail), detail.data(), MoreText(n).text);
}

void client_replay(std::string_view from) {
  counters::add(Counter::ClientReplays);
  LOG_WARN_LIMITED(g_replay,
                   "server: refused a replayed request from %.*s%s: someone resent a recorded "
                   "connection",
                   len(from), from.data(), MoreText(n).text);
}

void clock_skew(std::string_view what, std::string_view detail, bool datagram) {
  LOG_WARN_LIMITED(datagram ? g_clock_udp : g_clock,
                   "%.*s is stamped outside +-30 s: %.*s%s: check the clocks (NTP)", len(what),
                   what.data(), len(detail), detail.data(), MoreText(n).text);
}

void set_role(const char* role) {
  g_role = role;
}

void target_refused(std::string_view from, std::string_view target, std::string_view why) {
  metrics::target_refused();
  LOG_WARN_LIMITED(g_refused, "%s: refused target %.*s for %.*s: %.*s%s", g_role, len(target),
                   target.data(), len(from), from.data(), len(why), why.data(), MoreText(n).text);
}

void client_refused(std::string_view from) {
  LOG_WARN_LIMITED(g_client_refused, "server: refused a client from %.*s: the ACL denies it%s",
                   len(from), from.data(), MoreText(n).text);
}

void proxy_auth_failed(std::string_view from, std::string_view detail) {
  counters::add(Counter::ProxyAuthFailed);
  LOG_WARN_LIMITED(g_proxy_auth,
                   "local: a client from %.*s failed the proxy's authentication (%.*s)%s",
                   len(from), from.data(), len(detail), detail.data(), MoreText(n).text);
}

void server_unreachable(std::string_view server, int uv_err) {
  counters::add(Counter::ServerUnreachable);
  LOG_WARN_LIMITED(g_unreachable, "cannot reach the server %.*s: %s%s", len(server), server.data(),
                   uv_strerror(uv_err), MoreText(n).text);
}

void server_reply_unauthenticated(std::string_view server, std::string_view detail) {
  LOG_WARN_LIMITED(g_server_auth,
                   "the reply of the server %.*s failed authentication (%.*s)%s: check that "
                   "password and method match the server",
                   len(server), server.data(), len(detail), detail.data(), MoreText(n).text);
}

void user_over_quota(std::string_view user, std::string_view from, uint64_t quota, bool cut) {
  LOG_WARN_LIMITED(cut ? g_quota_cut : g_quota_refused,
                   "server: user %.*s has used its quota of %llu bytes: %s from %.*s%s", len(user),
                   user.data(), static_cast<unsigned long long>(quota),
                   cut ? "closed its connection" : "refused a new connection", len(from),
                   from.data(), MoreText(n).text);
}

void server_closed_silently(std::string_view server, std::string_view target, uint64_t ms) {
  LOG_WARN_LIMITED(g_silent,
                   "the server %.*s closed the connection to %.*s after %llu ms without a byte "
                   "of reply%s: it refused the target (see its log), the target closed at once, "
                   "or password and method do not match the server's",
                   len(server), server.data(), len(target), target.data(),
                   static_cast<unsigned long long>(ms), MoreText(n).text);
}

}  // namespace ss::warn
