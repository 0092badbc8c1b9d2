// Invalid configuration: each of our binaries exits with status 1 and prints exactly one line that
// names the offending key (or flag, or file).

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <string_view>
#include <thread>

#include "tests/integration/harness.h"
#include "tests/support/temp_dir.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

struct ConfigCase {
  std::string name;
  // Flag changes relative to a valid command line: a value replaces the flag's value, nullopt
  // removes the flag.
  std::map<std::string, std::optional<std::string>> flag_changes;
  // If set, the flags are reduced to -c <file> (plus -L for ss-tunnel) and this JSON is the file.
  std::optional<std::string> json;
  // If set, "-c <config_path>" is added to the (valid) flags.
  std::optional<std::string> config_path;
  // The error line must contain one of these.
  std::vector<std::string> names;
};

std::string json_config(uint16_t server_port, uint16_t local_port, const std::string& tweak) {
  // `tweak` replaces one key/value pair, or removes the password when it is "-password".
  std::map<std::string, std::string> kv = {{"server", "\"127.0.0.1\""},
                                           {"server_port", std::to_string(server_port)},
                                           {"local_address", "\"127.0.0.1\""},
                                           {"local_port", std::to_string(local_port)},
                                           {"password", "\"correct-horse-42\""},
                                           {"method", "\"chacha20-ietf-poly1305\""},
                                           {"timeout", "60"},
                                           {"mode", "\"tcp_only\""}};
  if (tweak == "-password") {
    kv.erase("password");
  } else {
    const auto colon = tweak.find(':');
    kv[tweak.substr(0, colon)] = tweak.substr(colon + 1);
  }
  std::string out = "{";
  for (const auto& [k, v] : kv) out += (out.size() > 1 ? ", \"" : "\"") + k + "\": " + v;
  return out + "}\n";
}

std::vector<ConfigCase> cases(uint16_t sp, uint16_t lp) {
  return {
      {"unknown method (-m)", {{"-m", "rot13-is-not-a-cipher"}}, {}, {}, {"method", "-m"}},
      {"missing password (no -k)", {{"-k", std::nullopt}}, {}, {}, {"password"}},
      {"bad port (-p 99999)", {{"-p", "99999"}}, {}, {}, {"server_port", "-p"}},
      {"unknown method (JSON)", {}, json_config(sp, lp, "method:\"rot13\""), {}, {"method"}},
      {"missing password (JSON)", {}, json_config(sp, lp, "-password"), {}, {"password"}},
      {"bad port (JSON)", {}, json_config(sp, lp, "server_port:70000"), {}, {"server_port"}},
      {"wrong JSON type: server_port is an array",
       {},
       json_config(sp, lp, "server_port:[8388]"),
       {},
       {"server_port"}},
      {"wrong JSON type: method is an object",
       {},
       json_config(sp, lp, "method:{\"name\": \"aes-128-gcm\"}"),
       {},
       {"method"}},
      {"unreadable file (-c /nonexistent)", {}, {}, "/nonexistent", {"/nonexistent"}},
  };
}

}  // namespace

TEST_CASE("config errors: exit 1 with one line naming the key", "[integration][config]") {
  const std::string program = GENERATE(as<std::string>{}, "ss-server", "ss-local", "ss-tunnel");
  const uint16_t sp = pick_free_port();
  const uint16_t lp = pick_free_port();
  const auto all = cases(sp, lp);
  const size_t index = GENERATE(range(size_t{0}, size_t{9}));
  REQUIRE(all.size() == 9);
  const ConfigCase& c = all[index];
  INFO(program << ": " << c.name);

  // A valid command line for the program, as (flag, value) pairs.
  std::vector<std::pair<std::string, std::string>> flags = {{"-s", "127.0.0.1"},
                                                            {"-p", std::to_string(sp)},
                                                            {"-k", "correct-horse-42"},
                                                            {"-m", "chacha20-ietf-poly1305"}};
  if (program != "ss-server") {
    flags.push_back({"-b", "127.0.0.1"});
    flags.push_back({"-l", std::to_string(lp)});
  }
  const std::pair<std::string, std::string> tunnel_target = {"-L", "127.0.0.1:9"};
  if (program == "ss-tunnel") flags.push_back(tunnel_target);

  std::vector<std::string> argv = {binary_path(Impl::Ours, program)};
  if (c.json) {
    std::filesystem::path file = test_log_path("config");
    file.replace_extension(".json");
    std::ofstream(file) << *c.json;
    INFO("config: " << *c.json);
    argv.insert(argv.end(), {"-c", file.string()});
    if (program == "ss-tunnel")
      argv.insert(argv.end(), {tunnel_target.first, tunnel_target.second});
  } else {
    for (const auto& [flag, value] : flags) {
      auto change = c.flag_changes.find(flag);
      if (change == c.flag_changes.end()) {
        argv.insert(argv.end(), {flag, value});
      } else if (change->second) {
        argv.insert(argv.end(), {flag, *change->second});
      }
    }
    if (c.config_path) argv.insert(argv.end(), {"-c", *c.config_path});
  }

  auto proc = spawn(argv, program);
  const std::optional<int> status = proc->wait_exit(10s);
  const std::string log = proc->log_text();
  INFO("$ " << proc->command_line() << "\n" << log);
  REQUIRE(status.has_value());
  CHECK(*status == 1);
  const auto lines = nonempty_lines(log);
  REQUIRE(lines.size() == 1);
  bool named = false;
  for (const auto& n : c.names) named = named || lines[0].find(n) != std::string::npos;
  CHECK(named);
  // The password must never be echoed back.
  CHECK(log.find("correct-horse-42") == std::string::npos);
}

namespace {

// Runs PROGRAM ARGS... and expects exit 1 within 5 s with one line containing each of `needles`.
void expect_refused(std::vector<std::string> argv, const std::string& label,
                    std::initializer_list<std::string_view> needles) {
  auto proc = spawn(std::move(argv), label);
  const std::optional<int> status = proc->wait_exit(5s);
  const std::string log = proc->log_text();
  INFO("$ " << proc->command_line() << "\n" << log);
  REQUIRE(status.has_value());  // not hung (a FIFO without a writer blocked forever before)
  CHECK(*status == 1);
  const auto lines = nonempty_lines(log);
  REQUIRE(lines.size() == 1);
  for (std::string_view n : needles) CHECK(lines[0].find(n) != std::string::npos);
  CHECK(log.find("correct-horse-42") == std::string::npos);
}

std::filesystem::path scratch(const std::string& label, const std::string& content) {
  std::filesystem::path file = test_log_path(label);
  file.replace_extension(".json");
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << content;
  return file;
}

}  // namespace

TEST_CASE("config hardening: -c with a FIFO, a socket or a device exits 1 at once naming the path",
          "[integration][config]") {
  const std::string program = GENERATE(as<std::string>{}, "ss-server", "ss-local");
  // In /tmp: a Unix socket's path must fit in sun_path (108 bytes).
  const ss::test::TempDir dir("ss-config-special", "/tmp");
  const std::string fifo = dir / "fifo";
  const std::string sock = dir / "sock";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  REQUIRE(sock.size() < sizeof un.sun_path);
  std::memcpy(un.sun_path, sock.c_str(), sock.size());
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof un) == 0);
  REQUIRE(listen(fd, 1) == 0);
  const std::string bin = binary_path(Impl::Ours, program);
  expect_refused({bin, "-c", fifo}, program, {fifo, "not a regular file (a FIFO)"});
  expect_refused({bin, "-c", sock}, program, {sock, "not a regular file (a socket)"});
  expect_refused({bin, "-c", "/dev/zero"}, program,
                 {"/dev/zero", "not a regular file (a character device)"});
  if (program == "ss-local") {
    // A file the config names: ss-local's users file.
    const auto file = scratch("users",
                              "{\"server\": \"127.0.0.1\", \"server_port\": 1, "
                              "\"local_port\": 2, \"password\": \"correct-horse-42\", "
                              "\"socks5_auth_config_path\": \"" +
                                  fifo + "\"}");
    expect_refused({bin, "-c", file.string()}, program,
                   {"socks5_auth_config_path", fifo, "not a regular file (a FIFO)"});
  }
  close(fd);
}

TEST_CASE("config: the management API is refused without a token, or off loopback",
          "[integration][config]") {
  const std::string bin = binary_path(Impl::Ours, "ss-server");
  const std::string base =
      "{\"server\": \"127.0.0.1\", \"server_port\": 8388, \"password\": \"correct-horse-42\", ";
  expect_refused(
      {bin, "-c", scratch("api_no_token", base + "\"api_address\": \"127.0.0.1:1\"}").string()},
      "ss-server", {"api_token: missing"});
  expect_refused(
      {bin, "-c",
       scratch("api_short", base + "\"api_address\": \"127.0.0.1:1\", \"api_token\": \"x\"}")
           .string()},
      "ss-server", {"api_token: too short"});
  const std::string token = "\"api_token\": \"0123456789abcdef0123\"";
  expect_refused(
      {bin, "-c",
       scratch("api_remote", base + "\"api_address\": \"0.0.0.0:1\", " + token + "}").string()},
      "ss-server", {"api_address:", "not a loopback address", "api_allow_remote"});
  expect_refused({bin, "-c",
                  scratch("api_file", base + "\"api_address\": \"[::1]:1\", \"api_token_file\": "
                                             "\"/nonexistent/token\"}")
                      .string()},
                 "ss-server", {"api_token_file: cannot read", "/nonexistent/token"});
}

TEST_CASE("config hardening: a duplicate key or a NUL in a string exits 1 naming the key",
          "[integration][config]") {
  const std::string program = GENERATE(as<std::string>{}, "ss-server", "ss-local");
  const std::string bin = binary_path(Impl::Ours, program);
  const std::string base =
      "\"server\": \"127.0.0.1\", \"server_port\": 8388, "
      "\"local_port\": 1080, ";
  expect_refused({bin, "-c",
                  scratch("dup", "{" + base +
                                     "\"password\": \"correct-horse-42\", \"timeout\": 5, "
                                     "\"timeout\": 6}")
                      .string()},
                 program, {"timeout: duplicate key"});
  expect_refused(
      {bin, "-c",
       scratch("nul", "{" + base + "\"password\": \"correct\\u0000horse-42\"}").string()},
      program, {"password: a NUL character"});
  if (program == "ss-local") {
    expect_refused({bin, "-c",
                    scratch("dup_nested",
                            "{\"local_port\": 1080, \"servers\": [{\"server\": \"a\", "
                            "\"server_port\": 1, \"password\": \"correct-horse-42\"}, "
                            "{\"server\": \"b\", \"server_port\": 2, \"password\": \"x\", "
                            "\"password\": \"y\"}]}")
                        .string()},
                   program, {"servers[1].password: duplicate key"});
  }
}

TEST_CASE("config hardening: 5,000 copies of one listen address open one listener",
          "[integration][config]") {
  const uint16_t port = pick_free_port();
  std::string servers = "\"127.0.0.1\"";
  for (int i = 0; i < 4999; ++i) servers += ", \"127.0.0.1\"";
  const auto file =
      scratch("merge", "{\"server\": [" + servers + "], \"server_port\": " + std::to_string(port) +
                           ", \"password\": \"correct-horse-42\", "
                           "\"mode\": \"tcp_and_udp\", \"workers\": 2}");
  Node srv = start_node(Impl::Ours, "ss-server", {"-c", file.string(), "-v"}, port, "ss-server");
  CHECK(wait_log(srv, "4999 duplicate listen addresses merged"));
  // Two workers, each with one TCP and one UDP socket on the port, and a few more descriptors of
  // the process's own: far from the 20,000 sockets 5,000 listeners would need.
  // The log line comes before the workers open their sockets: count until all four are open (a
  // slow build, such as the sanitizers', may still be opening them), then check none is extra.
  const auto count_sockets = [&] {
    size_t n = 0;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(srv.proc->pid()) + "/fd")) {
      std::error_code ec;
      const auto target = std::filesystem::read_symlink(e.path(), ec);
      if (!ec && target.string().rfind("socket:", 0) == 0) ++n;
    }
    return n;
  };
  CHECK(wait_log(srv, "ss-server listening on TCP"));
  size_t sockets = count_sockets();
  for (int i = 0; i < 100 && sockets < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    sockets = count_sockets();
  }
  CHECK(sockets >= 4);
  CHECK(sockets <= 16);
  check_clean_shutdown(srv);
}

}  // namespace ss::test
