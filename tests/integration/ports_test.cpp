// Several ports and users in one ss-server (issue 14 item 1), through the real binaries on
// loopback: libev's "port_password" (three ports, libev's and our ss-local on each, a wrong
// password gets nothing), a server-side "servers" array in shadowsocks-rust's form (a classic and
// a 2022 entry on two ports, TCP and UDP), and classic-AEAD users on one port found by key trial
// (shadowsocks-libev clients, one per user, TCP and UDP; a stranger is refused with the
// auth-failure log; a user's recorded first flight replayed is refused).

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kClassic = "chacha20-ietf-poly1305";
constexpr const char* k2022 = "2022-blake3-aes-128-gcm";

// Writes `json` to a config file in this test's log directory.
std::string write_config(const std::string& label, const std::string& json) {
  std::filesystem::path path = test_log_path(label);
  path.replace_extension(".json");
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << json;
  return path.string();
}

// Our ss-server with `config`, once every port in `ports` accepts connections.
Node start_server_config(const std::string& config, const std::vector<uint16_t>& ports) {
  Node srv = start_node(Impl::Ours, "ss-server",
                        {"-c", config, "-v", "-t", "5", "--allow-private-targets", "--state-dir",
                         test_state_dir().string()},
                        ports.front(), "ss-server");
  for (uint16_t p : ports) REQUIRE(wait_until_listening(p, 10s));
  return srv;
}

Node start_client(Impl impl, const std::string& method, const std::string& password,
                  uint16_t server_port, bool udp = false) {
  NodeOptions o;
  o.method = method;
  o.password = password;
  if (udp) o.extra_args = {"-u"};
  return start_local(impl, o, server_port);
}

// One datagram through the client's UDP ASSOCIATE to the UDP echo target and back; retried
// while the association is set up. True once the echo came back byte-exact.
bool udp_echo(uint16_t socks_port, const UdpTarget& target, size_t size) {
  UdpSocket udp("127.0.0.1");
  auto assoc = socks5_udp_associate(socks_port, "127.0.0.1", udp.port());
  Socks5UdpPacket p;
  p.host = target.host();
  p.port = target.port();
  p.data = random_bytes(size);
  for (int attempt = 0; attempt < 20; ++attempt) {
    udp.send_to(assoc.relay_host, assoc.relay_port, socks5_udp_encode(p));
    const auto d = udp.recv(250ms);
    if (!d) continue;
    const auto reply = socks5_udp_decode(d->data);
    if (reply && reply->data == p.data && reply->port == target.port()) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("ports: port_password serves three ports, each with its own password",
          "[integration][ports][interop]") {
  const std::vector<uint16_t> ports = {pick_free_port(), pick_free_port(), pick_free_port()};
  std::string pp;
  for (size_t i = 0; i < ports.size(); ++i) {
    pp += std::string(i ? ", " : "") + "\"" + std::to_string(ports[i]) + "\": \"pw" +
          std::to_string(i) + "\"";
  }
  const std::string config =
      write_config("config", R"({"server": "127.0.0.1", "method": ")" + std::string(kClassic) +
                                 R"(", "port_password": {)" + pp + "}}");
  Node srv = start_server_config(config, ports);
  TargetServer target(TargetBehavior::echo());
  size_t expected = 0;
  for (size_t i = 0; i < ports.size(); ++i) {
    INFO("port " << ports[i]);
    for (Impl impl : {Impl::Libev, Impl::Ours}) {
      INFO(impl_name(impl) << " ss-local");
      Node local = start_client(impl, kClassic, "pw" + std::to_string(i), ports[i]);
      socks_echo(local.port, target.port(), 2000 + 500 * i);
      ++expected;
    }
  }
  CHECK(target.accepted() == expected);
  // Port 0's password on port 1: nothing reaches the target, the server says why.
  Node wrong = start_client(Impl::Libev, kClassic, "pw0", ports[1]);
  check_refused(wrong.port, target);
  CHECK(wait_log(srv, "failed authentication"));
  CHECK(target.accepted() == expected);
  check_clean_shutdown(srv);
}

TEST_CASE("ports: a server-side servers array with a classic and a 2022 entry, TCP and UDP",
          "[integration][ports][udp]") {
  const uint16_t classic_port = pick_free_port();
  const uint16_t port2022 = pick_free_port();
  const std::string psk = "AAECAwQFBgcICQoLDA0ODw==";
  const std::string config =
      write_config("config", R"({"servers": [
        {"server": "127.0.0.1", "server_port": )" +
                                 std::to_string(classic_port) + R"(, "method": ")" + kClassic +
                                 R"(", "password": "classic-pw", "mode": "tcp_and_udp"},
        {"address": "127.0.0.1", "port": )" +
                                 std::to_string(port2022) + R"(, "method": ")" + k2022 +
                                 R"(", "password": ")" + psk + R"(", "mode": "tcp_and_udp"}]})");
  Node srv = start_server_config(config, {classic_port, port2022});
  TargetServer target(TargetBehavior::echo());
  UdpTarget udp_target;
  Node classic = start_client(Impl::Libev, kClassic, "classic-pw", classic_port, true);
  Node modern = start_client(Impl::Ours, k2022, psk, port2022, true);
  socks_echo(classic.port, target.port(), 5000);
  socks_echo(modern.port, target.port(), 5000);
  CHECK(udp_echo(classic.port, udp_target, 1200));
  CHECK(udp_echo(modern.port, udp_target, 1200));
  // Each port takes its own method only: the classic client on the 2022 port gets nothing.
  Node crossed = start_client(Impl::Libev, kClassic, "classic-pw", port2022);
  check_refused(crossed.port, target);
  CHECK(target.accepted() == 2);
  check_clean_shutdown(srv);
}

TEST_CASE("classic users: three users on one port by key trial, TCP and UDP; a stranger is refused",
          "[integration][ports][udp][interop]") {
  const uint16_t port = pick_free_port();
  const std::vector<std::string> names = {"alice", "bob", "carol"};
  const std::string config = write_config(
      "config", R"({"server": "127.0.0.1", "server_port": )" + std::to_string(port) +
                    R"(, "method": ")" + kClassic + R"(", "mode": "tcp_and_udp", "users": )" +
                    users_json(names) + "}");
  Node srv = start_server_config(config, {port});
  UdpTarget udp_target;
  for (const std::string& name : names) {
    INFO("user " << name);
    // One echo target per user, so the server's log lines can be matched to the user.
    TargetServer target(TargetBehavior::echo());
    Node local = start_client(Impl::Libev, kClassic, "pw-" + name, port, true);
    socks_echo(local.port, target.port(), 3000);
    socks_echo(local.port, target.port(), 100);
    CHECK(target.accepted() == 2);
    CHECK(
        wait_log(srv, "user " + name + ": connect 127.0.0.1:" + std::to_string(target.port()), 2));
    CHECK(udp_echo(local.port, udp_target, 900));
    CHECK(wait_log(srv, "udp: session of user " + name + " from"));
  }
  // Someone with a password that is nobody's: no byte, no connect, the auth-failure warning.
  TargetServer target(TargetBehavior::echo());
  Node stranger = start_client(Impl::Libev, kClassic, "pw-mallory", port, true);
  check_refused(stranger.port, target);
  CHECK(target.accepted() == 0);
  CHECK(wait_log(srv, "failed authentication (no user's key opens the first chunk)"));
  UdpTarget stranger_udp;
  CHECK_FALSE(udp_echo(stranger.port, stranger_udp, 100));
  CHECK(stranger_udp.received() == 0);
  check_clean_shutdown(srv);
}

TEST_CASE("classic users: a user's recorded first flight sent again is refused as a replay",
          "[integration][ports]") {
  const uint16_t port = pick_free_port();
  const std::string config =
      write_config("config", R"({"server": "127.0.0.1", "server_port": )" + std::to_string(port) +
                                 R"(, "method": ")" + kClassic + R"(", "users": )" +
                                 users_json({"alice", "bob"}) + "}");
  Node srv = start_server_config(config, {port});
  TargetServer target(TargetBehavior::sink());
  // Record bob's first flight: his client talks to a recorder instead of the server.
  TargetServer recorder(TargetBehavior::sink());
  Bytes flight;
  {
    Node local = start_client(Impl::Libev, kClassic, "pw-bob", recorder.port());
    flight = record_first_flight(local.port, target.port(), recorder);
  }
  // The first time the server sees it, it is bob's request: relayed.
  {
    Socket s = connect_tcp("127.0.0.1", port);
    send_all(s, flight);
    REQUIRE(wait_log(srv, "user bob: connect"));
  }
  // The same bytes again: refused as a replay, the target never hears of it.
  check_replay_refused(srv, port, flight);
  CHECK(target.accepted() == 1);
  check_clean_shutdown(srv);
}

}  // namespace ss::test

namespace ss::test {

TEST_CASE("ports: bad port_password, servers and users configs exit 1 with one line naming the key",
          "[integration][ports][config]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"method": "aes-128-gcm", "port_password": {"80x1": "pw"}})",
       R"(port_password: "80x1" is not a port)"},
      {R"({"method": "aes-128-gcm", "port_password": {"8001": "a", "8001 ": "b"}})",
       R"(port_password: "8001 " is not a port)"},
      {R"({"servers": [{"server": "127.0.0.1", "server_port": 8001, "method": "aes-128-gcm",
          "password": "a"}, {"server": "127.0.0.1", "server_port": 8001,
          "method": "aes-256-gcm", "password": "b"}]})",
       "servers[1].server_port: port 8001 is already used by another entry"},
      {R"({"server_port": 8001, "method": "aes-128-gcm", "password": "x",
          "users": [{"name": "a", "password": "b"}]})",
       "password: not used with classic-method users"},
  };
  for (const auto& [json, expected] : cases) {
    INFO(json);
    const std::string config = write_config("config", json);
    auto p = spawn({binary_path(Impl::Ours, "ss-server"), "-c", config}, "ss-server");
    const auto st = p->wait_exit(5s);
    REQUIRE(st.has_value());
    CHECK(*st == 1);
    const auto lines = nonempty_lines(p->log_text());
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains(expected));
  }
}

}  // namespace ss::test
