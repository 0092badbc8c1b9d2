// Config: JSON keys, flags, defaults per role, error messages (each names its key or flag).

#include "relay/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace ss {
namespace {

constexpr const char* kPassword = "Imakethis_LongPassPhraseFor_safety_2019_0928@_@!";
// EVP_BytesToKey(MD5) of kPassword, 32 bytes (protocol.md §6.1).
const std::vector<uint8_t> kPasswordKey = {
    0x4b, 0x01, 0xa2, 0xd7, 0x62, 0xfa, 0xda, 0x9e, 0xde, 0x4d, 0x10, 0x34, 0xa1, 0x3d, 0xc6, 0x9c,
    0x3b, 0x52, 0x8b, 0x73, 0x82, 0x36, 0xb9, 0x9c, 0xd3, 0xa4, 0x72, 0xd2, 0x93, 0x35, 0x80, 0xd6};
// Bytes 0..31.
constexpr const char* kKey32 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

Config parse_json(Role role, const std::string& text, std::string* warnings = nullptr) {
  std::ostringstream warn;
  Config cfg = parse_config_json(role, text, warn);
  if (warnings) *warnings = warn.str();
  return cfg;
}

// The ConfigError message thrown by f, or "" if none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string json_error(Role role, const std::string& text) {
  return error_of([&] { parse_json(role, text); });
}

std::string finalize_error(Role role, const std::string& text) {
  return error_of([&] {
    Config cfg = parse_json(role, text);
    finalize_config(cfg);
  });
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}

struct LoadResult {
  std::optional<Config> cfg;
  std::string out;
  std::string warn;
};

LoadResult load(Role role, std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"ss-test"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::ostringstream out, warn;
  LoadResult r;
  r.cfg = load_config(role, static_cast<int>(argv.size()), argv.data(), out, warn);
  r.out = out.str();
  r.warn = warn.str();
  return r;
}

std::string load_error(Role role, std::initializer_list<const char*> args) {
  return error_of([&] { load(role, args); });
}

// A temporary JSON file, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char name[] = "/tmp/ss-config-test-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path_ = name;
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const char* path() const { return path_.c_str(); }

 private:
  std::string path_;
};

const std::string kLocalJson = R"({
  "server": "203.0.113.5",
  "server_port": 8388,
  "local_port": 1080,
  "password": "Imakethis_LongPassPhraseFor_safety_2019_0928@_@!"
})";

}  // namespace

// --- JSON keys ---

TEST_CASE("config: every implemented key", "[relay]") {
  std::string warnings;
  Config cfg = parse_json(Role::Local, R"({
    "server": ["a.example", "198.51.100.1"],
    "server_port": 8388,
    "local_address": "0.0.0.0",
    "local_port": "1080",
    "password": "pw",
    "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    "method": "aes-128-gcm",
    "timeout": 300,
    "udp_timeout": 30,
    "udp_max_associations": 4096,
    "mode": "tcp_and_udp",
    "no_delay": true,
    "ipv6_first": true,
    "reuse_port": true,
    "fast_open": true,
    "tunnel_address": "[::1]:53"
  })",
                          &warnings);
  CHECK(warnings.empty());
  CHECK(cfg.role == Role::Local);
  CHECK(cfg.server == std::vector<std::string>{"a.example", "198.51.100.1"});
  CHECK(cfg.server_port == 8388);
  CHECK(cfg.local_address == "0.0.0.0");
  CHECK(cfg.local_port == 1080);
  CHECK(cfg.password == "pw");
  CHECK(cfg.key_b64 == kKey32);
  CHECK(cfg.method == "aes-128-gcm");
  CHECK(cfg.timeout == 300);
  CHECK(cfg.udp_timeout == 30);
  CHECK(cfg.udp_max_associations == 4096);
  CHECK(cfg.mode == Mode::TcpAndUdp);
  CHECK(cfg.no_delay);
  CHECK(cfg.ipv6_first);
  CHECK(cfg.reuse_port);
  CHECK(cfg.fast_open);
  REQUIRE(cfg.tunnel_target);
  CHECK(cfg.tunnel_target->to_string() == "[::1]:53");
}

TEST_CASE("config: defaults per role", "[relay]") {
  Config local = parse_json(Role::Local, "{}");
  CHECK(local.role == Role::Local);
  CHECK(local.local_address == "127.0.0.1");
  CHECK(local.server.empty());
  CHECK(local.method == "chacha20-ietf-poly1305");
  CHECK(local.timeout == 60);
  CHECK(local.udp_timeout == 60);
  CHECK(local.udp_max_associations == 1024);
  CHECK(local.mode == Mode::TcpOnly);
  CHECK_FALSE(local.no_delay);
  CHECK_FALSE(local.fast_open);
  CHECK_FALSE(local.tunnel_target);

  Config tunnel = parse_json(Role::Tunnel, "{}");
  CHECK(tunnel.role == Role::Tunnel);
  CHECK(tunnel.local_address == "127.0.0.1");

  Config server = parse_json(Role::Server, "{}");
  CHECK(server.role == Role::Server);
  CHECK(server.server == std::vector<std::string>{"0.0.0.0"});
  CHECK(server.local_address.empty());
}

TEST_CASE("config: modes", "[relay]") {
  CHECK(parse_json(Role::Local, R"({"mode": "tcp_only"})").mode == Mode::TcpOnly);
  CHECK(parse_json(Role::Local, R"({"mode": "tcp_and_udp"})").mode == Mode::TcpAndUdp);
  CHECK(parse_json(Role::Local, R"({"mode": "udp_only"})").mode == Mode::UdpOnly);
  const std::string e = json_error(Role::Local, R"({"mode": "both"})");
  CHECK(starts_with(e, "mode: "));
  CHECK_THAT(e, Catch::Contains("\"both\""));
}

TEST_CASE("config: ports as integers or numeric strings", "[relay]") {
  CHECK(parse_json(Role::Local, R"({"server_port": 1})").server_port == 1);
  CHECK(parse_json(Role::Local, R"({"server_port": "65535"})").server_port == 65535);
  CHECK(parse_json(Role::Local, R"({"local_port": 1080})").local_port == 1080);
  CHECK(parse_json(Role::Local, R"({"local_port": "1081"})").local_port == 1081);

  CHECK(json_error(Role::Local, R"({"server_port": "abc"})") ==
        R"(server_port: must be an integer from 1 to 65535, got "abc")");
  CHECK(json_error(Role::Local, R"({"server_port": 0})") ==
        "server_port: must be an integer from 1 to 65535, got 0");
  CHECK(json_error(Role::Local, R"({"server_port": 65536})") ==
        "server_port: must be an integer from 1 to 65535, got 65536");
  CHECK(json_error(Role::Local, R"({"server_port": -1})") ==
        "server_port: must be an integer from 1 to 65535, got -1");
  for (const char* bad : {"8388.5", "true", "null", "[1]", "{}", "\"\"", "\" 80\"", "\"+80\"",
                          "\"99999999999999999999999\"", "18446744073709551615"}) {
    INFO(bad);
    CHECK(starts_with(json_error(Role::Local, std::string(R"({"local_port": )") + bad + "}"),
                      "local_port: must be an integer from 1 to 65535, got "));
  }
}

TEST_CASE("config: timeout", "[relay]") {
  CHECK(parse_json(Role::Local, R"({"timeout": 5})").timeout == 5);
  CHECK(parse_json(Role::Local, R"({"timeout": "600"})").timeout == 600);
  for (const char* bad : {"0", "-5", "\"0\"", "\"x\"", "1.5", "true"}) {
    INFO(bad);
    CHECK(starts_with(json_error(Role::Local, std::string(R"({"timeout": )") + bad + "}"),
                      "timeout: must be a positive number of seconds"));
  }
  CHECK(starts_with(json_error(Role::Local, R"({"timeout": 99999999999})"), "timeout: "));
}

TEST_CASE("config: metrics_address", "[relay]") {
  CHECK(parse_json(Role::Server, R"({"metrics_address": "127.0.0.1:9090"})").metrics_address ==
        "127.0.0.1:9090");
  CHECK(load(Role::Local, {"-s", "203.0.113.5", "-p", "8388", "-l", "1080", "-k", "pw",
                           "--metrics-address", "[::1]:9091"})
            .cfg->metrics_address == "[::1]:9091");
  for (const char* bad : {"\"127.0.0.1\"", "\"127.0.0.1:0\"", "\":9090\"", "9090"}) {
    INFO(bad);
    CHECK(starts_with(json_error(Role::Server, std::string(R"({"metrics_address": )") + bad + "}"),
                      "metrics_address: "));
  }
}

TEST_CASE("config: udp_timeout and udp_max_associations", "[relay]") {
  for (Role role : {Role::Local, Role::Server, Role::Tunnel}) {
    Config cfg = parse_json(role, R"({"udp_timeout": 300, "udp_max_associations": 1})");
    CHECK(cfg.udp_timeout == 300);
    CHECK(cfg.udp_max_associations == 1);
  }
  CHECK(parse_json(Role::Local, R"({"udp_timeout": "5"})").udp_timeout == 5);
  CHECK(parse_json(Role::Local, R"({"udp_max_associations": "100000"})").udp_max_associations ==
        100000);
  for (const char* bad : {"0", "-5", "\"0\"", "\"x\"", "1.5", "true", "null", "\"\""}) {
    INFO(bad);
    CHECK(starts_with(json_error(Role::Local, std::string(R"({"udp_timeout": )") + bad + "}"),
                      "udp_timeout: must be a positive number of seconds, got "));
  }
  CHECK(starts_with(json_error(Role::Local, R"({"udp_timeout": 99999999999})"),
                    "udp_timeout: must be at most "));
  CHECK(json_error(Role::Local, R"({"udp_max_associations": 0})") ==
        "udp_max_associations: must be a whole number from 1 to 10000000, got 0");
  for (const char* bad : {"-1", "\"0\"", "\"x\"", "\" 5\"", "2.5", "false", "[]", "10000001",
                          "18446744073709551615"}) {
    INFO(bad);
    CHECK(starts_with(
        json_error(Role::Server, std::string(R"({"udp_max_associations": )") + bad + "}"),
        "udp_max_associations: must be a whole number from 1 to 10000000, got "));
  }

  Config zero = parse_json(Role::Server, R"({"server_port": 1, "password": "p"})");
  zero.udp_timeout = 0;
  CHECK(error_of([&] { finalize_config(zero); }) ==
        "udp_timeout: must be a positive number of seconds");
  Config none = parse_json(Role::Server, R"({"server_port": 1, "password": "p"})");
  none.udp_max_associations = 0;
  CHECK(error_of([&] { finalize_config(none); }) == "udp_max_associations: must be at least 1");
}

TEST_CASE("config: type errors name the key", "[relay]") {
  const std::pair<const char*, const char*> cases[] = {
      {"server", "5"},          {"server", "[\"a\", 5]"}, {"server", "[]"},
      {"server", "\"\""},       {"local_address", "1"},   {"password", "123"},
      {"key", "false"},         {"method", "[]"},         {"mode", "1"},
      {"no_delay", "\"true\""}, {"ipv6_first", "1"},      {"reuse_port", "null"},
      {"fast_open", "\"yes\""}, {"tunnel_address", "53"},
  };
  for (const auto& [key, value] : cases) {
    const std::string text = std::string("{\"") + key + "\": " + value + "}";
    INFO(text);
    CHECK(starts_with(json_error(Role::Local, text), std::string(key) + ": "));
  }
}

TEST_CASE("config: password and key never appear in errors", "[relay]") {
  // A JSON syntax error inside the password string: nlohmann quotes what it last read.
  const std::string e = json_error(Role::Local, "{\"password\": \"hunter2\x01secret\"}");
  CHECK(starts_with(e, "config: invalid JSON at line 1: "));
  CHECK_THAT(e, !Catch::Contains("hunter2"));
  CHECK_THAT(e, !Catch::Contains("secret"));

  const std::string k = finalize_error(Role::Local,
                                       R"({"server": "h", "server_port": 1, "local_port": 2,
                                           "key": "s3cr3t!!"})");
  CHECK(k == "key: not valid base64");

  const std::string flag = load_error(Role::Local, {"--no-delay=hunter2"});
  CHECK_THAT(flag, !Catch::Contains("hunter2"));
  const std::string positional = load_error(Role::Local, {"-k", "hunter", "two"});
  CHECK_THAT(positional, !Catch::Contains("two"));
  CHECK_THAT(load_error(Role::Local, {"--password=hunter2"}), !Catch::Contains("hunter2"));
}

TEST_CASE("config: tunnel_address", "[relay]") {
  Config cfg = parse_json(Role::Tunnel, R"({"tunnel_address": "8.8.8.8:53"})");
  REQUIRE(cfg.tunnel_target);
  CHECK(cfg.tunnel_target->type == Address::Type::IPv4);
  CHECK(cfg.tunnel_target->port == 53);
  for (const char* bad : {"8.8.8.8", "8.8.8.8:0", "host:99999", "::1:53", ""}) {
    INFO(bad);
    CHECK(
        starts_with(json_error(Role::Tunnel, std::string(R"({"tunnel_address": ")") + bad + "\"}"),
                    "tunnel_address: "));
  }
}

TEST_CASE("config: unknown and harmless unsupported keys warn by name", "[relay]") {
  std::string warnings;
  Config cfg = parse_json(Role::Local, R"({"executable": "ss-server", "frobnicate": 1,
                                           "workdir": "/tmp", "server_port": 443})",
                          &warnings);
  CHECK(cfg.server_port == 443);
  CHECK_THAT(warnings, Catch::Contains("config: ignoring unknown key \"frobnicate\"\n"));
  CHECK_THAT(warnings,
             Catch::Contains("config: ignoring key \"executable\" (not used by shadowsocks-uv)\n"));
  CHECK_THAT(warnings, Catch::Contains("\"workdir\""));
  // One line per key.
  CHECK(std::count(warnings.begin(), warnings.end(), '\n') == 3);
}

TEST_CASE("config: keys that would change behaviour and are not implemented are refused",
          "[relay]") {
  for (const char* key :
       {"dns", "mtu", "mptcp", "manager_address", "protocol", "local_ipv4_address", "dscp"}) {
    INFO(key);
    const std::string e = json_error(Role::Server, std::string("{\"") + key + "\": \"x\"}");
    CHECK(starts_with(e, std::string(key) + ": not supported by shadowsocks-uv: "));
    CHECK(e.find('\n') == std::string::npos);
  }
}

TEST_CASE("config: nameserver takes c-ares's address list, and refuses anything else", "[relay]") {
  Config cfg = parse_json(Role::Server, R"({"nameserver": "127.0.0.1:5353,[::1]:53,8.8.8.8"})");
  CHECK(cfg.nameserver == "127.0.0.1:5353,[::1]:53,8.8.8.8");
  const std::string e = json_error(Role::Server, R"({"nameserver": "dns.example"})");
  CHECK(starts_with(e, "nameserver: "));
  CHECK_THAT(e, Catch::Contains("not a list of addresses"));
  CHECK(starts_with(json_error(Role::Server, R"({"nameserver": ""})"), "nameserver: "));
}

TEST_CASE("config: trailing commas are accepted, as by shadowsocks-libev", "[relay]") {
  Config cfg = parse_json(Role::Local, R"({
    "server": ["a.example", "b.example",],
    "server_port": 8388, // comment after a comma
    "local_port": 1080, /* and a block comment */
  })");
  CHECK(cfg.server == std::vector<std::string>{"a.example", "b.example"});
  CHECK(cfg.local_port == 1080);
  // Commas inside strings are data.
  CHECK(strip_trailing_commas(R"({"k": "a,}", "l": [1,],})") == R"({"k": "a,}", "l": [1 ] })");
  CHECK(strip_trailing_commas(R"({"k": "\",]"})") == R"({"k": "\",]"})");
  CHECK(strip_trailing_commas("[1, // x,\n]") == "[1  // x,\n]");
  CHECK(strip_trailing_commas("[1, /* ] */ ]") == "[1  /* ] */ ]");
  // Two commas in a row stay an error.
  CHECK(starts_with(json_error(Role::Local, R"({"server_port": 1,,})"), "config: invalid JSON"));
  CHECK(starts_with(json_error(Role::Local, R"([,])"), "config: invalid JSON"));
}

TEST_CASE("config: user, nofile and use_syslog", "[relay]") {
  Config cfg =
      parse_json(Role::Server, R"({"user": "nobody", "nofile": 51200, "use_syslog": true})");
  CHECK(cfg.run_as_user == "nobody");
  CHECK(cfg.nofile == 51200);
  CHECK(cfg.use_syslog);
  CHECK(starts_with(json_error(Role::Server, R"({"user": ""})"), "user: must not be empty"));
  CHECK(starts_with(json_error(Role::Server, R"({"user": 1})"), "user: must be a string"));
  CHECK(starts_with(json_error(Role::Server, R"({"nofile": 0})"), "nofile: "));
  CHECK(starts_with(json_error(Role::Server, R"({"nofile": "many"})"), "nofile: "));
  CHECK(starts_with(json_error(Role::Server, R"({"use_syslog": "yes"})"), "use_syslog: "));
}

TEST_CASE("config: invalid JSON", "[relay]") {
  const std::string e = json_error(Role::Local, "{\n  \"server\": \"a\",\n  \"server_port\": }\n");
  CHECK(starts_with(e, "config: invalid JSON at line 3: "));
  CHECK(starts_with(json_error(Role::Local, ""), "config: invalid JSON at line 1: "));
  CHECK(starts_with(json_error(Role::Local, "[1, 2]"), "config: must be a JSON object"));
  CHECK(starts_with(json_error(Role::Local, "\"x\""), "config: must be a JSON object"));
  // Comments are accepted, as by shadowsocks-libev.
  CHECK(parse_json(Role::Local, "{\n// c\n\"server_port\": 1 /* x */}").server_port == 1);
}

// Found by tests/fuzz/fuzz_config: nlohmann throws out_of_range (not parse_error) for a number
// literal beyond a double, which escaped parse_config_json.
TEST_CASE("config: numbers too large for a double are a ConfigError", "[relay]") {
  CHECK(json_error(Role::Local, R"({"timeout": 1e400})") ==
        "config: invalid JSON: a number is too large");
  CHECK(json_error(Role::Server, R"({"server_port": -1e400})") ==
        "config: invalid JSON: a number is too large");
  // The fuzzer's input, verbatim.
  static constexpr char kCrash[] =
      "{\"timeout\": 1.444444444444444444444444444444444444444444444E446, \"server\": [], "
      "\"m\0\0\0\7odeb: 1}";
  const std::string crash(kCrash, sizeof kCrash - 1);
  CHECK(json_error(Role::Local, crash) == "config: invalid JSON: a number is too large");
  // Still fine: large but finite, and huge integers (kept as doubles or rejected by range).
  CHECK(starts_with(json_error(Role::Local, R"({"timeout": 1e300})"), "timeout: "));
  CHECK(starts_with(json_error(Role::Local, R"({"timeout": 123456789012345678901234567890})"),
                    "timeout: "));
}

// A value nested a million levels deep used to overflow the stack: the error message dumped it
// with nlohmann's recursive dump(). Arrays and objects are now only named.
TEST_CASE("config: deeply nested values", "[relay]") {
  const size_t depth = 500'000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  CHECK(json_error(Role::Local, R"({"server_port": )" + deep + "}") ==
        "server_port: must be an integer from 1 to 65535, got an array");
  CHECK(json_error(Role::Local, R"({"mode": {"a": )" + deep + "}}") ==
        R"(mode: must be "tcp_only", "tcp_and_udp" or "udp_only", got an object)");
  std::string warnings;
  CHECK(parse_json(Role::Local, R"({"frobnicate": )" + deep + R"(, "server_port": 9})", &warnings)
            .server_port == 9);
  CHECK_THAT(warnings, Catch::Contains("\"frobnicate\""));
  CHECK(json_error(Role::Local, R"({"timeout": []})") ==
        "timeout: must be a positive number of seconds, got []");
  CHECK(json_error(Role::Local, R"({"timeout": {}})") ==
        "timeout: must be a positive number of seconds, got {}");
}

// --- finalize_config ---

TEST_CASE("finalize: password derives the key", "[relay]") {
  Config cfg = parse_json(Role::Local, kLocalJson);
  finalize_config(cfg);
  REQUIRE(cfg.cipher != nullptr);
  CHECK(cfg.cipher->name == "chacha20-ietf-poly1305");
  CHECK(cfg.key == kPasswordKey);

  Config aes128 = parse_json(Role::Local, kLocalJson);
  aes128.method = "aes-128-gcm";
  finalize_config(aes128);
  CHECK(aes128.key == std::vector<uint8_t>(kPasswordKey.begin(), kPasswordKey.begin() + 16));
}

TEST_CASE("finalize: base64 key is preferred over the password", "[relay]") {
  Config cfg = parse_json(Role::Local, kLocalJson);
  cfg.key_b64 = kKey32;
  cfg.method = "aes-256-gcm";
  finalize_config(cfg);
  std::vector<uint8_t> expected(32);
  for (size_t i = 0; i < 32; ++i) expected[i] = static_cast<uint8_t>(i);
  CHECK(cfg.key == expected);

  // Longer keys are truncated to the method's key length.
  Config short_cipher = parse_json(Role::Local, kLocalJson);
  short_cipher.key_b64 = kKey32;
  short_cipher.method = "aes-128-gcm";
  finalize_config(short_cipher);
  CHECK(short_cipher.key == std::vector<uint8_t>(expected.begin(), expected.begin() + 16));
}

TEST_CASE("finalize: errors name the key", "[relay]") {
  const std::string base = R"("server": "h", "server_port": 1, "local_port": 2, "password": "p")";
  CHECK(finalize_error(Role::Local, "{" + base + R"(, "method": "foo"})")
            .rfind(R"(method: unknown method "foo" (supported: )", 0) == 0);
  CHECK_THAT(finalize_error(Role::Local, "{" + base + R"(, "method": "rc4-md5"})"),
             Catch::Contains("aes-256-gcm"));
  CHECK(finalize_error(Role::Local, R"({"server": "h", "server_port": 1, "local_port": 2})") ==
        R"(password: missing (set "password" or "key"))");
  CHECK(starts_with(finalize_error(Role::Local, R"({"server_port": 1, "local_port": 2,
                                                   "password": "p"})"),
                    "server: missing"));
  CHECK(starts_with(finalize_error(Role::Local, R"({"server": "h", "local_port": 2,
                                                   "password": "p"})"),
                    "server_port: missing"));
  CHECK(starts_with(finalize_error(Role::Local, R"({"server": "h", "server_port": 1,
                                                   "password": "p"})"),
                    "local_port: missing"));
  CHECK(starts_with(finalize_error(Role::Tunnel, "{" + base + "}"), "tunnel_address: missing"));
  CHECK(starts_with(finalize_error(Role::Server, R"({"password": "p"})"), "server_port: missing"));
  CHECK(finalize_error(Role::Local, "{" + base + R"(, "key": "AAECAwQFBgc=",
                                                   "method": "aes-256-gcm"})") ==
        "key: decodes to 8 bytes, aes-256-gcm needs 32");
  CHECK(finalize_error(Role::Local, "{" + base + R"(, "key": "%%%%"})") == "key: not valid base64");
  CHECK(starts_with(finalize_error(Role::Local, R"({"server": "bad host", "server_port": 1,
                                                   "local_port": 2, "password": "p"})"),
                    "server: invalid host \"bad host\""));
  CHECK(starts_with(finalize_error(Role::Local, "{" + base + R"(, "local_address": "a b"})"),
                    "local_address: "));

  Config zero_timeout = parse_json(Role::Local, "{" + base + "}");
  zero_timeout.timeout = 0;
  CHECK(error_of([&] { finalize_config(zero_timeout); }) ==
        "timeout: must be a positive number of seconds");
}

TEST_CASE("finalize: server role needs only server_port and a credential", "[relay]") {
  Config cfg = parse_json(Role::Server, R"({"server_port": 8388, "password": "p"})");
  finalize_config(cfg);
  CHECK(cfg.server == std::vector<std::string>{"0.0.0.0"});
  CHECK(cfg.local_address.empty());
  CHECK(cfg.key.size() == 32);

  Config dual =
      parse_json(Role::Server, R"({"server": ["::", "0.0.0.0"], "server_port": 8388, "key": ")" +
                                   std::string(kKey32) + "\"}");
  finalize_config(dual);
  CHECK(dual.server.size() == 2);
}

// --- Command line ---

TEST_CASE("flags: ss-local", "[relay]") {
  auto r = load(Role::Local,
                {"-s",  "203.0.113.5", "-p",         "8388",         "-l",          "1080", "-b",
                 "::1", "-k",          kPassword,    "-m",           "aes-256-gcm", "-t",   "120",
                 "-u",  "-6",          "--no-delay", "--reuse-port", "--fast-open", "-v",   "-v"});
  REQUIRE(r.cfg);
  const Config& c = *r.cfg;
  CHECK(c.role == Role::Local);
  CHECK(c.server == std::vector<std::string>{"203.0.113.5"});
  CHECK(c.server_port == 8388);
  CHECK(c.local_port == 1080);
  CHECK(c.local_address == "::1");
  CHECK(c.password == kPassword);
  CHECK(c.method == "aes-256-gcm");
  CHECK(c.timeout == 120);
  CHECK(c.mode == Mode::TcpAndUdp);
  CHECK(c.ipv6_first);
  CHECK(c.no_delay);
  CHECK(c.reuse_port);
  CHECK(c.fast_open);
  CHECK(c.verbose == 2);
  REQUIRE(c.cipher);
  CHECK(c.key == kPasswordKey);
  CHECK(r.warn.empty());
}

TEST_CASE("flags: ss-tunnel -L and --key", "[relay]") {
  auto r = load(Role::Tunnel, {"-s", "h", "-p", "1", "-l", "5353", "--key", kKey32, "-L",
                               "[2001:db8::1]:53", "-U", "-vvv"});
  REQUIRE(r.cfg);
  REQUIRE(r.cfg->tunnel_target);
  CHECK(r.cfg->tunnel_target->to_string() == "[2001:db8::1]:53");
  CHECK(r.cfg->mode == Mode::UdpOnly);
  CHECK(r.cfg->key_b64 == kKey32);
  CHECK(r.cfg->key.size() == 32);
  CHECK(r.cfg->verbose == 3);
  CHECK(starts_with(
      load_error(Role::Tunnel, {"-s", "h", "-p", "1", "-l", "2", "-k", "p", "-L", "nowhere"}),
      "-L: "));
}

TEST_CASE("flags: ss-redir -T and tcp_tproxy", "[relay]") {
  auto redirect =
      load(Role::Redir, {"-s", "h", "-p", "1", "-l", "1080", "-b", "0.0.0.0", "-k", "p"});
  REQUIRE(redirect.cfg);
  CHECK(redirect.cfg->role == Role::Redir);
  CHECK_FALSE(redirect.cfg->tcp_tproxy);
  CHECK(redirect.cfg->local_address == "0.0.0.0");

  auto tproxy = load(Role::Redir, {"-s", "h", "-p", "1", "-l", "1080", "-k", "p", "-T"});
  REQUIRE(tproxy.cfg);
  CHECK(tproxy.cfg->tcp_tproxy);

  TempFile file(R"({"server": "h", "server_port": 1, "local_port": 2, "password": "p",
                    "tcp_tproxy": true})");
  auto from_file = load(Role::Redir, {"-c", file.path()});
  REQUIRE(from_file.cfg);
  CHECK(from_file.cfg->tcp_tproxy);
  CHECK(from_file.warn.empty());
  // libev reads the key in every binary and only ss-redir uses it: a shared file does not make
  // ss-local's listener transparent.
  auto local = load(Role::Local, {"-c", file.path()});
  REQUIRE(local.cfg);
  CHECK_FALSE(local.cfg->tcp_tproxy);
  CHECK(local.warn.empty());
  CHECK(starts_with(json_error(Role::Redir, R"({"tcp_tproxy": 1})"), "tcp_tproxy: "));

  CHECK_THAT(load_error(Role::Local, {"-T"}), Catch::Contains("-T"));
  CHECK_THAT(load_error(Role::Tunnel, {"-T"}), Catch::Contains("-T"));
  CHECK_THAT(load_error(Role::Server, {"-T"}), Catch::Contains("-T"));
}

TEST_CASE("flags: ss-redir takes UDP (-u, -U, mode) on its redir listener", "[relay]") {
  auto u = load(Role::Redir, {"-s", "h", "-p", "1", "-l", "2", "-k", "p", "-u"});
  REQUIRE(u.cfg);
  CHECK(u.cfg->mode == Mode::TcpAndUdp);
  REQUIRE(u.cfg->listeners.size() == 1);
  CHECK(u.cfg->listeners[0].protocol == ListenerSpec::Protocol::Redir);
  auto only = load(Role::Redir, {"-s", "h", "-p", "1", "-l", "2", "-k", "p", "-U"});
  REQUIRE(only.cfg);
  CHECK(only.cfg->mode == Mode::UdpOnly);
  CHECK(finalize_error(Role::Redir, R"({"server": "h", "server_port": 1, "local_port": 2,
      "password": "p", "mode": "udp_only"})")
            .empty());
}

TEST_CASE("flags: ss-redir's -h and -V name it", "[relay]") {
  const std::string help = load(Role::Redir, {"-h"}).out;
  CHECK_THAT(help, Catch::StartsWith("Shadowsocks client for connections redirected"));
  CHECK_THAT(help, Catch::Contains("ss-redir [options]"));
  CHECK_THAT(help, Catch::Contains("relay UDP only (by TPROXY;"));
  CHECK_THAT(load(Role::Redir, {"-V"}).out, Catch::StartsWith("ss-redir (shadowsocks-uv) "));
}

TEST_CASE("flags: ss-server, repeatable -s", "[relay]") {
  auto r = load(Role::Server, {"-s", "::", "-s", "0.0.0.0", "-p", "8388", "-k", "p"});
  REQUIRE(r.cfg);
  CHECK(r.cfg->server == std::vector<std::string>{"::", "0.0.0.0"});
  CHECK(r.cfg->local_address.empty());

  auto d = load(Role::Server, {"-p", "8388", "-k", "p"});
  REQUIRE(d.cfg);
  CHECK(d.cfg->server == std::vector<std::string>{"0.0.0.0"});
}

TEST_CASE("flags: --udp-timeout and --udp-max-associations, every role", "[relay]") {
  auto local = load(Role::Local, {"-s", "h", "-p", "1", "-l", "2", "-k", "p", "--udp-timeout", "45",
                                  "--udp-max-associations", "7"});
  REQUIRE(local.cfg);
  CHECK(local.cfg->udp_timeout == 45);
  CHECK(local.cfg->udp_max_associations == 7);
  auto tunnel = load(Role::Tunnel, {"-s", "h", "-p", "1", "-l", "2", "-k", "p", "-L", "a:53",
                                    "--udp-timeout=17", "--udp-max-associations=1"});
  REQUIRE(tunnel.cfg);
  CHECK(tunnel.cfg->udp_timeout == 17);
  CHECK(tunnel.cfg->udp_max_associations == 1);
  auto server = load(Role::Server, {"-p", "1", "-k", "p", "--udp-max-associations", "65536"});
  REQUIRE(server.cfg);
  CHECK(server.cfg->udp_timeout == 60);
  CHECK(server.cfg->udp_max_associations == 65536);

  CHECK(load_error(Role::Server, {"--udp-timeout", "0"}) ==
        R"(--udp-timeout: must be a positive number of seconds, got "0")");
  CHECK(starts_with(load_error(Role::Local, {"--udp-timeout", "soon"}), "--udp-timeout: "));
  CHECK(load_error(Role::Tunnel, {"--udp-max-associations", "0"}) ==
        R"(--udp-max-associations: must be a whole number from 1 to 10000000, got "0")");
  CHECK(load_error(Role::Local, {"--udp-max-associations"}) ==
        "--udp-max-associations: missing value");
}

TEST_CASE("flags override the UDP keys of the config file", "[relay]") {
  TempFile file(R"({"server_port": 1, "password": "p", "udp_timeout": 10,
                    "udp_max_associations": 10})");
  auto r = load(Role::Server, {"-c", file.path(), "--udp-timeout", "20"});
  REQUIRE(r.cfg);
  CHECK(r.cfg->udp_timeout == 20);
  CHECK(r.cfg->udp_max_associations == 10);
}

TEST_CASE("flags: role-specific flags", "[relay]") {
  CHECK_THAT(load_error(Role::Local, {"-L", "a:1"}), Catch::Contains("-L"));
  CHECK_THAT(load_error(Role::Server, {"-l", "1080"}), Catch::Contains("-l"));
}

TEST_CASE("flags: errors name the flag", "[relay]") {
  CHECK(load_error(Role::Local, {"-p", "abc"}) ==
        R"(-p: must be an integer from 1 to 65535, got "abc")");
  CHECK(starts_with(load_error(Role::Local, {"-l", "0"}), "-l: must be an integer"));
  CHECK(starts_with(load_error(Role::Local, {"-t", "-3"}), "-t: "));
  CHECK(starts_with(load_error(Role::Local, {"-t", "soon"}),
                    "-t: must be a positive number of seconds"));
  CHECK(load_error(Role::Local, {"--bogus"}) == "unknown flag \"--bogus\" (see -h)");
  CHECK(load_error(Role::Local, {"-x"}) == "unknown flag \"-x\" (see -h)");
  CHECK_THAT(load_error(Role::Local, {"--plugin-args=obfs"}), Catch::Contains("\"--plugin-args\""));
  CHECK(load_error(Role::Local, {"-p"}) == "-p: missing value");
  CHECK(starts_with(load_error(Role::Local, {"-u", "-U"}), "-u, -U: "));
  CHECK(starts_with(load_error(Role::Local, {"-s", ""}), "-s: "));
  CHECK(starts_with(load_error(Role::Local, {"stray"}), "ss-local: unexpected argument"));
  CHECK(
      starts_with(load_error(Role::Local, {"-s", "h", "-p", "1", "-l", "2"}), "password: missing"));
}

TEST_CASE("flags: -h prints the help and returns nullopt", "[relay]") {
  for (Role role : {Role::Local, Role::Server, Role::Tunnel, Role::Redir}) {
    for (const char* flag : {"-h", "--help"}) {
      auto r = load(role, {flag});
      CHECK_FALSE(r.cfg);
      CHECK_THAT(r.out, Catch::Contains("-c"));
      CHECK_THAT(r.out, Catch::Contains("--fast-open"));
      CHECK_THAT(r.out, Catch::Contains("--udp-timeout"));
      CHECK_THAT(r.out, Catch::Contains("--udp-max-associations"));
      CHECK_THAT(r.out, Catch::Contains("udp_timeout"));
      CHECK_THAT(r.out, Catch::Contains("udp_max_associations"));
      CHECK_THAT(r.out, Catch::Contains("server_port"));
      CHECK_THAT(r.out, Catch::Contains("chacha20-ietf-poly1305"));
      CHECK((r.out.find("-L") != std::string::npos) == (role == Role::Tunnel));
      CHECK((r.out.find("tunnel_address") != std::string::npos) == (role == Role::Tunnel));
      CHECK((r.out.find("tcp_tproxy") != std::string::npos) == (role == Role::Redir));
      CHECK((r.out.find("  -T ") != std::string::npos) == (role == Role::Redir));
    }
  }
  // Help wins even when other flags are incomplete.
  CHECK_FALSE(load(Role::Local, {"-p", "1", "-h"}).cfg);
}

TEST_CASE("flags: -a, -f, -n, --log-file, -q and -V", "[relay]") {
  auto r = load(Role::Server, {"-p", "1", "-k", kPassword, "-a", "nobody", "-f", "/run/x.pid", "-n",
                               "4096", "--log-file", "/var/log/x.log", "-q"});
  REQUIRE(r.cfg);
  CHECK(r.cfg->run_as_user == "nobody");
  CHECK(r.cfg->pid_file == "/run/x.pid");
  CHECK(r.cfg->nofile == 4096);
  CHECK(r.cfg->log_file == "/var/log/x.log");
  CHECK(r.cfg->quiet);
  CHECK(starts_with(load_error(Role::Server, {"-p", "1", "-k", kPassword, "-q", "-v"}),
                    "-q, -v: give only one"));
  CHECK(starts_with(load_error(Role::Server, {"-p", "1", "-k", kPassword, "-n", "0"}), "-n: "));
  CHECK(starts_with(load_error(Role::Server, {"-p", "1", "-k", kPassword, "-a", ""}), "-a: "));
  for (const char* flag : {"-V", "--version"}) {
    auto v = load(Role::Local, {flag});
    CHECK_FALSE(v.cfg);
    CHECK(starts_with(v.out, "ss-local (shadowsocks-uv) "));
  }
}

TEST_CASE("flags override the config file", "[relay]") {
  TempFile file(R"({
    "server": "file.example", "server_port": 1111, "local_port": 2222,
    "local_address": "127.0.0.2", "password": "file-password", "method": "aes-128-gcm",
    "timeout": 10, "mode": "udp_only", "executable": "x"
  })");
  SECTION("file alone") {
    auto r = load(Role::Local, {"-c", file.path()});
    REQUIRE(r.cfg);
    CHECK(r.cfg->server == std::vector<std::string>{"file.example"});
    CHECK(r.cfg->server_port == 1111);
    CHECK(r.cfg->local_port == 2222);
    CHECK(r.cfg->local_address == "127.0.0.2");
    CHECK(r.cfg->method == "aes-128-gcm");
    CHECK(r.cfg->timeout == 10);
    CHECK(r.cfg->mode == Mode::UdpOnly);
    CHECK(r.cfg->key.size() == 16);
    CHECK_THAT(r.warn, Catch::Contains("\"executable\""));
  }
  SECTION("flags win") {
    auto r = load(Role::Local,
                  {"-c", file.path(), "-s", "flag.example", "-p", "3333", "-l", "4444", "-b",
                   "127.0.0.3", "-k", kPassword, "-m", "chacha20-ietf-poly1305", "-t", "20", "-u"});
    REQUIRE(r.cfg);
    CHECK(r.cfg->server == std::vector<std::string>{"flag.example"});
    CHECK(r.cfg->server_port == 3333);
    CHECK(r.cfg->local_port == 4444);
    CHECK(r.cfg->local_address == "127.0.0.3");
    CHECK(r.cfg->password == kPassword);
    CHECK(r.cfg->method == "chacha20-ietf-poly1305");
    CHECK(r.cfg->timeout == 20);
    CHECK(r.cfg->mode == Mode::TcpAndUdp);
    CHECK(r.cfg->key == kPasswordKey);
  }
}

TEST_CASE("flags: -k replaces a key from the config file", "[relay]") {
  TempFile file(std::string(R"({"server": "h", "server_port": 1, "local_port": 2, "key": ")") +
                kKey32 + "\"}");
  auto r = load(Role::Local, {"-c", file.path(), "-k", kPassword});
  REQUIRE(r.cfg);
  CHECK(r.cfg->key_b64.empty());
  CHECK(r.cfg->key == kPasswordKey);
}

TEST_CASE("config file errors", "[relay]") {
  CHECK(load_error(Role::Local, {"-c", "/nonexistent/x.json"}) ==
        R"(config file "/nonexistent/x.json": cannot read: No such file or directory)");
  CHECK(starts_with(load_error(Role::Local, {"-c", "/"}), R"(config file "/": cannot read: )"));
  TempFile bad("{\n  \"server\": \"a\",\n  \"server_port\": 1 2\n}\n");
  const std::string e = load_error(Role::Local, {"-c", bad.path()});
  CHECK(
      starts_with(e, std::string("config file \"") + bad.path() + "\": invalid JSON at line 3: "));
  CHECK(e.find('\n') == std::string::npos);
  TempFile bad_value(R"({"server_port": "abc"})");
  CHECK(load_error(Role::Local, {"-c", bad_value.path()}) ==
        R"(server_port: must be an integer from 1 to 65535, got "abc")");
}

}  // namespace ss

TEST_CASE("users: names with control characters are refused (they would forge log lines)",
          "[relay]") {
  std::ostringstream warn;
  const std::string json =
      R"({"server_port": 8388, "method": "2022-blake3-aes-128-gcm", "password": "AAAAAAAAAAAAAAAAAAAAAA==",)"
      R"( "users": [{"name": "a\nFAKE: server: user root", "password": "AAAAAAAAAAAAAAAAAAAAAA=="}]})";
  try {
    ss::parse_config_json(ss::Role::Server, json, warn);
    FAIL("a control character in a user name was accepted");
  } catch (const ss::ConfigError& e) {
    CHECK(std::string(e.what()).find("users[0].name") != std::string::npos);
  }
}

namespace ss {

// Issue 16, item 5: what nlohmann would let through silently is an error naming the value's path.
TEST_CASE("config: a duplicate key is an error naming its path", "[relay]") {
  CHECK(json_error(Role::Server, R"({"server_port": 1, "password": "a", "password": "b"})") ==
        "password: duplicate key (given twice)");
  CHECK(json_error(Role::Local, R"({"servers": [{"server": "a"},
      {"server": "b", "password": "x", "password": "y"}]})") ==
        "servers[1].password: duplicate key (given twice)");
  CHECK(json_error(Role::Local, R"({"locals": [[], {"a b": 1, "a b": 2}]})") ==
        "locals[1].\"a b\": duplicate key (given twice)");
  // The same key in two different objects is not a duplicate.
  CHECK(json_error(Role::Local, R"({"servers": [{"server": "a"}, {"server": "b"}]})")
            .find("duplicate") == std::string::npos);
}

TEST_CASE("config: a NUL inside a string or a key is an error naming the key", "[relay]") {
  CHECK(json_error(Role::Server, R"({"server_port": 1, "password": "a\u0000b"})") ==
        "password: a NUL character (\\u0000) inside a string");
  CHECK(json_error(Role::Local, R"({"server": ["h", "x\u0000"]})") ==
        "server[1]: a NUL character (\\u0000) inside a string");
  CHECK(json_error(Role::Local, R"({"pass\u0000word": "p"})") ==
        "\"pass\\x00word\": a key contains a NUL character (\\u0000)");
  // Other escapes are fine.
  CHECK(parse_json(Role::Local, R"({"password": "a\u0001b\n"})").password ==
        "a\x01"
        "b\n");
}

TEST_CASE("config: only regular files are read, a FIFO or a device is refused at once", "[relay]") {
  const ss::test::TempDir dir("ss-config-fifo");
  const std::string fifo = dir / "fifo";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  // No writer: a blocking open would hang here forever.
  CHECK(load_error(Role::Server, {"-c", fifo.c_str()}) ==
        "config file \"" + fifo + "\": cannot read: not a regular file (a FIFO)");
  CHECK(load_error(Role::Server, {"-c", "/dev/zero"}) ==
        "config file \"/dev/zero\": cannot read: not a regular file (a character device)");
  TempFile users(R"({"server": "h", "server_port": 1, "local_port": 2, "password": "p",
                     "socks5_auth_config_path": ")" +
                 fifo + "\"}");
  CHECK(load_error(Role::Local, {"-c", users.path()}) ==
        "socks5_auth_config_path: \"" + fifo + "\": not a regular file (a FIFO)");
}

TEST_CASE("config: duplicate listen addresses are merged, one listener each", "[relay]") {
  std::string servers = "\"0.0.0.0\"";
  for (int i = 0; i < 4999; ++i) servers += ", \"0.0.0.0\"";
  servers += ", \"::\", \"0::0\", \"0:0:0:0:0:0:0:0\"";
  Config cfg = parse_json(Role::Server,
                          R"({"server_port": 8388, "password": "p", "server": [)" + servers + "]}");
  finalize_config(cfg);
  CHECK(cfg.server.size() == 5003);
  REQUIRE(cfg.listeners.size() == 2);
  CHECK(cfg.listeners[0].address == "0.0.0.0");
  CHECK(cfg.listeners[1].address == "::");
  CHECK(cfg.merged_listeners == 5001);
  CHECK(specs_of(cfg).listeners.size() == 2);
  // Distinct addresses stay distinct.
  Config two = parse_json(
      Role::Server, R"({"server_port": 8388, "password": "p", "server": ["::1", "127.0.0.1"]})");
  finalize_config(two);
  CHECK(two.listeners.size() == 2);
  CHECK(two.merged_listeners == 0);
}

}  // namespace ss
