// What an operator sees, through the real binaries at the default log level (no -v): the
// rate-limited warnings (wrong password with the source address, refused targets, an unreachable
// server), the immediate close of a refused target, -q and -v levels, --log-file, SIGHUP (both
// ss-local and ss-server reload), -a USER, -f PIDFILE, -n NOFILE and --version.

#include <pwd.h>
#include <signal.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kMethod = "chacha20-ietf-poly1305";

std::vector<std::string> server_args(uint16_t port, const std::string& password) {
  return {"-s", "127.0.0.1", "-p", std::to_string(port), "-k", password, "-m", kMethod, "-t", "30"};
}
std::vector<std::string> local_args(uint16_t server_port, uint16_t port,
                                    const std::string& password) {
  return {"-s", "127.0.0.1",
          "-p", std::to_string(server_port),
          "-l", std::to_string(port),
          "-k", password,
          "-m", kMethod,
          "-t", "30"};
}

Node server(std::vector<std::string> args, const std::string& label = "ss-server") {
  const uint16_t port = pick_free_port();
  std::vector<std::string> a = server_args(port, "operator-test-password");
  a.insert(a.end(), args.begin(), args.end());
  return start_node(Impl::Ours, "ss-server", a, port, label);
}

// The "Uid:" or "Gid:" line's real id from /proc/PID/status.
long proc_id(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  }
  return -1;
}

// An HTTP fetch through ss-local's SOCKS5 port: the body, or throws.
std::string fetch(uint16_t socks_port, uint16_t web_port) {
  Socks5Connection c = socks5_connect(socks_port, AddrType::IPv4, "127.0.0.1", web_port, 5s);
  REQUIRE(c.reply);
  REQUIRE(c.reply->rep == 0);
  send_all(c.socket, std::string("GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
  Bytes r = recv_until_eof(c.socket, 5s);
  return std::string(r.begin(), r.end());
}

}  // namespace

TEST_CASE("default level: a wrong password is a WARN on ss-server with the client's address",
          "[integration]") {
  Node srv = server({});
  const uint16_t lp = pick_free_port();
  Node loc = start_node(Impl::Ours, "ss-local", local_args(srv.port, lp, "not-the-password"), lp,
                        "ss-local");
  TargetServer web(TargetBehavior::http("hello"));
  // Three clients with the wrong key: the first is logged at once, the others are counted.
  for (int i = 0; i < 3; ++i) {
    Socks5Connection c = socks5_connect(lp, AddrType::IPv4, "127.0.0.1", web.port(), 5s);
    REQUIRE(c.reply);
    send_all(c.socket, std::string("GET / HTTP/1.0\r\n\r\n"));
  }
  REQUIRE(wait_log(srv, "failed authentication"));
  const std::string log = srv.proc->log_text();
  CHECK(log.find("WARN") != std::string::npos);
  CHECK(log.find("from 127.0.0.1:") != std::string::npos);
  CHECK(log.find("password and method") != std::string::npos);
  // Rate-limited: one line for the three, not three.
  std::this_thread::sleep_for(300ms);
  CHECK(count_occurrences(srv.proc->log_text(), "failed authentication") == 1);
  CHECK(web.accepted() == 0);
  // Nothing per connection at the default level.
  CHECK(srv.proc->log_text().find("closed:") == std::string::npos);
  CHECK(loc.proc->log_text().find("closed:") == std::string::npos);
  check_clean_shutdown(loc);
  check_clean_shutdown(srv);
}

TEST_CASE("a refused target is closed at once and logged on both ends", "[integration]") {
  // ss-server's default policy refuses loopback targets (SSRF guard).
  const uint16_t sp = pick_free_port();
  Node srv = start_node(Impl::Ours, "ss-server", server_args(sp, "pw-refused"), sp, "ss-server");
  const uint16_t lp = pick_free_port();
  Node loc = start_node(Impl::Ours, "ss-local", local_args(sp, lp, "pw-refused"), lp, "ss-local");
  TargetServer web(TargetBehavior::http("hello"));
  {
    Socks5Connection c = socks5_connect(lp, AddrType::IPv4, "127.0.0.1", web.port(), 5s);
    REQUIRE(c.reply);
    const auto t0 = Clock::now();
    send_all(c.socket, std::string("GET / HTTP/1.0\r\n\r\n"));
    // Closed within a second, not after the 30 s handshake deadline, with no byte.
    Bytes got;
    try {
      got = recv_until_eof(c.socket, 1000ms);
    } catch (const NetError&) {
      // A reset is a close too.
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    CHECK(got.empty());
    CHECK(ms < 1000ms);
  }
  CHECK(web.accepted() == 0);
  REQUIRE(wait_log(srv, "server: refused target 127.0.0.1:" + std::to_string(web.port())));
  CHECK(srv.proc->log_text().find("allow_private_targets") != std::string::npos);
  REQUIRE(wait_log(loc, "without a byte of reply"));
  check_clean_shutdown(loc);
  check_clean_shutdown(srv);
}

TEST_CASE("default level: ss-local warns that the server cannot be reached", "[integration]") {
  const uint16_t dead = pick_free_port();  // nothing listens there
  const uint16_t lp = pick_free_port();
  Node loc = start_node(Impl::Ours, "ss-local", local_args(dead, lp, "pw"), lp, "ss-local");
  Socks5Connection c = socks5_connect(lp, AddrType::IPv4, "127.0.0.1", 80, 5s);
  REQUIRE(c.reply);
  CHECK(c.reply->rep == 0x05);  // connection refused
  REQUIRE(wait_log(loc, "cannot reach the server 127.0.0.1:" + std::to_string(dead)));
  CHECK(loc.proc->log_text().find("refused") != std::string::npos);
  check_clean_shutdown(loc);
}

TEST_CASE(
    "log levels: -q logs errors only, -v one line per connection naming the destination, -vv debug",
    "[integration]") {
  TargetServer web(TargetBehavior::http("levels"));
  for (const char* level : {"-q", "-v", "-vv"}) {
    INFO(level);
    const uint16_t sp = pick_free_port();
    std::vector<std::string> sa = server_args(sp, "pw-levels");
    sa.push_back("--allow-private-targets");
    sa.push_back(level);
    Node srv = start_node(Impl::Ours, "ss-server", sa, sp, "ss-server");
    const uint16_t lp = pick_free_port();
    std::vector<std::string> la = local_args(sp, lp, "pw-levels");
    la.push_back(level);
    Node loc = start_node(Impl::Ours, "ss-local", la, lp, "ss-local");
    CHECK(fetch(lp, web.port()).find("levels") != std::string::npos);
    const std::string dest = "127.0.0.1:" + std::to_string(web.port());
    if (std::string(level) == "-q") {
      std::this_thread::sleep_for(200ms);
      CHECK(srv.proc->log_text().empty());
      CHECK(loc.proc->log_text().empty());
    } else {
      // ss-local's close line names the destination.
      CHECK(wait_log(loc, "local: " + dest + " closed: "));
      CHECK(wait_log(srv, "server: " + dest + " closed: "));
      const bool debug = srv.proc->log_text().find("DEBUG") != std::string::npos;
      CHECK(debug == (std::string(level) == "-vv"));
    }
    check_clean_shutdown(loc);
    check_clean_shutdown(srv);
  }
}

TEST_CASE("log file: --log-file appends the log lines to a file", "[integration]") {
  const std::filesystem::path file = test_log_path("log-file");
  std::filesystem::remove(file);
  Node srv = server({"--log-file", file.string()});
  check_clean_shutdown(srv);
  std::ifstream f(file);
  std::stringstream text;
  text << f.rdbuf();
  CHECK(text.str().find("ss-server listening on TCP 127.0.0.1 port " + std::to_string(srv.port)) !=
        std::string::npos);
  CHECK(srv.proc->log_text().find("listening") == std::string::npos);  // not on stderr
}

TEST_CASE("SIGHUP: ss-local and ss-server reload the same flags and serve on", "[integration]") {
  TargetServer web(TargetBehavior::http("after hup"));
  Node srv = server({"--allow-private-targets"});
  const uint16_t lp = pick_free_port();
  Node loc = start_node(Impl::Ours, "ss-local", local_args(srv.port, lp, "operator-test-password"),
                        lp, "ss-local");
  srv.proc->signal(SIGHUP);
  loc.proc->signal(SIGHUP);
  REQUIRE(wait_log(srv, "SIGHUP"));
  REQUIRE(wait_log(loc, "SIGHUP"));
  CHECK(wait_log(srv, "reload: applied in"));  // no -c: the flags again, nothing changed
  CHECK(wait_log(srv, "no port or user changed"));
  CHECK(wait_log(loc, "reload: applied in"));  // the same flags: the same server
  CHECK(srv.proc->running());
  CHECK(loc.proc->running());
  CHECK(fetch(lp, web.port()).find("after hup") != std::string::npos);
  check_clean_shutdown(loc);
  check_clean_shutdown(srv);
}

TEST_CASE("privileges: -a nobody drops root after binding and still serves", "[integration]") {
  if (geteuid() != 0) {
    WARN("not root: -a cannot switch users; skipped");
    return;
  }
  const passwd* pw = getpwnam("nobody");
  REQUIRE(pw != nullptr);
  const long uid = static_cast<long>(pw->pw_uid);
  const long gid = static_cast<long>(pw->pw_gid);
  TargetServer web(TargetBehavior::http("as nobody"));
  Node srv = server({"--allow-private-targets", "-a", "nobody"});
  const uint16_t lp = pick_free_port();
  Node loc = start_node(
      Impl::Ours, "ss-local",
      [&] {
        auto a = local_args(srv.port, lp, "operator-test-password");
        a.insert(a.end(), {"-a", "nobody"});
        return a;
      }(),
      lp, "ss-local");
  for (Node* n : {&srv, &loc}) {
    // The port accepts connections (into the backlog) a moment before the switch.
    REQUIRE(wait_log(*n, "running as user nobody"));
    CHECK(proc_id(n->proc->pid(), "Uid:") == uid);
    CHECK(proc_id(n->proc->pid(), "Gid:") == gid);
  }
  CHECK(fetch(lp, web.port()).find("as nobody") != std::string::npos);
  check_clean_shutdown(loc);
  check_clean_shutdown(srv);
}

TEST_CASE("privileges: -a with an unknown user exits 1 naming the key", "[integration]") {
  const uint16_t port = pick_free_port();
  std::vector<std::string> argv = {binary_path(Impl::Ours, "ss-server")};
  auto a = server_args(port, "pw");
  argv.insert(argv.end(), a.begin(), a.end());
  argv.insert(argv.end(), {"-a", "no-such-user-for-ss-tests"});
  auto p = spawn(argv, "ss-server");
  auto st = p->wait_exit(5s);
  REQUIRE(st);
  CHECK(*st == 1);
  CHECK(p->log_text().find("user: no such user") != std::string::npos);
}

TEST_CASE("daemon: -f PIDFILE runs in the background and writes the pid; -n raises the file limit",
          "[integration]") {
  const std::filesystem::path pid_file = test_log_path("pidfile");
  std::filesystem::remove(pid_file);
  const uint16_t port = pick_free_port();
  std::vector<std::string> argv = {binary_path(Impl::Ours, "ss-server")};
  auto a = server_args(port, "pw-daemon");
  argv.insert(argv.end(), a.begin(), a.end());
  argv.insert(argv.end(), {"-f", pid_file.string(), "-n", "4242"});
  auto starter = spawn(argv, "ss-server -f");
  // The foreground process exits 0 once the daemon listens.
  auto st = starter->wait_exit(10s);
  REQUIRE(st);
  CHECK(*st == 0);
  REQUIRE(std::filesystem::exists(pid_file));
  std::ifstream f(pid_file);
  pid_t pid = 0;
  f >> pid;
  REQUIRE(pid > 1);
  CHECK(pid != starter->pid());
  CHECK(kill(pid, 0) == 0);
  CHECK(wait_until_listening(port, 5s));
  std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
  std::string line, open_files;
  while (std::getline(limits, line)) {
    if (line.rfind("Max open files", 0) == 0) open_files = line;
  }
  CHECK(open_files.find("4242") != std::string::npos);
  CHECK(kill(pid, SIGTERM) == 0);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = kill(pid, 0) != 0;
    if (!gone) std::this_thread::sleep_for(50ms);
  }
  CHECK(gone);
  CHECK_FALSE(std::filesystem::exists(pid_file));  // removed on a clean exit
}

TEST_CASE("daemon: with -f a start-up error reaches the terminal and the exit status",
          "[integration]") {
  // The port is taken: the background child cannot bind, and the foreground process says so.
  TargetServer busy(TargetBehavior::echo());
  std::vector<std::string> argv = {binary_path(Impl::Ours, "ss-server")};
  auto a = server_args(busy.port(), "pw");
  argv.insert(argv.end(), a.begin(), a.end());
  argv.insert(argv.end(), {"-f", test_log_path("pidfile-fail").string()});
  auto p = spawn(argv, "ss-server -f");
  auto st = p->wait_exit(10s);
  REQUIRE(st);
  CHECK(*st == 1);
  CHECK(p->log_text().find("cannot listen on TCP") != std::string::npos);
}

TEST_CASE("version: -V and --version print the version and the crypto libraries", "[integration]") {
  for (const char* prog : {"ss-server", "ss-local", "ss-tunnel"}) {
    for (const char* flag : {"-V", "--version"}) {
      INFO(prog << " " << flag);
      auto p = spawn({binary_path(Impl::Ours, prog), flag}, prog);
      auto st = p->wait_exit(5s);
      REQUIRE(st);
      CHECK(*st == 0);
      const std::string out = p->log_text();
      CHECK(out.find(std::string(prog) + " (shadowsocks-uv) ") == 0);
      CHECK(out.find("OpenSSL") != std::string::npos);
      CHECK(out.find("libsodium") != std::string::npos);
      CHECK(out.find("libuv") != std::string::npos);
      CHECK(out.find("BLAKE3") != std::string::npos);
    }
  }
}

}  // namespace ss::test
