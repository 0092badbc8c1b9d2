// Configuration: shadowsocks-libev's JSON keys (-c FILE) and command-line flags, flags winning.
// Every error is a ConfigError with one line that starts with the offending key or flag. The
// password and the key never appear in a message: their errors only say what is wrong.

#include "relay/config.h"
#include "relay/options.h"

// GCC 12 reports false "may be used uninitialized" warnings inside <regex>, which cxxopts uses,
// in optimized sanitizer builds (clang does not know the warning).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cxxopts.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <ostream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unordered_set>

#include <blake3.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <uv.h>

#include "client/inbound/users_file.h"
#include "client/tun/tun_dns.h"
#include "crypto/kdf.h"
#include "relay/acl.h"
#include "relay/address.h"
#include "relay/net/resolver.h"
#include "relay/qr_text.h"
#include "relay/read_file.h"
#include "relay/redis_url.h"
#include "relay/sip002.h"
#include "relay/version.h"

namespace ss {
namespace {

using nlohmann::json;

constexpr std::string_view kDefaultMethod = "chacha20-ietf-poly1305";
constexpr int kDefaultTimeout = 60;
// Keeps timeout * 1000 (milliseconds) inside an int.
constexpr long long kMaxTimeout = std::numeric_limits<int>::max() / 1000;
// UDP associations: a generous ceiling that still keeps a typo from sizing tables absurdly.
constexpr long long kMaxUdpAssociations = 10'000'000;
constexpr size_t kMaxConfigFileSize = 1 << 20;
constexpr size_t kMaxQuotedLen = 200;

[[noreturn]] void fail(const std::string& message) {
  throw ConfigError(message);
}

// A user-supplied string for an error message: double-quoted, control bytes escaped, capped.
std::string quote(std::string_view s) {
  std::string q = "\"";
  const size_t n = std::min(s.size(), kMaxQuotedLen);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      q += '\\';
      q += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      q += "\\x";
      q += kHex[c >> 4];
      q += kHex[c & 0xF];
    } else {
      q += static_cast<char>(c);
    }
  }
  if (s.size() > n) q += "...";
  q += '"';
  return q;
}

// A JSON value for an error message (never used for password or key). Arrays and objects are
// only named: dump() recurses once per nesting level, and a config file can nest a value a
// million levels deep.
std::string show(const json& v) {
  if (v.is_string()) return quote(v.get_ref<const std::string&>());
  if (v.is_array()) return v.empty() ? "[]" : "an array";
  if (v.is_object()) return v.empty() ? "{}" : "an object";
  std::string s = v.dump();
  if (s.size() > kMaxQuotedLen) s = s.substr(0, kMaxQuotedLen) + "...";
  return s;
}

// Decimal digits only; nullopt if empty, not digits, or absurdly long.
std::optional<long long> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// An integer from a JSON integer or a numeric string (libev accepts both). Values too large for
// long long saturate, which every caller rejects as out of range.
std::optional<long long> integer_value(const json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<unsigned long long>();
    return u > static_cast<unsigned long long>(std::numeric_limits<long long>::max())
               ? std::numeric_limits<long long>::max()
               : static_cast<long long>(u);
  }
  if (v.is_number_integer()) return v.get<long long>();
  if (v.is_string()) return parse_decimal(v.get_ref<const std::string&>());
  return std::nullopt;
}

// --- Setters shared by JSON keys and flags; `name` is the key or flag for error messages. ---

uint16_t port_value(const json& v, std::string_view name) {
  const std::optional<long long> n = integer_value(v);
  if (!n || *n < 1 || *n > 65535) {
    fail(std::string(name) + ": must be an integer from 1 to 65535, got " + show(v));
  }
  return static_cast<uint16_t>(*n);
}

int timeout_value(const json& v, std::string_view name) {
  const std::optional<long long> n = integer_value(v);
  if (!n || *n < 1)
    fail(std::string(name) + ": must be a positive number of seconds, got " + show(v));
  if (*n > kMaxTimeout) {
    fail(std::string(name) + ": must be at most " + std::to_string(kMaxTimeout) + " seconds, got " +
         show(v));
  }
  return static_cast<int>(*n);
}

// No value in the message: this is also used for the password and the key.
const std::string& string_value(const json& v, std::string_view name) {
  if (!v.is_string()) fail(std::string(name) + ": must be a string");
  return v.get_ref<const std::string&>();
}

bool bool_value(const json& v, std::string_view name) {
  if (!v.is_boolean()) fail(std::string(name) + ": must be true or false, got " + show(v));
  return v.get<bool>();
}

std::vector<std::string> server_value(const json& v, std::string_view name) {
  std::vector<std::string> hosts;
  auto add = [&](const json& item) {
    if (!item.is_string()) {
      fail(std::string(name) + ": must be a host name or address, or an array of them, got " +
           show(item));
    }
    const auto& s = item.get_ref<const std::string&>();
    if (s.empty()) fail(std::string(name) + ": must not be empty");
    hosts.push_back(s);
  };
  if (v.is_array()) {
    if (v.empty()) fail(std::string(name) + ": must list at least one host");
    for (const json& item : v) add(item);
  } else {
    add(v);
  }
  return hosts;
}

Mode mode_value(const json& v, std::string_view name) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "tcp_only") return Mode::TcpOnly;
    if (s == "tcp_and_udp") return Mode::TcpAndUdp;
    if (s == "udp_only") return Mode::UdpOnly;
  }
  fail(std::string(name) + R"(: must be "tcp_only", "tcp_and_udp" or "udp_only", got )" + show(v));
}

Address tunnel_value(const json& v, std::string_view name) {
  const std::string& s = string_value(v, name);
  std::optional<Address> a = parse_host_port(s);
  if (!a) {
    fail(std::string(name) +
         ": must be host:port (or [IPv6]:port) with a port from 1 to 65535, got " + quote(s));
  }
  return *a;
}

size_t count_value(const json& v, std::string_view name, long long lo, long long hi) {
  std::optional<long long> n;
  if (v.is_number_integer()) {
    n = v.get<long long>();
  } else if (v.is_string()) {
    const auto& t = v.get_ref<const std::string&>();
    if (!t.empty() && t.size() <= 9 && t.find_first_not_of("0123456789") == std::string::npos) {
      n = std::stoll(t);
    }
  }
  if (!n || *n < lo || *n > hi) {
    fail(std::string(name) + ": must be a whole number from " + std::to_string(lo) + " to " +
         std::to_string(hi) + ", got " + show(v));
  }
  return static_cast<size_t>(*n);
}

// A user entry's limits (relay/user_limits.h): "quota_bytes", "quota_period" and
// "rate_limit_bytes_per_second", each optional. `at`: "users[i]" for messages.
void user_limits_value(const json& u, const std::string& at, UserSpec& user) {
  constexpr long long kMaxBytes = 1LL << 60;
  if (u.contains("quota_bytes")) {
    user.quota_bytes = count_value(u["quota_bytes"], at + ".quota_bytes", 1, kMaxBytes);
  }
  if (u.contains("quota_period")) {
    const std::string& p = string_value(u["quota_period"], at + ".quota_period");
    if (p == "day") {
      user.quota_period = QuotaPeriod::Day;
    } else if (p == "month") {
      user.quota_period = QuotaPeriod::Month;
    } else if (p == "none") {
      user.quota_period = QuotaPeriod::None;
    } else {
      fail(at + R"(.quota_period: must be "day", "month" or "none", got )" +
           show(u["quota_period"]));
    }
    if (user.quota_bytes == 0) fail(at + ".quota_period: needs quota_bytes");
  }
  if (u.contains("rate_limit_bytes_per_second")) {
    user.rate_limit = count_value(u["rate_limit_bytes_per_second"],
                                  at + ".rate_limit_bytes_per_second", 1, kMaxBytes);
  }
  for (const auto& [key, value] : u.items()) {
    if (key != "name" && key != "password" && key != "quota_bytes" && key != "quota_period" &&
        key != "rate_limit_bytes_per_second") {
      fail(at + "." + key + ": unknown key in a user entry");
    }
  }
}

// SIP023 users, shadowsocks-rust's form: [{"name": "alice", "password": "<base64 uPSK>"}, ...].
std::vector<User2022> users_value(const json& v, std::string_view name) {
  if (!v.is_array()) {
    fail(std::string(name) + R"(: must be an array of {"name": ..., "password": ...}, got )" +
         show(v));
  }
  std::vector<User2022> users;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& u = v[i];
    const std::string at = std::string(name) + "[" + std::to_string(i) + "]";
    if (!u.is_object() || !u.contains("name") || !u.contains("password")) {
      fail(at + R"(: must be an object with "name" and "password")");
    }
    User2022 user;
    user.name = string_value(u["name"], at + ".name");
    user.password = string_value(u["password"], at + ".password");
    if (user.name.empty()) fail(at + ".name: must not be empty");
    for (char ch : user.name) {
      // Names go into log lines: a control character could forge or split them.
      const unsigned char c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7F) fail(at + ".name: must not contain control characters");
    }
    for (const User2022& other : users) {
      if (other.name == user.name) fail(at + ".name: " + quote(user.name) + " appears twice");
    }
    user_limits_value(u, at, user);
    users.push_back(std::move(user));
  }
  return users;
}

}  // namespace

std::vector<UserSpec> parse_users_json(const std::string& text, std::string_view key) {
  json v = json::parse(text, nullptr, false);
  if (v.is_discarded()) fail(std::string(key) + ": not valid JSON");
  return users_value(v, key);
}

namespace {

int workers_value(const json& v, std::string_view name) {
  std::optional<long long> n;
  if (v.is_number_integer()) {
    n = v.get<long long>();
  } else if (v.is_string()) {
    const auto& t = v.get_ref<const std::string&>();
    if (!t.empty() && t.size() <= 4 && t.find_first_not_of("0123456789") == std::string::npos) {
      n = std::stoll(t);
    }
  }
  if (!n || *n < 1 || *n > 256) {
    fail(std::string(name) + ": must be a number of threads from 1 to 256, got " + show(v));
  }
  return static_cast<int>(*n);
}

// libev's "port_password": {"8001": "password1", "8002": "password2"}. libev takes string values
// only (it skips any other silently); here anything else is an error, as is a port given twice
// (spelled differently: "8001" and "08001").
std::vector<std::pair<uint16_t, std::string>> port_password_value(const json& v,
                                                                  std::string_view name) {
  if (!v.is_object() || v.empty()) {
    fail(std::string(name) + R"(: must be a non-empty object {"port": "password", ...}, got )" +
         show(v));
  }
  std::vector<std::pair<uint16_t, std::string>> out;
  for (const auto& [k, val] : v.items()) {
    std::optional<long long> n;
    if (!k.empty() && k.size() <= 5 && k.find_first_not_of("0123456789") == std::string::npos) {
      n = std::stoll(k);
    }
    if (!n || *n < 1 || *n > 65535) fail(std::string(name) + ": " + quote(k) + " is not a port");
    const std::string at = std::string(name) + "[" + quote(k) + "]";
    if (!val.is_string()) fail(at + ": must be a password string");
    const auto port = static_cast<uint16_t>(*n);
    for (const auto& [p, pw] : out) {
      if (p == port) fail(std::string(name) + ": port " + std::to_string(port) + " appears twice");
    }
    out.emplace_back(port, val.get<std::string>());
  }
  return out;
}

// "plugin", "plugin_opts", "plugin_args" (shadowsocks-rust's, an array of strings) and
// "plugin_mode" (rust's SIP003u: only "tcp_only", its default, is supported; UDP never goes
// through a plugin here). False: `k` is not a plugin key.
bool plugin_key(PluginSpec& p, std::string_view k, const json& val, const std::string& key) {
  if (k == "plugin") {
    p.name = string_value(val, key);
  } else if (k == "plugin_opts") {
    p.opts = string_value(val, key);
  } else if (k == "plugin_args") {
    if (!val.is_array()) fail(key + ": must be an array of strings");
    p.args.clear();
    for (size_t i = 0; i < val.size(); ++i) {
      p.args.push_back(string_value(val[i], key + "[" + std::to_string(i) + "]"));
    }
  } else if (k == "plugin_mode") {
    const std::string& m = string_value(val, key);
    if (m != "tcp_only") {
      fail(key + ": only \"tcp_only\" is supported (a plugin carries TCP; UDP goes to the " +
           "server directly), got " + quote(m));
    }
  } else {
    return false;
  }
  return true;
}

// A server from a SIP002 ss:// URI (relay/sip002.h) with its plugin, if any; `at` names where it
// came from. The URI is never quoted (it holds the password).
ServerSpec server_from_uri(std::string_view uri, const std::string& at) {
  std::string why;
  std::optional<Sip002> u = parse_sip002(uri, &why);
  if (!u) fail(at + ": invalid ss:// URI: " + why);
  if (!make_address(u->host, 0)) fail(at + ": invalid host " + quote(u->host));
  ServerSpec spec;
  spec.host = u->host;
  spec.port = u->port;
  spec.method = u->method;
  spec.password = u->password;
  spec.tag = u->tag;
  spec.plugin.name = u->plugin;
  spec.plugin.opts = u->plugin_opts;
  return spec;
}

// shadowsocks-rust's "servers": [{"server"|"address": host, "server_port"|"port": port, "method":
// ..., "password": ..., "weight"?, "disabled"?, "remarks"?} or {"url": "ss://..."}, ...]. Each
// server keeps its own method and keys; a disabled one is left out.
void servers_value(Config& c, const json& v) {
  if (!v.is_array() || v.empty()) fail("servers: must be a non-empty array of server objects");
  c.servers.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string at = "servers[" + std::to_string(i) + "]";
    const json& o = v[i];
    if (!o.is_object()) fail(at + ": must be an object");
    ServerSpec spec;
    bool disabled = false;
    if (o.contains("url")) spec = server_from_uri(string_value(o["url"], at + ".url"), at + ".url");
    for (const auto& [k, val] : o.items()) {
      const std::string key = at + "." + k;
      if (k == "url") {
        continue;
      } else if (k == "server" || k == "address") {
        spec.host = string_value(val, key);
        if (spec.host.empty() || !make_address(spec.host, 0)) fail(key + ": invalid host");
      } else if (k == "server_port" || k == "port") {
        spec.port = port_value(val, key);
      } else if (k == "method") {
        spec.method = string_value(val, key);
      } else if (k == "password") {
        spec.password = string_value(val, key);
      } else if (k == "key") {
        spec.key_b64 = string_value(val, key);
      } else if (k == "weight") {
        if (!val.is_number() || !(val.get<double>() > 0) || val.get<double>() > 1e6) {
          fail(key + ": must be a positive number, got " + show(val));
        }
        spec.weight = val.get<double>();
      } else if (k == "disabled") {
        disabled = bool_value(val, key);
      } else if (k == "remarks") {
        spec.tag = string_value(val, key);
      } else if (plugin_key(spec.plugin, k, val, key)) {
        // Its own plugin (a URI's is replaced).
      } else if (k == "mode") {
        spec.mode = mode_value(val, key);  // ss-server's entries follow it; clients' ignore it
      } else if (k == "users") {
        spec.users = users_value(val, key);
      } else if (k == "id" || k == "timeout") {
        // Labels, or settings the process-wide keys already give.
      } else {
        fail(key + ": not supported by shadowsocks-uv in a \"servers\" entry");
      }
    }
    spec.source = "servers";
    if (spec.host.empty()) fail(at + ".server: missing");
    if (spec.port == 0) fail(at + ".server_port: missing");
    if (!disabled) c.servers.push_back(std::move(spec));
  }
  if (c.servers.empty()) fail("servers: every server is disabled");
  c.rust_servers = true;
}

// The "servers" rows' apply (one for the clients' list, one for ss-server's ports).
void apply_servers(Config& c, const json& v, std::string_view) {
  servers_value(c, v);
}

uint64_t millis_value(const json& v, std::string_view name, uint64_t lo, uint64_t hi) {
  const std::optional<long long> n = integer_value(v);
  if (!n || *n < static_cast<long long>(lo) || *n > static_cast<long long>(hi)) {
    fail(std::string(name) + ": must be an integer from " + std::to_string(lo) + " to " +
         std::to_string(hi) + ", got " + show(v));
  }
  return static_cast<uint64_t>(*n);
}

// "balancer": shadowsocks-rust's max_server_rtt, check_interval and check_best_interval (seconds)
// plus ours (relay/balancer.h): mode, switch_margin, switch_rounds, min_switch_interval,
// window, connect_timeout (seconds), probe_target and udp_probe_target ("host:port").
void balancer_value(Config& c, const json& v) {
  if (!v.is_object()) fail("balancer: must be an object");
  BalancerSpec& b = c.balancer;
  for (const auto& [k, val] : v.items()) {
    const std::string key = "balancer." + k;
    if (k == "max_server_rtt") {
      b.max_server_rtt_ms = millis_value(val, key, 1, 600) * 1000;
    } else if (k == "check_interval") {
      b.check_interval_ms = millis_value(val, key, 1, 86400) * 1000;
    } else if (k == "check_best_interval") {
      b.check_best_interval_ms = millis_value(val, key, 1, 86400) * 1000;
    } else if (k == "min_switch_interval") {
      b.min_switch_interval_ms = millis_value(val, key, 0, 86400) * 1000;
    } else if (k == "connect_timeout") {
      b.connect_timeout_ms = millis_value(val, key, 1, 600) * 1000;
    } else if (k == "check_interval_ms") {  // for tests: sub-second probing
      b.check_interval_ms = millis_value(val, key, 50, 86'400'000);
    } else if (k == "switch_rounds") {
      b.switch_rounds = static_cast<int>(millis_value(val, key, 1, 1000));
    } else if (k == "window") {
      b.window = static_cast<int>(millis_value(val, key, 1, 100));
    } else if (k == "switch_margin") {
      if (!val.is_number() || val.get<double>() < 0 || val.get<double>() > 10) {
        fail(key + ": must be a number from 0 to 10, got " + show(val));
      }
      b.switch_margin = val.get<double>();
    } else if (k == "mode") {
      const std::string& m = string_value(val, key);
      if (m == "best") {
        b.mode = BalancerSpec::Pick::Best;
      } else if (m == "weighted") {
        b.mode = BalancerSpec::Pick::Weighted;
      } else if (m == "round_robin") {
        b.mode = BalancerSpec::Pick::RoundRobin;
      } else {
        fail(key + ": must be \"best\", \"weighted\" or \"round_robin\", got " + quote(m));
      }
    } else if (k == "probe_target") {
      const std::string& t = string_value(val, key);
      std::optional<Address> a = parse_host_port(t);
      if (!a) fail(key + ": must be host:port, got " + quote(t));
      b.probe_target = *a;
    } else if (k == "udp_probe_target") {
      const std::string& t = string_value(val, key);
      std::optional<Address> a = parse_host_port(t);
      if (!a) fail(key + ": must be host:port, got " + quote(t));
      b.udp_probe_target = *a;
    } else {
      fail(key + ": unknown balancer key");
    }
  }
}

// shadowsocks-rust's "online_config": {"config_url": "https://...", "update_interval": seconds},
// plus ours, "ca_file". SIP008 asks for HTTPS: a plain http:// URL is refused.
void online_config_value(Config& c, const json& v) {
  if (!v.is_object()) fail("online_config: must be an object");
  OnlineConfigSpec o;
  for (const auto& [k, val] : v.items()) {
    const std::string key = "online_config." + k;
    if (k == "config_url") {
      o.url = string_value(val, key);
    } else if (k == "update_interval") {
      o.update_interval_s = millis_value(val, key, 1, 30 * 86400);
    } else if (k == "ca_file") {
      o.ca_file = string_value(val, key);
      if (o.ca_file.empty()) fail(key + ": must not be empty (leave it out for the system store)");
    } else {
      fail(key + ": unknown online_config key");
    }
  }
  if (o.url.empty()) fail("online_config.config_url: missing");
  std::string scheme;
  for (char ch : o.url.substr(0, o.url.find(':'))) {
    scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (o.url.find("://") == std::string::npos || scheme != "https") {
    fail(
        "online_config.config_url: must be an https:// URL (SIP008: the server list is "
        "delivered over HTTPS only), got " +
        (o.url.find("://") == std::string::npos ? std::string("no scheme")
                                                : "scheme " + quote(scheme)));
  }
  c.online_config = std::move(o);
}

// A tun listener's spec: the device's name and address are required; the listener is the NAT's,
// on the device's own address (local_port: its port, else one the kernel picks).
void finish_tun_spec(ListenerSpec& spec, const std::string& at) {
  if (spec.tun_name.empty()) fail(at + "tun_interface_name: missing (a tun needs its device name)");
  if (spec.tun_name.size() > 15) fail(at + "tun_interface_name: longer than 15 characters");
  // "10.255.0.1/24" or, dual stack, "10.255.0.1/24,fd55::1/64".
  const std::string given = spec.tun_cidr;
  const size_t comma = given.find(',');
  spec.tun_cidr = given.substr(0, comma);
  spec.tun_cidr6 = comma == std::string::npos ? "" : given.substr(comma + 1);
  auto host_of = [&](const std::string& cidr, Address::Type type) {
    const size_t slash = cidr.find('/');
    const std::optional<Address> a =
        slash == std::string::npos ? std::nullopt : make_address(cidr.substr(0, slash), 0);
    if (!a || a->type != type) {
      fail(at +
           "tun_interface_address: must be an IPv4 address/prefix, optionally followed by ',' and "
           "an IPv6 one (e.g. \"10.255.0.1/24,fd55::1/64\"), got " +
           quote(given));
    }
    return cidr.substr(0, slash);
  };
  spec.address = host_of(spec.tun_cidr, Address::Type::IPv4);
  if (!spec.tun_cidr6.empty()) host_of(spec.tun_cidr6, Address::Type::IPv6);
}

// A tun local's DNS keys (README "tun mode", DNS): ours, tun_dns and tun_dns_resolver, and
// shadowsocks-rust's fake-dns keys for the pools and the expiry. False: not one of them.
bool tun_dns_value(ListenerSpec& spec, const std::string& k, const json& val,
                   const std::string& key) {
  if (k == "tun_dns") {
    spec.tun_dns = string_value(val, key);
    if (spec.tun_dns != "fake" && spec.tun_dns != "relay") {
      fail(key + ": must be \"fake\" or \"relay\", got " + quote(spec.tun_dns));
    }
  } else if (k == "tun_dns_resolver") {
    const std::string& text = string_value(val, key);
    spec.tun_dns_resolver = parse_host_port(text);
    if (!spec.tun_dns_resolver || spec.tun_dns_resolver->type == Address::Type::Domain) {
      fail(key + ": must be an IP address and port (e.g. \"9.9.9.9:53\"), got " + quote(text));
    }
  } else if (k == "fake_dns_ipv4_network" || k == "fake_dns_ipv6_network") {
    const std::string& text = string_value(val, key);
    const bool v4 = k == "fake_dns_ipv4_network";
    const std::optional<IpNet> net = parse_ip_net(text);
    if (!net || net->base.len != (v4 ? 4 : 16)) {
      fail(key + ": must be an " + (v4 ? "IPv4" : "IPv6") + " network (e.g. " +
           (v4 ? "\"198.18.0.0/15\"" : "\"fc00::/18\"") + ") with room for two addresses, got " +
           quote(text));
    }
    (v4 ? spec.fake_dns_ipv4_network : spec.fake_dns_ipv6_network) = text;
  } else if (k == "fake_dns_record_expire_duration") {
    spec.fake_dns_expire_s = static_cast<uint32_t>(count_value(val, key, 2, 7 * 86400));
  } else if (k == "fake_dns_database_path") {
    spec.fake_dns_database_path = string_value(val, key);
    if (spec.fake_dns_database_path.empty()) fail(key + ": must be a file path, got \"\"");
  } else {
    return false;
  }
  return true;
}

// After a local's keys: the DNS keys must fit the local and each other.
void check_tun_dns(const ListenerSpec& spec, const std::string& at, const json& o) {
  const bool fake_keys =
      o.contains("fake_dns_ipv4_network") || o.contains("fake_dns_ipv6_network") ||
      o.contains("fake_dns_record_expire_duration") || o.contains("fake_dns_database_path");
  if (spec.protocol != ListenerSpec::Protocol::Tun) {
    if (!spec.tun_dns.empty() || spec.tun_dns_resolver || fake_keys) {
      fail(at +
           ": tun_dns, tun_dns_resolver and the fake_dns_* keys are for \"protocol\": \"tun\" "
           "(shadowsocks-rust's \"fake-dns\" local is not supported)");
    }
    return;
  }
  if (spec.tun_dns != "fake" && fake_keys) {
    fail(at + ": the fake_dns_* keys need \"tun_dns\": \"fake\"");
  }
  if (spec.tun_dns == "relay" && !spec.tun_dns_resolver) {
    fail(at + ".tun_dns_resolver: missing (\"tun_dns\": \"relay\" sends queries there)");
  }
  if (spec.tun_dns.empty() && spec.tun_dns_resolver) {
    fail(at + ".tun_dns_resolver: needs \"tun_dns\" (\"fake\" or \"relay\")");
  }
}

// A "dns" local's keys (shadowsocks-rust's names), as given.
struct DnsLocalKeys {
  std::string local_host, remote_host;
  std::optional<uint16_t> local_port, remote_port;
  std::optional<size_t> cache_size;
  bool any = false;
};

bool dns_local_key(DnsLocalKeys& d, const std::string& k, const json& val, const std::string& key) {
  if (k == "local_dns_address") {
    d.local_host = string_value(val, key);
  } else if (k == "local_dns_port") {
    d.local_port = port_value(val, key);
  } else if (k == "remote_dns_address") {
    d.remote_host = string_value(val, key);
  } else if (k == "remote_dns_port") {
    d.remote_port = port_value(val, key);
  } else if (k == "dns_cache_size") {
    if (!val.is_number_unsigned() || val.get<uint64_t>() > 1'000'000) {
      fail(key + ": must be a number of answers from 0 to 1000000");
    }
    d.cache_size = val.get<size_t>();
  } else if (k == "client_cache_size") {
    fail(key +
         ": not supported (shadowsocks-rust keeps that many upstream connections per resolver; "
         "shadowsocks-uv keeps up to 4 pipelined ones per server and caches answers: "
         "dns_cache_size)");
  } else {
    return false;
  }
  d.any = true;
  return true;
}

// shadowsocks-rust's --local-dns-addr (IP[:PORT]) and --remote-dns-addr (HOST[:PORT]): port 53
// when left out, as rust.
std::optional<Address> dns_flag_value(const json& v, std::string_view name, bool ip_only) {
  const std::string text = string_value(v, name);
  std::optional<Address> a;
  sockaddr_storage probe;
  if (literal_to_sockaddr(text, 53, probe)) {
    a = make_address(text, 53);
  } else if (text.find(':') != std::string::npos) {
    a = parse_host_port(text);
  } else if (!ip_only) {
    a = make_address(text, 53);
  }
  if (!a || (ip_only && a->type == Address::Type::Domain)) {
    fail(std::string(name) + ": must be " + (ip_only ? "IP" : "HOST") + " or " +
         (ip_only ? "IP" : "HOST") + ":PORT, not " + quote(text));
  }
  return a;
}

// The flags above and --protocol, after the file: the -b/-l listener becomes a DNS local, or
// the flags override every DNS local's resolvers.
void finish_dns_flags(Config& cfg) {
  if (!cfg.local_protocol.empty() && cfg.rust_locals) {
    fail("--protocol: the configuration has \"locals\"; add the listener there");
  }
  if (cfg.local_protocol == "dns" && !cfg.local_dns_flag) {
    bool in_file = false;
    for (const ListenerSpec& l : cfg.listeners) in_file |= l.local_dns.has_value();
    if (!in_file) fail("--local-dns-addr: missing (--protocol dns asks this resolver directly)");
  }
  bool any = false;
  for (ListenerSpec& l : cfg.listeners) {
    if (l.protocol != ListenerSpec::Protocol::Dns) continue;
    any = true;
    if (cfg.local_dns_flag) l.local_dns = cfg.local_dns_flag;
    if (cfg.remote_dns_flag) l.remote_dns = cfg.remote_dns_flag;
    if (!l.remote_dns) l.remote_dns = make_address("8.8.8.8", 53);  // rust's default
  }
  if (!any && (cfg.local_dns_flag || cfg.remote_dns_flag)) {
    fail(std::string(cfg.local_dns_flag ? "--local-dns-addr" : "--remote-dns-addr") +
         ": needs a DNS local (--protocol dns, or a \"protocol\": \"dns\" entry in \"locals\")");
  }
}

void finish_dns_spec(ListenerSpec& spec, const DnsLocalKeys& d, const std::string& at) {
  if (spec.protocol != ListenerSpec::Protocol::Dns) {
    if (d.any) fail(at + ": local_dns_*/remote_dns_*/dns_cache_size are for \"protocol\": \"dns\"");
    return;
  }
  if (d.local_host.empty()) fail(at + ".local_dns_address: missing (the resolver asked directly)");
  sockaddr_storage probe;
  if (!literal_to_sockaddr(d.local_host, 53, probe)) {
    fail(at + ".local_dns_address: must be an IP address, not " + quote(d.local_host));
  }
  spec.local_dns = make_address(d.local_host, d.local_port.value_or(53));
  // rust's default remote resolver.
  const std::string remote = d.remote_host.empty() ? "8.8.8.8" : d.remote_host;
  spec.remote_dns = make_address(remote, d.remote_port.value_or(53));
  if (!spec.local_dns || !spec.remote_dns)
    fail(at + ".remote_dns_address: invalid host " + quote(remote));
  if (d.cache_size) spec.dns_cache_size = *d.cache_size;
}

// shadowsocks-rust's "locals": [{"protocol": "socks"|"http"|"tunnel", "local_address": ...,
// "local_port": ..., "forward_address"/"forward_port" for tunnels}, ...].
void locals_value(Config& c, const json& v) {
  if (!v.is_array() || v.empty()) fail("locals: must be a non-empty array of listener objects");
  c.listeners.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string at = "locals[" + std::to_string(i) + "]";
    const json& o = v[i];
    if (!o.is_object()) fail(at + ": must be an object");
    ListenerSpec spec;
    spec.address = "127.0.0.1";
    std::string forward_host;
    uint16_t forward_port = 0;
    DnsLocalKeys dns;
    for (const auto& [k, val] : o.items()) {
      const std::string key = at + "." + k;
      if (k == "protocol") {
        const std::string& p = string_value(val, key);
        if (p == "socks" || p == "http") {
          spec.protocol = ListenerSpec::Protocol::Mixed;  // the mixed port serves both
        } else if (p == "tunnel") {
          spec.protocol = ListenerSpec::Protocol::Tunnel;
        } else if (p == "tun") {
          spec.protocol = ListenerSpec::Protocol::Tun;
        } else if (p == "dns") {
          spec.protocol = ListenerSpec::Protocol::Dns;
        } else {
          fail(key + ": " + quote(p) + " is not supported (socks, http, tunnel, tun, dns)");
        }
      } else if (k == "local_address") {
        spec.address = string_value(val, key);
        if (!make_address(spec.address, 0)) fail(key + ": invalid address " + quote(spec.address));
      } else if (k == "local_port") {
        spec.port = port_value(val, key);
      } else if (k == "forward_address") {
        forward_host = string_value(val, key);
      } else if (k == "forward_port") {
        forward_port = port_value(val, key);
      } else if (k == "mode") {
        spec.mode = mode_value(val, key);
      } else if (k == "tun_interface_name") {
        spec.tun_name = string_value(val, key);
      } else if (k == "tun_interface_address") {
        spec.tun_cidr = string_value(val, key);
      } else if (tun_dns_value(spec, k, val, key)) {
      } else if (dns_local_key(dns, k, val, key)) {
      } else {
        fail(key + ": not supported by shadowsocks-uv in a \"locals\" entry");
      }
    }
    if (spec.protocol == ListenerSpec::Protocol::Tun) {
      finish_tun_spec(spec, at + ".");
    } else if (!spec.tun_name.empty() || !spec.tun_cidr.empty()) {
      fail(at + ": tun_interface_name/tun_interface_address are for \"protocol\": \"tun\"");
    }
    check_tun_dns(spec, at, o);
    if (spec.port == 0 && spec.protocol != ListenerSpec::Protocol::Tun) {
      fail(at + ".local_port: missing");
    }
    finish_dns_spec(spec, dns, at);
    if (spec.protocol == ListenerSpec::Protocol::Tunnel) {
      if (forward_host.empty() || forward_port == 0) {
        fail(at + ": a tunnel needs forward_address and forward_port");
      }
      spec.forward = make_address(forward_host, forward_port);
      if (!spec.forward) fail(at + ".forward_address: invalid host " + quote(forward_host));
    } else if (!forward_host.empty() || forward_port != 0) {
      fail(at + ": forward_address/forward_port are for tunnels");
    }
    c.listeners.push_back(std::move(spec));
  }
  c.rust_locals = true;
}

long long nofile_value(const json& v, std::string_view name) {
  return static_cast<long long>(count_value(v, name, 1, 1'048'576));
}

// Setters for rows whose key or flag writes one field, through one of the value parsers above.
template <auto Field, auto Parse>
void set(Config& c, const json& v, std::string_view name) {
  c.*Field = Parse(v, name);
}

// A string that must not be empty (a user, a file).
template <auto Field>
void set_nonempty(Config& c, const json& v, std::string_view name) {
  c.*Field = string_value(v, name);
  if ((c.*Field).empty()) fail(std::string(name) + ": must not be empty");
}

template <auto Field>
void set_string(Config& c, const json& v, std::string_view name) {
  c.*Field = string_value(v, name);
}

template <auto Field>
void set_bool(Config& c, const json& v, std::string_view name) {
  c.*Field = bool_value(v, name);
}

size_t udp_associations_value(const json& v, std::string_view name) {
  return count_value(v, name, 1, kMaxUdpAssociations);
}

size_t max_connections_value(const json& v, std::string_view name) {
  return count_value(v, name, 0, 10'000'000);
}

std::optional<Address> optional_tunnel_value(const json& v, std::string_view name) {
  return tunnel_value(v, name);
}

using Arg = Option::Arg;

constexpr const char* kDnsRefused =
    "shadowsocks-rust's dns key is not supported (use nameserver: \"IP[:PORT],...\")";
constexpr const char* kManagerRefused =
    "this program reports to no manager (our ss-manager serves every port itself)";

// "manager_address": ss-manager's own socket. libev's ss-server reports its traffic there; ours
// serves no manager (ss-manager serves every port itself), so the other binaries refuse it.
void apply_manager_address(Config& c, const json& v, std::string_view name) {
  if (c.role != Role::Manager) {
    fail(std::string(name) + ": not supported by shadowsocks-uv: " + kManagerRefused +
         "; remove the key (the proxy would otherwise run without it)");
  }
  c.manager_address = string_value(v, name);
  if (c.manager_address.empty()) fail(std::string(name) + ": must not be empty");
}
constexpr const char* kFamilyBindRefused =
    "binding outbound connections per family is not supported";

// --- The options table. ---
// A row with a setter is implemented. A row without one and with a reason is a key or flag of
// shadowsocks-libev or shadowsocks-rust that is not implemented here and that changes what the
// proxy does (its transport, security or routing): the process refuses to start rather than run
// without it. A key row with neither is harmless here and only warned about. To support a key,
// give its row a setter. The order of the rows is the order of -h.
constexpr Option kOptions[] = {
    {"", "c", Arg::Text, "FILE", kAllRoles, "JSON config file", ""},
    // ss-server: the flat keys name the addresses to listen on and the outbound bind address.
    {"server", "s", Arg::List, "HOST", kServerOnly,
     "address to listen on (repeatable; default 0.0.0.0)",
     "address or array of addresses to listen on (default \"0.0.0.0\")",
     set<&Config::server, server_value>},
    {"server_port", "p", Arg::Text, "PORT", kServerOnly, "port to listen on", "port to listen on",
     set<&Config::server_port, port_value>},
    {"local_address", "b", Arg::Text, "ADDR", kServerOnly, "address outbound connections bind to",
     "address outbound connections bind to", set_string<&Config::local_address>},
    // Target lookups through c-ares (relay/net/resolver.h): see README, "DNS".
    {"nameserver", "d", Arg::Text, "ADDRS", kAllRoles,
     "name servers for target lookups, e.g. 1.1.1.1,8.8.8.8:53 (default: the system's)",
     "name servers for target lookups: \"IP[:PORT],...\" (c-ares; default: the system's)",
     [](Config& c, const json& v, std::string_view name) {
       std::string text = string_value(v, name);
       const std::string why = check_nameservers(text);
       if (!why.empty()) throw ConfigError(std::string(name) + ": " + why);
       c.nameserver = std::move(text);
     }},
    // ss-local, ss-tunnel, ss-redir: the server(s) to use and the address to listen on.
    {"server", "s", Arg::List, "HOST", kClients, "ss-server host (repeatable)",
     "ss-server host, or an array of hosts", set<&Config::server, server_value>},
    {"server_port", "p", Arg::Text, "PORT", kClients, "ss-server port", "ss-server port",
     set<&Config::server_port, port_value>},
    {"local_port", "l", Arg::Text, "PORT", kClients, "port to listen on", "port to listen on",
     set<&Config::local_port, port_value>},
    {"local_address", "b", Arg::Text, "ADDR", kClients, "address to listen on (default 127.0.0.1)",
     "address to listen on (default \"127.0.0.1\")", set_string<&Config::local_address>},
    {"password", "k", Arg::Text, "PASSWORD", kAllRoles, "password",
     "password the key is derived from", set_string<&Config::password>},
    {"key", "key", Arg::Text, "BASE64", kAllRoles,
     "base64 master key (used instead of the password)",
     "base64 master key, used instead of password", set_string<&Config::key_b64>},
    {"method", "m", Arg::Text, "METHOD", kAllRoles, "cipher (default chacha20-ietf-poly1305)",
     "cipher (default \"chacha20-ietf-poly1305\")", set_string<&Config::method>},
    {"timeout", "t", Arg::Text, "TIMEOUT", kAllRoles, "idle timeout in seconds (default 60)",
     "idle timeout in seconds (default 60)", set<&Config::timeout, timeout_value>},
    {"udp_timeout", "udp-timeout", Arg::Text, "SECONDS", kAllRoles,
     "idle seconds before a UDP association expires (default 60)",
     "idle seconds before a UDP association expires (default 60)",
     set<&Config::udp_timeout, timeout_value>},
    {"udp_max_associations", "udp-max-associations", Arg::Text, "N", kAllRoles,
     "UDP associations kept, least recently used evicted beyond (default 1024)",
     "UDP associations kept, oldest evicted beyond (default 1024)",
     set<&Config::udp_max_associations, udp_associations_value>},
    {"outbound_fwmark", "outbound-fwmark", Arg::Text, "MARK", kAllRoles,
     "SO_MARK on outbound sockets, for an `ip rule fwmark` (tun mode: no loops; CAP_NET_ADMIN)",
     "SO_MARK on outbound sockets (tun mode: see README)",
     [](Config& c, const json& v, std::string_view name) {
       c.outbound_fwmark = static_cast<uint32_t>(count_value(v, name, 1, 0xffffffffull));
     }},
    {"", "tun", Arg::Text, "NAME", kLocalOnly,
     "also capture traffic through a TUN device of this name (tun mode; needs CAP_NET_ADMIN)", "",
     set_string<&Config::tun_name>},
    {"", "tun-address", Arg::Text, "CIDR", kLocalOnly,
     "the TUN device's IPv4 address/prefix, optionally \",IPv6/prefix\": 10.255.0.1/24,fd55::1/64",
     "", set_string<&Config::tun_cidr>},
    {"tun_setup", "tun-setup", Arg::None, "", kLocalOnly,
     "add the tun's default route and ip rules at start, delete them at exit (needs "
     "--outbound-fwmark)",
     "true: ss-local adds the tun's routes and rules (README \"tun mode\")",
     set_bool<&Config::tun_setup>},
    {"", "protocol", Arg::Text, "PROTO", kLocalOnly,
     "what the -b/-l listener serves: socks or http (both: the default), dns (shadowsocks-rust's "
     "DNS local; needs --local-dns-addr)",
     "",
     [](Config& c, const json& v, std::string_view name) {
       c.local_protocol = string_value(v, name);
       if (c.local_protocol != "socks" && c.local_protocol != "http" && c.local_protocol != "dns") {
         fail(std::string(name) + ": " + quote(c.local_protocol) +
              " is not supported (socks, http, dns)");
       }
     }},
    {"", "local-dns-addr", Arg::Text, "IP[:PORT]", kLocalOnly,
     "DNS local: the resolver asked directly (port 53 by default)", "",
     [](Config& c, const json& v, std::string_view name) {
       c.local_dns_flag = dns_flag_value(v, name, true);
     }},
    {"", "remote-dns-addr", Arg::Text, "HOST[:PORT]", kLocalOnly,
     "DNS local: the resolver asked through the tunnel (default 8.8.8.8:53)", "",
     [](Config& c, const json& v, std::string_view name) {
       c.remote_dns_flag = dns_flag_value(v, name, false);
     }},
    {"tunnel_address", "L", Arg::Text, "HOST:PORT", kTunnelOnly, "target to forward to",
     "\"host:port\" to forward to", set<&Config::tunnel_target, optional_tunnel_value>},
    {"tcp_tproxy", "T", Arg::None, "", kRedirOnly,
     "use TPROXY instead of REDIRECT (transparent listeners; needs CAP_NET_ADMIN)",
     "true: connections arrive by TPROXY (as -T)", set_bool<&Config::tcp_tproxy>},
    {"mode", "", Arg::None, "", kAllRoles, "",
     "\"tcp_only\" (default), \"tcp_and_udp\" or \"udp_only\"", set<&Config::mode, mode_value>},
    {"", "u", Arg::None, "", kServerOnly | kLocalOnly | kTunnelOnly, "relay TCP and UDP", "",
     [](Config& c, const json&, std::string_view) { c.mode = Mode::TcpAndUdp; }},
    {"", "U", Arg::None, "", kServerOnly | kLocalOnly | kTunnelOnly, "relay UDP only", "",
     [](Config& c, const json&, std::string_view) { c.mode = Mode::UdpOnly; }},
    {"", "u", Arg::None, "", kRedirOnly, "relay TCP and UDP (UDP by TPROXY; needs CAP_NET_ADMIN)",
     "", [](Config& c, const json&, std::string_view) { c.mode = Mode::TcpAndUdp; }},
    {"", "U", Arg::None, "", kRedirOnly, "relay UDP only (by TPROXY; needs CAP_NET_ADMIN)", "",
     [](Config& c, const json&, std::string_view) { c.mode = Mode::UdpOnly; }},
    {"ipv6_first", "6", Arg::None, "", kAllRoles, "prefer IPv6 when resolving",
     "true: prefer IPv6 when resolving", set_bool<&Config::ipv6_first>},
    {"no_delay", "no-delay", Arg::None, "", kAllRoles, "set TCP_NODELAY", "true: set TCP_NODELAY",
     set_bool<&Config::no_delay>},
    {"reuse_port", "reuse-port", Arg::None, "", kAllRoles, "set SO_REUSEPORT on listening sockets",
     "true: set SO_REUSEPORT on listening sockets", set_bool<&Config::reuse_port>},
    {"fast_open", "fast-open", Arg::None, "", kAllRoles, "use TCP Fast Open",
     "true: use TCP Fast Open", set_bool<&Config::fast_open>},
    {"workers", "workers", Arg::Text, "N", kAllRoles, "event-loop threads (default: one per CPU)",
     "event-loop threads (default: one per CPU)", set<&Config::workers, workers_value>},
    {"pin_workers", "", Arg::None, "", kAllRoles, "",
     "false: do not pin workers to CPUs nor steer connections by CPU",
     set_bool<&Config::pin_workers>},
    {"", "no-pin-workers", Arg::None, "", kAllRoles,
     "do not pin workers to CPUs nor steer connections by CPU", "",
     [](Config& c, const json&, std::string_view) { c.pin_workers = false; }},
    {"max_connections", "max-connections", Arg::Text, "N", kAllRoles,
     "concurrent TCP connections (default: about half the descriptor limit)",
     "concurrent TCP connections (default: about half the descriptor limit)",
     set<&Config::max_connections, max_connections_value>},
    {"allow_private_targets", "allow-private-targets", Arg::None, "", kServerOnly,
     "also relay to loopback, private and link-local targets",
     "true: also relay to loopback/private/link-local targets",
     set_bool<&Config::allow_private_targets>},
    {"", "url", Arg::None, "", kClients, "print each server's ss:// URI (SIP002) and exit", ""},
    {"", "qr", Arg::None, "", kClients, "print each server's ss:// URI as a QR code and exit", ""},
    {"", "genkey", Arg::Text, "METHOD", kAllRoles,
     "print a new random base64 key for METHOD and exit", ""},
    {"user", "a", Arg::Text, "USER", kAllRoles, "drop privileges to USER after binding",
     "drop privileges to this user after binding (as -a)", set_nonempty<&Config::run_as_user>},
    {"", "f", Arg::Text, "PIDFILE", kAllRoles,
     "run in the background and write the process id to PIDFILE", "",
     set_nonempty<&Config::pid_file>},
    {"nofile", "n", Arg::Text, "NOFILE", kAllRoles,
     "raise the open-file limit (RLIMIT_NOFILE) to NOFILE",
     "raise the open-file limit to this (as -n)", set<&Config::nofile, nofile_value>},
    {"", "log-file", Arg::Text, "PATH", kAllRoles, "append log lines to PATH instead of stderr", "",
     set_nonempty<&Config::log_file>},
    {"use_syslog", "", Arg::None, "", kAllRoles, "", "true: log to syslog instead of stderr",
     set_bool<&Config::use_syslog>},
    {"", "q", Arg::None, "", kAllRoles, "quiet: log errors only", "",
     [](Config& c, const json&, std::string_view) { c.quiet = true; }},
    {"", "v", Arg::Count, "", kAllRoles, "verbose: one line per connection; -vv: debugging detail",
     "", [](Config& c, const json& v, std::string_view) { c.verbose = v.get<int>(); }},
    {"", "V,version", Arg::None, "", kAllRoles,
     "print the version and the crypto libraries, and exit", ""},
    {"", "h,help", Arg::None, "", kAllRoles, "print this help and exit", ""},
    {"acl", "acl", Arg::Text, "FILE", kLocalOnly | kRedirOnly | kServerOnly,
     "ACL file (libev's format, rust's extensions): bypass/proxy lists on ss-local and "
     "ss-redir; client and outbound block lists on ss-server",
     "ACL file, as --acl", set_nonempty<&Config::acl_path>},
    // The replay filters' state file (relay/replay_state): see README, "Replay state".
    {"state_dir", "state-dir", Arg::Text, "DIR", kAllRoles,
     "directory of the replay state file (default ./ss-state; \"\" for none)",
     "directory of the replay state file (default \"ss-state\"; \"\": none)",
     set_string<&Config::state_dir>},
    {"replay_state_interval", "replay-state-interval", Arg::Text, "SECONDS", kAllRoles,
     "write the replay state every SECONDS, and on exit (default 60; 0: on exit only)",
     "seconds between writes of the replay state (default 60; 0: on exit only)",
     [](Config& c, const json& v, std::string_view name) {
       c.replay_state_interval = static_cast<int>(count_value(v, name, 0, 86400));
     }},
    // The Prometheus endpoint (relay/metrics_server.h): see README, "Metrics".
    {"metrics_address", "metrics-address", Arg::Text, "HOST:PORT", kAllRoles,
     "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9090)",
     "\"host:port\" of the Prometheus metrics endpoint (GET /metrics)",
     [](Config& c, const json& v, std::string_view name) {
       tunnel_value(v, name);  // the same host:port check
       c.metrics_address = string_value(v, name);
     }},
    // Per-user quotas (relay/user_limits.h): see README, "Quotas and rate limits".
    {"quota_state_file", "quota-state-file", Arg::Text, "PATH", kServerOnly,
     "the users' quota counters (default: STATE_DIR/ss-server-PORT.quota)",
     "file of the users' quota counters (default: state_dir/ss-server-<port>.quota)",
     set_nonempty<&Config::quota_state_file>},
    // Reload (server/server_control.h): see README, "Reload".
    {"reload_drop_removed", "reload-drop-removed", Arg::None, "", kServerOnly,
     "on reload (SIGHUP), also close the live sessions of removed users and ports",
     "true: on reload, also close the live sessions of removed users and ports",
     set_bool<&Config::reload_drop_removed>},
    // The management API and status page (server/api): see README, "Management API".
    {"api_address", "api-address", Arg::Text, "HOST:PORT", kSsServerOnly,
     "serve the management API and status page at http://HOST:PORT/ (loopback only unless "
     "--api-allow-remote)",
     "\"host:port\" of the management API and status page (loopback unless api_allow_remote)",
     [](Config& c, const json& v, std::string_view name) {
       tunnel_value(v, name);  // the same host:port check
       c.api_address = string_value(v, name);
     }},
    {"api_token", "", Arg::None, "", kSsServerOnly, "",
     "the management API's bearer token (or api_token_file)", set_nonempty<&Config::api_token>},
    {"api_token_file", "api-token-file", Arg::Text, "PATH", kSsServerOnly,
     "file holding the management API's bearer token",
     "file holding the management API's bearer token", set_nonempty<&Config::api_token_file>},
    {"api_allow_remote", "api-allow-remote", Arg::None, "", kSsServerOnly,
     "allow api_address on a non-loopback address (put TLS in front of it)",
     "true: allow api_address on a non-loopback address", set_bool<&Config::api_allow_remote>},
    // A fleet sharing its users through Redis (server/fleet/fleet.h): see README, "A fleet with
    // Redis".
    {"users_url", "users-url", Arg::Text, "URL", kSsServerOnly,
     "take the users from Redis at redis://[:PASSWORD@]HOST[:PORT][/DB] (a fleet of servers)",
     "redis://[:password@]host[:port][/db]: the users (and their shared quota counters) come "
     "from Redis",
     [](Config& c, const json& v, std::string_view name) {
       c.users_url = string_value(v, name);
       std::string why;
       if (!parse_redis_url(c.users_url, &why)) fail(std::string(name) + ": " + why);
     }},
    {"socks5_auth_config_path", "", Arg::None, "", kLocalOnly, "",
     "user file for SOCKS5/HTTP authentication (rust's format)",
     set_nonempty<&Config::socks5_auth_config_path>},
    {"users", "", Arg::None, "", kServerOnly, "",
     "[{\"name\": ..., \"password\": ...}, ...]: 2022 methods: base64 uPSKs (SIP023); classic "
     "methods: passwords, found by key trial",
     set<&Config::users, users_value>},
    {"locals", "", Arg::None, "", kLocalOnly, "", "",
     [](Config& c, const json& v, std::string_view) { locals_value(c, v); }},
    {"servers", "", Arg::None, "", kClients, "", "", apply_servers},
    {"servers", "", Arg::None, "", kServerOnly, "",
     "ss-server: [{\"server\", \"server_port\", \"method\", \"password\", \"mode\"?, "
     "\"users\"?}, ...]: one port each",
     apply_servers},
    // SIP003 plugins (relay/plugin.h): the flat keys' plugin; "servers" entries have their own.
    {"plugin", "plugin", Arg::Text, "PROGRAM", kAllRoles,
     "SIP003 plugin that carries TCP (e.g. obfs-local, ss-v2ray-plugin)",
     "SIP003 plugin program (as --plugin)",
     [](Config& c, const json& v,
        std::string_view name) { plugin_key(c.plugin, "plugin", v, std::string(name)); }},
    {"plugin_opts", "plugin-opts", Arg::Text, "OPTIONS", kAllRoles,
     "the plugin's options (SS_PLUGIN_OPTIONS), e.g. \"obfs=http\"",
     "the plugin's options (as --plugin-opts)",
     [](Config& c, const json& v, std::string_view name) {
       plugin_key(c.plugin, "plugin_opts", v, std::string(name));
     }},
    {"plugin_args", "", Arg::None, "", kAllRoles, "", "the plugin's arguments: array of strings",
     [](Config& c, const json& v, std::string_view name) {
       plugin_key(c.plugin, "plugin_args", v, std::string(name));
     }},
    {"plugin_mode", "", Arg::None, "", kAllRoles, "",
     "\"tcp_only\" only: UDP goes to the server directly",
     [](Config& c, const json& v, std::string_view name) {
       plugin_key(c.plugin, "plugin_mode", v, std::string(name));
     }},
    // Not implemented, and running without them would do something else than asked: refused.
    {"dns", "", {}, "", kAllRoles, "", "", nullptr, kDnsRefused},
    {"mtu", "", {}, "", kAllRoles, "", "", nullptr, "UDP fragmentation by MTU is not supported"},
    {"mptcp", "", {}, "", kAllRoles, "", "", nullptr, "Multipath TCP is not supported"},
    {"port_password", "", Arg::None, "", kServerOnly, "",
     "ss-server: {\"8001\": \"password1\", ...}: one port per password, the top-level method",
     [](Config& c, const json& v, std::string_view name) {
       c.port_password = port_password_value(v, name);
     }},
    {"manager_address", "manager-address", Arg::Text, "ADDR", kManagerOnly,
     "manager protocol socket: HOST:PORT (UDP) or a Unix datagram socket path",
     "ss-manager: HOST:PORT (UDP) or a Unix datagram socket path", apply_manager_address},
    {"", "executable", Arg::Text, "PATH", kManagerOnly,
     "accepted, not used: every port is served in this process (no ss-server is run)", "",
     set_string<&Config::manager_executable>},
    {"manager_port", "", {}, "", kAllRoles, "", "", nullptr, kManagerRefused},
    {"local_ipv4_address", "", {}, "", kAllRoles, "", "", nullptr, kFamilyBindRefused},
    {"local_ipv6_address", "", {}, "", kAllRoles, "", "", nullptr, kFamilyBindRefused},
    {"dscp", "", {}, "", kAllRoles, "", "", nullptr, "DSCP marking is not supported"},
    {"auth",
     "",
     {},
     "",
     kAllRoles,
     "",
     "",
     nullptr,
     "one-time authentication (OTA) was removed from Shadowsocks"},
    {"protocol",
     "",
     {},
     "",
     kAllRoles,
     "",
     "",
     nullptr,
     "\"protocol\" belongs inside a \"locals\" entry"},
    {"online_config", "", Arg::None, "", kClients, "",
     "SIP008 server list: {\"config_url\": \"https://...\", \"update_interval\": 3600, "
     "\"ca_file\"?}",
     [](Config& c, const json& v, std::string_view) { online_config_value(c, v); }},
    {"balancer", "", Arg::None, "", kClients, "",
     "several servers: {\"mode\": \"best\"|\"weighted\", \"check_interval\", ...} (ss-local(1))",
     [](Config& c, const json& v, std::string_view) { balancer_value(c, v); }},
    {"outbound_bind_interface",
     "",
     {},
     "",
     kAllRoles,
     "",
     "",
     nullptr,
     "binding to an interface is not supported"},
    {"outbound_bind_addr",
     "",
     {},
     "",
     kAllRoles,
     "",
     "",
     nullptr,
     "binding outbound connections here is not supported"},
    {"ipv6_only", "", {}, "", kAllRoles, "", "", nullptr, "IPv6-only listening is not supported"},
    {"local_udp_address",
     "",
     {},
     "",
     kAllRoles,
     "",
     "",
     nullptr,
     "a separate UDP listen address is not supported"},
    {"local_udp_port",
     "",
     {},
     "",
     kAllRoles,
     "",
     "",
     nullptr,
     "a separate UDP listen port is not supported"},
    // Harmless here: warned about and ignored.
    {"disable_sni", "", {}, "", kAllRoles, "", ""},  // only used by libev's ACL matching
    {"executable", "", {}, "", kAllRoles, "", ""},   // ss-manager's
    {"workdir", "", {}, "", kAllRoles, "", ""},      // ss-manager's
    {"log", "", {}, "", kAllRoles, "", ""},  // shadowsocks-rust's log section (levels come from
                                             // -q/-v)
};

// The first row with this JSON key (rows sharing a key share its setter).
const Option* find_key(std::string_view name) {
  for (const Option& o : kOptions) {
    if (!o.key.empty() && o.key == name) return &o;
  }
  return nullptr;
}

Config default_config(Role role) {
  Config cfg;
  cfg.role = role;
  cfg.method = std::string(kDefaultMethod);
  cfg.timeout = kDefaultTimeout;
  if (serves_ports(role)) {
    cfg.server = {"0.0.0.0"};
  } else {
    cfg.local_address = "127.0.0.1";
  }
  return cfg;
}

// What nlohmann's parser lets through silently, refused while it parses (its parse callback):
// a key given twice in one object (it keeps the last) and a NUL (\u0000) inside a string or key
// (C strings would cut it). Errors name the value by its path, e.g. servers[1].password. Frames
// hold no path, only their key or index, so deep nesting costs no quadratic copying.
class JsonChecker {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        enter_element();
        frames_.push_back({event == json::parse_event_t::array_start, 0, {}, {}});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& f = frames_.back();
        const std::string& k = parsed.get_ref<const std::string&>();
        f.key = k;
        if (k.find('\0') != std::string::npos) {
          fail(path_or_top() + ": a key contains a NUL character (\\u0000)");
        }
        if (!f.seen.insert(k).second) fail(path_or_top() + ": duplicate key (given twice)");
        break;
      }
      case json::parse_event_t::value:
        enter_element();
        if (parsed.is_string() &&
            parsed.get_ref<const std::string&>().find('\0') != std::string::npos) {
          fail(path_or_top() + ": a NUL character (\\u0000) inside a string");
        }
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool array;
    size_t index;     // arrays: how many elements have started
    std::string key;  // objects: the current key
    std::unordered_set<std::string> seen;
  };

  // An element starts in an array: it takes the array's next index.
  void enter_element() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  // The path of the value being parsed: keys joined by '.', array indices in brackets; keys that
  // are not plain words are quoted.
  std::string path_or_top() const {
    std::string p;
    for (size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      if (f.array) {
        // The element being parsed is the last one entered.
        p += "[" + std::to_string(f.index - 1) + "]";
      } else {
        const bool plain = !f.key.empty() && std::all_of(f.key.begin(), f.key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
        });
        if (!p.empty()) p += '.';
        p += plain ? f.key : quote(f.key);
      }
    }
    return p.empty() ? "config" : p;
  }

  std::vector<Frame> frames_;
};

// Parses JSON text; `source` starts syntax error messages ("config", "config file \"x\"").
// nlohmann's messages end with "; last read: '...'", which can quote the password: cut it.
json parse_document(const std::string& text, const std::string& source) {
  try {
    JsonChecker checker;
    json doc = json::parse(
        strip_trailing_commas(text),
        [&checker](int depth, json::parse_event_t event, json& parsed) {
          return checker(depth, event, parsed);
        },
        /*allow_exceptions=*/true,
        /*ignore_comments=*/true);
    if (!doc.is_object()) fail(source + ": must be a JSON object ({ \"key\": value, ... })");
    return doc;
  } catch (const json::parse_error& e) {
    std::string_view what = e.what();
    std::string line = "?";
    const size_t at = what.find(" at line ");
    if (at != std::string_view::npos) {
      const size_t start = at + 9;
      size_t end = start;
      while (end < what.size() && what[end] >= '0' && what[end] <= '9') ++end;
      if (end > start) line = std::string(what.substr(start, end - start));
    }
    std::string_view detail = what;
    const size_t column = what.find(", column ");
    if (column != std::string_view::npos) {
      const size_t colon = what.find(": ", column);
      if (colon != std::string_view::npos) detail = what.substr(colon + 2);
    }
    const size_t last_read = detail.find("; last read:");
    if (last_read != std::string_view::npos) detail = detail.substr(0, last_read);
    fail(source + ": invalid JSON at line " + line + ": " + std::string(detail));
  } catch (const json::out_of_range&) {
    // A number literal too large for a double (e.g. 1e400): nlohmann's message quotes it.
    fail(source + ": invalid JSON: a number is too large");
  } catch (const json::exception&) {
    fail(source + ": invalid JSON");
  }
}

void apply_json(Config& cfg, const json& doc, std::ostream& warn) {
  for (const auto& [name, value] : doc.items()) {
    const Option* spec = find_key(name);
    if (spec == nullptr) {
      warn << "config: ignoring unknown key " << quote(name) << '\n';
    } else if (spec->apply == nullptr && spec->refused != nullptr) {
      fail(std::string(name) + ": not supported by shadowsocks-uv: " + spec->refused +
           "; remove the key (the proxy would otherwise run without it)");
    } else if (spec->apply == nullptr) {
      warn << "config: ignoring key " << quote(name) << " (not used by shadowsocks-uv)\n";
    } else {
      spec->apply(cfg, value, name);
    }
  }
}

std::string read_config_file(const std::string& path, const std::string& source) {
  std::string data;
  const std::string error = read_regular_file(path, kMaxConfigFileSize, data);
  if (!error.empty()) fail(source + ": cannot read: " + error);
  return data;
}

// --- Command line. ---

std::string help_text(cxxopts::Options& options, Role role) {
  std::ostringstream s;
  s << options.help();
  s << "\nConfig file keys (-c FILE, JSON object; flags override the file):\n";
  for (const Option& o : kOptions) {
    if (o.key.empty() || o.key_help.empty() || !o.for_role(role)) continue;
    s << "  " << o.key << std::string(std::max<size_t>(o.key.size(), 15) - o.key.size() + 2, ' ')
      << o.key_help << '\n';
  }
  s << "\nMethods:";
  for (const CipherSpec& c : classic_ciphers()) s << ' ' << c.name;
  for (const Method2022& m : methods_2022()) s << ' ' << m.name;
  s << " none\n"
    << "  2022 methods take a base64 key as the password (make one with --genkey METHOD); "
       "\"none\" does not encrypt (measurements only).\n";
  return s.str();
}

// The program's name and the first line of its help.
struct RoleText {
  const char* program;
  const char* description;
};

RoleText role_text(Role role) {
  switch (role) {
    case Role::Local:
      return {"ss-local", "Shadowsocks client with a SOCKS5 front end"};
    case Role::Server:
      return {"ss-server", "Shadowsocks server"};
    case Role::Tunnel:
      return {"ss-tunnel", "Shadowsocks client forwarding to one target"};
    case Role::Manager:
      return {"ss-manager",
              "Shadowsocks server whose ports are added and removed at run time "
              "(shadowsocks-libev's manager protocol)"};
    case Role::Redir:
      return {"ss-redir",
              "Shadowsocks client for connections redirected by the firewall (iptables REDIRECT "
              "or TPROXY)"};
  }
  return {"ss", "Shadowsocks"};
}

// cxxopts names the option in its messages as 'x' or ‘x’; turn that into -x / --xyz.
std::string flag_from_message(std::string_view what) {
  for (std::string_view open : {std::string_view("\xE2\x80\x98"), std::string_view("'")}) {
    const std::string_view close = open.size() == 1 ? "'" : "\xE2\x80\x99";
    const size_t a = what.find(open);
    if (a == std::string_view::npos) continue;
    const size_t b = what.find(close, a + open.size());
    if (b == std::string_view::npos) continue;
    const std::string_view name = what.substr(a + open.size(), b - a - open.size());
    return (name.size() == 1 ? "-" : "--") + std::string(name);
  }
  return "command line";
}

void add_flags(cxxopts::Options& options, Role role) {
  using cxxopts::value;
  auto add = options.add_options();
  for (const Option& o : kOptions) {
    if (o.flag.empty() || !o.for_role(role)) continue;
    const std::string flag(o.flag), help(o.help), arg(o.value);
    switch (o.arg) {
      case Arg::None:
      case Arg::Count:
        add(flag, help);
        break;
      case Arg::Text:
        add(flag, help, value<std::string>(), arg);
        break;
      case Arg::List:
        add(flag, help, value<std::vector<std::string>>(), arg);
        break;
    }
  }
}

// The flags' values, through each row's setter, in the table's order.
void apply_flags(Config& cfg, const cxxopts::ParseResult& r) {
  if (r.count("u") && r.count("U")) fail("-u, -U: give only one (-u: TCP and UDP, -U: UDP only)");
  if (r.count("q") && r.count("v")) fail("-q, -v: give only one");
  // A credential given on the command line replaces both credentials from the file; otherwise a
  // file's "key" would silently win over -k.
  if (r.count("k") || r.count("key")) {
    cfg.password.clear();
    cfg.key_b64.clear();
  }
  for (const Option& o : kOptions) {
    if (o.flag.empty() || !o.for_role(cfg.role)) continue;
    const std::string lookup(o.flag_name());
    if (r.count(lookup) == 0) continue;
    const std::string name = (lookup.size() == 1 ? "-" : "--") + lookup;
    if (o.apply == nullptr) {
      if (o.refused != nullptr) fail(name + ": " + o.refused);
      continue;  // -c, --genkey, -h, -V: the loader's
    }
    json v;
    switch (o.arg) {
      case Arg::None:
        v = true;
        break;
      case Arg::Count:
        v = r.count(lookup);
        break;
      case Arg::Text:
        v = r[lookup].as<std::string>();
        break;
      case Arg::List:
        v = r[lookup].as<std::vector<std::string>>();
        break;
    }
    o.apply(cfg, v, name);
  }
}

std::string methods_2022_list() {
  std::string s;
  for (const Method2022& m : methods_2022()) {
    if (!s.empty()) s += ", ";
    s += m.name;
  }
  return s;
}

// The 2022 edition: the password is the base64 PSK (or "iPSK:uPSK" on a client), never derived.
void finalize_2022(Config& cfg) {
  const Method2022* m = find_2022_method(cfg.method);
  if (m == nullptr) {
    const bool reduced_rounds = cfg.method.find("chacha8") != std::string::npos ||
                                cfg.method.find("chacha12") != std::string::npos;
    fail("method: " + quote(cfg.method) + " is not supported" +
         (reduced_rounds ? ": no well-kept library here (OpenSSL, libsodium) provides ChaCha8 or "
                           "ChaCha12"
                         : "") +
         " (supported 2022 methods: " + methods_2022_list() + ")");
  }
  if (!cfg.key_b64.empty()) {
    fail("key: not used by the 2022 methods; put the base64 PSK in \"password\" (-k)");
  }
  if (cfg.password.empty()) {
    fail("password: missing: " + std::string(m->name) + " needs a base64 key of " +
         std::to_string(m->key_len) + " bytes (make one with --genkey " + std::string(m->name) +
         ")");
  }
  Psk2022 parsed = parse_2022_password(*m, cfg.password);
  if (!parsed.error.empty()) fail("password: " + parsed.error);
  if (serves_ports(cfg.role) && parsed.keys.size() != 1) {
    fail("password: ss-server takes one key (the identity PSK when \"users\" are set)");
  }
  if (!cfg.users_url.empty() && m->kind == Kind2022::ChaCha20Poly1305) {
    fail("users_url: multi-user (SIP023) works with the AES 2022 methods only");
  }
  if (!cfg.users.empty()) {
    if (!serves_ports(cfg.role)) fail("users: only ss-server takes a users list");
    if (m->kind == Kind2022::ChaCha20Poly1305) {
      fail("users: multi-user (SIP023) works with the AES 2022 methods only");
    }
    for (size_t i = 0; i < cfg.users.size(); ++i) {
      User2022& u = cfg.users[i];
      Psk2022 uk = parse_2022_password(*m, u.password);
      if (!uk.error.empty() || uk.keys.size() != 1) {
        fail("users[" + std::to_string(i) +
             "].password: " + (uk.error.empty() ? std::string("must be one key") : uk.error));
      }
      u.key = std::move(uk.keys.front());
    }
  }
  cfg.method_kind = MethodKind::Aead2022;
  cfg.method2022 = m;
  cfg.cipher = m->aead;
  cfg.psk_keys = std::move(parsed.keys);
  cfg.key = cfg.psk_keys.back();
}

std::string supported_methods() {
  std::string s;
  for (const CipherSpec& c : classic_ciphers()) {
    if (!s.empty()) s += ", ";
    s += c.name;
  }
  return s;
}

// Past white space and comments from `i`; returns the index of the next other byte (or the end).
size_t skip_blank(std::string_view t, size_t i) {
  while (i < t.size()) {
    const char c = t[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
    } else if (c == '/' && i + 1 < t.size() && t[i + 1] == '/') {
      const size_t nl = t.find('\n', i);
      i = nl == std::string_view::npos ? t.size() : nl + 1;
    } else if (c == '/' && i + 1 < t.size() && t[i + 1] == '*') {
      const size_t end = t.find("*/", i + 2);
      i = end == std::string_view::npos ? t.size() : end + 2;
    } else {
      break;
    }
  }
  return i;
}

}  // namespace

std::span<const Option> option_table() {
  return kOptions;
}

const char* program_name(Role role) {
  return role_text(role).program;
}

std::string version_text(Role role) {
  std::ostringstream s;
  s << program_name(role) << " (shadowsocks-uv) " << SS_VERSION << "\n"
    << "libraries: libuv " << uv_version_string() << ", " << OpenSSL_version(OPENSSL_VERSION)
    << ", libsodium " << sodium_version_string() << ", BLAKE3 " << BLAKE3_VERSION_STRING << "\n"
    << "backends: aes-*-gcm and chacha20-ietf-poly1305 OpenSSL EVP; xchacha20-ietf-poly1305 "
       "libsodium; 2022 methods: the same AEADs with BLAKE3 key derivation\n";
  return s.str();
}

std::string strip_trailing_commas(std::string_view t) {
  std::string out(t);
  char last = '\0';  // the last byte outside strings, comments and white space
  size_t i = 0;
  while (i < t.size()) {
    const char c = t[i];
    if (c == '"') {
      // A string: skip to its closing quote, past escapes.
      for (++i; i < t.size() && t[i] != '"'; ++i) {
        if (t[i] == '\\') ++i;
      }
      ++i;
      last = '"';
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
               (c == '/' && i + 1 < t.size() && (t[i + 1] == '/' || t[i + 1] == '*'))) {
      i = std::max(skip_blank(t, i), i + 1);
    } else if (c == ',') {
      // Only a comma that ends a value or member: "[,]" and ",," stay errors.
      const size_t next = skip_blank(t, i + 1);
      const bool after_value = last != '\0' && last != '[' && last != '{' && last != ',';
      if (after_value && next < t.size() && (t[next] == ']' || t[next] == '}')) {
        out[i] = ' ';
      } else {
        last = ',';
      }
      ++i;
    } else {
      last = c;
      ++i;
    }
  }
  return out;
}

Config parse_config_json(Role role, const std::string& json_text, std::ostream& warn) {
  Config cfg = default_config(role);
  apply_json(cfg, parse_document(json_text, "config"), warn);
  return cfg;
}

namespace {

// The method and its keys (from method, password, key and users): the derived fields of `cfg`.
void finalize_method(Config& cfg) {
  if (cfg.method.empty()) cfg.method = std::string(kDefaultMethod);
  if (cfg.method == "none") {
    if (!cfg.users.empty()) fail("users: the method \"none\" has no keys to tell users apart");
    if (!cfg.users_url.empty()) {
      fail("users_url: the method \"none\" has no keys to tell users apart");
    }
    // No encryption: for measuring the relay; the binaries warn loudly at start-up.
    cfg.method_kind = MethodKind::None;
    cfg.cipher = nullptr;
    cfg.key.clear();
    return;
  }
  if (is_2022_name(cfg.method)) {
    finalize_2022(cfg);
    return;
  }
  cfg.cipher = find_cipher(cfg.method);
  if (cfg.cipher == nullptr) {
    fail("method: unknown method " + quote(cfg.method) + " (supported: " + supported_methods() +
         ", " + methods_2022_list() + ", none)");
  }
  const size_t key_len = cfg.cipher->key_len;
  if (!cfg.users.empty() || !cfg.users_url.empty()) {
    // Classic users: the server finds each connection's key by trial (crypto/key_trial.h). Every
    // key is a user's, so a top-level key would be a nameless user: refused.
    if (!serves_ports(cfg.role)) fail("users: only ss-server takes a users list");
    if (!cfg.password.empty() || !cfg.key_b64.empty()) {
      fail(std::string(cfg.key_b64.empty() ? "password" : "key") +
           ": not used with classic-method users (each user has its own password); remove it");
    }
    for (size_t i = 0; i < cfg.users.size(); ++i) {
      UserSpec& u = cfg.users[i];
      const std::string at = "users[" + std::to_string(i) + "].password";
      if (u.password.empty()) fail(at + ": must not be empty");
      u.key = derive_master_key(u.password, key_len);
      for (size_t j = 0; j < i; ++j) {
        if (cfg.users[j].key == u.key) {
          fail(at + ": the same key as users[" + std::to_string(j) + "] (" +
               quote(cfg.users[j].name) + "): a connection could not tell them apart");
        }
      }
    }
    cfg.key.clear();
    return;
  }
  if (!cfg.key_b64.empty()) {
    std::optional<std::vector<uint8_t>> decoded = base64_decode(cfg.key_b64);
    if (!decoded) fail("key: not valid base64");
    if (decoded->size() < key_len) {
      const size_t got = decoded->size();
      secure_zero(*decoded);
      fail("key: decodes to " + std::to_string(got) + " bytes, " + std::string(cfg.cipher->name) +
           " needs " + std::to_string(key_len));
    }
    cfg.key.assign(decoded->begin(), decoded->begin() + static_cast<std::ptrdiff_t>(key_len));
    secure_zero(*decoded);
  } else if (!cfg.password.empty()) {
    cfg.key = derive_master_key(cfg.password, key_len);
  } else {
    fail(R"(password: missing (set "password" or "key"))");
  }
}

// A ServerSpec's derived fields, through the same checks as the flat keys; errors are prefixed
// with `at` ("servers[1]"). `users_url`: the process's (an ss-server entry's users then come from
// Redis, its keys are only theirs).
void finalize_server(ServerSpec& spec, Role role, const std::string& at,
                     const std::string& users_url = {}) {
  Config tmp;
  tmp.role = role;
  tmp.users_url = users_url;
  spec.users_only = !users_url.empty();
  tmp.method = spec.method;
  tmp.password = spec.password;
  tmp.key_b64 = spec.key_b64;
  tmp.users = std::move(spec.users);
  try {
    finalize_method(tmp);
  } catch (const ConfigError& e) {
    fail(at + "." + e.what());
  }
  spec.users = std::move(tmp.users);
  spec.method = tmp.method;
  spec.method_kind = tmp.method_kind;
  spec.cipher = tmp.cipher;
  spec.method2022 = tmp.method2022;
  spec.key = std::move(tmp.key);
  spec.psk_keys = std::move(tmp.psk_keys);
}

}  // namespace

ServerSpec manager_port_from_json(const Config& running, const json& o) {
  if (!o.is_object()) fail("add: must be a JSON object");
  ServerSpec spec;
  spec.method = running.method;
  for (const auto& [k, val] : o.items()) {
    if (k == "server_port") {
      spec.port = port_value(val, k);
    } else if (k == "password") {
      spec.password = string_value(val, k);
    } else if (k == "key") {
      spec.key_b64 = string_value(val, k);
    } else if (k == "method") {
      spec.method = string_value(val, k);
    } else if (k == "mode") {
      spec.mode = mode_value(val, k);
    } else if (k == "users") {
      spec.users = users_value(val, k);
    } else if (k == "fast_open" || k == "no_delay") {
      // Process-wide here (set by the flags at start): per port they cannot differ.
      const bool on = bool_value(val, k);
      if (on != (k == "fast_open" ? running.fast_open : running.no_delay)) {
        fail(k + ": is the process's (set at start with --" +
             (k == "fast_open" ? std::string("fast-open") : std::string("no-delay")) +
             "), not per port");
      }
    } else if (k == "plugin" || k == "plugin_opts") {
      // libev's: the port's TCP goes through this SIP003 plugin (relay/plugin.h), started by the
      // running process. An empty plugin is no plugin (libev's clients send "plugin": "").
      plugin_key(spec.plugin, k, val, k);
      if (k == "plugin" && !spec.plugin.empty() && running.acl && running.acl->has_client_rules()) {
        fail(
            "plugin: the ACL's client lists cannot work behind a plugin (every client connects "
            "from 127.0.0.1)");
      }
    } else {
      fail(k + ": not supported by shadowsocks-uv's ss-manager");
    }
  }
  if (spec.port == 0) fail("server_port: missing");
  if (spec.password.empty() && spec.key_b64.empty() && spec.users.empty()) {
    fail("password: missing");
  }
  spec.source = "add";
  finalize_server(spec, running.role, "add");
  return spec;
}

ServerSpec flat_inbound(const Config& cfg) {
  ServerSpec in;
  in.port = cfg.server_port;
  in.method = cfg.method;
  in.method_kind = cfg.method_kind;
  in.cipher = cfg.cipher;
  in.method2022 = cfg.method2022;
  in.key = cfg.key;
  in.psk_keys = cfg.psk_keys;
  in.password = cfg.password;
  in.key_b64 = cfg.key_b64;
  in.users = cfg.users;
  in.users_only = !cfg.users_url.empty() && serves_ports(cfg.role);
  return in;
}

std::vector<ServerSpec> flat_servers(const Config& cfg) {
  std::vector<ServerSpec> out;
  for (const std::string& host : cfg.server) {
    ServerSpec spec = flat_inbound(cfg);
    spec.host = host;
    spec.plugin = cfg.plugin;
    out.push_back(std::move(spec));
  }
  return out;
}

Specs specs_of(const Config& cfg) {
  Specs s;
  s.limits.timeout = cfg.timeout;
  s.limits.udp_timeout = cfg.udp_timeout;
  s.limits.udp_max_associations = cfg.udp_max_associations;
  s.limits.max_connections = cfg.max_connections;
  s.limits.replay_capacity = cfg.replay_capacity;
  s.limits.replay_fp_rate = cfg.replay_fp_rate;
  s.tcp = {cfg.no_delay, cfg.ipv6_first, cfg.fast_open, cfg.outbound_fwmark};
  s.clock_offset = cfg.clock_offset;
  s.acl = cfg.acl;
  s.listeners = cfg.listeners;
  for (ListenerSpec& l : s.listeners) {
    l.transparent = cfg.tcp_tproxy && l.protocol == ListenerSpec::Protocol::Redir;
    // A DNS local serves both unless its own "mode" says otherwise.
    const Mode mode =
        l.mode.value_or(l.protocol == ListenerSpec::Protocol::Dns ? Mode::TcpAndUdp : cfg.mode);
    l.tcp = mode != Mode::UdpOnly;
    l.udp = mode != Mode::TcpOnly;
    if (l.protocol == ListenerSpec::Protocol::Mixed) l.users = cfg.local_users;
  }
  // ss-server's flat keys: "server" is where to listen (the listeners above), the method and
  // keys are the Shadowsocks inbound's, "local_address" is where outbound connections bind.
  if (serves_ports(cfg.role)) {
    if (cfg.inbounds.empty() && cfg.role != Role::Manager) {  // ss-manager: none until "add"
      s.inbounds.push_back(flat_inbound(cfg));
    } else {
      s.inbounds = cfg.inbounds;
    }
    s.direct = DirectSpec{cfg.local_address, !cfg.allow_private_targets};
    return s;
  }
  // The clients' flat keys: "server" are the upstreams. A Config not made by finalize_config
  // (tests) has only the flat keys.
  s.servers = cfg.servers.empty() ? flat_servers(cfg) : cfg.servers;
  s.balancer = cfg.balancer;
  s.balancer.fwmark = cfg.outbound_fwmark;
  return s;
}

// --acl: ss-local and ss-redir route by it (TCP, and UDP per datagram), ss-server filters clients
// and targets by it; ss-tunnel's target is fixed, so an ACL would have nothing to decide.
void finalize_acl(Config& cfg) {
  if (cfg.role == Role::Tunnel) fail("acl: ss-tunnel takes no ACL (its target is fixed)");
  std::string error;
  std::shared_ptr<const Acl> acl = Acl::load(cfg.acl_path, &error);
  if (!acl) fail("acl: " + error);
  cfg.acl = std::move(acl);
}

namespace {

// The same listen address given twice (as written or spelled differently: "::" and "0::0") would
// open one more socket per copy and per worker: keep the first, count the rest.
void merge_duplicate_listeners(Config& cfg) {
  std::vector<ListenerSpec> kept;
  std::unordered_set<std::string> seen;
  for (ListenerSpec& l : cfg.listeners) {
    const std::optional<Address> a = make_address(l.address, l.port);
    std::string id = std::to_string(static_cast<int>(l.protocol)) + ' ' +
                     (a ? a->to_string() : l.address + ':' + std::to_string(l.port));
    if (l.forward) id += " > " + l.forward->to_string();
    if (l.mode) id += " m" + std::to_string(static_cast<int>(*l.mode));
    if (seen.insert(std::move(id)).second) kept.push_back(std::move(l));
  }
  cfg.merged_listeners = cfg.listeners.size() - kept.size();
  cfg.listeners = std::move(kept);
}

}  // namespace

// ss-server's inbounds and their listeners: the flat keys' one inbound on every "server" address;
// port_password's one per port on every "server" address; or one per "servers" entry, on its own
// address with its own mode. A port used twice is refused.
static void finalize_inbounds(Config& cfg) {
  cfg.listeners.clear();
  cfg.inbounds.clear();
  auto listen = [&cfg](const std::string& host, uint16_t port, std::optional<Mode> mode,
                       const PluginSpec& plugin, const std::string& at) {
    for (const ListenerSpec& l : cfg.listeners) {
      if (l.port == port && l.inbound != cfg.inbounds.size()) {
        fail(at + ": port " + std::to_string(port) + " is already used by another entry");
      }
    }
    ListenerSpec l{ListenerSpec::Protocol::Shadowsocks, host, port, {}};
    l.mode = mode;
    l.plugin = plugin;
    l.inbound = cfg.inbounds.size();
    cfg.listeners.push_back(std::move(l));
  };
  if (cfg.rust_servers) {
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
      ServerSpec& spec = cfg.servers[i];
      const std::string at = "servers[" + std::to_string(i) + "]";
      finalize_server(spec, cfg.role, at, cfg.users_url);
      listen(spec.host, spec.port, spec.mode, spec.plugin, at + ".server_port");
      cfg.inbounds.push_back(spec);
    }
    cfg.servers.clear();
    return;
  }
  if (!cfg.port_password.empty()) {
    for (const auto& [port, password] : cfg.port_password) {
      const std::string at = "port_password[" + quote(std::to_string(port)) + "]";
      ServerSpec spec;
      spec.method = cfg.method;
      spec.password = password;
      spec.port = port;
      spec.source = "port_password";
      finalize_server(spec, cfg.role, at);
      for (const std::string& host : cfg.server) listen(host, port, std::nullopt, cfg.plugin, at);
      cfg.inbounds.push_back(std::move(spec));
    }
    return;
  }
  for (const std::string& host : cfg.server) {
    listen(host, cfg.server_port, std::nullopt, cfg.plugin, "server");
  }
  cfg.inbounds.push_back(flat_inbound(cfg));
}

// The management API's keys: a token is required (from api_token or api_token_file, not both),
// and the address must be loopback unless api_allow_remote says otherwise.
static void finalize_api(Config& cfg) {
  if (!cfg.api_token_file.empty()) {
    if (!cfg.api_token.empty()) fail("api_token_file: give api_token or api_token_file, not both");
    std::string text;
    const std::string err = read_regular_file(cfg.api_token_file, 4096, text);
    if (!err.empty()) fail("api_token_file: cannot read " + quote(cfg.api_token_file) + ": " + err);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
      text.pop_back();
    }
    cfg.api_token = std::move(text);
  }
  if (cfg.api_token.empty()) {
    fail(
        "api_token: missing: the management API (api_address) needs a bearer token "
        "(api_token or api_token_file)");
  }
  if (cfg.api_token.size() < 16) fail("api_token: too short (at least 16 characters)");
  for (char c : cfg.api_token) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7f) fail("api_token: only visible ASCII characters");
  }
  const std::optional<Address> at = parse_host_port(cfg.api_address);
  if (!at) fail("api_address: not host:port: " + quote(cfg.api_address));
  if (!cfg.api_allow_remote) {
    sockaddr_storage ss{};
    const bool loopback_name = at->host == "localhost";
    bool loopback_ip = false;
    if (at->to_sockaddr(ss) || literal_to_sockaddr(at->host, at->port, ss)) {
      if (ss.ss_family == AF_INET) {
        loopback_ip =
            (ntohl(reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr.s_addr) >> 24) == 127;
      } else if (ss.ss_family == AF_INET6) {
        loopback_ip = IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
      }
    }
    if (!loopback_name && !loopback_ip) {
      fail("api_address: " + quote(cfg.api_address) +
           " is not a loopback address; set api_allow_remote (--api-allow-remote) to serve the "
           "API beyond this host");
    }
  }
}

void finalize_config(Config& cfg) {
  const bool server_role = serves_ports(cfg.role);

  if (server_role && cfg.server.empty()) cfg.server = {"0.0.0.0"};
  if (!server_role && cfg.local_address.empty()) cfg.local_address = "127.0.0.1";
  if (cfg.method.empty()) cfg.method = std::string(kDefaultMethod);

  const bool several_inbounds = server_role && (cfg.rust_servers || !cfg.port_password.empty());
  if (!cfg.port_password.empty()) {
    if (!server_role) fail("port_password: only ss-server takes port_password");
    if (cfg.rust_servers) fail("port_password: give the ports in \"servers\" or here, not both");
  }
  if (several_inbounds) {
    // Every port's keys come from port_password or "servers": top-level ones would be ignored.
    const char* from = cfg.rust_servers ? "\"servers\"" : "port_password";
    if (cfg.server_port != 0) fail(std::string("server_port: not used with ") + from);
    if (!cfg.password.empty()) fail(std::string("password: not used with ") + from);
    if (!cfg.key_b64.empty()) fail(std::string("key: not used with ") + from);
    if (!cfg.users.empty()) {
      fail(std::string("users: not used with ") + from +
           "; give a port its users in a \"servers\" entry");
    }
  }
  if (!server_role) {
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
      if (!cfg.servers[i].users.empty()) {
        fail("servers[" + std::to_string(i) + "].users: only ss-server's entries take users");
      }
    }
  }
  // ss:// URIs among the hosts of -s/"server" are servers of their own (clients only).
  {
    std::vector<std::string> hosts;
    for (std::string& h : cfg.server) {
      if (h.rfind("ss://", 0) != 0) {
        hosts.push_back(std::move(h));
      } else if (server_role) {
        fail("server: an ss:// URI names a server to use; ss-server takes addresses to listen on");
      } else {
        cfg.urls.push_back(std::move(h));
      }
    }
    cfg.server = std::move(hosts);
  }
  if (cfg.rust_locals && cfg.role != Role::Local) fail("locals: only ss-local takes \"locals\"");
  if (cfg.online_config && server_role) {
    fail("online_config: only ss-local, ss-tunnel and ss-redir fetch a server list");
  }
  // With rust's "servers" or only ss:// URIs, the flat server keys are not needed (and not used).
  // With online_config alone, every server comes from its URL.
  const bool flat = !cfg.rust_servers && cfg.port_password.empty() &&
                    !(cfg.server.empty() && (!cfg.urls.empty() || cfg.online_config));
  if (!flat && cfg.port_password.empty() && !cfg.plugin.empty()) {
    fail(cfg.rust_servers ? "plugin: with \"servers\", give each entry its own \"plugin\""
                          : "plugin: applies to \"server\" hosts; an ss:// URI gives its own "
                            "?plugin=");
  }
  // ss-manager may start with no port (its ports come from "add"): its flat keys then give only
  // the listen addresses and the default method.
  const bool manager = cfg.role == Role::Manager;
  if (manager && cfg.manager_address.empty()) {
    fail(R"(manager_address: missing (set "manager_address" or --manager-address))");
  }
  if (manager) cfg.count_ports = true;
  const bool no_ports = manager && flat && cfg.server_port == 0 && cfg.password.empty() &&
                        cfg.key_b64.empty() && cfg.users.empty();
  if (flat) {
    if (cfg.server.empty()) fail(R"(server: missing (set "server" or -s))");
    for (const std::string& host : cfg.server) {
      if (!make_address(host, 0)) fail("server: invalid host " + quote(host));
    }
    if (cfg.server_port == 0 && !no_ports) {
      fail(R"(server_port: missing (set "server_port" or -p))");
    }
  }
  if (!cfg.tun_cidr.empty() && cfg.tun_name.empty()) fail("--tun-address: needs --tun NAME");
  if (!cfg.tun_name.empty() && cfg.rust_locals) {
    fail("--tun: with \"locals\", give the tun as a \"protocol\": \"tun\" entry");
  }
  if (cfg.tun_setup) {
    const size_t tuns =
        cfg.rust_locals
            ? static_cast<size_t>(std::count_if(
                  cfg.listeners.begin(), cfg.listeners.end(),
                  [](const ListenerSpec& l) { return l.protocol == ListenerSpec::Protocol::Tun; }))
            : (cfg.tun_name.empty() ? 0u : 1u);
    if (tuns != 1)
      fail("tun_setup: needs exactly one tun (--tun NAME or a \"protocol\": \"tun\" local)");
    if (cfg.outbound_fwmark == 0) {
      fail(
          "tun_setup: needs outbound_fwmark (--outbound-fwmark MARK): the rules send every "
          "unmarked packet into the TUN, ss-local's own connections included");
    }
    if (!cfg.run_as_user.empty()) {
      fail("tun_setup: cannot be used with user (-a): the routes could not be deleted at exit");
    }
  }
  if (!server_role && !cfg.rust_locals && cfg.local_port == 0 && cfg.tun_name.empty()) {
    fail(R"(local_port: missing (set "local_port" or -l))");
  }
  if (!cfg.local_address.empty() && !make_address(cfg.local_address, 0)) {
    fail("local_address: invalid address " + quote(cfg.local_address));
  }
  if (cfg.role == Role::Tunnel && !cfg.tunnel_target) {
    fail(R"(tunnel_address: missing (set "tunnel_address" or -L host:port))");
  }
  // shadowsocks-libev reads "tcp_tproxy" in every binary and only ss-redir uses it: a file shared
  // with ss-local must not make ss-local's listener transparent.
  if (cfg.role != Role::Redir) cfg.tcp_tproxy = false;
  if (!cfg.socks5_auth_config_path.empty()) {
    if (cfg.role != Role::Local) fail("socks5_auth_config_path: only ss-local takes a user file");
    std::string error;
    std::optional<UserTable> users =
        read_users_file(cfg.socks5_auth_config_path, "socks5_auth_config_path", error);
    if (!users) fail(error);
    cfg.local_users = std::make_shared<const UserTable>(std::move(*users));
  }
  if (!cfg.acl_path.empty()) finalize_acl(cfg);
  if (server_role && cfg.acl && cfg.acl->has_client_rules() && !cfg.plugin.empty()) {
    // Behind a plugin every client arrives from the plugin's loopback address.
    fail(
        "acl: client lists ([black_list], [white_list], [reject_all]) cannot work behind a "
        "plugin: every client connects from the plugin (127.0.0.1)");
  }
  if (cfg.timeout <= 0) fail("timeout: must be a positive number of seconds");
  if (cfg.udp_timeout <= 0) fail("udp_timeout: must be a positive number of seconds");
  if (cfg.udp_max_associations == 0) fail("udp_max_associations: must be at least 1");

  if (!cfg.users_url.empty()) {
    // The users come from Redis (server/fleet/fleet.h) and go on every port: the flat keys' one,
    // or each "servers" entry's (its own port, method and mode). A classic port finds them by key
    // trial and has no key of its own; a 2022 port's password is its server PSK (the iPSK).
    if (!cfg.port_password.empty()) {
      fail(
          "users_url: not used with port_password (its passwords would be keys besides the "
          "users'); give the ports as \"servers\" entries");
    }
    if (!cfg.rust_servers && !is_2022_name(cfg.method) &&
        (!cfg.password.empty() || !cfg.key_b64.empty())) {
      fail(std::string(cfg.key_b64.empty() ? "password" : "key") +
           ": not used with users_url and a classic method (the users and their passwords come "
           "from Redis)");
    }
    if (!cfg.users.empty()) fail("users: not used with users_url (the users come from Redis)");
    for (size_t i = 0; i < cfg.servers.size() && cfg.rust_servers; ++i) {
      const std::string at = "servers[" + std::to_string(i) + "]";
      if (!cfg.servers[i].users.empty()) {
        fail(at + ".users: not used with users_url (the users come from Redis)");
      }
      if (!cfg.servers[i].plugin.empty()) {
        fail(at +
             ".plugin: not used with users_url (a process with a plugin cannot apply user "
             "changes)");
      }
    }
    if (!cfg.plugin.empty()) {
      fail(
          "plugin: not used with users_url (not supported yet: a fleet with SIP003 plugins is "
          "untested)");
    }
  }
  if (!cfg.api_address.empty()) finalize_api(cfg);
  if (no_ports) {
    if (cfg.method != "none" && !is_2022_name(cfg.method) && find_cipher(cfg.method) == nullptr) {
      fail("method: unknown method " + quote(cfg.method) + " (supported: " + supported_methods() +
           ", " + methods_2022_list() + ", none)");
    }
  } else if (flat) {
    finalize_method(cfg);
  }

  // The specs: what to listen on, and (ss-local, ss-tunnel) which servers to use.
  if (server_role) {
    if (no_ports) {
      cfg.listeners.clear();
      cfg.inbounds.clear();
      return;
    }
    finalize_inbounds(cfg);
    merge_duplicate_listeners(cfg);
    return;
  }
  if (!cfg.rust_locals) {
    cfg.listeners.clear();
    if (cfg.role == Role::Tunnel) {
      cfg.listeners.push_back(
          {ListenerSpec::Protocol::Tunnel, cfg.local_address, cfg.local_port, cfg.tunnel_target});
    } else if (cfg.role == Role::Redir) {
      cfg.listeners.push_back(
          {ListenerSpec::Protocol::Redir, cfg.local_address, cfg.local_port, {}});
    } else if (cfg.local_port != 0) {
      cfg.listeners.push_back({cfg.local_protocol == "dns" ? ListenerSpec::Protocol::Dns
                                                           : ListenerSpec::Protocol::Mixed,
                               cfg.local_address,
                               cfg.local_port,
                               {}});
    }
    if (!cfg.tun_name.empty()) {
      ListenerSpec tun{ListenerSpec::Protocol::Tun, "", 0, {}};
      tun.tun_name = cfg.tun_name;
      tun.tun_cidr = cfg.tun_cidr;
      finish_tun_spec(tun, "");
      cfg.listeners.push_back(std::move(tun));
    }
  }
  if (cfg.role == Role::Local) finish_dns_flags(cfg);
  merge_duplicate_listeners(cfg);
  if (flat) {
    cfg.servers = flat_servers(cfg);
  } else {
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
      finalize_server(cfg.servers[i], cfg.role, "servers[" + std::to_string(i) + "]");
    }
  }
  for (size_t i = 0; i < cfg.urls.size(); ++i) {
    const std::string at = "server (ss:// URI " + std::to_string(i + 1) + ")";
    ServerSpec spec = server_from_uri(cfg.urls[i], at);
    spec.source = "server";
    finalize_server(spec, cfg.role, at);
    cfg.servers.push_back(std::move(spec));
  }
}

std::vector<ServerSpec> client_servers_from_json(Role role, const json& entries) {
  Config c = default_config(role);
  servers_value(c, entries);
  for (size_t i = 0; i < c.servers.size(); ++i) {
    finalize_server(c.servers[i], role, "servers[" + std::to_string(i) + "]");
  }
  return std::move(c.servers);
}

std::string server_uri(const ServerSpec& spec) {
  Sip002 u;
  u.method = spec.method;
  u.password = spec.password;
  u.host = spec.host;
  u.port = spec.port;
  u.tag = spec.tag;
  u.plugin = spec.plugin.name;
  u.plugin_opts = spec.plugin.opts;
  return format_sip002(u);
}

void print_server_uris(const Config& cfg, std::ostream& out, bool qr) {
  for (size_t i = 0; i < cfg.servers.size(); ++i) {
    const ServerSpec& spec = cfg.servers[i];
    if (spec.password.empty()) {
      // A classic server given by its key: a URI carries a password only.
      fail("--url: server " + std::to_string(i + 1) + " (" + spec.host +
           ") is given by \"key\", which an ss:// URI cannot carry; give its password");
    }
    const std::string uri = server_uri(spec);
    if (qr) out << qr_text(uri);
    out << uri << '\n';
  }
}

std::optional<Config> load_config(Role role, int argc, const char* const* argv, std::ostream& out,
                                  std::ostream& warn) {
  cxxopts::Options options(program_name(role), role_text(role).description);
  options.custom_help("[options]");
  options.allow_unrecognised_options();
  add_flags(options, role);

  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::incorrect_argument_type&) {
    // Its message quotes the value, which may be a password: name the cause only.
    fail("command line: an on/off flag (-u, -U, -6, -v, --no-delay, ...) was given a value");
  } catch (const cxxopts::exceptions::missing_argument& e) {
    fail(flag_from_message(e.what()) + ": missing value");
  } catch (const cxxopts::exceptions::exception& e) {
    fail(flag_from_message(e.what()) + ": invalid use");
  }

  if (r.count("help")) {
    out << help_text(options, role);
    return std::nullopt;
  }
  if (r.count("version")) {
    out << version_text(role);
    return std::nullopt;
  }
  std::vector<std::string> uri_args;
  for (const std::string& arg : r.unmatched()) {
    if (arg.rfind("ss://", 0) == 0 && !serves_ports(role)) {
      uri_args.push_back(arg);  // a server, as with -s
      continue;
    }
    if (arg.size() > 1 && arg[0] == '-') {
      // "--name=value": name only (the value may be a secret).
      fail("unknown flag " + quote(arg.substr(0, arg.find('='))) + " (see -h)");
    }
    // Never echoed: it may be part of a mistyped password.
    fail(std::string(program_name(role)) +
         ": unexpected argument (only flags are accepted; see -h)");
  }

  if (r.count("genkey")) {
    const std::string method = r["genkey"].as<std::string>();
    if (const Method2022* m = find_2022_method(method)) {
      out << generate_2022_key(*m) << '\n';
    } else if (const CipherSpec* c = find_cipher(method)) {
      std::vector<uint8_t> key(c->key_len);
      random_bytes(key);
      out << base64_encode(key) << '\n';
      secure_zero(key);
    } else {
      fail("--genkey: unknown method " + quote(method) + " (supported: " + supported_methods() +
           ", " + methods_2022_list() + ")");
    }
    return std::nullopt;
  }

  Config cfg = default_config(role);
  if (const char* offset = std::getenv("SS_CLOCK_OFFSET")) {
    // A test aid: pretend the clock is this many seconds off (2022 timestamps only).
    char* end = nullptr;
    long long v = std::strtoll(offset, &end, 10);
    if (end == offset || *end != '\0' || v < -86400 || v > 86400) {
      fail("SS_CLOCK_OFFSET: must be a whole number of seconds from -86400 to 86400");
    }
    cfg.clock_offset = v;
  }
  if (r.count("c")) {
    const std::string path = r["c"].as<std::string>();
    const std::string source = "config file " + quote(path);
    apply_json(cfg, parse_document(read_config_file(path, source), source), warn);
  }
  apply_flags(cfg, r);
  cfg.urls.insert(cfg.urls.end(), uri_args.begin(), uri_args.end());
  finalize_config(cfg);
  if (r.count("url") || r.count("qr")) {
    print_server_uris(cfg, out, r.count("qr") != 0);
    return std::nullopt;
  }
  return cfg;
}

}  // namespace ss
