#pragma once
// The warnings an operator must act on, at the default log level, each rate-limited (at most one
// line per 10 s per kind, with the count since the last line) and shared by every worker. They
// only log: none changes what a peer sees.

#include <cstdint>
#include <string_view>

namespace ss::warn {

// ss-server: a client failed authentication (wrong password or method, an unknown 2022 user, or
// a probe). `from` is its address, `detail` the reason.
void client_auth_failed(std::string_view from, std::string_view detail);
// ss-server: a request replayed a salt already seen.
void client_replay(std::string_view from);
// A 2022 header stamped outside the +-30 s window: `what` says what was refused, `detail` whose
// clock and by how much.
// TCP and UDP (`datagram`) are limited apart.
void clock_skew(std::string_view what, std::string_view detail, bool datagram = false);
// An authenticated client asked for a target the policy refuses (ss-server's SSRF guard and ACL,
// ss-local's [outbound_block_list]). The line starts with the program's role (set_role()).
void target_refused(std::string_view from, std::string_view target, std::string_view why);
// The role that starts target_refused()'s line ("server", "local", "tunnel", "redir",
// "manager"), set by the program at start-up (before any worker runs); "server" until then.
void set_role(const char* role);
// ss-server: a client whose address the ACL refuses ([black_list], or not in [white_list] with
// [reject_all]); its connection is closed at once.
void client_refused(std::string_view from);
// ss-local: a client failed the proxy's own authentication (SOCKS5 RFC 1929, HTTP Basic).
void proxy_auth_failed(std::string_view from, std::string_view detail);
// ss-local/ss-tunnel: ss-server cannot be reached (refused, unreachable, not resolved, timeout).
void server_unreachable(std::string_view server, int uv_err);
// ss-local/ss-tunnel: what ss-server sent does not authenticate.
void server_reply_unauthenticated(std::string_view server, std::string_view detail);

// ss-server: a user over its quota (relay/user_limits.h): a new connection from `from` was
// refused (`cut` false), or a live one was closed at the limit (`cut` true); limited apart.
void user_over_quota(std::string_view user, std::string_view from, uint64_t quota, bool cut);

// ss-local/ss-tunnel: ss-server closed a connection without sending a byte, `ms` after it began.
void server_closed_silently(std::string_view server, std::string_view target, uint64_t ms);

}  // namespace ss::warn
