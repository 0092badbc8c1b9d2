#pragma once
// A config from JSON text, for unit tests: parsed and finalized as the binary of `role` would, or
// the refusal's message. (tests/relay/tun_config_test.cpp and redis_fleet_test.cpp still carry
// their own copies.)

#include <sstream>
#include <string>

#include "relay/config.h"

namespace ss::test {

inline Config config_from_json(Role role, const std::string& json) {
  std::ostringstream warn;
  Config c = parse_config_json(role, json, warn);
  finalize_config(c);
  return c;
}

// "" if the config was accepted.
inline std::string config_refusal(Role role, const std::string& json) {
  try {
    config_from_json(role, json);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace ss::test
