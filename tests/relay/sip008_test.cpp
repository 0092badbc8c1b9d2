// SIP008 documents: the specification's example, the checks every server goes through (the same
// as a "servers" entry's), custom fields ignored, and what is refused, each with a message that
// names the field.

#include "relay/sip008.h"

#include <catch2/catch.hpp>
#include <sstream>
#include <string>

#include "relay/online_config.h"

namespace ss {
namespace {

std::string refused(const std::string& text) {
  std::string error;
  const std::optional<Sip008Document> d = parse_sip008(text, Role::Local, &error);
  CHECK_FALSE(d.has_value());
  CHECK(error.find('\n') == std::string::npos);
  return error;
}

// The example document of SIP008 (two servers, one with a plugin, data usage fields), with a
// real plugin in place of its "xxx" placeholders.
const char* kExample = R"({
  "version": 1,
  "servers": [
    {
      "id": "27b8a625-4f4b-4428-9f0f-8a2317db7c79",
      "remarks": "Name of the server",
      "server": "example.com",
      "server_port": 8388,
      "password": "example",
      "method": "chacha20-ietf-poly1305",
      "plugin": "obfs-local",
      "plugin_opts": "obfs=http;obfs-host=www.example.com"
    },
    {
      "id": "7842c068-c667-41f2-8f7d-04feece3cb67",
      "remarks": "Name of the server",
      "server": "example.com",
      "server_port": 8388,
      "password": "example",
      "method": "chacha20-ietf-poly1305",
      "plugin": "",
      "plugin_opts": ""
    }
  ],
  "bytes_used": 274877906944,
  "bytes_remaining": 824633720832
})";

TEST_CASE("sip008: the specification's example", "[relay]") {
  std::string error;
  const std::optional<Sip008Document> d = parse_sip008(kExample, Role::Local, &error);
  INFO(error);
  REQUIRE(d.has_value());
  REQUIRE(d->servers.size() == 2);
  const ServerSpec& s = d->servers[0];
  CHECK(s.host == "example.com");
  CHECK(s.port == 8388);
  CHECK(s.method == "chacha20-ietf-poly1305");
  CHECK(s.password == "example");
  CHECK(s.tag == "Name of the server");
  CHECK(s.plugin.name == "obfs-local");
  CHECK(s.plugin.opts == "obfs=http;obfs-host=www.example.com");
  CHECK(s.source == "online_config");
  CHECK(s.key.size() == 32);  // finalized: the key derived from the password
  CHECK(d->servers[1].plugin.empty());
  CHECK(d->bytes_used == 274877906944ULL);
  CHECK(d->bytes_remaining == 824633720832ULL);
  CHECK(same_server(d->servers[0], d->servers[0]));
  CHECK_FALSE(same_server(d->servers[0], d->servers[1]));  // the plugin differs
  CHECK(describe_server(d->servers[0]) ==
        "example.com:8388 (chacha20-ietf-poly1305, plugin obfs-local, \"Name of the server\")");
  CHECK(describe_server(d->servers[0]).find("example\"") == std::string::npos);
}

TEST_CASE("sip008: 2022 servers, IPv6 hosts, custom fields ignored", "[relay]") {
  const std::string doc = R"({"version": 1, "custom": {"nested": [1, 2]}, "servers": [
    {"server": "::1", "server_port": 443, "method": "2022-blake3-aes-128-gcm",
     "password": "AAAAAAAAAAAAAAAAAAAAAA==", "quota_note": "custom", "id": "x"}]})";
  std::string error;
  const std::optional<Sip008Document> d = parse_sip008(doc, Role::Local, &error);
  INFO(error);
  REQUIRE(d.has_value());
  REQUIRE(d->servers.size() == 1);
  CHECK(d->servers[0].method_kind == MethodKind::Aead2022);
  CHECK(d->servers[0].psk_keys.size() == 1);
  CHECK(describe_server(d->servers[0]) == "[::1]:443 (2022-blake3-aes-128-gcm)");
  CHECK_FALSE(d->bytes_used.has_value());
}

TEST_CASE("sip008: documents refused, with the field at fault", "[relay]") {
  CHECK(refused("") == "not valid JSON");
  CHECK(refused("{\"version\": 1, \"servers\": [") == "not valid JSON");
  CHECK(refused("[]") == "must be a JSON object");
  CHECK(refused(R"({"servers": []})").rfind("version:", 0) == 0);
  CHECK(refused(R"({"version": 2, "servers": []})").rfind("version:", 0) == 0);
  CHECK(refused(R"({"version": 1})").rfind("servers:", 0) == 0);
  CHECK(refused(R"({"version": 1, "servers": []})").rfind("servers: empty", 0) == 0);
  CHECK(refused(R"({"version": 1, "servers": [1]})") == "servers[0]: must be an object");
  const std::string base = R"("server": "192.0.2.1", "server_port": 8388, "password": "p")";
  CHECK(refused(R"({"version": 1, "servers": [{)" + base + R"(}]})") ==
        "servers[0].method: missing");
  CHECK(refused(R"({"version": 1, "servers": [{)" + base + R"(, "method": "rc4-md5"}]})")
            .rfind("servers[0].method: unknown method \"rc4-md5\"", 0) == 0);
  CHECK(refused(R"({"version": 1, "servers": [{"server": "192.0.2.1", "server_port": 0,
                   "password": "p", "method": "aes-128-gcm"}]})")
            .rfind("servers[0].server_port:", 0) == 0);
  CHECK(refused(R"({"version": 1, "servers": [{"server": "", "server_port": 1,
                   "password": "p", "method": "aes-128-gcm"}]})")
            .rfind("servers[0].server:", 0) == 0);
  // A 2022 key of the wrong size.
  CHECK(refused(R"({"version": 1, "servers": [{"server": "192.0.2.1", "server_port": 1,
                   "password": "AAAA", "method": "2022-blake3-aes-256-gcm"}]})")
            .rfind("servers[0].password:", 0) == 0);
  CHECK(refused(R"({"version": 1, "bytes_used": -1, "servers": [{)" + base +
                R"(, "method": "aes-128-gcm"}]})") == "bytes_used: must be a non-negative integer");
  // The password never appears in a message.
  CHECK(refused(R"({"version": 1, "servers": [{"server": "192.0.2.1", "server_port": 1,
                   "password": "secret-pw", "method": "nope"}]})")
            .find("secret-pw") == std::string::npos);
  CHECK(refused(std::string(kMaxSip008Size + 1, ' ')).find("larger than") != std::string::npos);
}

TEST_CASE("sip008: the URL in logs keeps only its scheme and host", "[relay]") {
  CHECK(url_for_log("https://example.com/sub/0123secret.json") == "https://example.com/...");
  CHECK(url_for_log("https://user:pw@example.com:8443?token=x") == "https://example.com:8443/...");
  CHECK(url_for_log("https://example.com") == "https://example.com");
  CHECK(url_for_log("nonsense") == "(URL)");
}

// A client config from JSON, finalized; the ConfigError's message if it is refused.
std::string config_error(Role role, const std::string& json) {
  std::ostringstream warn;
  try {
    Config c = parse_config_json(role, json, warn);
    finalize_config(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("online_config: keys, defaults, and what is refused", "[relay]") {
  std::ostringstream warn;
  Config c = parse_config_json(
      Role::Local, R"({"local_port": 1080, "online_config": {"config_url": "https://h/x.json"}})",
      warn);
  finalize_config(c);
  REQUIRE(c.online_config.has_value());
  CHECK(c.online_config->url == "https://h/x.json");
  CHECK(c.online_config->update_interval_s == 3600);  // rust's default
  CHECK(c.online_config->ca_file.empty());            // the system store
  CHECK(c.servers.empty());  // no server configured: every one comes from the URL
  CHECK(warn.str().empty());

  c = parse_config_json(Role::Tunnel, R"({"local_port": 1, "tunnel_address": "192.0.2.1:53",
      "server": "192.0.2.2", "server_port": 8388, "password": "p",
      "online_config": {"config_url": "HTTPS://h/x", "update_interval": 60, "ca_file": "/ca.pem"}})",
                        warn);
  finalize_config(c);
  CHECK(c.online_config->update_interval_s == 60);
  CHECK(c.online_config->ca_file == "/ca.pem");
  CHECK(c.servers.size() == 1);  // the configured server stays beside the fetched ones

  const std::string http = config_error(
      Role::Local, R"({"local_port": 1, "online_config": {"config_url": "http://h/secret"}})");
  CHECK(http.rfind("online_config.config_url: must be an https:// URL", 0) == 0);
  CHECK(http.find("secret") == std::string::npos);  // the URL's secret is not repeated
  CHECK(config_error(Role::Local, R"({"local_port": 1, "online_config": {}})") ==
        "online_config.config_url: missing");
  CHECK(config_error(Role::Local,
                     R"({"local_port": 1, "online_config": {"config_url": "https://h/",
                         "update_interval": 0}})")
            .rfind("online_config.update_interval:", 0) == 0);
  CHECK(config_error(Role::Local,
                     R"({"local_port": 1, "online_config": {"config_url": "https://h/",
                         "allowed_plugins": []}})") ==
        "online_config.allowed_plugins: unknown online_config key");
  CHECK(config_error(Role::Local, R"({"local_port": 1, "online_config": "https://h/"})") ==
        "online_config: must be an object");
  CHECK(config_error(Role::Server, R"({"server_port": 1, "password": "p",
      "online_config": {"config_url": "https://h/"}})")
            .rfind("online_config:", 0) == 0);
}

}  // namespace
}  // namespace ss
