// ss-manager's protocol on datagrams alone (server/manager/manager_protocol.h, libev's manager.c
// parsing), its "add" fields (manager_port_from_json) and its config (Role::Manager).

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "relay/config.h"
#include "server/manager/manager_protocol.h"
#include "tests/support/config_text.h"

namespace ss {
namespace {

using test::finalized;

std::string add_error(const Config& running, const std::string& json_text) {
  try {
    manager_port_from_json(running, nlohmann::json::parse(json_text));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("manager: a datagram's command and JSON, as libev reads them", "[relay]") {
  auto r = parse_manager_request(R"(add: {"server_port": 8001, "password": "p"})");
  CHECK(r.command == ManagerCommand::Add);
  CHECK(r.json == R"({"server_port": 8001, "password": "p"})");
  r = parse_manager_request("  \tremove:{\"server_port\":\"8001\"}");
  CHECK(r.command == ManagerCommand::Remove);
  CHECK(r.json == "{\"server_port\":\"8001\"}");
  CHECK(parse_manager_request("list").command == ManagerCommand::List);
  CHECK(parse_manager_request("ping\n").command == ManagerCommand::Ping);
  CHECK(parse_manager_request("reset").command == ManagerCommand::Reset);
  CHECK(parse_manager_request("add").json.empty());
  // Case matters; a longer word is another command; libev's servers' "stat" reports, empty and
  // too long datagrams get no reply.
  for (const std::string& d :
       std::vector<std::string>{"PING", "pings", "stat: {\"8001\": 5}", "", " ", "{\"a\":1}",
                                std::string("ping\0x", 6)}) {
    INFO(d);
    CHECK(parse_manager_request(d).command ==
          (d.size() == 6 ? ManagerCommand::Ping : ManagerCommand::Unknown));
  }
  const std::string big = "ping" + std::string(kMaxManagerRequest, ' ');
  CHECK(parse_manager_request(big).command == ManagerCommand::Unknown);
  CHECK(parse_manager_request(big.substr(0, kMaxManagerRequest)).command == ManagerCommand::Ping);
}

TEST_CASE("manager: list and stat replies in libev's text", "[relay]") {
  CHECK(manager_list_reply({}) == "[\n]");
  CHECK(manager_list_reply({{8001, "a\"b", "aes-256-gcm"}, {8002, "c", "none"}}) ==
        "[\n\t{\"server_port\":\"8001\",\"password\":\"a\\\"b\",\"method\":\"aes-256-gcm\"},"
        "\n\t{\"server_port\":\"8002\",\"password\":\"c\",\"method\":\"none\"}\n]");
  CHECK(manager_list_reply({{1, "\xff", "m"}}).find("\xff") == std::string::npos);
  CHECK(manager_stat_reply({}) == "stat: {}");
  CHECK(manager_stat_reply({{8001, 11370}, {8002, 0}}) == "stat: {\"8001\":11370,\"8002\":0}");
}

TEST_CASE("manager: add's fields", "[relay]") {
  const Config running = finalized(
      Role::Manager,
      R"({"manager_address": "127.0.0.1:6001", "method": "aes-128-gcm", "no_delay": true})");
  CHECK(running.listeners.empty());
  CHECK(running.inbounds.empty());
  CHECK(running.count_ports);
  CHECK(specs_of(running).inbounds.empty());

  ServerSpec s = manager_port_from_json(
      running, nlohmann::json::parse(R"({"server_port": "8001", "password": "pw"})"));
  CHECK(s.port == 8001);
  CHECK(s.method == "aes-128-gcm");
  CHECK(s.key.size() == 16);
  CHECK_FALSE(s.mode.has_value());
  s = manager_port_from_json(running, nlohmann::json::parse(R"({"server_port": 8002,
      "password": "pw", "method": "chacha20-ietf-poly1305", "mode": "tcp_only",
      "fast_open": false, "no_delay": true, "plugin": "", "plugin_opts": ""})"));
  CHECK(s.port == 8002);
  CHECK(s.key.size() == 32);
  CHECK(s.mode == Mode::TcpOnly);
  s = manager_port_from_json(running,
                             nlohmann::json::parse(
                                 R"({"server_port": 8003, "method": "2022-blake3-aes-128-gcm",
              "password": "AAAAAAAAAAAAAAAAAAAAAA==",
              "users": [{"name": "alice", "password": "AQEBAQEBAQEBAQEBAQEBAQ=="}]})"));
  REQUIRE(s.users.size() == 1);
  CHECK(s.users[0].name == "alice");

  CHECK(add_error(running, R"({"password": "x"})") == "server_port: missing");
  CHECK(add_error(running, R"({"server_port": 8001})") == "password: missing");
  CHECK(add_error(running, R"({"server_port": 0, "password": "x"})").rfind("server_port:", 0) == 0);
  CHECK(add_error(running, R"({"server_port": 1, "password": "x", "method": "rot13"})")
            .rfind("add.method: unknown method", 0) == 0);
  CHECK(add_error(running, R"({"server_port": 1, "password": "x", "fast_open": true})")
            .rfind("fast_open: is the process's", 0) == 0);
  CHECK(add_error(running, R"({"server_port": 1, "password": "x", "no_delay": false})")
            .rfind("no_delay: is the process's", 0) == 0);
  // libev's plugin fields: the running process starts the plugin (relay/plugin.h).
  s = manager_port_from_json(running, nlohmann::json::parse(R"({"server_port": 8004,
      "password": "pw", "plugin": "obfs-server", "plugin_opts": "obfs=http"})"));
  CHECK(s.plugin.name == "obfs-server");
  CHECK(s.plugin.opts == "obfs=http");
  CHECK(add_error(running, R"({"server_port": 1, "password": "x", "acl": "f"})") ==
        "acl: not supported by shadowsocks-uv's ss-manager");
  CHECK(add_error(running, "[1]") == "add: must be a JSON object");
}

TEST_CASE("manager: its config", "[relay]") {
  // Ports in the config are served at start, as by ss-server.
  const Config c = finalized(Role::Manager,
                             R"({"manager_address": "/tmp/m.sock", "method": "aes-128-gcm",
          "port_password": {"8001": "a", "8002": "b"}})");
  CHECK(c.manager_address == "/tmp/m.sock");
  CHECK(c.listeners.size() == 2);
  auto error = [](Role role, const std::string& text) {
    try {
      std::ostringstream warn;
      Config cfg = parse_config_json(role, text, warn);
      finalize_config(cfg);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error(Role::Manager, R"({"method": "aes-128-gcm"})").rfind("manager_address: missing", 0) ==
        0);
  CHECK(error(Role::Manager, R"({"manager_address": "127.0.0.1:1", "method": "rot13"})")
            .rfind("method: unknown method", 0) == 0);
  // ss-server reports to no manager: the key stays refused there.
  CHECK(error(Role::Server, R"({"manager_address": "127.0.0.1:1", "server_port": 1,
                                "password": "x"})")
            .rfind("manager_address: not supported by shadowsocks-uv: ", 0) == 0);
  CHECK(std::string(program_name(Role::Manager)) == "ss-manager");
}

}  // namespace
}  // namespace ss
