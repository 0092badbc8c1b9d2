// ss-local's mixed port through the real binaries: curl fetches a file byte-exact through one port
// with --socks5, --socks5-hostname, --socks4, --socks4a, -x http:// (a plain request forwarded
// to its origin) and -p -x http:// (CONNECT), without and with authentication (rust's user
// file: SOCKS5 RFC 1929 and HTTP Basic; SOCKS4 is then refused).

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

const std::string kMethod = "aes-128-gcm";

struct Mode {
  const char* name;
  std::vector<std::string> args;  // curl's proxy arguments, with PORT for the proxy's port
  const char* host;               // the URL's host
};

const Mode kModes[] = {
    {"socks5", {"--socks5", "127.0.0.1:PORT"}, "127.0.0.1"},
    {"socks5-hostname", {"--socks5-hostname", "127.0.0.1:PORT"}, "localhost"},
    {"socks4", {"--socks4", "127.0.0.1:PORT"}, "127.0.0.1"},
    {"socks4a", {"--socks4a", "127.0.0.1:PORT"}, "localhost"},
    {"http", {"-x", "http://127.0.0.1:PORT"}, "localhost"},
    {"http CONNECT", {"-p", "-x", "http://127.0.0.1:PORT"}, "localhost"},
};

struct Result {
  int status = -1;
  std::string body;
  std::string log;
};

Result curl(const Mode& mode, uint16_t proxy_port, uint16_t web_port,
            const std::vector<std::string>& extra = {}) {
  std::filesystem::path out = test_log_path("curl-body");
  out.replace_extension(".bin");
  std::filesystem::remove(out);
  std::vector<std::string> argv = {"curl",       "--silent",  "--show-error", "--fail",
                                   "--max-time", "20",        "--noproxy",    "",
                                   "-o",         out.string()};
  for (std::string a : mode.args) {
    const size_t at = a.find("PORT");
    if (at != std::string::npos) a.replace(at, 4, std::to_string(proxy_port));
    argv.push_back(a);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(std::string("http://") + mode.host + ":" + std::to_string(web_port) + "/file");
  auto p = spawn(argv, std::string("curl ") + mode.name);
  Result r;
  const auto st = p->wait_exit(30s);
  r.status = st ? *st : -1;
  r.log = "$ " + p->command_line() + "\n" + p->log_text();
  std::ifstream in(out, std::ios::binary);
  std::stringstream got;
  got << in.rdbuf();
  r.body = got.str();
  return r;
}

// A file beside the test's logs (the folder is made on first use).
std::filesystem::path test_file(const std::string& label, const std::string& text) {
  std::filesystem::path f = test_log_path(label);
  f.replace_extension(".json");
  std::filesystem::create_directories(f.parent_path());
  std::ofstream(f) << text;
  return f;
}

std::string random_body(size_t n) {
  const Bytes b = random_bytes(n);
  return std::string(b.begin(), b.end());
}

struct Pair {
  Node srv;
  Node local;
};

Pair start_pair(const std::vector<std::string>& local_extra = {}) {
  const NodeOptions sopt{kMethod, "frontends-password", 30, {"--allow-private-targets"}};
  Pair p;
  p.srv = start_server(Impl::Ours, sopt);
  NodeOptions lopt{kMethod, "frontends-password", 30, local_extra};
  p.local = start_local(Impl::Ours, lopt, p.srv.port);
  return p;
}

std::filesystem::path write_users_file() {
  return test_file("users", R"({"password": {"users": [
    {"user_name": "alice", "password": "correct horse"},
    {"user_name": "bob", "password": "battery staple"}]}})");
}

}  // namespace

TEST_CASE("mixed port: curl fetches a file byte-exact over SOCKS5, SOCKS4, SOCKS4a and HTTP",
          "[integration][frontends][curl]") {
  const std::string body = random_body(1 << 20);
  TargetServer web(TargetBehavior::http(body), /*dual_stack=*/true);
  Pair p = start_pair();
  size_t expected = 0;
  for (const Mode& mode : kModes) {
    INFO(mode.name);
    Result r = curl(mode, p.local.port, web.port());
    INFO(r.log);
    CHECK(r.status == 0);
    CHECK(r.body.size() == body.size());
    CHECK(sha256_hex(std::span(reinterpret_cast<const uint8_t*>(r.body.data()), r.body.size())) ==
          sha256_hex(std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size())));
    const auto reports = web.wait_reports(++expected, 10s);
    const std::string& head = reports.back().received_head;
    // The origin sees an origin-form request, without the proxy's hop-by-hop fields.
    CHECK(head.rfind("GET /file HTTP/1.1\r\n", 0) == 0);
    CHECK(head.find("Proxy-Connection") == std::string::npos);
    CHECK(head.find("Proxy-Authorization") == std::string::npos);
  }
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.srv);
}

TEST_CASE("mixed port with a user file: SOCKS5 and HTTP need credentials, SOCKS4 is refused",
          "[integration][frontends][curl]") {
  const std::string body = random_body(64 << 10);
  TargetServer web(TargetBehavior::http(body), /*dual_stack=*/true);
  const std::filesystem::path users = write_users_file();
  const std::filesystem::path cfg =
      test_file("local-config", R"({"socks5_auth_config_path": ")" + users.string() + "\"}");
  Pair p = start_pair({"-c", cfg.string()});

  for (const Mode& mode : kModes) {
    INFO(mode.name);
    const bool socks4 = std::string(mode.name).rfind("socks4", 0) == 0;
    Result good = curl(mode, p.local.port, web.port(), {"--proxy-user", "alice:correct horse"});
    INFO(good.log);
    if (socks4) {
      CHECK(good.status != 0);  // SOCKS4 carries no password: refused
      CHECK(good.body.empty());
      continue;
    }
    CHECK(good.status == 0);
    CHECK(good.body == body);
    Result wrong = curl(mode, p.local.port, web.port(), {"--proxy-user", "alice:wrong"});
    INFO(wrong.log);
    CHECK(wrong.status != 0);
    CHECK(wrong.body != body);
    Result none = curl(mode, p.local.port, web.port());
    INFO(none.log);
    CHECK(none.status != 0);
    CHECK(none.body != body);
  }
  // The failures are a default-level warning with the client's address.
  CHECK(wait_log(p.local, "failed the proxy's authentication"));
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.srv);
}

TEST_CASE("mixed port: a bad user file stops ss-local at start-up naming the key",
          "[integration][frontends]") {
  const std::filesystem::path users =
      test_file("bad-users", R"({"password": {"users": [{"user_name": "alice"}]}})");
  const std::filesystem::path cfg =
      test_file("local-config", R"({"server": "127.0.0.1", "server_port": 1, "local_port": 2,
    "password": "x", "socks5_auth_config_path": ")" +
                                    users.string() + "\"}");
  auto p = spawn({binary_path(Impl::Ours, "ss-local"), "-c", cfg.string()}, "ss-local");
  const auto st = p->wait_exit(5s);
  REQUIRE(st);
  CHECK(*st == 1);
  CHECK(p->log_text().find("socks5_auth_config_path: ") != std::string::npos);
}

}  // namespace ss::test

namespace ss::test {

TEST_CASE("rust-form config: two locals and two servers with different methods in one ss-local",
          "[integration][frontends]") {
  const std::string body = random_body(256 << 10);
  TargetServer web(TargetBehavior::http(body), /*dual_stack=*/true);
  TargetServer echo(TargetBehavior::echo());
  // Two servers, different methods and passwords (one of them libev's).
  const NodeOptions a{"aes-256-gcm", "server-a-password", 30, {"--allow-private-targets"}};
  const NodeOptions b{"chacha20-ietf-poly1305", "server-b-password", 30, {}};
  Node srv_a = start_server(Impl::Ours, a);
  Node srv_b = start_server(Impl::Libev, b);
  const uint16_t socks_port = pick_free_port();
  const uint16_t tunnel_port = pick_free_port();
  const std::filesystem::path cfg = test_file("rust-config",
                                              R"({
    "locals": [
      {"protocol": "socks", "local_address": "127.0.0.1", "local_port": )" +
                                                  std::to_string(socks_port) + R"(},
      {"protocol": "tunnel", "local_address": "127.0.0.1", "local_port": )" +
                                                  std::to_string(tunnel_port) + R"(,
       "forward_address": "127.0.0.1", "forward_port": )" +
                                                  std::to_string(echo.port()) + R"(},
    ],
    "servers": [
      {"server": "127.0.0.1", "server_port": )" + std::to_string(srv_a.port) +
                                                  R"(, "method": "aes-256-gcm",
       "password": "server-a-password"},
      {"address": "127.0.0.1", "server_port": )" + std::to_string(srv_b.port) +
                                                  R"(, "method": "chacha20-ietf-poly1305",
       "password": "server-b-password"}
    ],
    "balancer": {"mode": "round_robin"},
    "timeout": 30
  })");
  Node local =
      start_node(Impl::Ours, "ss-local", {"-c", cfg.string(), "-vv"}, socks_port, "ss-local");
  REQUIRE(wait_until_listening(tunnel_port, 5s));
  // Round robin (the balancer's mode) over the two servers: four fetches use both, byte-exact.
  const Mode socks = kModes[1];
  for (int i = 0; i < 4; ++i) {
    Result r = curl(socks, socks_port, web.port());
    INFO(r.log);
    CHECK(r.status == 0);
    CHECK(r.body == body);
  }
  // The tunnel listener of the same process: echo through it.
  for (int i = 0; i < 2; ++i) {
    Socket s = connect_tcp("127.0.0.1", tunnel_port);
    const Bytes msg = random_bytes(10000);
    send_all(s, msg);
    CHECK(recv_exact(s, msg.size(), 10s) == msg);
  }
  // Both servers carried connections (libev's logs nothing at its default level: count ours).
  CHECK(web.wait_reports(4, 10s).size() >= 4);
  const std::string log = srv_a.proc->log_text();
  CHECK(count_occurrences(log, "closed:") + count_occurrences(log, "connect ") >= 1);
  CHECK(count_occurrences(local.proc->log_text(), "server 127.0.0.1 port") == 2);
  check_clean_shutdown(local);
  check_clean_shutdown(srv_a);
}

TEST_CASE("rust-form config errors name the entry and key", "[integration][frontends]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"locals": [{"protocol": "socks"}], "servers": [{"server": "127.0.0.1",
          "server_port": 1, "password": "x"}]})",
       "locals[0].local_port: missing"},
      {R"({"locals": [{"protocol": "redirx", "local_port": 1}], "servers": [{"server": "h",
          "server_port": 1, "password": "x"}]})",
       "locals[0].protocol: "},
      {R"({"local_port": 1, "servers": [{"server": "127.0.0.1", "server_port": 1,
          "method": "rot13", "password": "x"}]})",
       "servers[0].method: "},
      {R"({"local_port": 1, "servers": [{"server": "127.0.0.1", "server_port": 1,
          "method": "aes-128-gcm"}]})",
       "servers[0].password: missing"},
      {R"({"locals": [{"protocol": "tunnel", "local_port": 1}], "servers": [{"server": "h",
          "server_port": 1, "password": "x"}]})",
       "locals[0]: a tunnel needs forward_address and forward_port"},
  };
  for (const auto& [json, expected] : cases) {
    INFO(json);
    const std::filesystem::path cfg = test_file("bad-rust-config", json);
    auto p = spawn({binary_path(Impl::Ours, "ss-local"), "-c", cfg.string()}, "ss-local");
    const auto st = p->wait_exit(5s);
    REQUIRE(st);
    CHECK(*st == 1);
    CHECK(p->log_text().find(expected) != std::string::npos);
  }
}

}  // namespace ss::test
