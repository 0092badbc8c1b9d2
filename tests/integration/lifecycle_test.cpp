// Worker threads and process lifecycle of our binaries: many connections over --workers 4, and
// the graceful shutdown (SIGTERM/SIGINT: stop accepting, close what is not relaying, let relaying
// sessions finish for min(timeout, 10 s), exit 0; a second signal closes everything at once).

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

using Clock = std::chrono::steady_clock;

Millis since(Clock::time_point t) {
  return std::chrono::duration_cast<Millis>(Clock::now() - t);
}

// Voluntary context switches of each thread of `pid`, by thread id. A thread of an event loop
// switches once each time it wakes up from epoll_wait, so this shows which threads did work.
std::map<int, long> thread_wakeups(pid_t pid) {
  std::map<int, long> out;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& entry : std::filesystem::directory_iterator(tasks)) {
    std::ifstream status(entry.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        out[std::stoi(entry.path().filename().string())] = std::stol(line.substr(24));
      }
    }
  }
  return out;
}

// Waits until `pid` has at least `n` threads. The TCP listener accepts connections (into its
// backlog) before the worker threads exist, so the harness's readiness check can come first.
bool wait_threads(pid_t pid, size_t n, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (thread_wakeups(pid).size() >= n) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);  // no notification for a new thread: poll /proc
  }
}

// Waits until `pid` catches `signo` (its SigCgt mask in /proc/<pid>/status). Our binaries install
// their handlers after starting the workers, so a signal sent too early would kill them.
bool wait_catches_signal(pid_t pid, int signo, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("SigCgt:", 0) == 0) {
        const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
        if ((mask >> (signo - 1)) & 1) return true;
      }
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);  // no notification for a new handler: poll /proc
  }
}

// How many of the process's first `workers` threads (after the main thread; threads started
// later, such as libuv's thread pool, have higher ids) woke up at least `min_wakeups` times
// between `before` and `after`.
int busy_workers(pid_t pid, const std::map<int, long>& before, const std::map<int, long>& after,
                 int workers, long min_wakeups) {
  std::vector<int> tids;
  for (const auto& [tid, n] : before) {
    if (tid != pid) tids.push_back(tid);
  }
  std::sort(tids.begin(), tids.end());
  int busy = 0;
  for (int i = 0; i < workers && i < static_cast<int>(tids.size()); ++i) {
    auto it = after.find(tids[i]);
    const long delta = it == after.end() ? 0 : it->second - before.at(tids[i]);
    UNSCOPED_INFO("pid " << pid << " thread " << tids[i] << ": " << delta << " wakeups");
    if (delta >= min_wakeups) ++busy;
  }
  return busy;
}

}  // namespace

TEST_CASE("workers: 200 concurrent connections through ss-local and ss-server with --workers 4",
          "[integration][workers]") {
  constexpr size_t kConnections = 200;
  constexpr int kWorkers = 4;
  const NodeOptions opt{"aes-128-gcm", random_token(24), 60, {"--workers", "4"}};
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server(Impl::Ours, opt);
  Node local = start_local(Impl::Ours, opt, srv.port);
  // The main thread and one thread per worker (libuv's thread pool may add more).
  REQUIRE(wait_threads(srv.proc->pid(), kWorkers + 1, 5s));
  REQUIRE(wait_threads(local.proc->pid(), kWorkers + 1, 5s));
  const auto srv_before = thread_wakeups(srv.proc->pid());
  const auto local_before = thread_wakeups(local.proc->pid());

  const size_t failed = concurrent_socks_echo(local.port, target.port(), kConnections,
                                              [](size_t i) { return 2048 + (i * 131) % 30000; });
  CHECK(failed == 0);
  CHECK(target.accepted() == kConnections);

  // SO_REUSEPORT spreads connections by a hash of the addresses: with 200 of them every worker
  // gets some (the chance that one of four gets none is 4 * (3/4)^200). Require three of four
  // to have woken up repeatedly, in both processes.
  const auto srv_after = thread_wakeups(srv.proc->pid());
  const auto local_after = thread_wakeups(local.proc->pid());
  CHECK(busy_workers(srv.proc->pid(), srv_before, srv_after, kWorkers, 5) >= 3);
  CHECK(busy_workers(local.proc->pid(), local_before, local_after, kWorkers, 5) >= 3);

  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

TEST_CASE("shutdown: SIGTERM refuses new connections and lets a transfer in progress finish",
          "[integration][shutdown]") {
  constexpr size_t kTotal = 2u << 20;
  constexpr size_t kFirst = 64 * 1024;
  const NodeOptions opt{"chacha20-ietf-poly1305", random_token(24), 60, {}};  // grace: 10 s
  // 2 MiB over 1.5 s: still flowing when the signal comes.
  TargetServer target(TargetBehavior::paced_source(kTotal, 1500ms));
  Node srv = start_server(Impl::Ours, opt);
  Node local = start_local(Impl::Ours, opt, srv.port);

  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  Bytes received = recv_exact(conn.socket, kFirst, 10s);
  // A connection to ss-server that has sent nothing: not relaying, so closed at once.
  Socket idle = connect_tcp("127.0.0.1", srv.port);

  REQUIRE(wait_catches_signal(srv.proc->pid(), SIGTERM, 5s));
  const auto signalled = Clock::now();
  srv.proc->signal(SIGTERM);

  // New connections are refused right away (the listener closes once the workers hear of it).
  bool refused = false;
  while (!refused && since(signalled) < 1s) {
    try {
      connect_tcp("127.0.0.1", srv.port, 200ms);
      std::this_thread::sleep_for(5ms);  // accepted before the listener closed: try again
    } catch (const NetError&) {
      refused = true;
    }
  }
  CHECK(refused);
  INFO("refused after " << since(signalled).count() << " ms");
  CHECK_THROWS_AS(connect_tcp("127.0.0.1", srv.port, 200ms), NetError);
  CHECK(wait_peer_closed(idle, 2s));

  // The transfer goes on to the end, byte-exact.
  const Bytes rest = recv_until_eof(conn.socket, 10s);
  const auto transfer_end = Clock::now();
  received.insert(received.end(), rest.begin(), rest.end());
  CHECK(received.size() == kTotal);
  CHECK(std::chrono::duration_cast<Millis>(transfer_end - signalled) > 500ms);
  CHECK(srv.proc->running());
  conn.socket.reset();  // our FIN: the session is done

  const auto status = srv.proc->wait_exit(3s);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  const auto exit_after = std::chrono::duration_cast<Millis>(Clock::now() - transfer_end);
  INFO("exited " << exit_after.count() << " ms after the transfer ended, "
                 << since(signalled).count() << " ms after SIGTERM");
  CHECK(exit_after < 1500ms);
  CHECK(since(signalled) < 5s);

  const auto reports = target.wait_reports(1, 5s);
  CHECK(reports.at(0).error.empty());
  CHECK(reports.at(0).sent == kTotal);
  CHECK(to_hex(reports.at(0).sent_sha256) == sha256_hex(received));
  const std::string log = srv.proc->log_text();
  CHECK(log.find("Sanitizer") == std::string::npos);
  CHECK(log.find("runtime error:") == std::string::npos);

  check_clean_shutdown(local);
}

TEST_CASE("shutdown: a relayed connection still open is closed after the grace min(timeout, 10 s)",
          "[integration][shutdown]") {
  // -t 2 on ss-server: the grace is 2 s. ss-local keeps the default 60 s.
  const std::string password = random_token(24);
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server(Impl::Ours, {"aes-256-gcm", password, 2, {}});
  Node local = start_local(Impl::Ours, {"aes-256-gcm", password, 60, {}}, srv.port);
  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  const Bytes hello = random_bytes(100);
  CHECK(to_hex(duplex_transfer(conn.socket, hello, hello.size(), 5s).received_sha256) ==
        sha256_hex(hello));

  std::atomic<bool> stop{false};
  std::thread trickle;
  SECTION("idle") {}
  SECTION("trickling, so the idle timeout never fires and only the grace can end it") {
    trickle = std::thread([&] {
      // One byte each way every 200 ms until the proxy closes the connection.
      const Bytes one = {0x42};
      try {
        while (!stop.load()) {
          send_all(conn.socket, one, 1s);
          recv_exact(conn.socket, 1, 1s);
          std::this_thread::sleep_for(200ms);
        }
      } catch (const NetError&) {
      }
    });
  }

  REQUIRE(wait_catches_signal(srv.proc->pid(), SIGTERM, 5s));
  const auto signalled = Clock::now();
  srv.proc->signal(SIGTERM);
  const auto status = srv.proc->wait_exit(6s);
  const Millis took = since(signalled);
  stop = true;
  if (trickle.joinable()) trickle.join();
  INFO("ss-server exited " << took.count() << " ms after SIGTERM");
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(took >= 1500ms);
  CHECK(took <= 4s);
  // ss-local passes the close on to the client.
  CHECK(wait_peer_closed(conn.socket, 2s));
  conn.socket.reset();
  check_clean_shutdown(local);
}

TEST_CASE("shutdown: a second signal closes everything at once", "[integration][shutdown]") {
  const NodeOptions opt{"chacha20-ietf-poly1305", random_token(24), 60, {}};  // grace: 10 s
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server(Impl::Ours, opt);
  Node local = start_local(Impl::Ours, opt, srv.port);
  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  const Bytes hello = random_bytes(100);
  CHECK(to_hex(duplex_transfer(conn.socket, hello, hello.size(), 5s).received_sha256) ==
        sha256_hex(hello));

  REQUIRE(wait_catches_signal(srv.proc->pid(), SIGINT, 5s));
  REQUIRE(wait_catches_signal(srv.proc->pid(), SIGTERM, 5s));
  srv.proc->signal(SIGINT);
  // The first signal is handled (it logs so); the relayed connection keeps the process alive.
  const auto deadline = Clock::now() + 5s;
  while (srv.proc->log_text().find("received SIGINT") == std::string::npos &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);  // the log line is the only sign the signal was handled
  }
  REQUIRE(srv.proc->log_text().find("received SIGINT") != std::string::npos);
  CHECK_FALSE(srv.proc->wait_exit(300ms).has_value());

  const auto second = Clock::now();
  srv.proc->signal(SIGTERM);
  const auto status = srv.proc->wait_exit(3s);
  INFO("exited " << since(second).count() << " ms after the second signal");
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(since(second) < 1s);
  CHECK(wait_peer_closed(conn.socket, 2s));
  conn.socket.reset();
  check_clean_shutdown(local);
}

}  // namespace ss::test
