// What a reload keeps, reports and refuses, on configs alone: listeners matched by address, port
// and protocol (relay/reload.h), the change summary and the keys a running ss-server cannot change
// (server/server_control.h).

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "relay/config.h"
#include "relay/reload.h"
#include "server/server_control.h"
#include "tests/support/config_text.h"

namespace ss {
namespace {

using test::finalized;

TEST_CASE("reload: listeners are matched by address, port and protocol", "[relay]") {
  const Specs a = specs_of(finalized(Role::Server,
                                     R"({"server": ["127.0.0.1", "::1"], "method": "aes-128-gcm",
          "port_password": {"8001": "a", "8002": "b"}})"));
  const Specs b = specs_of(finalized(Role::Server,
                                     R"({"server": ["127.0.0.1", "::1"], "method": "aes-128-gcm",
          "port_password": {"8002": "b2", "8003": "c"}})"));
  const auto match = match_listeners(a.listeners, b.listeners);
  REQUIRE(match.size() == b.listeners.size());
  size_t kept = 0;
  for (size_t j = 0; j < b.listeners.size(); ++j) {
    if (b.listeners[j].port == 8002) {
      REQUIRE(match[j].has_value());
      CHECK(a.listeners[*match[j]].port == 8002);
      CHECK(a.listeners[*match[j]].address == b.listeners[j].address);
      ++kept;
    } else {
      CHECK_FALSE(match[j].has_value());
    }
  }
  CHECK(kept == 2);
  const auto removed = removed_listeners(a.listeners, match);
  REQUIRE(removed.size() == 2);
  for (size_t i : removed) CHECK(a.listeners[i].port == 8001);
  CHECK(describe_changes(a, b) == "ports added 8003; ports removed 8001");
}

TEST_CASE("reload: users added and removed are reported per port", "[relay]") {
  const auto users = [](const std::string& list) {
    return finalized(Role::Server, R"({"server": "127.0.0.1", "server_port": 8001,
                             "method": "aes-256-gcm", "users": )" +
                                       list + "}");
  };
  const Specs a =
      specs_of(users(R"([{"name": "alice", "password": "1"}, {"name": "bob", "password": "2"}])"));
  const Specs b = specs_of(
      users(R"([{"name": "alice", "password": "1"}, {"name": "carol", "password": "3"}])"));
  CHECK(describe_changes(a, b) == "port 8001: users added carol; users removed bob");
  CHECK(describe_changes(a, a) == "no port or user changed");
}

TEST_CASE("reload: settings fixed at start are refused by name; UDP ports and keys are not",
          "[relay]") {
  const std::string base = R"({"server": "127.0.0.1", "server_port": 8001, "password": "p")";
  const Config running = finalized(Role::Server, base + "}");
  CHECK(fixed_key_changed(running, finalized(Role::Server, base + R"(, "timeout": 5})")).empty());
  CHECK(fixed_key_changed(running, finalized(Role::Server, base + R"(, "workers": 3})"))
            .rfind("workers:", 0) == 0);
  CHECK(fixed_key_changed(running, finalized(Role::Server, base + R"(, "user": "nobody"})"))
            .rfind("user:", 0) == 0);
  // UDP follows a reload (relay/app.cpp): adding it, or changing the keys of a UDP port, applies.
  CHECK(fixed_key_changed(running, finalized(Role::Server, base + R"(, "mode": "tcp_and_udp"})"))
            .empty());
  CHECK(fixed_key_changed(running, finalized(Role::Server, base + R"(, "udp_timeout": 7})"))
            .rfind("udp_timeout:", 0) == 0);
  // SIP003 plugins follow a reload too (relay/plugin.h: started and retired at run time).
  CHECK(fixed_key_changed(running, finalized(Role::Server, base + R"(, "plugin": "obfs-server"})"))
            .empty());
  const Config udp = finalized(Role::Server, base + R"(, "mode": "tcp_and_udp"})");
  const std::string udp_changed = R"({"server": "127.0.0.1", "server_port": 8001, "password": "q",
                                      "mode": "tcp_and_udp"})";
  CHECK(fixed_key_changed(udp, finalized(Role::Server, udp_changed)).empty());
  CHECK(fixed_key_changed(udp, udp).empty());
}

TEST_CASE("reload: a UDP listener's key signature changes with its method, keys and users",
          "[relay]") {
  auto specs = [](const std::string& extra) {
    return specs_of(finalized(
        Role::Server,
        R"({"server": "127.0.0.1", "server_port": 8001, "method": "aes-256-gcm", "mode": "tcp_and_udp")" +
            extra + "}"));
  };
  const Specs alice = specs(R"(, "users": [{"name": "alice", "password": "1"}])");
  const Specs same = specs(R"(, "users": [{"name": "alice", "password": "1"}], "timeout": 9)");
  const Specs rekeyed = specs(R"(, "users": [{"name": "alice", "password": "2"}])");
  const Specs more =
      specs(R"(, "users": [{"name": "alice", "password": "1"}, {"name": "bob", "password": "3"}])");
  const auto sig = [](const Specs& s) { return udp_keys_signature(s, s.listeners.at(0)); };
  CHECK(sig(alice) == sig(same));
  CHECK(sig(alice) != sig(rekeyed));
  CHECK(sig(alice) != sig(more));
  CHECK(sig(specs(R"(, "password": "p")")) != sig(specs(R"(, "password": "q")")));
}

}  // namespace
}  // namespace ss
