// ss-server's ports and users in the config: libev's "port_password", a server-side "servers"
// array in shadowsocks-rust's form, and classic-method "users" (key trial). Each port becomes a
// Shadowsocks listener with its own inbound (method, keys, users); errors name the key.

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "crypto/kdf.h"
#include "relay/config.h"
#include "relay/runtime.h"
#include "tests/support/config_text.h"

namespace ss {
namespace {

using test::finalized;
using test::refusal;

}  // namespace

TEST_CASE("ports: port_password gives one listener and one inbound per port", "[relay]") {
  Config cfg = finalized(Role::Server, R"({"server": ["127.0.0.1", "::1"],
      "method": "aes-128-gcm", "mode": "tcp_and_udp",
      "port_password": {"8001": "pw1", "8002": "pw2", "8003": "pw3"}})");
  REQUIRE(cfg.inbounds.size() == 3);
  REQUIRE(cfg.listeners.size() == 6);
  const uint16_t ports[] = {8001, 8002, 8003};
  for (size_t i = 0; i < 3; ++i) {
    INFO(i);
    CHECK(cfg.inbounds[i].port == ports[i]);
    CHECK(cfg.inbounds[i].method == "aes-128-gcm");
    CHECK(cfg.inbounds[i].key == derive_master_key("pw" + std::to_string(i + 1), 16));
  }
  for (const ListenerSpec& l : cfg.listeners) {
    CHECK(l.protocol == ListenerSpec::Protocol::Shadowsocks);
    CHECK(cfg.inbounds[l.inbound].port == l.port);
  }
  const Specs specs = specs_of(cfg);
  CHECK(specs.inbounds.size() == 3);
  for (const ListenerSpec& l : specs.listeners) CHECK((l.tcp && l.udp));
  std::string why;
  auto rt = make_runtime(specs, &why);
  REQUIRE(rt);
  CHECK(rt->inbound_suites.size() == 3);
  CHECK(rt->replay_filter);  // one filter for every classic inbound
}

TEST_CASE("ports: port_password errors name the key", "[relay]") {
  const std::string m = R"("method": "aes-256-gcm", )";
  CHECK(refusal(Role::Server, "{" + m + R"("port_password": {"80x1": "pw"}})") ==
        R"(port_password: "80x1" is not a port)");
  CHECK(refusal(Role::Server, "{" + m + R"("port_password": {"0": "pw"}})") ==
        R"(port_password: "0" is not a port)");
  CHECK(refusal(Role::Server, "{" + m + R"("port_password": {"70000": "pw"}})") ==
        R"(port_password: "70000" is not a port)");
  CHECK(refusal(Role::Server, "{" + m + R"("port_password": {"8001": ["pw", "aes-128-gcm"]}})") ==
        R"(port_password["8001"]: must be a password string)");
  CHECK(refusal(Role::Server, "{" + m + R"("port_password": {"8001": "a", "08001": "b"}})") ==
        "port_password: port 8001 appears twice");
  CHECK(refusal(Role::Server, "{" + m + R"("port_password": {}})")
            .rfind("port_password: must be a non-empty object", 0) == 0);
  CHECK(
      refusal(Role::Server, "{" + m + R"("server_port": 8000, "port_password": {"8001": "a"}})") ==
      "server_port: not used with port_password");
  CHECK(refusal(Role::Server, "{" + m + R"("password": "x", "port_password": {"8001": "a"}})") ==
        "password: not used with port_password");
  CHECK(refusal(Role::Local, R"({"server": "h", "server_port": 1, "local_port": 2,
      "password": "p", "port_password": {"8001": "a"}})") ==
        "port_password: only ss-server takes port_password");
  CHECK(refusal(Role::Server, R"({"method": "rot13", "port_password": {"8001": "a"}})")
            .rfind(R"(port_password["8001"].method: unknown method "rot13")", 0) == 0);
  CHECK(refusal(Role::Server, R"({"method": "aes-128-gcm", "port_password": {"8001": ""}})") ==
        R"(port_password["8001"].password: missing (set "password" or "key"))");
  CHECK(refusal(Role::Server, R"({"port_password": {"8001": "a"}, "servers": [{"server":
      "127.0.0.1", "server_port": 8002, "password": "b", "method": "aes-128-gcm"}]})") ==
        R"(port_password: give the ports in "servers" or here, not both)");
}

TEST_CASE("ports: a server-side servers array, each entry its own method, keys, mode and users",
          "[relay]") {
  const std::string psk = "AAECAwQFBgcICQoLDA0ODw==";
  Config cfg = finalized(Role::Server, R"({"servers": [
      {"server": "127.0.0.1", "server_port": 8001, "method": "chacha20-ietf-poly1305",
       "users": [{"name": "alice", "password": "a"}, {"name": "bob", "password": "b"}]},
      {"address": "::1", "port": 8002, "method": "2022-blake3-aes-128-gcm", "password": ")" +
                                           psk + R"(", "mode": "tcp_and_udp",
       "users": [{"name": "carol", "password": ")" +
                                           psk + R"("}]},
      {"server": "0.0.0.0", "server_port": 8003, "method": "aes-256-gcm", "password": "p",
       "mode": "udp_only"}]})");
  REQUIRE(cfg.inbounds.size() == 3);
  REQUIRE(cfg.listeners.size() == 3);
  CHECK(cfg.servers.empty());  // no upstream servers on ss-server
  CHECK(cfg.inbounds[0].method_kind == MethodKind::Classic);
  REQUIRE(cfg.inbounds[0].users.size() == 2);
  CHECK(cfg.inbounds[0].users[1].key == derive_master_key("b", 32));
  CHECK(cfg.inbounds[1].method_kind == MethodKind::Aead2022);
  REQUIRE(cfg.inbounds[1].users.size() == 1);
  CHECK(cfg.inbounds[1].users[0].key.size() == 16);
  const Specs specs = specs_of(cfg);
  REQUIRE(specs.listeners.size() == 3);
  CHECK(specs.listeners[0].address == "127.0.0.1");
  CHECK((specs.listeners[0].tcp && !specs.listeners[0].udp));  // the top-level mode: tcp_only
  CHECK((specs.listeners[1].tcp && specs.listeners[1].udp));
  CHECK((!specs.listeners[2].tcp && specs.listeners[2].udp));
  for (size_t i = 0; i < 3; ++i) CHECK(specs.listeners[i].inbound == i);
  std::string why;
  auto rt = make_runtime(specs, &why);
  REQUIRE(rt);
  REQUIRE(rt->inbound_suites.size() == 3);
  CHECK(rt->inbound_suites[0]->server_state() != nullptr);  // key trial keeps per-worker state
  CHECK(rt->inbound_suites[2]->server_state() == nullptr);
  CHECK(rt->salt_pool);
}

TEST_CASE("ports: server-side servers errors name the entry", "[relay]") {
  const std::string a = R"({"server": "127.0.0.1", "server_port": 8001, "method": "aes-128-gcm",
      "password": "a"})";
  CHECK(refusal(Role::Server, R"({"servers": [)" + a + ", " + a + "]}") ==
        "servers[1].server_port: port 8001 is already used by another entry");
  CHECK(refusal(Role::Server, R"({"server_port": 9, "servers": [)" + a + "]}") ==
        R"(server_port: not used with "servers")");
  // Each entry's SIP003 plugin goes to its own listener.
  Config plugged = finalized(Role::Server, R"({"servers": [{"server": "127.0.0.1",
      "server_port": 8001, "method": "aes-128-gcm", "password": "a", "plugin": "obfs-server",
      "plugin_opts": "obfs=http"}, {"server": "127.0.0.1", "server_port": 8002,
      "method": "aes-128-gcm", "password": "b"}]})");
  REQUIRE(plugged.listeners.size() == 2);
  CHECK(plugged.listeners[0].plugin.name == "obfs-server");
  CHECK(plugged.listeners[0].plugin.opts == "obfs=http");
  CHECK(plugged.listeners[1].plugin.name.empty());
  CHECK(refusal(Role::Server, R"({"servers": [{"server": "127.0.0.1", "server_port": 8001,
      "method": "aes-128-gcm", "password": "a", "mode": "sideways"}]})")
            .rfind("servers[0].mode: ", 0) == 0);
  CHECK(refusal(Role::Server, R"({"servers": [{"server": "127.0.0.1", "server_port": 8001,
      "method": "aes-128-gcm", "password": "a", "users": [{"name": "x", "password": "y"}]}]})") ==
        "servers[0].password: not used with classic-method users (each user has its own "
        "password); remove it");
  CHECK(refusal(Role::Local, R"({"local_port": 1, "servers": [{"server": "127.0.0.1",
      "server_port": 8001, "method": "aes-128-gcm", "password": "a",
      "users": [{"name": "x", "password": "y"}]}]})") ==
        "servers[0].users: only ss-server's entries take users");
}

TEST_CASE("classic users: keys derived from each password, errors name the user", "[relay]") {
  Config cfg = finalized(Role::Server, R"({"server_port": 8388, "method": "aes-192-gcm",
      "users": [{"name": "alice", "password": "a"}, {"name": "bob", "password": "b"}]})");
  REQUIRE(cfg.inbounds.size() == 1);
  REQUIRE(cfg.inbounds[0].users.size() == 2);
  CHECK(cfg.inbounds[0].users[0].key == derive_master_key("a", 24));
  CHECK(cfg.inbounds[0].key.empty());

  CHECK(refusal(Role::Server, R"({"server_port": 1, "method": "aes-128-gcm", "password": "p",
      "users": [{"name": "a", "password": "a"}]})") ==
        "password: not used with classic-method users (each user has its own password); remove "
        "it");
  CHECK(
      refusal(Role::Server, R"({"server_port": 1, "method": "aes-128-gcm",
      "users": [{"name": "a", "password": "same"}, {"name": "b", "password": "same"}]})") ==
      R"(users[1].password: the same key as users[0] ("a"): a connection could not tell them apart)");
  CHECK(refusal(Role::Server, R"({"server_port": 1, "method": "aes-128-gcm",
      "users": [{"name": "a", "password": ""}]})") == "users[0].password: must not be empty");
  CHECK(refusal(Role::Server, R"({"server_port": 1, "method": "none",
      "users": [{"name": "a", "password": "x"}]})") ==
        R"(users: the method "none" has no keys to tell users apart)");
  CHECK(refusal(Role::Local, R"({"server": "h", "server_port": 1, "local_port": 2,
      "method": "aes-128-gcm", "users": [{"name": "a", "password": "x"}]})") ==
        "users: only ss-server takes a users list");
  CHECK(refusal(Role::Server, R"({"method": "aes-128-gcm", "port_password": {"8001": "a"},
      "users": [{"name": "a", "password": "x"}]})") ==
        R"(users: not used with port_password; give a port its users in a "servers" entry)");
}

}  // namespace ss
