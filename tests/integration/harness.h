#pragma once
// Starting ss-server / ss-local / ss-tunnel (ours or shadowsocks-libev's) for integration tests.
// Processes log to SS_TEST_LOG_DIR/<test name>/NN-<label>.log; when an assertion fails, the logs
// of all live processes are printed (see the listener in harness.cpp).

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace ss::test {

enum class Impl { Ours, Libev };

const char* impl_name(Impl impl);
// Our binaries live in SS_BIN_DIR, libev's in /usr/bin.
std::string binary_path(Impl impl, const std::string& program);

inline constexpr std::array<const char*, 5> kAeadCiphers = {"aes-128-gcm", "aes-192-gcm",
                                                            "aes-256-gcm", "chacha20-ietf-poly1305",
                                                            "xchacha20-ietf-poly1305"};

// A fresh log file path for this test: SS_TEST_LOG_DIR/<sanitized test name>/NN-<label>.log.
std::filesystem::path test_log_path(const std::string& label);

// SS_TEST_LOG_DIR/<sanitized test name>/state: our binaries' --state-dir unless a test gives one.
std::filesystem::path test_state_dir();

// A started proxy process and the port it listens on.
struct Node {
  Impl impl = Impl::Ours;
  std::unique_ptr<Process> proc;
  uint16_t port = 0;
};

struct NodeOptions {
  std::string method;
  std::string password;
  int timeout_s = 60;
  std::vector<std::string> extra_args;
};

// Each start_* picks a free port, spawns the binary with libev's flags, and REQUIREs that the
// port accepts connections within 10 s (failing early, with the log, if the process exits).
Node start_server(Impl impl, const NodeOptions& opt);
Node start_local(Impl impl, const NodeOptions& opt, uint16_t server_port);
Node start_tunnel(Impl impl, const NodeOptions& opt, uint16_t server_port,
                  const std::string& target_host, uint16_t target_port);
// Same with a given local port for ss-local (e.g. to point it at a dead server port).
Node start_node(Impl impl, const std::string& program, std::vector<std::string> args,
                uint16_t listen_port, const std::string& label);

// Spawns any program with its output in a test log.
std::unique_ptr<Process> spawn(std::vector<std::string> argv, const std::string& label);

// For our binaries: SIGTERM must end the process within `grace` with status 0 (or the default
// SIGTERM status 143), and the log must hold no sanitizer report. CHECKs, does not throw.
// Our binaries let connections that are still relaying finish for min(timeout, 10 s) after
// SIGTERM: close them first, or pass a longer grace.
void check_clean_shutdown(Node& node, std::chrono::milliseconds grace = std::chrono::seconds(2));

// How often `needle` occurs in `text` (non-overlapping).
size_t count_occurrences(const std::string& text, const std::string& needle);
// Waits until `needle` occurs at least `count` times in the node's log, or `timeout` passes.
bool wait_log(const Node& node, const std::string& needle, size_t count = 1,
              std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Log lines that are not empty.
std::vector<std::string> nonempty_lines(const std::string& text);

// One CONNECT through the SOCKS5 proxy at 127.0.0.1:socks_port to the echo target at
// 127.0.0.1:target_port: `n` random bytes come back byte-exact (REQUIREs and CHECKs).
void socks_echo(uint16_t socks_port, uint16_t target_port, size_t n);

// True if no byte arrives on `s` within `window` (silence or a close both count).
bool no_byte_within(const Socket& s, Millis window);

// A CONNECT through a client whose password the server does not take: the client's SOCKS5 reply
// comes from the client itself, but no byte of the target's ever does (CHECKs).
void check_refused(uint16_t socks_port, const TargetServer& target);

// A JSON "users" array of classic key-trial users: each name's password is "pw-<name>".
std::string users_json(const std::vector<std::string>& names);

// A client's first flight (salt, header, "recorded request"), recorded by pointing the client at
// `recorder` (a sink) and asking it, through its SOCKS5 port, for `target_port`.
Bytes record_first_flight(uint16_t socks_port, uint16_t target_port, TargetServer& recorder);

// `flight` sent again to the server `srv` on `port`: no byte comes back, and the server logs the
// replay (CHECKs).
void check_replay_refused(const Node& srv, uint16_t port, const Bytes& flight);

// `n` clients, released together, each SOCKS5 CONNECT through the proxy at 127.0.0.1:socks_port
// to the echo target at 127.0.0.1:target_port and echo payload_size(i) random bytes, byte-exact
// (30 s each). Returns how many failed, with an UNSCOPED_INFO line for each.
size_t concurrent_socks_echo(uint16_t socks_port, uint16_t target_port, size_t n,
                             const std::function<size_t(size_t)>& payload_size);

}  // namespace ss::test
