#pragma once
// The options table: one row per JSON key and/or command-line flag of the four binaries. `-h`,
// flag parsing, JSON key handling and the unknown/refused-key errors are all generated from it,
// so adding an option is adding one row (in relay/config.cpp).

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <span>
#include <string_view>

#include "relay/config.h"

namespace ss {

// Which binaries list a row in -h and accept its flag (a bit per Role).
using Roles = uint8_t;
constexpr Roles role_bit(Role r) {
  return static_cast<Roles>(1u << static_cast<unsigned>(r));
}
constexpr Roles kLocalOnly = role_bit(Role::Local);
// ss-manager takes every ss-server option (it serves the same ports) plus its own.
constexpr Roles kManagerOnly = role_bit(Role::Manager);
constexpr Roles kServerOnly = role_bit(Role::Server) | kManagerOnly;
// ss-server alone, not ss-manager (whose controller is its own): the management API, users_url.
constexpr Roles kSsServerOnly = role_bit(Role::Server);
constexpr Roles kTunnelOnly = role_bit(Role::Tunnel);
constexpr Roles kRedirOnly = role_bit(Role::Redir);
constexpr Roles kClients = kLocalOnly | kTunnelOnly | kRedirOnly;
constexpr Roles kAllRoles = kClients | kServerOnly;

struct Option {
  // The flag's value: none (on/off), one text, repeatable texts, or a count (-v -v).
  enum class Arg : uint8_t { None, Text, List, Count };
  // Sets the option from a JSON value (a flag's value arrives as a JSON string, array of strings,
  // true, or its count); `name` is the key or flag for error messages. Throws ConfigError.
  using Apply = void (*)(Config& cfg, const nlohmann::json& v, std::string_view name);

  std::string_view key;    // JSON key; "" for a flag only
  std::string_view flag;   // cxxopts spec: "s", "udp-timeout", "V,version"; "" for a key only
  Arg arg = Arg::None;     // the flag's value
  std::string_view value;  // the flag's value in -h: "HOST"
  Roles roles = kAllRoles;
  std::string_view help;      // the flag's line in -h
  std::string_view key_help;  // the key's line in -h; "" keeps the key out of -h
  Apply apply = nullptr;
  // With apply == nullptr: why running without it would be wrong (the key or flag is refused,
  // exit 1). Neither: a flag the loader acts on itself (-c, -h...), or a key that is harmless here
  // and only warned about.
  const char* refused = nullptr;

  bool for_role(Role r) const { return (roles & role_bit(r)) != 0; }
  // "-s", "--udp-timeout", "--version": the flag as users write it (the long form if any).
  std::string_view flag_name() const {
    const size_t comma = flag.find(',');
    return comma == std::string_view::npos ? flag : flag.substr(comma + 1);
  }
};

// Every row. JSON keys are accepted by every binary (libev shares one file between them; finalize
// refuses what does not fit the role); a key that several rows share has the same apply in each.
std::span<const Option> option_table();

}  // namespace ss
