// Self-tests of the harness (tests/support): processes are always reaped, logs are captured, the
// target server and socket helpers move bytes exactly. No proxy involved.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

// True once `pid` is gone and reaped (no zombie left behind): it is no longer our child.
bool reaped(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) < 0 && errno == ECHILD;
}

}  // namespace

TEST_CASE("harness: Process exit status, log capture and cleanup", "[integration][support]") {
  SECTION("exit code and both output streams in the log") {
    auto p = spawn({"sh", "-c", "echo out; echo err >&2; exit 3"}, "sh");
    CHECK(p->wait_exit(5s) == std::optional<int>(3));
    CHECK_FALSE(p->running());
    const auto lines = nonempty_lines(p->log_text());
    CHECK(lines == std::vector<std::string>{"out", "err"});
  }
  SECTION("a signal gives 128 + signo") {
    auto p = spawn({"sh", "-c", "kill -KILL $$"}, "sh");
    CHECK(p->wait_exit(5s) == std::optional<int>(128 + SIGKILL));
  }
  SECTION("wait_exit times out on a running child, destruction stops and reaps it") {
    pid_t pid = -1;
    {
      auto p = spawn({"sleep", "100"}, "sleep");
      pid = p->pid();
      CHECK(p->running());
      CHECK_FALSE(p->wait_exit(50ms).has_value());
    }
    CHECK(reaped(pid));
  }
  SECTION("a child that ignores SIGTERM is killed after the grace period") {
    auto p = spawn({"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}, "sh");
    // Wait for the trap to be in place before signalling.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (p->log_text().find("ready") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);  // the only readiness signal is the log line
    }
    bool killed = false;
    const int status = p->stop(300ms, &killed);
    CHECK(killed);
    CHECK(status == 128 + SIGKILL);
    CHECK(reaped(p->pid()));
  }
  SECTION("a missing program throws") {
    CHECK_THROWS(spawn({"/nonexistent/ss-nothing"}, "missing"));
  }
}

TEST_CASE("harness: target modes and socket helpers", "[integration][support]") {
  SECTION("echo, byte-exact, FIN after the client's FIN") {
    TargetServer t(TargetBehavior::echo());
    Socket s = connect_tcp("127.0.0.1", t.port());
    const Bytes data = random_bytes(3 << 20);
    const TransferResult r = duplex_transfer(s, data, data.size(), 10s, /*fin_after_send=*/true);
    CHECK(to_hex(r.received_sha256) == sha256_hex(data));
    CHECK(recv_until_eof(s, 5s).empty());
    const auto reports = t.wait_reports(1, 5s);
    CHECK(reports[0].error.empty());
    CHECK(reports[0].received == data.size());
  }
  SECTION("sink hashes what it receives") {
    TargetServer t(TargetBehavior::sink());
    Socket s = connect_tcp("127.0.0.1", t.port());
    const Bytes data = random_bytes(100000);
    send_all(s, data);
    s.shutdown_write();
    const auto reports = t.wait_reports(1, 5s);
    CHECK(to_hex(reports[0].received_sha256) == sha256_hex(data));
  }
  SECTION("fin_first sends N then FIN and still receives") {
    TargetServer t(TargetBehavior::fin_first(70000));
    Socket s = connect_tcp("127.0.0.1", t.port());
    const Bytes got = recv_until_eof(s, 5s);
    CHECK(got.size() == 70000);
    send_all(s, std::string("after FIN"));
    s.shutdown_write();
    const auto reports = t.wait_reports(1, 5s);
    CHECK(reports[0].received_head == "after FIN");
    CHECK(to_hex(reports[0].sent_sha256) == sha256_hex(got));
    CHECK(wait_peer_closed(s, 5s));
  }
  SECTION("recv_exact fails on early EOF, duplex fails on a stall") {
    TargetServer t(TargetBehavior::source(10));
    Socket s = connect_tcp("127.0.0.1", t.port());
    CHECK_THROWS_AS(recv_exact(s, 11, 5s), NetError);
    TargetServer sink(TargetBehavior::sink());
    Socket s2 = connect_tcp("127.0.0.1", sink.port());
    CHECK_THROWS_AS(duplex_transfer(s2, Bytes(10), 1, 200ms), NetError);
  }
  SECTION("pick_free_port never repeats and the port is bindable") {
    const uint16_t a = pick_free_port();
    const uint16_t b = pick_free_port();
    CHECK(a != b);
    CHECK_FALSE(wait_until_listening(a, 0ms));
    TargetServer t(TargetBehavior::echo());
    CHECK(wait_until_listening(t.port(), 1s));
  }
  SECTION("SOCKS5 request encoding") {
    CHECK(socks5_request(1, AddrType::IPv4, "127.0.0.1", 0x1F90) ==
          Bytes{5, 1, 0, 1, 127, 0, 0, 1, 0x1F, 0x90});
    CHECK(socks5_request(1, AddrType::Domain, "ab", 80) == Bytes{5, 1, 0, 3, 2, 'a', 'b', 0, 80});
    const Bytes v6 = socks5_request(2, AddrType::IPv6, "::1", 443);
    REQUIRE(v6.size() == 4 + 16 + 2);
    CHECK(v6[1] == 2);
    CHECK(v6[19] == 1);
  }
  SECTION("SHA-256 of a known string") {
    const std::string abc = "abc";
    CHECK(sha256_hex(std::span(reinterpret_cast<const uint8_t*>(abc.data()), abc.size())) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }
}

}  // namespace ss::test
