// What a reload keeps, reports and refuses, on configs alone: listeners matched by address, port
// and protocol (relay/reload.h), the change summary and the keys a running ss-server cannot change
// (server/server_control.h).

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "relay/acl.h"
#include "relay/client_reload.h"
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
  // The NAT's limits apply to new associations and at the next sweep (relay/udp_nat.h).
  CHECK(
      fixed_key_changed(running, finalized(Role::Server, base + R"(, "udp_timeout": 7})")).empty());
  CHECK(
      fixed_key_changed(running, finalized(Role::Server, base + R"(, "udp_max_associations": 7})"))
          .empty());
  CHECK(fixed_key_changed(running, finalized(Role::Server, base + R"(, "max_connections": 7})"))
            .rfind("max_connections:", 0) == 0);
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
  // The ACL (by its text) and allow_private_targets: the socket takes a new inbound and
  // outbound when they change, even with the same keys.
  Specs acl_a = alice;
  acl_a.acl = Acl::parse("[accept_all]\n", nullptr);
  Specs acl_same = alice;
  acl_same.acl = Acl::parse("[accept_all]\n", nullptr);
  Specs acl_b = alice;
  acl_b.acl = Acl::parse("[accept_all]\n[outbound_block_list]\n10.0.0.1\n", nullptr);
  REQUIRE(acl_a.acl);
  REQUIRE(acl_b.acl);
  CHECK(sig(acl_a) == sig(acl_same));
  CHECK(sig(acl_a) != sig(acl_b));
  CHECK(sig(alice) != sig(acl_a));
  Specs open_targets = alice;
  REQUIRE(open_targets.direct);
  open_targets.direct->block_private = !open_targets.direct->block_private;
  CHECK(sig(alice) != sig(open_targets));
}

TEST_CASE("reload: a client applies servers and balancer; anything else is refused by name",
          "[relay]") {
  const std::string base =
      R"({"local_address": "127.0.0.1", "local_port": 1080, "method": "aes-256-gcm")";
  const auto cfg = [&](const std::string& rest) {
    return finalized(Role::Local, base + rest + "}");
  };
  const Config running = cfg(R"(, "server": "127.0.0.1", "server_port": 8001, "password": "p")");
  CHECK(client_fixed_key_changed(running, running).empty());
  CHECK(client_fixed_key_changed(
            running, cfg(R"(, "server": "127.0.0.2", "server_port": 8002, "password": "q")"))
            .empty());
  CHECK(client_fixed_key_changed(
            running,
            cfg(R"(, "servers": [{"server": "127.0.0.1", "server_port": 8001, "password": "p"},
                                 {"server": "127.0.0.3", "server_port": 8003, "password": "r"}])"))
            .empty());
  CHECK(client_fixed_key_changed(
            running, finalized(Role::Local, R"({"local_address": "127.0.0.1", "local_port": 1081,
                                              "method": "aes-256-gcm", "server": "127.0.0.1",
                                              "server_port": 8001, "password": "p"})"))
            .rfind("local_address/local_port/locals:", 0) == 0);
  CHECK(client_fixed_key_changed(
            running,
            cfg(R"(, "server": "127.0.0.1", "server_port": 8001, "password": "p", "timeout": 9)"))
            .rfind("timeout:", 0) == 0);
  CHECK(client_fixed_key_changed(running, cfg(R"(, "server": "127.0.0.1", "server_port": 8001,
                                                  "password": "p", "mode": "tcp_and_udp")"))
            .rfind("local_address/local_port/locals:", 0) == 0);
  CHECK(client_fixed_key_changed(running, cfg(R"(, "server": "127.0.0.1", "server_port": 8001,
                                                  "password": "p", "workers": 3)"))
            .rfind("workers:", 0) == 0);
}

}  // namespace
}  // namespace ss
