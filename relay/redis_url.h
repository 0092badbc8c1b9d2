#pragma once
// The "users_url" of ss-server (server/fleet/): redis://[[user]:password@]host[:port][/db].
// Pure: parsed and checked at start so that a bad URL is refused with the config.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ss {

struct RedisUrl {
  std::string host;  // an IP address or a name (resolved by the client library)
  uint16_t port = 6379;
  int db = 0;            // SELECT db
  std::string user;      // Redis 6 ACL user; empty: AUTH with the password only
  std::string password;  // empty: no AUTH (never logged)
};

// The URL's parts, or nullopt with the reason in *why ("rediss:// (TLS) is not supported", ...).
std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string* why);

}  // namespace ss
