// Several servers as specs: ss:// URIs with -s, as arguments and as "servers" entries, rust's
// weight/disabled, plugins refused by name, --url printing what parses back, "balancer" keys.

#include <catch2/catch.hpp>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "relay/config.h"
#include "relay/sip002.h"

namespace ss {
namespace {

constexpr const char* kUri1 = "ss://YWVzLTEyOC1nY206dGVzdA@192.168.100.1:8888/#Example1";
// 2022-blake3-aes-128-gcm with a 16-byte key (bytes 0..15).
constexpr const char* kUri2022 =
    "ss://2022-blake3-aes-128-gcm:AAECAwQFBgcICQoLDA0ODw%3D%3D@[2001:db8::1]:443";

struct Loaded {
  std::optional<Config> cfg;
  std::string out;
};

Loaded load(Role role, std::vector<const char*> args) {
  args.insert(args.begin(), "ss-test");
  std::ostringstream out, warn;
  Loaded r;
  r.cfg = load_config(role, static_cast<int>(args.size()), args.data(), out, warn);
  r.out = out.str();
  return r;
}

std::string error_of(Role role, std::vector<const char*> args) {
  try {
    load(role, std::move(args));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("fleet: -s ss:// URIs are servers of their own, beside flat hosts", "[relay]") {
  Loaded r = load(Role::Local, {"-s", kUri1, "-s", kUri2022, "-l", "1080"});
  REQUIRE(r.cfg);
  REQUIRE(r.cfg->servers.size() == 2);
  CHECK(r.cfg->servers[0].host == "192.168.100.1");
  CHECK(r.cfg->servers[0].port == 8888);
  CHECK(r.cfg->servers[0].method == "aes-128-gcm");
  CHECK(r.cfg->servers[0].key.size() == 16);
  CHECK(r.cfg->servers[0].tag == "Example1");
  CHECK(r.cfg->servers[1].host == "2001:db8::1");
  CHECK(r.cfg->servers[1].method_kind == MethodKind::Aead2022);
  CHECK(r.cfg->servers[1].psk_keys.size() == 1);

  // Mixed with a flat host (which takes -p/-k/-m), and as a positional argument.
  r = load(Role::Tunnel,
           {"-s", "127.0.0.1", "-p", "8388", "-k", "pw", "-l", "1", "-L", "1.2.3.4:53", kUri1});
  REQUIRE(r.cfg);
  REQUIRE(r.cfg->servers.size() == 2);
  CHECK(r.cfg->servers[0].host == "127.0.0.1");
  CHECK(r.cfg->servers[1].host == "192.168.100.1");
}

TEST_CASE("fleet: --url prints URIs that parse back to the configured servers", "[relay]") {
  Loaded r = load(Role::Local, {"-s", "127.0.0.1", "-s", "::1", "-p", "8388", "-k", "p@ss:w/rd",
                                "-m", "chacha20-ietf-poly1305", "-l", "1080", kUri2022, "--url"});
  CHECK_FALSE(r.cfg);
  std::istringstream lines(r.out);
  std::vector<Sip002> got;
  for (std::string line; std::getline(lines, line);) {
    std::string error;
    std::optional<Sip002> u = parse_sip002(line, &error);
    INFO(line << ": " << error);
    REQUIRE(u);
    got.push_back(*u);
  }
  REQUIRE(got.size() == 3);
  CHECK(got[0].host == "127.0.0.1");
  CHECK(got[0].password == "p@ss:w/rd");
  CHECK(got[0].method == "chacha20-ietf-poly1305");
  CHECK(got[1].host == "::1");
  CHECK(got[2].method == "2022-blake3-aes-128-gcm");
  CHECK(got[2].password == "AAECAwQFBgcICQoLDA0ODw==");

  r = load(Role::Local, {"-s", kUri1, "-l", "1080", "--qr"});
  CHECK(r.out.find("\u2580") != std::string::npos);
  CHECK(r.out.find(kUri1) != std::string::npos);
  CHECK(error_of(Role::Local, {"-s", "h", "-p", "1", "--key", "AAECAwQFBgcICQoLDA0ODw==", "-m",
                               "aes-128-gcm", "-l", "1", "--url"})
            .find("--url") == 0);
}

TEST_CASE("fleet: servers entries: url, weight, disabled, and refusals", "[relay]") {
  std::ostringstream warn;
  Config cfg = parse_config_json(
      Role::Local,
      std::string(R"({"local_port": 1, "servers": [{"url": ")") + kUri1 + R"(", "weight": 3},
         {"server": "10.0.0.1", "server_port": 1, "method": "aes-256-gcm", "password": "x",
          "disabled": true},
         {"address": "10.0.0.2", "port": 2, "method": "aes-256-gcm", "password": "y",
          "remarks": "two"}]})",
      warn);
  finalize_config(cfg);
  REQUIRE(cfg.servers.size() == 2);
  CHECK(cfg.servers[0].weight == 3);
  CHECK(cfg.servers[0].host == "192.168.100.1");
  CHECK(cfg.servers[1].host == "10.0.0.2");
  CHECK(cfg.servers[1].tag == "two");

  auto refused = [](const std::string& json) {
    try {
      std::ostringstream w;
      Config c = parse_config_json(Role::Local, json, w);
      finalize_config(c);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(refused(R"({"local_port": 1, "servers": [{"server": "h", "server_port": 1, "password":
        "x", "plugin": "obfs-local", "plugin_mode": "tcp_and_udp"}]})")
            .find("servers[0].plugin_mode: only \"tcp_only\" is supported") == 0);
  CHECK(refused(R"({"local_port": 1, "servers": [{"url": "ss://junk"}]})")
            .find("servers[0].url: invalid ss:// URI") == 0);
  CHECK(refused(R"({"local_port": 1, "servers": [{"server": "h", "server_port": 1,
        "method": "aes-128-gcm", "password": "x", "weight": 0}]})")
            .find("servers[0].weight") == 0);
  CHECK(refused(R"({"local_port": 1, "servers": [{"server": "h", "server_port": 1,
        "password": "x", "disabled": true}]})") == "servers: every server is disabled");
  // A URI's method goes through the same checks as the flat keys.
  CHECK(error_of(Role::Local, {"-s", "ss://cmM0LW1kNTpwYXNzd2Q@1.2.3.4:8888", "-l", "1"})
            .find("server (ss:// URI 1).method") == 0);
  CHECK(error_of(Role::Server, {"-s", kUri1, "-p", "1", "-k", "x"}).find("server: an ss://") == 0);
}

TEST_CASE("fleet: balancer keys", "[relay]") {
  std::ostringstream warn;
  Config cfg = parse_config_json(Role::Local, R"({"balancer": {"mode": "weighted",
      "max_server_rtt": 2, "check_interval": 3, "check_best_interval": 1, "switch_margin": 0.5,
      "switch_rounds": 4, "min_switch_interval": 60, "connect_timeout": 2,
      "probe_target": "127.0.0.1:80"}})",
                                 warn);
  CHECK(cfg.balancer.mode == BalancerSpec::Pick::Weighted);
  CHECK(cfg.balancer.max_server_rtt_ms == 2000);
  CHECK(cfg.balancer.check_interval_ms == 3000);
  CHECK(cfg.balancer.check_best_interval_ms == 1000);
  CHECK(cfg.balancer.switch_margin == 0.5);
  CHECK(cfg.balancer.switch_rounds == 4);
  CHECK(cfg.balancer.min_switch_interval_ms == 60000);
  CHECK(cfg.balancer.connect_timeout_ms == 2000);
  REQUIRE(cfg.balancer.probe_target);
  CHECK(cfg.balancer.probe_target->port == 80);
  for (const char* bad : {R"({"balancer": {"mode": "random"}})", R"({"balancer": {"nope": 1}})",
                          R"({"balancer": {"check_interval": 0}})", R"({"balancer": 1})"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_config_json(Role::Local, bad, warn), ConfigError);
  }
}

}  // namespace
}  // namespace ss
