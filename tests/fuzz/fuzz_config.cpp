// Fuzzes the JSON config parser (relay/config.h) on arbitrary text, for every role:
// parse_config_json and then finalize_config must either return or throw ConfigError. Anything
// else escaping (nlohmann's own exceptions, std::out_of_range from a conversion, ...) is not
// caught here, so libFuzzer reports it as a crash. Also checked: error messages are one
// non-empty line, warnings are whole lines naming the key, and accepted values are in range.

#include <sstream>
#include <string>

#include "relay/config.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ss;

void check_message(const ConfigError& e) {
  const std::string what = e.what();
  FUZZ_CHECK(!what.empty());
  FUZZ_CHECK(what.find('\n') == std::string::npos);
  FUZZ_CHECK(what.find(": ") != std::string::npos);  // "<key or source>: <what is wrong>"
}

void check_ranges(const Config& c) {
  FUZZ_CHECK(c.timeout >= 1);
  FUZZ_CHECK(c.udp_timeout >= 1);
  FUZZ_CHECK(c.udp_max_associations >= 1);
  FUZZ_CHECK(c.workers >= 0 && c.workers <= 256);
  for (const std::string& h : c.server) FUZZ_CHECK(!h.empty());
}

void run(Role role, const std::string& text) {
  std::ostringstream warn;
  Config cfg;
  try {
    cfg = parse_config_json(role, text, warn);
  } catch (const ConfigError& e) {
    check_message(e);
    return;
  }
  const std::string w = warn.str();
  FUZZ_CHECK(w.empty() || w.back() == '\n');
  for (size_t line = 0; line < w.size(); line = w.find('\n', line) + 1) {
    FUZZ_CHECK(w.compare(line, 8, "config: ") == 0);
  }
  FUZZ_CHECK(cfg.role == role);
  check_ranges(cfg);

  try {
    finalize_config(cfg);
  } catch (const ConfigError& e) {
    check_message(e);
    return;
  }
  check_ranges(cfg);
  // shadowsocks-rust's "servers" replaces the flat server keys (found with the dup_key_nested
  // seed: a "servers" config used to fail this check). ss-server's ports come from the flat keys,
  // "port_password" or a server-side "servers", and each gives at least one inbound with a port
  // (a port_password config failed the flat-key check here until it looked at the inbounds).
  if (role == Role::Server) {
    FUZZ_CHECK(!cfg.inbounds.empty());
    for (const ServerSpec& in : cfg.inbounds) {
      FUZZ_CHECK(in.port != 0);
      if (in.method_kind == MethodKind::Classic) {
        FUZZ_CHECK(in.cipher != nullptr);
        FUZZ_CHECK(in.users.empty() ? in.key.size() == in.cipher->key_len : true);
      } else if (in.method_kind == MethodKind::Aead2022) {
        FUZZ_CHECK(in.method2022 != nullptr);
      }
    }
  } else if (cfg.rust_servers) {
    FUZZ_CHECK(!cfg.servers.empty());
  } else {
    FUZZ_CHECK(!cfg.server.empty() && cfg.server_port != 0);
  }
  if (role != Role::Server && !cfg.rust_locals) FUZZ_CHECK(cfg.local_port != 0);
  if (role == Role::Tunnel) FUZZ_CHECK(cfg.tunnel_target.has_value());
  // The top-level method: the flat keys' (several inbounds carry their own, checked above).
  const bool several = role == Role::Server && (cfg.rust_servers || !cfg.port_password.empty());
  if (cfg.method_kind == MethodKind::Classic && !several) {
    FUZZ_CHECK(cfg.cipher != nullptr);
    FUZZ_CHECK(cfg.key.size() == cfg.cipher->key_len);
  }
  // The specs: ss-server has the Shadowsocks inbound and the direct outbound, the clients their
  // upstream servers, each listener an address and a port.
  const Specs specs = specs_of(cfg);
  FUZZ_CHECK(!specs.listeners.empty());
  for (const ListenerSpec& l : specs.listeners) FUZZ_CHECK(l.port != 0);
  FUZZ_CHECK(!specs.inbounds.empty() == (role == Role::Server));
  FUZZ_CHECK(specs.direct.has_value() == (role == Role::Server));
  FUZZ_CHECK(specs.servers.empty() == (role == Role::Server));
  FUZZ_CHECK(specs.limits.timeout == cfg.timeout);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (Role role : {Role::Local, Role::Server, Role::Tunnel}) run(role, text);
  return 0;
}
