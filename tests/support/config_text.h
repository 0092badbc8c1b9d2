#pragma once
// Configs from JSON text in unit tests: parsed for a role and finalized as the binaries do, or
// the ConfigError message that refuses them.

#include <sstream>
#include <string>

#include "relay/config.h"

namespace ss::test {

inline Config finalized(Role role, const std::string& json) {
  std::ostringstream warn;
  Config cfg = parse_config_json(role, json, warn);
  finalize_config(cfg);
  return cfg;
}

// The refusal's message, or "" when the config is accepted.
inline std::string refusal(Role role, const std::string& json) {
  try {
    finalized(role, json);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace ss::test
