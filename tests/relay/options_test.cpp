// The options table: every row's flag and JSON key parse for the binaries that take it, -h lists
// exactly the table's rows for the binary, and refused or ignored keys are named.

#include "relay/options.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ss {
namespace {

using nlohmann::json;

constexpr Role kRoles[] = {Role::Local, Role::Server, Role::Tunnel, Role::Redir};

// A valid value for each flag value name in the table.
const std::map<std::string, std::string>& samples() {
  static const std::map<std::string, std::string> m = {
      {"HOST", "127.0.0.1"},
      {"PORT", "8388"},
      {"ADDR", "127.0.0.1"},
      {"PASSWORD", "a password"},
      {"BASE64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
      {"METHOD", "aes-256-gcm"},
      {"TIMEOUT", "30"},
      {"SECONDS", "30"},
      {"N", "4"},
      {"HOST:PORT", "192.0.2.1:53"},
      {"ADDRS", "192.0.2.1,192.0.2.2:5353"},
      {"USER", "nobody"},
      {"PIDFILE", "/tmp/ss-options-test.pid"},
      {"NOFILE", "4096"},
      {"PATH", "/tmp/ss-options-test.log"},
      {"FILE", "/dev/null"},  // --acl: an empty ACL
      {"DIR", "/tmp/ss-options-test-state"},
      {"PROGRAM", "obfs-local"},
      {"OPTIONS", "obfs=http"},
      {"MARK", "1"},
      {"NAME", "tun0"},
      {"CIDR", "10.255.0.1/24"},
      {"URL", "redis://127.0.0.1:6379/0"},
      {"PROTO", "dns"},
      {"IP[:PORT]", "127.0.0.1"},
      {"HOST[:PORT]", "dns.example:53"},
  };
  return m;
}

// A valid JSON value for each key that has no flag.
const std::map<std::string, std::string>& key_samples() {
  static const std::map<std::string, std::string> m = {
      {"mode", R"("tcp_and_udp")"},
      {"api_token", R"("0123456789abcdef0123")"},
      {"use_syslog", "true"},
      {"socks5_auth_config_path", R"("/tmp/users.json")"},
      {"users", R"([{"name": "alice", "password": "AAECAwQFBgcICQoLDA0ODw=="}])"},
      {"locals", R"([{"protocol": "socks", "local_port": 1080}])"},
      {"port_password", R"({"8001": "pw1", "8002": "pw2"})"},
      {"servers", R"([{"server": "127.0.0.1", "server_port": 8388, "password": "x"}])"},
      {"balancer", R"({"mode": "weighted", "check_interval": 5})"},
      {"plugin_args", R"(["-v"])"},
      {"plugin_mode", R"("tcp_only")"},
      {"nameserver", R"("192.0.2.1,192.0.2.2:5353")"},
      {"online_config", R"({"config_url": "https://127.0.0.1/x.json", "update_interval": 60})"},
  };
  return m;
}

std::optional<Config> load(Role role, const std::vector<std::string>& args) {
  std::vector<const char*> argv{"ss-test"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out, warn;
  return load_config(role, static_cast<int>(argv.size()), argv.data(), out, warn);
}

// Flags that make a complete configuration for `role` (finalize_config passes).
std::vector<std::string> base_args(Role role) {
  std::vector<std::string> a = {"-s", "127.0.0.1", "-p", "8388", "-k", "pw"};
  if (role != Role::Server) a.insert(a.end(), {"-l", "1080"});
  if (role == Role::Tunnel) a.insert(a.end(), {"-L", "192.0.2.1:53"});
  return a;
}

std::string flag_text(const Option& o) {
  const std::string n(o.flag_name());
  return (n.size() == 1 ? "-" : "--") + n;
}

TEST_CASE("options: every row's flag parses for each binary that takes it", "[relay]") {
  for (Role role : kRoles) {
    for (const Option& o : option_table()) {
      if (o.flag.empty() || !o.for_role(role) || o.apply == nullptr) continue;
      std::vector<std::string> args = base_args(role);
      args.push_back(flag_text(o));
      if (o.arg == Option::Arg::Text || o.arg == Option::Arg::List) {
        REQUIRE(samples().count(std::string(o.value)) == 1);
        args.push_back(samples().at(std::string(o.value)));
      }
      // Flags that only make sense as a pair (tun mode's device name and address).
      if (flag_text(o) == "--tun") args.insert(args.end(), {"--tun-address", "10.255.0.1/24"});
      if (flag_text(o) == "--tun-address") args.insert(args.end(), {"--tun", "tun0"});
      if (flag_text(o) == "--tun-setup") {
        args.insert(args.end(),
                    {"--tun", "tun0", "--tun-address", "10.255.0.1/24", "--outbound-fwmark", "1"});
      }
      // A DNS local (--protocol dns) needs its local resolver, and the resolver flags a DNS local.
      if (flag_text(o) == "--protocol" || flag_text(o) == "--remote-dns-addr") {
        args.insert(args.end(), {"--local-dns-addr", "127.0.0.1"});
      }
      if (flag_text(o) == "--remote-dns-addr") args.insert(args.end(), {"--protocol", "dns"});
      if (flag_text(o) == "--local-dns-addr") args.insert(args.end(), {"--protocol", "dns"});
      // The management API needs its token.
      if (flag_text(o) == "--api-address") {
        const std::string token = (std::filesystem::temp_directory_path() / "ss-options-api-token");
        std::ofstream(token) << "0123456789abcdef0123\n";
        args.insert(args.end(), {"--api-token-file", token, "--api-allow-remote"});
      }
      // The users (and their passwords) come from Redis: no -k with --users-url.
      if (flag_text(o) == "--users-url") {
        auto k = std::find(args.begin(), args.end(), "-k");
        if (k != args.end()) args.erase(k, k + 2);
      }
      INFO(program_name(role) << " " << flag_text(o));
      std::optional<Config> cfg;
      CHECK_NOTHROW(cfg = load(role, args));
      CHECK(cfg.has_value());
    }
  }
}

TEST_CASE("options: every implemented key parses, refused keys are refused by name", "[relay]") {
  for (Role role : kRoles) {
    for (const Option& o : option_table()) {
      if (o.key.empty()) continue;
      const std::string key(o.key);
      INFO(program_name(role) << " " << key);
      std::string value;
      if (key_samples().count(key) != 0) {
        value = key_samples().at(key);
      } else if (o.arg == Option::Arg::None) {
        value = "true";
      } else if (samples().count(std::string(o.value)) != 0) {
        value = json(samples().at(std::string(o.value))).dump();
      } else {
        value = "1";
      }
      if (key == "server" && o.arg == Option::Arg::List) value = R"(["127.0.0.1"])";
      const std::string text = "{\"" + key + "\": " + value + "}";
      std::ostringstream warn;
      if (key == "manager_address" && role != Role::Manager) {
        // ss-manager's own socket: the other programs report to no manager (refused there).
        CHECK_THROWS_WITH(parse_config_json(role, text, warn),
                          Catch::StartsWith(key + ": not supported by shadowsocks-uv: "));
      } else if (o.apply != nullptr) {
        CHECK_NOTHROW(parse_config_json(role, text, warn));
        CHECK(warn.str().empty());
      } else if (o.refused != nullptr) {
        try {
          parse_config_json(role, text, warn);
          FAIL("not refused");
        } catch (const ConfigError& e) {
          CHECK_THAT(e.what(),
                     Catch::StartsWith(key + ": not supported by shadowsocks-uv: " + o.refused));
        }
      } else {
        CHECK_NOTHROW(parse_config_json(role, text, warn));
        CHECK(warn.str() == "config: ignoring key \"" + key + "\" (not used by shadowsocks-uv)\n");
      }
    }
  }
}

TEST_CASE("options: a refused flag names itself and the reason", "[relay]") {
  for (Role role : kRoles) {
    for (const Option& o : option_table()) {
      if (o.flag.empty() || !o.for_role(role) || o.refused == nullptr) continue;
      std::vector<std::string> args = base_args(role);
      args.push_back(flag_text(o));
      INFO(program_name(role) << " " << flag_text(o));
      try {
        load(role, args);
        FAIL("not refused");
      } catch (const ConfigError& e) {
        CHECK(std::string(e.what()) == flag_text(o) + ": " + o.refused);
      }
    }
  }
}

TEST_CASE("options: -h lists exactly the table's flags and keys for the binary", "[relay]") {
  for (Role role : kRoles) {
    std::ostringstream out, warn;
    const char* argv[] = {"ss-test", "-h"};
    REQUIRE_FALSE(load_config(role, 2, argv, out, warn));
    const std::string help = out.str();
    const size_t keys_at = help.find("Config file keys");
    REQUIRE(keys_at != std::string::npos);

    std::set<std::string> help_flags, table_flags, help_keys, table_keys;
    std::istringstream options(help.substr(0, keys_at));
    const std::regex flag_line(R"(^ {2,6}(-\S.*?)(?: {2,}|$))");
    for (std::string line; std::getline(options, line);) {
      std::smatch m;
      if (!std::regex_search(line, m, flag_line)) continue;
      std::istringstream parts(m[1].str());
      for (std::string part; std::getline(parts, part, ',');) {
        part.erase(0, part.find_first_not_of(' '));
        help_flags.insert(part.substr(0, part.find(' ')));
      }
    }
    std::istringstream keys(help.substr(keys_at));
    std::string line;
    std::getline(keys, line);
    while (std::getline(keys, line) && !line.empty()) {
      help_keys.insert(line.substr(2, line.find(' ', 2) - 2));
    }
    for (const Option& o : option_table()) {
      if (!o.for_role(role)) continue;
      if (!o.flag.empty()) {
        const std::string f(o.flag);
        const size_t comma = f.find(',');
        if (comma != std::string::npos) table_flags.insert("-" + f.substr(0, comma));
        table_flags.insert(flag_text(o));
      }
      if (!o.key.empty() && !o.key_help.empty()) table_keys.insert(std::string(o.key));
    }
    INFO(program_name(role));
    CHECK(help_flags == table_flags);
    CHECK(help_keys == table_keys);
  }
}

TEST_CASE("options: rows sharing a key or a flag share its setter", "[relay]") {
  const auto table = option_table();
  for (size_t i = 0; i < table.size(); ++i) {
    for (size_t j = i + 1; j < table.size(); ++j) {
      const Option& a = table[i];
      const Option& b = table[j];
      INFO(a.key << " " << a.flag);
      if (!a.key.empty() && a.key == b.key) CHECK(a.apply == b.apply);
      // One flag, two rows: for different binaries only.
      if (!a.flag.empty() && a.flag == b.flag) CHECK((a.roles & b.roles) == 0);
    }
  }
}

}  // namespace
}  // namespace ss

namespace ss {
namespace {

TEST_CASE("options: the defaults -h states are the config's", "[relay]") {
  const Config defaults;
  auto help_of = [](std::string_view key) {
    for (const Option& o : option_table()) {
      if (o.key == key) return std::string(o.help) + " | " + std::string(o.key_help);
    }
    return std::string();
  };
  CHECK_THAT(help_of("timeout"),
             Catch::Contains("(default " + std::to_string(defaults.timeout) + ")"));
  CHECK_THAT(help_of("udp_timeout"),
             Catch::Contains("(default " + std::to_string(defaults.udp_timeout) + ")"));
  CHECK_THAT(help_of("udp_max_associations"),
             Catch::Contains("(default " + std::to_string(defaults.udp_max_associations) + ")"));
  std::ostringstream warn;
  CHECK_THAT(help_of("method"), Catch::Contains(parse_config_json(Role::Local, "{}", warn).method));
}

}  // namespace
}  // namespace ss
