// ss-server's hot reload (issue 14 item 5) through the real binaries on loopback: SIGHUP adds a
// port, a 2022 (SIP023) user and a classic key-trial user that work at once; a removed user is
// refused for new connections while its live transfer finishes byte-exact (or is cut with
// --reload-drop-removed); a bad config is refused whole and the old one keeps serving; a first
// flight recorded before a reload is refused as a replay after it; and 20 concurrent verified
// streams (shadowsocks-libev's ss-local and ours) lose nothing while the config changes 25 times.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
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
                      std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"-c",          cfg.path(),
                                   "-v",          "-t",
                                   "10",          "--workers",
                                   "2",           "--allow-private-targets",
                                   "--state-dir", test_state_dir().string()};
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
               R"(, "udp_timeout": 7)"),
       "reload: refused: udp_timeout: cannot change while running"},
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

}  // namespace ss::test
