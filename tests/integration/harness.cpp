#include "tests/integration/harness.h"

#include <poll.h>
#include <sys/socket.h>

// Needed for Catch::TestEventListenerBase (the reporter interfaces) outside the main TU.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

#include <algorithm>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#ifndef SS_BIN_DIR
#error "SS_BIN_DIR must name the folder holding our ss-local, ss-server and ss-tunnel"
#endif
#ifndef SS_TEST_LOG_DIR
#error "SS_TEST_LOG_DIR must name the folder for per-test process logs"
#endif

namespace ss::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kReadyTimeout = 10s;
constexpr int kStartAttempts = 3;

// When an assertion fails, every child process that exists at that moment prints its log once it
// has been stopped (Process also does so when destroyed during unwinding, which covers unexpected
// exceptions). Each log prints only once.
struct LogDumpListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!stats.assertionResult.isOk()) {
      Process::for_each_live([](Process& p) { p.request_log_dump(); });
    }
    return true;
  }
};

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    out += ok ? c : '_';
  }
  if (out.size() > 100) out.resize(100);
  return out;
}

std::vector<std::string> common_args(const NodeOptions& opt, uint16_t server_port) {
  std::vector<std::string> args = {
      "-s", "127.0.0.1", "-p", std::to_string(server_port),   "-k", opt.password,
      "-m", opt.method,  "-t", std::to_string(opt.timeout_s), "-vv"};
  return args;
}

// Starts the node; nullopt if it exited before listening because the port was taken meanwhile
// (another test picked it too), so the caller can retry with a new port. FAILs otherwise.
std::optional<Node> try_start(Impl impl, const std::string& program,
                              const std::vector<std::string>& args, uint16_t listen_port,
                              const std::string& label, bool retry_on_port_in_use) {
  std::vector<std::string> argv = {binary_path(impl, program)};
  argv.insert(argv.end(), args.begin(), args.end());
  // Our binaries keep their replay state beside the test's logs, not in the working directory.
  if (impl == Impl::Ours && std::find(args.begin(), args.end(), "--state-dir") == args.end()) {
    argv.push_back("--state-dir");
    argv.push_back(test_state_dir().string());
  }
  Node node;
  node.impl = impl;
  node.port = listen_port;
  node.proc = spawn(argv, label);
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  for (;;) {
    if (auto st = node.proc->wait_exit(0ms)) {
      const std::string log = node.proc->log_text();
      if (retry_on_port_in_use && log.find("in use") != std::string::npos) return std::nullopt;
      FAIL(label << " exited with status " << *st << " before listening on 127.0.0.1:"
                 << listen_port << "\n$ " << node.proc->command_line() << "\n"
                 << log);
    }
    try {
      connect_tcp("127.0.0.1", listen_port, 500ms);
      return node;
    } catch (const NetError&) {
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      FAIL(label << " is not listening on 127.0.0.1:" << listen_port << " after 10 s\n$ "
                 << node.proc->command_line());
    }
    // A listening socket gives no notification we could wait on: retry the connect.
    std::this_thread::sleep_for(10ms);
  }
}

template <typename MakeArgs>
Node start_with_free_port(Impl impl, const std::string& program, const std::string& label,
                          MakeArgs make_args) {
  for (int attempt = 1;; ++attempt) {
    const uint16_t port = pick_free_port();
    auto node = try_start(impl, program, make_args(port), port, label, attempt < kStartAttempts);
    if (node) return std::move(*node);
  }
}

// Arguments our ss-server gets in addition to libev's: every test target is on loopback, which
// our SSRF guard refuses unless allowed explicitly.
const std::vector<std::string>& ours_server_extra_args() {
  static const std::vector<std::string> extra = {"--allow-private-targets"};
  return extra;
}

}  // namespace

const char* impl_name(Impl impl) {
  return impl == Impl::Ours ? "ours" : "libev";
}

std::string binary_path(Impl impl, const std::string& program) {
  return (impl == Impl::Ours ? std::string(SS_BIN_DIR) : std::string("/usr/bin")) + "/" + program;
}

std::filesystem::path test_log_path(const std::string& label) {
  static std::mutex mu;
  static std::map<std::string, int> counters;
  const std::string test = sanitize(Catch::getResultCapture().getCurrentTestName());
  const std::filesystem::path dir = std::filesystem::path(SS_TEST_LOG_DIR) / test;
  std::lock_guard lock(mu);
  int& n = counters[test];
  if (n == 0) std::filesystem::remove_all(dir);  // logs of an earlier run
  ++n;
  std::ostringstream name;
  name << (n < 10 ? "0" : "") << n << "-" << sanitize(label) << ".log";
  return dir / name.str();
}

std::filesystem::path test_state_dir() {
  return std::filesystem::path(SS_TEST_LOG_DIR) /
         sanitize(Catch::getResultCapture().getCurrentTestName()) / "state";
}

std::unique_ptr<Process> spawn(std::vector<std::string> argv, const std::string& label) {
  return std::make_unique<Process>(std::move(argv), test_log_path(label), label);
}

Node start_node(Impl impl, const std::string& program, std::vector<std::string> args,
                uint16_t listen_port, const std::string& label) {
  return std::move(*try_start(impl, program, args, listen_port, label, false));
}

Node start_server(Impl impl, const NodeOptions& opt) {
  const std::string label = std::string("ss-server-") + impl_name(impl) + "-" + opt.method;
  return start_with_free_port(impl, "ss-server", label, [&](uint16_t port) {
    auto args = common_args(opt, port);
    if (impl == Impl::Ours) {
      const auto& extra = ours_server_extra_args();
      args.insert(args.end(), extra.begin(), extra.end());
    }
    args.insert(args.end(), opt.extra_args.begin(), opt.extra_args.end());
    return args;
  });
}

Node start_local(Impl impl, const NodeOptions& opt, uint16_t server_port) {
  const std::string label = std::string("ss-local-") + impl_name(impl) + "-" + opt.method;
  return start_with_free_port(impl, "ss-local", label, [&](uint16_t port) {
    auto args = common_args(opt, server_port);
    args.insert(args.end(), {"-b", "127.0.0.1", "-l", std::to_string(port)});
    args.insert(args.end(), opt.extra_args.begin(), opt.extra_args.end());
    return args;
  });
}

Node start_tunnel(Impl impl, const NodeOptions& opt, uint16_t server_port,
                  const std::string& target_host, uint16_t target_port) {
  const std::string label = std::string("ss-tunnel-") + impl_name(impl) + "-" + opt.method;
  return start_with_free_port(impl, "ss-tunnel", label, [&](uint16_t port) {
    auto args = common_args(opt, server_port);
    args.insert(args.end(), {"-b", "127.0.0.1", "-l", std::to_string(port), "-L",
                             target_host + ":" + std::to_string(target_port)});
    args.insert(args.end(), opt.extra_args.begin(), opt.extra_args.end());
    return args;
  });
}

void check_clean_shutdown(Node& node, std::chrono::milliseconds grace) {
  if (!node.proc) return;
  bool killed = false;
  const int status = node.proc->stop(grace, &killed);
  if (node.impl != Impl::Ours) return;
  const std::string log = node.proc->log_text();
  INFO(node.proc->label() << " (exit status " << status << ")");
  CHECK_FALSE(killed);
  CHECK((status == 0 || status == 128 + 15));
  CHECK(log.find("Sanitizer") == std::string::npos);
  CHECK(log.find("runtime error:") == std::string::npos);
}

std::vector<std::string> nonempty_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

size_t count_occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// Waits until `needle` occurs at least `count` times in the node's log.
bool wait_log(const Node& node, const std::string& needle, size_t count,
              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (count_occurrences(node.proc->log_text(), needle) >= count) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(10));  // a log file gives no notification to wait on
  }
}

void socks_echo(uint16_t socks_port, uint16_t target_port, size_t n) {
  INFO("echo of " << n << " bytes through SOCKS port " << socks_port << " to target port "
                  << target_port);
  auto conn = socks5_connect(socks_port, AddrType::IPv4, "127.0.0.1", target_port);
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  const Bytes payload = random_bytes(n);
  const TransferResult r = duplex_transfer(conn.socket, payload, n, std::chrono::seconds(10));
  CHECK(r.received == n);
  CHECK(to_hex(r.received_sha256) == sha256_hex(payload));
}

bool no_byte_within(const Socket& s, Millis window) {
  pollfd p{s.fd(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(window.count())) <= 0) return true;
  uint8_t b;
  return ::recv(s.fd(), &b, 1, MSG_DONTWAIT) <= 0;
}

void check_refused(uint16_t socks_port, const TargetServer& target) {
  auto conn = socks5_connect(socks_port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(conn.reply.has_value());
  if (conn.reply->rep != 0x00) return;  // refused outright: fine too
  send_all(conn.socket, std::string("hello?"));
  CHECK(no_byte_within(conn.socket, 1500ms));
}

std::string users_json(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) {
    out += std::string(i ? ", " : "") + R"({"name": ")" + names[i] + R"(", "password": "pw-)" +
           names[i] + R"("})";
  }
  return out + "]";
}

Bytes record_first_flight(uint16_t socks_port, uint16_t target_port, TargetServer& recorder) {
  auto conn = socks5_connect(socks_port, AddrType::IPv4, "127.0.0.1", target_port);
  REQUIRE(conn.reply.has_value());
  send_all(conn.socket, std::string("recorded request"));
  std::this_thread::sleep_for(300ms);
  conn.socket = Socket();
  const auto reports = recorder.wait_reports(1, 10s);
  Bytes flight(reports[0].received_head.begin(), reports[0].received_head.end());
  REQUIRE(flight.size() > 32 + 18);
  return flight;
}

void check_replay_refused(const Node& srv, uint16_t port, const Bytes& flight) {
  const Socket again = connect_tcp("127.0.0.1", port);
  send_all(again, flight);
  CHECK(no_byte_within(again, 1000ms));
  CHECK(wait_log(srv, "refused a replayed request from 127.0.0.1"));
}

size_t concurrent_socks_echo(uint16_t socks_port, uint16_t target_port, size_t n,
                             const std::function<size_t(size_t)>& payload_size) {
  std::vector<std::string> errors(n);
  std::latch start(static_cast<std::ptrdiff_t>(n));
  std::vector<std::thread> clients;
  for (size_t i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      try {
        const Bytes payload = random_bytes(payload_size(i));
        start.arrive_and_wait();
        auto conn = socks5_connect(socks_port, AddrType::IPv4, "127.0.0.1", target_port, 30s);
        if (!conn.reply || conn.reply->rep != 0) {
          errors[i] = "SOCKS5 CONNECT failed";
          return;
        }
        const TransferResult r = duplex_transfer(conn.socket, payload, payload.size(), 30s);
        if (to_hex(r.received_sha256) != sha256_hex(payload)) errors[i] = "echo differs";
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : clients) t.join();
  size_t failed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      ++failed;
      UNSCOPED_INFO("connection " << i << ": " << errors[i]);
    }
  }
  return failed;
}

}  // namespace ss::test

using SsLogDumpListener = ss::test::LogDumpListener;
CATCH_REGISTER_LISTENER(SsLogDumpListener)
