// ss-server's hot reload (issue 14 item 5) through the real binaries on loopback: SIGHUP adds a
// port, a 2022 (SIP023) user and a classic key-trial user that work at once; a removed user is
// refused for new connections while its live transfer finishes byte-exact (or is cut with
// --reload-drop-removed); a bad config is refused whole and the old one keeps serving; a first
// flight recorded before a reload is refused as a replay after it; and 20 concurrent verified
// streams (shadowsocks-libev's ss-local and ours) lose nothing while the config changes 25 times.
// UDP: a 2022 datagram recorded before a key change is refused after it on every worker; a changed
// ACL, udp_timeout and udp_max_associations apply to the UDP side.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kClassic = "chacha20-ietf-poly1305";
constexpr const char* k2022 = "2022-blake3-aes-128-gcm";
// 16-byte keys for 2022-blake3-aes-128-gcm: the server's iPSK and users' uPSKs.
constexpr const char* kIpsk = "AAECAwQFBgcICQoLDA0ODw==";
constexpr const char* kUpsk1 = "EBESExQVFhcYGRobHB0eHw==";
constexpr const char* kUpsk2 = "ICEiIyQlJicoKSorLC0uLw==";

// The config file a reload reads again: written before the start and rewritten before each
// SIGHUP.
class ReloadConfig {
 public:
  ReloadConfig() : path_(test_log_path("config")) { path_.replace_extension(".json"); }
  std::string path() const { return path_.string(); }
  void write(const std::string& json) const {
    std::filesystem::create_directories(path_.parent_path());
    std::ofstream(path_) << json;
  }

 private:
  std::filesystem::path path_;
};

// The 2022 users u1 (and u2 with `both`), by their uPSKs.
std::string users2022(bool both) {
  std::string out = R"([{"name": "u1", "password": ")" + std::string(kUpsk1) + "\"}";
  if (both) out += R"(, {"name": "u2", "password": ")" + std::string(kUpsk2) + "\"}";
  return out + "]";
}

// A "servers" entry (shadowsocks-rust's server-side form) on 127.0.0.1; no password: none (a
// classic entry with users has none).
std::string entry(uint16_t port, const std::string& method, const std::string& password,
                  const std::string& users = "") {
  std::string e = R"({"server": "127.0.0.1", "server_port": )" + std::to_string(port) +
                  R"(, "method": ")" + method + "\"";
  if (!password.empty()) e += R"(, "password": ")" + password + "\"";
  if (!users.empty()) e += R"(, "users": )" + users;
  return e + "}";
}

std::string servers(const std::vector<std::string>& entries, const std::string& extra = "") {
  std::string out = R"({"servers": [)";
  for (size_t i = 0; i < entries.size(); ++i) out += (i ? ", " : "") + entries[i];
  return out + "]" + extra + "}";
}

Node start_reloadable(const ReloadConfig& cfg, const std::vector<uint16_t>& ports,
                      std::vector<std::string> extra = {}, int workers = 2) {
  std::vector<std::string> args = {"-c",
                                   cfg.path(),
                                   "-v",
                                   "-t",
                                   "10",
                                   "--workers",
                                   std::to_string(workers),
                                   "--allow-private-targets",
                                   "--state-dir",
                                   test_state_dir().string()};
  args.insert(args.end(), extra.begin(), extra.end());
  Node srv = start_node(Impl::Ours, "ss-server", args, ports.front(), "ss-server");
  for (uint16_t p : ports) REQUIRE(wait_until_listening(p, 10s));
  return srv;
}

// Sends SIGHUP and waits for the `n`th "reload: applied" line (or refusal, with `what`).
bool reload(Node& srv, size_t n, const std::string& what = "reload: applied") {
  srv.proc->signal(SIGHUP);
  return wait_log(srv, what, n, 10s);
}

Node client(Impl impl, const std::string& method, const std::string& password, uint16_t port) {
  NodeOptions o;
  o.method = method;
  o.password = password;
  return start_local(impl, o, port);
}

// Half of a live echo transfer: `n` bytes out and back.
void echo_part(const Socket& s, size_t n) {
  const Bytes out = random_bytes(n);
  send_all(s, out);
  CHECK(recv_exact(s, n) == out);
}

}  // namespace

TEST_CASE(
    "reload: SIGHUP adds a port, a 2022 user and a classic key-trial user; each works at once",
    "[integration][reload]") {
  const uint16_t classic_port = pick_free_port();
  const uint16_t port2022 = pick_free_port();
  const uint16_t new_port = pick_free_port();
  ReloadConfig cfg;
  cfg.write(servers({entry(classic_port, kClassic, "", users_json({"alice"})),
                     entry(port2022, k2022, kIpsk, users2022(false))}));
  Node srv = start_reloadable(cfg, {classic_port, port2022});
  TargetServer target(TargetBehavior::echo());
  Node alice = client(Impl::Libev, kClassic, "pw-alice", classic_port);
  Node u1 = client(Impl::Ours, k2022, std::string(kIpsk) + ":" + kUpsk1, port2022);
  Node bob = client(Impl::Libev, kClassic, "pw-bob", classic_port);
  Node u2 = client(Impl::Ours, k2022, std::string(kIpsk) + ":" + kUpsk2, port2022);
  Node fresh = client(Impl::Libev, kClassic, "new-port-pw", new_port);
  socks_echo(alice.port, target.port(), 4000);
  socks_echo(u1.port, target.port(), 4000);
  check_refused(bob.port, target);
  check_refused(u2.port, target);
  CHECK_FALSE(wait_until_listening(new_port, 200ms));

  cfg.write(servers({entry(classic_port, kClassic, "", users_json({"alice", "bob"})),
                     entry(port2022, k2022, kIpsk, users2022(true)),
                     entry(new_port, kClassic, "new-port-pw")}));
  REQUIRE(reload(srv, 1));
  CHECK(wait_log(srv, "ports added " + std::to_string(new_port)));
  CHECK(wait_log(srv, "port " + std::to_string(classic_port) + ": users added bob"));
  CHECK(wait_log(srv, "port " + std::to_string(port2022) + ": users added u2"));
  REQUIRE(wait_until_listening(new_port, 5s));
  socks_echo(bob.port, target.port(), 5000);
  socks_echo(u2.port, target.port(), 5000);
  socks_echo(fresh.port, target.port(), 5000);
  socks_echo(alice.port, target.port(), 100);
  socks_echo(u1.port, target.port(), 100);
  CHECK(wait_log(srv, "user bob: connect"));
  CHECK(wait_log(srv, "user u2: connect"));

  // Removing the new port closes its listeners on every worker.
  cfg.write(servers({entry(classic_port, kClassic, "", users_json({"alice", "bob"})),
                     entry(port2022, k2022, kIpsk, users2022(true))}));
  REQUIRE(reload(srv, 2));
  CHECK(wait_log(srv, "ports removed " + std::to_string(new_port)));
  bool closed = false;
  for (int i = 0; i < 50 && !closed; ++i) {
    closed = !wait_until_listening(new_port, 50ms);
    if (!closed) std::this_thread::sleep_for(50ms);
  }
  CHECK(closed);
  socks_echo(bob.port, target.port(), 100);
  check_clean_shutdown(srv);
}

TEST_CASE(
    "reload: a removed user is refused for new connections; its live transfer finishes "
    "byte-exact, or is cut with --reload-drop-removed",
    "[integration][reload]") {
  const bool drop = GENERATE(false, true);
  INFO((drop ? "--reload-drop-removed" : "default"));
  const uint16_t port = pick_free_port();
  const uint16_t other_port = pick_free_port();
  ReloadConfig cfg;
  cfg.write(servers({entry(port, kClassic, "", users_json({"alice", "bob"})),
                     entry(other_port, kClassic, "other-pw")}));
  Node srv = start_reloadable(
      cfg, {port, other_port},
      drop ? std::vector<std::string>{"--reload-drop-removed"} : std::vector<std::string>{});
  TargetServer target(TargetBehavior::echo());
  Node bob = client(Impl::Libev, kClassic, "pw-bob", port);
  Node alice = client(Impl::Libev, kClassic, "pw-alice", port);
  Node other = client(Impl::Ours, kClassic, "other-pw", other_port);
  // Live sessions: bob's on the port that stays, and one on the port that goes.
  auto live = socks5_connect(bob.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(live.reply.has_value());
  REQUIRE(live.reply->rep == 0);
  echo_part(live.socket, 64 * 1024);
  auto live_other = socks5_connect(other.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(live_other.reply.has_value());
  REQUIRE(live_other.reply->rep == 0);
  echo_part(live_other.socket, 64 * 1024);
  REQUIRE(wait_log(srv, "user bob: connect"));

  cfg.write(servers({entry(port, kClassic, "", users_json({"alice"}))}));
  REQUIRE(reload(srv, 1));
  CHECK(wait_log(srv, "port " + std::to_string(port) + ": users removed bob"));
  CHECK(wait_log(srv, "ports removed " + std::to_string(other_port)));
  if (drop) {
    CHECK(wait_peer_closed(live.socket, 5s));
    CHECK(wait_peer_closed(live_other.socket, 5s));
  } else {
    // Both finish on the configuration they started with, byte-exact.
    echo_part(live.socket, 256 * 1024);
    echo_part(live_other.socket, 256 * 1024);
    live.socket.shutdown_write();
    CHECK(recv_until_eof(live.socket).empty());
    live_other.socket.shutdown_write();
    CHECK(recv_until_eof(live_other.socket).empty());
  }
  check_refused(bob.port, target);
  socks_echo(alice.port, target.port(), 3000);
  check_clean_shutdown(srv, 5s);
}

TEST_CASE("reload: a new port that cannot be bound is logged and the rest of the reload applies",
          "[integration][reload]") {
  const uint16_t port = pick_free_port();
  // Someone else holds busy_port (a plain listener, no SO_REUSEPORT).
  TargetServer squatter(TargetBehavior::sink());
  const uint16_t busy_port = squatter.port();
  ReloadConfig cfg;
  cfg.write(servers({entry(port, kClassic, "", users_json({"alice"}))}));
  Node srv = start_reloadable(cfg, {port});
  TargetServer target(TargetBehavior::echo());
  Node bob = client(Impl::Libev, kClassic, "pw-bob", port);
  cfg.write(servers({entry(port, kClassic, "", users_json({"alice", "bob"})),
                     entry(busy_port, kClassic, "busy-pw")}));
  REQUIRE(reload(srv, 1));
  CHECK(wait_log(srv, "cannot listen on TCP 127.0.0.1 port " + std::to_string(busy_port)));
  CHECK(wait_log(srv, "that port is not served"));
  socks_echo(bob.port, target.port(), 3000);  // the user added by the same reload works
  CHECK(squatter.accepted() == 0);
  // The next reload frees the listener that could not bind: only once its handles are closed (it
  // holds the connection cap's wake-up from the start; freed open, the loop kept a dangling
  // handle, which the sanitizer build reports at the latest when the loop closes).
  cfg.write(servers({entry(port, kClassic, "", users_json({"alice"}))}));
  REQUIRE(reload(srv, 2));
  check_refused(bob.port, target);
  CHECK(squatter.accepted() == 0);
  check_clean_shutdown(srv);
}

TEST_CASE("reload: a bad config is refused whole with one line and the old one keeps serving",
          "[integration][reload]") {
  const uint16_t port = pick_free_port();
  const uint16_t port2 = pick_free_port();
  ReloadConfig cfg;
  const std::string good = servers({entry(port, kClassic, "", users_json({"alice"}))});
  cfg.write(good);
  Node srv = start_reloadable(cfg, {port});
  TargetServer target(TargetBehavior::echo());
  Node alice = client(Impl::Libev, kClassic, "pw-alice", port);
  struct Bad {
    std::string json;
    std::string line;
  };
  // Each adds port2 too: nothing of a refused config applies.
  const std::vector<Bad> bad = {
      {servers({entry(port, "rot13", "", users_json({"alice"})), entry(port2, kClassic, "pw2")}),
       "reload: refused: servers[0].method"},
      {servers({entry(port, kClassic, "", users_json({"alice"})), entry(port2, kClassic, "pw2")},
               R"(, "user": "nobody")"),
       "reload: refused: user: cannot change while running"},
      {servers({entry(port, kClassic, "", users_json({"alice"})), entry(port2, kClassic, "pw2")},
               R"(, "max_connections": 7)"),
       "reload: refused: max_connections: cannot change while running"},
      {"{\"servers\": [", "reload: refused: config file"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    INFO("bad config " << i << ": " << bad[i].line);
    cfg.write(bad[i].json);
    REQUIRE(reload(srv, 1, bad[i].line));
    CHECK(wait_log(srv, "; keeping the running config", i + 1));
    CHECK(srv.proc->running());
    CHECK_FALSE(wait_until_listening(port2, 200ms));
    socks_echo(alice.port, target.port(), 2000);
  }
  CHECK(count_occurrences(srv.proc->log_text(), "reload: applied") == 0);
  // The good one again applies (nothing changed).
  cfg.write(good);
  REQUIRE(reload(srv, 1));
  CHECK(wait_log(srv, "no port or user changed"));
  check_clean_shutdown(srv);
}

TEST_CASE("reload: a first flight recorded before a reload is refused as a replay after it",
          "[integration][reload]") {
  const bool classic = GENERATE(true, false);
  INFO((classic ? "classic key trial" : "2022"));
  const uint16_t port = pick_free_port();
  ReloadConfig cfg;
  const std::string method = classic ? kClassic : k2022;
  const std::string users = classic ? users_json({"bob"}) : users2022(false);
  const std::string users_after = classic ? users_json({"bob", "carol"}) : users2022(true);
  const std::string password = classic ? "pw-bob" : std::string(kIpsk) + ":" + kUpsk1;
  cfg.write(servers({entry(port, method, classic ? std::string() : std::string(kIpsk), users)}));
  Node srv = start_reloadable(cfg, {port});
  TargetServer target(TargetBehavior::sink());
  // Record a first flight: the client talks to a recorder instead of the server.
  TargetServer recorder(TargetBehavior::sink());
  Bytes flight;
  {
    Node local = client(classic ? Impl::Libev : Impl::Ours, method, password, recorder.port());
    flight = record_first_flight(local.port, target.port(), recorder);
  }
  {
    Socket s = connect_tcp("127.0.0.1", port);
    send_all(s, flight);
    REQUIRE(wait_log(srv, classic ? "user bob: connect" : "user u1: connect"));
  }
  cfg.write(
      servers({entry(port, method, classic ? std::string() : std::string(kIpsk), users_after)}));
  REQUIRE(reload(srv, 1));
  check_replay_refused(srv, port, flight);
  CHECK(target.accepted() == 1);
  check_clean_shutdown(srv);
}

TEST_CASE(
    "reload under load: 20 verified streams through libev's ss-local and ours lose nothing "
    "while 25 reloads change ports and users",
    "[integration][reload][load]") {
  const uint16_t classic_port = pick_free_port();
  const uint16_t port2022 = pick_free_port();
  const uint16_t extra_port = pick_free_port();
  const std::string config_a = servers({entry(classic_port, kClassic, "", users_json({"alice"})),
                                        entry(port2022, k2022, kIpsk, users2022(false))});
  const std::string config_b = servers(
      {entry(classic_port, kClassic, "", users_json({"alice", "bob", "carol"})),
       entry(port2022, k2022, kIpsk, users2022(true)), entry(extra_port, kClassic, "x-pw")});
  ReloadConfig cfg;
  cfg.write(config_a);
  Node srv = start_reloadable(cfg, {classic_port, port2022});
  TargetServer target(TargetBehavior::echo());
  Node libev = client(Impl::Libev, kClassic, "pw-alice", classic_port);
  Node ours = client(Impl::Ours, k2022, std::string(kIpsk) + ":" + kUpsk1, port2022);

  constexpr size_t kStreams = 10;  // per client: 20 in all
  constexpr size_t kPayload = 2u << 20;
  constexpr size_t kReloads = 25;
  std::atomic<bool> done{false};
  struct Tally {
    size_t rounds = 0;
    size_t failed = 0;
  };
  Tally libev_tally, ours_tally;
  auto run = [&](uint16_t socks_port, Tally& t) {
    // At least one round, and rounds until every reload has been applied.
    do {
      t.failed += concurrent_socks_echo(socks_port, target.port(), kStreams,
                                        [](size_t) { return kPayload; });
      ++t.rounds;
    } while (!done.load());
  };
  const auto started = std::chrono::steady_clock::now();
  std::thread a([&] { run(libev.port, libev_tally); });
  std::thread b([&] { run(ours.port, ours_tally); });
  size_t applied = 0;
  for (size_t i = 1; i <= kReloads; ++i) {
    cfg.write(i % 2 == 1 ? config_b : config_a);
    if (reload(srv, i)) ++applied;
    std::this_thread::sleep_for(100ms);
  }
  done.store(true);
  a.join();
  b.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(applied == kReloads);
  CHECK(libev_tally.failed == 0);
  CHECK(ours_tally.failed == 0);
  const size_t sessions = (libev_tally.rounds + ours_tally.rounds) * kStreams;
  // The main loop's time per reload, from the server's "reload: applied in X ms" lines.
  const std::string log = srv.proc->log_text();
  const std::regex took("reload: applied in ([0-9.]+) ms");
  double total_ms = 0;
  size_t lines = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), took); it != std::sregex_iterator();
       ++it) {
    total_ms += std::stod((*it)[1].str());
    ++lines;
  }
  CHECK(lines == kReloads);
  std::printf(
      "reload under load: %zu sessions (%zu verified bytes each way), %zu reloads in %.1f s, "
      "failed: %zu; main-loop time per reload %.3f ms (mean)\n",
      sessions, sessions * kPayload, applied, seconds, libev_tally.failed + ours_tally.failed,
      lines ? total_ms / static_cast<double>(lines) : 0.0);
  check_clean_shutdown(srv, 5s);
}

// ---- UDP and reload -----------------------------------------------------------------------------

namespace {

constexpr const char* kUdpMode = R"(, "mode": "tcp_and_udp")";

// One datagram from `s` through ss-tunnel's UDP port to the echo target and back: true if the echo
// arrives within `wait`.
bool tunnel_echo(const UdpSocket& s, uint16_t tunnel_port, Millis wait = 2000ms) {
  const Bytes d = random_bytes(64);
  s.send_to("127.0.0.1", tunnel_port, d);
  const auto r = s.recv(wait);
  return r && r->data == d;
}

// The first echo through a fresh tunnel (the server's UDP socket may still be binding): retried.
void first_tunnel_echo(const UdpSocket& s, uint16_t tunnel_port) {
  for (int i = 0; i < 20; ++i) {
    if (tunnel_echo(s, tunnel_port, 250ms)) return;
  }
  FAIL("no echo through ss-tunnel's UDP port");
}

// The main thread logs "reload: applied" once it has posted the new snapshot; each worker swaps
// it in at its loop's next turn, which no log line marks.
void settle_reload() {
  std::this_thread::sleep_for(300ms);
}

Node udp_tunnel(const std::string& method, const std::string& password, uint16_t server_port,
                uint16_t target_port) {
  return start_tunnel(Impl::Ours, {method, password, 60, {"-u"}}, server_port, "127.0.0.1",
                      target_port);
}

// ss-server with one classic port serving UDP (reloadable, `workers` workers) and ss-tunnel -u in
// front of it to an echo target.
struct UdpReloadRig {
  UdpReloadRig(std::string password, int workers) : password_(std::move(password)) {
    write("");
    srv = start_reloadable(cfg_, {port_}, {}, workers);
    tunnel = udp_tunnel(kClassic, password_, port_, target.port());
  }
  // Rewrites the config with `extra` keys and reloads.
  void reload_with(const std::string& extra) {
    write(extra);
    REQUIRE(reload(srv, ++reloads_));
  }
  void stop() {
    check_clean_shutdown(tunnel);
    check_clean_shutdown(srv);
  }

  UdpTarget target;
  Node srv;
  Node tunnel;

 private:
  void write(const std::string& extra) {
    cfg_.write(servers({entry(port_, kClassic, password_)}, std::string(kUdpMode) + extra));
  }
  std::string password_;
  uint16_t port_ = pick_free_port();
  ReloadConfig cfg_;
  size_t reloads_ = 0;
};

}  // namespace

TEST_CASE(
    "reload: a 2022 UDP packet recorded before a key change is refused after it on every worker",
    "[integration][reload][udp]") {
  const uint16_t port = pick_free_port();
  ReloadConfig cfg;
  cfg.write(servers({entry(port, k2022, kIpsk, users2022(false))}, kUdpMode));
  Node srv = start_reloadable(cfg, {port});
  UdpTarget target;
  const std::string password = std::string(kIpsk) + ":" + kUpsk1;
  // Record one packet of u1: ss-tunnel sends to a recorder instead of the server.
  UdpSocket recorder;
  Bytes packet;
  {
    Node tunnel = udp_tunnel(k2022, password, recorder.port(), target.port());
    UdpSocket app;
    for (int i = 0; i < 20 && packet.empty(); ++i) {
      app.send_to("127.0.0.1", tunnel.port, random_bytes(32));
      if (auto d = recorder.recv(250ms)) packet = d->data;
    }
    REQUIRE_FALSE(packet.empty());
    check_clean_shutdown(tunnel);
  }
  // The original: answered once (a resend before that is a replay, or finds no socket yet).
  UdpSocket first;
  bool answered = false;
  for (int i = 0; i < 20 && !answered; ++i) {
    first.send_to("127.0.0.1", port, packet);
    answered = first.recv(250ms).has_value();
  }
  REQUIRE(answered);
  REQUIRE(target.received() == 1);
  // A changed key set that keeps u1, renumbered (u2 comes first): new packet suites.
  cfg.write(servers({entry(port, k2022, kIpsk,
                           R"([{"name": "u2", "password": ")" + std::string(kUpsk2) +
                               R"("}, {"name": "u1", "password": ")" + kUpsk1 + R"("}])")},
                    kUdpMode));
  REQUIRE(reload(srv, 1));
  settle_reload();
  // The replay from 40 source ports: the kernel spreads them over both workers' sockets (the
  // chance that all land on one is 2^-40); none may be answered or reach the target.
  std::vector<std::unique_ptr<UdpSocket>> replayers;
  for (int i = 0; i < 40; ++i) {
    replayers.push_back(std::make_unique<UdpSocket>());
    replayers.back()->send_to("127.0.0.1", port, packet);
  }
  size_t answers = 0;
  for (size_t i = 0; i < replayers.size(); ++i) {
    if (replayers[i]->recv(i == 0 ? 1000ms : 20ms)) ++answers;
  }
  CHECK(answers == 0);
  CHECK(target.received() == 1);
  // u1's new sessions still work after the reload.
  Node tunnel = udp_tunnel(k2022, password, port, target.port());
  UdpSocket fresh;
  first_tunnel_echo(fresh, tunnel.port);
  CHECK(target.received() == 2);
  check_clean_shutdown(tunnel);
  check_clean_shutdown(srv);
}

TEST_CASE("reload: a changed ACL applies to UDP and TCP when the port's keys stay",
          "[integration][reload][udp]") {
  const uint16_t port = pick_free_port();
  ReloadConfig cfg;
  std::filesystem::path acl = cfg.path();
  acl.replace_extension(".acl");
  const std::string config = servers({entry(port, kClassic, "pw-acl")},
                                     std::string(kUdpMode) + R"(, "acl": ")" + acl.string() + "\"");
  cfg.write(config);
  std::ofstream(acl) << "[accept_all]\n";
  Node srv = start_reloadable(cfg, {port});
  UdpTarget target;
  TargetServer tcp_target(TargetBehavior::echo());
  Node udp = udp_tunnel(kClassic, "pw-acl", port, target.port());
  Node tcp =
      start_tunnel(Impl::Ours, {kClassic, "pw-acl", 60, {}}, port, "127.0.0.1", tcp_target.port());
  UdpSocket before;
  first_tunnel_echo(before, udp.port);
  {
    Socket s = connect_tcp("127.0.0.1", tcp.port);
    echo_part(s, 100);
  }
  const size_t received = target.received();
  // The same config file (same keys), the ACL file now blocking the targets' address.
  std::ofstream(acl) << "[accept_all]\n[outbound_block_list]\n127.0.0.1\n";
  REQUIRE(reload(srv, 1));
  settle_reload();
  // A new association (a new source port at ss-tunnel) to that target: refused.
  UdpSocket after;
  CHECK_FALSE(tunnel_echo(after, udp.port, 1000ms));
  CHECK(target.received() == received);
  CHECK(wait_log(srv, "the ACL blocks it (UDP)", 1, 5s));
  // TCP too: the echo target would answer; the connection ends with nothing.
  {
    Socket s = connect_tcp("127.0.0.1", tcp.port);
    send_all(s, random_bytes(100));
    CHECK(recv_until_eof(s, 5000ms).empty());
  }
  check_clean_shutdown(udp);
  check_clean_shutdown(tcp);
  check_clean_shutdown(srv);
}

TEST_CASE("reload: a new udp_timeout expires live associations from the next sweep",
          "[integration][reload][udp]") {
  UdpReloadRig rig("pw-t", 2);
  UdpSocket a;
  first_tunnel_echo(a, rig.tunnel.port);
  REQUIRE(rig.target.sources().size() == 1);
  rig.reload_with(R"(, "udp_timeout": 1)");
  // Idle past the new timeout (1 s, swept once a second): nothing to wait on but the clock.
  std::this_thread::sleep_for(2500ms);
  CHECK(tunnel_echo(a, rig.tunnel.port));
  // ss-server's association expired: a new one, with a new outbound socket (a new source at the
  // target). ss-tunnel's (its own udp_timeout, 60 s) did not.
  CHECK(rig.target.sources().size() == 2);
  rig.stop();
}

TEST_CASE("reload: a lower udp_max_associations evicts down to it and caps new associations",
          "[integration][reload][udp]") {
  // One worker: the cap is shared out among the workers' NATs.
  UdpReloadRig rig("pw-m", 1);
  std::vector<std::unique_ptr<UdpSocket>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<UdpSocket>());
    first_tunnel_echo(*clients.back(), rig.tunnel.port);
  }
  REQUIRE(rig.target.sources().size() == 3);
  rig.reload_with(R"(, "udp_max_associations": 2)");
  // The next sweep (once a second) evicts the least recently used (a) down to the cap.
  std::this_thread::sleep_for(2500ms);
  // Round robin a, b, c twice with a cap of 2: every datagram finds its association gone and
  // makes a new one (a new source at the target), evicting the least recently used.
  for (int round = 0; round < 2; ++round) {
    for (auto& c : clients) CHECK(tunnel_echo(*c, rig.tunnel.port));
  }
  CHECK(rig.target.sources().size() == 3 + 6);
  rig.stop();
}

// ---- the clients' reload ------------------------------------------------------------------------

namespace {

std::string local_config(uint16_t local_port, uint16_t server_port, const std::string& password) {
  return R"({"server": "127.0.0.1", "server_port": )" + std::to_string(server_port) +
         R"(, "local_address": "127.0.0.1", "local_port": )" + std::to_string(local_port) +
         R"(, "method": ")" + kClassic + R"(", "password": ")" + password + "\"}";
}

}  // namespace

TEST_CASE(
    "reload: ss-local on SIGHUP serves through the server its file now names; a file that "
    "changes a fixed key, or is broken, is refused and the old config serves on",
    "[integration][reload]") {
  TargetServer target(TargetBehavior::echo());
  Node a = start_server(Impl::Ours, {kClassic, "pw-server-a", 60, {}});
  Node b = start_server(Impl::Libev, {kClassic, "pw-server-b", 60, {}});
  const uint16_t lp = pick_free_port();
  ReloadConfig cfg;
  cfg.write(local_config(lp, a.port, "pw-server-a"));
  Node loc = start_node(Impl::Ours, "ss-local", {"-c", cfg.path(), "-v"}, lp, "ss-local");
  socks_echo(loc.port, target.port(), 1000);
  // A live session through a, before the reload.
  Socks5Connection live = socks5_connect(loc.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(live.reply.has_value());
  REQUIRE(live.reply->rep == 0x00);
  echo_part(live.socket, 1000);
  // Server a replaced by b (shadowsocks-libev's, another password) in the file.
  cfg.write(local_config(lp, b.port, "pw-server-b"));
  loc.proc->signal(SIGHUP);
  REQUIRE(wait_log(loc, "reload: applied", 1, 10s));
  // The live session finishes on a, byte-exact.
  echo_part(live.socket, 1000);
  live.socket = Socket();
  check_clean_shutdown(a);  // a is gone: only b can serve from now on
  socks_echo(loc.port, target.port(), 1000);
  // Another listen port: fixed at start, refused by name; b serves on.
  cfg.write(local_config(pick_free_port(), a.port, "pw-server-a"));
  loc.proc->signal(SIGHUP);
  REQUIRE(wait_log(loc, "reload: refused: local_address/local_port/locals: cannot change", 1, 10s));
  socks_echo(loc.port, target.port(), 1000);
  // A broken file: refused.
  cfg.write(R"({"server": )");
  loc.proc->signal(SIGHUP);
  REQUIRE(wait_log(loc, "; keeping the running config", 2, 10s));
  socks_echo(loc.port, target.port(), 1000);
  CHECK(count_occurrences(loc.proc->log_text(), "reload: applied") == 1);
  check_clean_shutdown(loc);
  check_clean_shutdown(b);
}

}  // namespace ss::test
