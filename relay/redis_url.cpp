// Parses redis:// URLs as Redis clients write them (the IANA "redis" URI scheme):
// redis://[[user]:password@]host[:port][/db]. Percent-escapes in the password are decoded;
// rediss:// (TLS) and unix sockets are refused, since the client here speaks plain TCP only.

#include "relay/redis_url.h"

#include <charconv>

namespace ss {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_digit(s[i + 1]);
    const int lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

template <typename T>
bool whole_number(std::string_view s, T lo, T hi, T* out) {
  if (s.empty()) return false;
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

std::optional<RedisUrl> parse_redis_url(std::string_view url, std::string* why) {
  auto refuse = [why](std::string reason) -> std::optional<RedisUrl> {
    *why = std::move(reason);
    return std::nullopt;
  };
  constexpr std::string_view kScheme = "redis://";
  if (url.rfind("rediss://", 0) == 0) {
    return refuse("rediss:// (Redis over TLS) is not supported; use redis:// over a trusted link");
  }
  if (url.rfind(kScheme, 0) != 0) return refuse("must start with redis://");
  std::string_view rest = url.substr(kScheme.size());
  RedisUrl out;
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const size_t colon = auth.find(':');
    std::string_view user =
        colon == std::string_view::npos ? std::string_view{} : auth.substr(0, colon);
    std::string_view pass = colon == std::string_view::npos ? auth : auth.substr(colon + 1);
    std::optional<std::string> u = percent_decode(user);
    std::optional<std::string> p = percent_decode(pass);
    if (!u || !p) return refuse("a bad %-escape in the user or password");
    out.user = std::move(*u);
    out.password = std::move(*p);
  }
  std::string_view hostport = rest;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !whole_number(db, 0, 1 << 20, &out.db)) {
      return refuse("the database after the host must be a number, got \"" + std::string(db) +
                    "\"");
    }
  }
  if (hostport.find_first_of("?#") != std::string_view::npos) {
    return refuse("query and fragment are not supported");
  }
  std::string_view host = hostport;
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return refuse("an IPv6 host needs its closing ]");
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return refuse("junk after the IPv6 host");
      port = after.substr(1);
    }
  } else if (const size_t colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  if (host.empty()) return refuse("no host");
  out.host = std::string(host);
  if (!port.empty() && !whole_number<uint16_t>(port, 1, 65535, &out.port)) {
    return refuse("the port must be a number from 1 to 65535, got \"" + std::string(port) + "\"");
  }
  return out;
}

}  // namespace ss
