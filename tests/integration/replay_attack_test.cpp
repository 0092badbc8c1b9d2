// Replays through the real binaries (issue 16 items 1 and 3).
//
// A fake server between our ss-local and a real ss-server, without the key: (a) it records a
// response and replays it byte for byte to a second session, (b) it sends ss-local's own first
// flight back, (c) it sends a second session the recorded response's salt and first chunks with
// a different tail; and, with the key, (d) it answers two sessions with the same response salt
// (classic only: a 2022 response header names its request, so a key holder's answer is bound to
// the session anyway). Expected for every classic and every 2022 method: the application gets
// no byte and the connection is closed.
//
// And ss-server restarted (SIGTERM, graceful) with its replay state file: a flight accepted
// before the restart is refused after it, classic and 2022; a corrupt state file is logged and
// the server starts; with --replay-state-interval the file is written while the server runs, so
// even a killed server's successor refuses the flight.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "crypto/kdf.h"
#include "crypto/stream.h"
#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

constexpr std::array<const char*, 8> kEveryMethod = {"aes-128-gcm",
                                                     "aes-192-gcm",
                                                     "aes-256-gcm",
                                                     "chacha20-ietf-poly1305",
                                                     "xchacha20-ietf-poly1305",
                                                     "2022-blake3-aes-128-gcm",
                                                     "2022-blake3-aes-256-gcm",
                                                     "2022-blake3-chacha20-poly1305"};

bool is_2022(const std::string& method) {
  return method.rfind("2022-", 0) == 0;
}

// The salt length (= the 2022 PSK length).
size_t salt_len(const std::string& method) {
  return method == "aes-128-gcm" || method == "2022-blake3-aes-128-gcm" ? 16
         : method == "aes-192-gcm"                                      ? 24
                                                                        : 32;
}

// A password for the method: base64 of a random PSK for 2022, a passphrase otherwise.
std::string password_for(const std::string& method) {
  if (!is_2022(method)) return "replay attack " + random_token(8);
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const Bytes key = random_bytes(salt_len(method));
  std::string out;
  for (size_t i = 0; i < key.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(key[i]) << 16;
    if (i + 1 < key.size()) v |= static_cast<uint32_t>(key[i + 1]) << 8;
    if (i + 2 < key.size()) v |= key[i + 2];
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += i + 1 < key.size() ? kB64[(v >> 6) & 63] : '=';
    out += i + 2 < key.size() ? kB64[v & 63] : '=';
  }
  return out;
}

// Everything readable within `quiet` of the last byte (at most `limit` overall).
Bytes read_burst(const Socket& s, Millis quiet = 300ms, Millis limit = 5000ms) {
  Bytes out;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{s.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
    uint8_t buf[65536];
    const ssize_t n = ::recv(s.fd(), buf, sizeof buf, 0);
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

// A fake Shadowsocks server: accepts connections one at a time on its own thread and hands each
// to the current handler.
class FakeServer {
 public:
  using Handler = std::function<void(Socket&)>;
  FakeServer() {
    listener_ = Socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(listener_.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener_.fd(), 16) == 0);
    REQUIRE(::getsockname(listener_.fd(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeServer() {
    stop_ = true;
    ::shutdown(listener_.fd(), SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  // Waits until `n` sessions have been handled in all.
  bool wait_handled(size_t n, Millis timeout = 10000ms) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (handled_.load() < n) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }
  void set_handler(Handler h) {
    std::lock_guard lock(mu_);
    handler_ = std::move(h);
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{listener_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      Socket c(::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      Handler h;
      {
        std::lock_guard lock(mu_);
        h = handler_;
      }
      try {
        if (h) h(c);
      } catch (const std::exception&) {
        // The client went away: the next session gets a fresh handler call.
      }
      ++handled_;
    }
  }
  Socket listener_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> handled_{0};
  std::mutex mu_;
  Handler handler_;
  std::thread thread_;
};

// Relays between `c` and the real server until both sides are done; returns what the server
// sent.
Bytes relay_and_record(Socket& c, uint16_t server_port) {
  Socket up = connect_tcp("127.0.0.1", server_port);
  Bytes recorded;
  bool c_open = true, up_open = true;
  while (up_open) {
    pollfd p[2] = {{c.fd(), static_cast<short>(c_open ? POLLIN : 0), 0}, {up.fd(), POLLIN, 0}};
    if (::poll(p, 2, 10000) <= 0) break;
    uint8_t buf[65536];
    if (c_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
      if (n <= 0) {
        c_open = false;
        up.shutdown_write();
      } else {
        send_all(up, std::span<const uint8_t>(buf, static_cast<size_t>(n)));
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(up.fd(), buf, sizeof buf, 0);
      if (n <= 0) {
        up_open = false;
        c.shutdown_write();
      } else {
        recorded.insert(recorded.end(), buf, buf + n);
        send_all(c, std::span<const uint8_t>(buf, static_cast<size_t>(n)));
      }
    }
  }
  read_burst(c, 500ms);  // until ss-local closes
  return recorded;
}

// Sends `answer(first flight)` and waits for ss-local to close.
FakeServer::Handler answer_with(std::function<Bytes(const Bytes&)> answer) {
  return [answer](Socket& c) {
    const Bytes flight = read_burst(c);
    send_all(c, answer(flight));
    read_burst(c, 5000ms, 5000ms);
  };
}

struct AppResult {
  Bytes got;
  bool closed = false;
};

// A SOCKS5 client through ss-local to the target: sends a request, then reads what comes back
// until the connection closes (5 s at most).
AppResult app_session(uint16_t local_port, uint16_t target_port) {
  auto conn = socks5_connect(local_port, AddrType::IPv4, "127.0.0.1", target_port);
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  send_all(conn.socket, std::string("GET / HTTP/1.0\r\n\r\n"));
  AppResult r;
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{conn.socket.fd(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    uint8_t buf[65536];
    const ssize_t n = ::recv(conn.socket.fd(), buf, sizeof buf, 0);
    if (n <= 0) {
      r.closed = true;
      break;
    }
    r.got.insert(r.got.end(), buf, buf + n);
  }
  return r;
}

}  // namespace

TEST_CASE("ss-local refuses a replayed, reflected or salt-reusing fake server, every method",
          "[integration][hostile]") {
  const std::string method = GENERATE(from_range(kEveryMethod.begin(), kEveryMethod.end()));
  INFO("method " << method);
  NodeOptions opt{method, password_for(method), 30, {}};
  TargetServer target(TargetBehavior::source(1000));
  Node server = start_server(Impl::Ours, opt);
  FakeServer fake;
  Node local = start_local(Impl::Ours, opt, fake.port());
  const size_t salt = salt_len(method);

  // Control: relayed to the real server, the application gets the target's 1000 bytes.
  Bytes recorded;
  fake.set_handler([&](Socket& c) { recorded = relay_and_record(c, server.port); });
  {
    const AppResult r = app_session(local.port, target.port());
    CHECK(r.got.size() == 1000);
  }
  REQUIRE(fake.wait_handled(1));
  REQUIRE(recorded.size() > salt + 100);
  const size_t refusals_before = count_occurrences(local.proc->log_text(), "failed authentication");

  auto refused = [&](const char* what) {
    INFO(what);
    const AppResult r = app_session(local.port, target.port());
    CHECK(r.got.empty());
    CHECK(r.closed);
  };
  // (a) The recorded response replayed to a second session.
  fake.set_handler(answer_with([&](const Bytes&) { return recorded; }));
  refused("replayed response");
  // (b) The client's own first flight sent back.
  fake.set_handler(answer_with([](const Bytes& flight) { return flight; }));
  refused("reflected first flight");
  // (c) The recorded response's salt and all but its last bytes, then another tail.
  fake.set_handler(answer_with([&](const Bytes&) {
    Bytes b(recorded.begin(), recorded.end() - 40);
    const Bytes tail = random_bytes(40);
    b.insert(b.end(), tail.begin(), tail.end());
    return b;
  }));
  refused("recorded salt with another tail");
  // (d) Classic: a server with the key that uses one response salt twice. The first answer is
  // new (accepted), the second is refused.
  if (!is_2022(method)) {
    const CipherSpec& spec = *find_cipher(method);
    const Bytes key = derive_master_key(opt.password, spec.key_len);
    const Bytes fixed = random_bytes(spec.salt_len);
    auto keyed = [&](const std::string& text) {
      return answer_with([&spec, key, fixed, text](const Bytes&) {
        StreamEncryptor enc(spec, key, fixed);
        Bytes out(enc.sealed_size(text.size()));
        out.resize(
            enc.seal(reinterpret_cast<const uint8_t*>(text.data()), text.size(), out.data()));
        return out;
      });
    };
    fake.set_handler(keyed("first answer"));
    {
      const AppResult r = app_session(local.port, target.port());
      CHECK(std::string(r.got.begin(), r.got.end()) == "first answer");
    }
    fake.set_handler(keyed("second answer, same salt"));
    refused("a response salt used twice");
  }
  // Each refusal closed as a bad tag does; the warning names the first one's reason (it is
  // rate-limited, one line per 10 s).
  CHECK(count_occurrences(local.proc->log_text(), "closed: authentication failed") ==
        (is_2022(method) ? 3u : 4u));
  CHECK(count_occurrences(local.proc->log_text(), "failed authentication") > refusals_before);
  if (!is_2022(method)) CHECK(count_occurrences(local.proc->log_text(), "(replayed salt)") == 1);
  check_clean_shutdown(local);
  check_clean_shutdown(server);
}

namespace {

// A first flight as our ss-local sends it for a CONNECT to 127.0.0.1:`target_port` with
// `payload`: ss-local's server is a listener that only records, so no server has seen it.
Bytes capture_first_flight(const NodeOptions& opt, uint16_t target_port, const Bytes& payload) {
  TargetServer recorder(TargetBehavior::sink());
  Node local = start_local(Impl::Ours, opt, recorder.port());
  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target_port);
  REQUIRE(conn.reply.has_value());
  send_all(conn.socket, payload);
  conn.socket.shutdown_write();
  const auto reports = recorder.wait_reports(1, 10s);
  REQUIRE(reports.size() == 1);
  conn.socket.reset();
  check_clean_shutdown(local);
  const std::string& head = reports[0].received_head;
  REQUIRE(head.size() > payload.size());
  REQUIRE(head.size() < 4096);  // all of it
  return Bytes(head.begin(), head.end());
}

// Sends the flight on a new connection; true if any byte comes back within a second.
bool answered(uint16_t port, const Bytes& flight) {
  Socket s = connect_tcp("127.0.0.1", port);
  send_all(s, flight);
  pollfd p{s.fd(), POLLIN, 0};
  if (::poll(&p, 1, 1000) <= 0) return false;
  uint8_t b;
  return ::recv(s.fd(), &b, 1, 0) == 1;
}

}  // namespace

TEST_CASE("ss-server keeps its replay filter across a graceful restart, a corrupt file is ignored",
          "[integration][hostile]") {
  const std::string method = GENERATE(as<std::string>(), "aes-256-gcm", "chacha20-ietf-poly1305",
                                      "2022-blake3-aes-128-gcm", "2022-blake3-chacha20-poly1305");
  INFO("method " << method);
  NodeOptions opt{method, password_for(method), 30, {}};
  TargetServer target(TargetBehavior::echo());
  const std::filesystem::path dir = test_state_dir() / ("restart-" + method);
  std::filesystem::remove_all(dir);
  const uint16_t port = pick_free_port();
  const std::filesystem::path file = dir / ("ss-server-" + std::to_string(port) + ".replay");
  auto start = [&](const char* label) {
    return start_node(Impl::Ours, "ss-server",
                      {"-s", "127.0.0.1", "-p", std::to_string(port), "-k", opt.password, "-m",
                       method, "-t", "30", "-vv", "--allow-private-targets", "--state-dir",
                       dir.string(), "--replay-state-interval", "3600"},
                      port, label);
  };
  const Bytes flight = capture_first_flight(opt, target.port(), random_bytes(64));

  Node server = start("ss-server-first");
  CHECK(answered(port, flight));
  CHECK(target.wait_reports(1, 5s).size() == 1);
  check_clean_shutdown(server);
  REQUIRE(std::filesystem::exists(file));

  // Restarted: the file is loaded, the flight is refused (no byte, no connect to the target).
  server = start("ss-server-restarted");
  CHECK(wait_log(server, "replay state: loaded"));
  CHECK_FALSE(answered(port, flight));
  CHECK(target.accepted() == 1);
  CHECK(wait_log(server, is_2022(method) ? "replayed salt" : "refused a replayed request"));
  check_clean_shutdown(server, 12s);

  // Control: without the file the same flight is accepted again after a restart.
  std::filesystem::remove(file);
  server = start("ss-server-without-state");
  CHECK(wait_log(server, "does not exist yet"));
  CHECK(answered(port, flight));
  CHECK(target.wait_reports(2, 5s).size() == 2);
  check_clean_shutdown(server);
  REQUIRE(std::filesystem::exists(file));

  // A corrupt file (one byte flipped): a warning naming the file, and the server starts.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x5a');
  }
  server = start("ss-server-corrupt-state");
  CHECK(wait_log(server, "WARN  replay state: " + file.string() + " is unusable (checksum"));
  // Garbage that is not a state file at all: the same.
  check_clean_shutdown(server);
  {
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f << "not a state file";
  }
  server = start("ss-server-garbage-state");
  CHECK(wait_log(server, "is unusable (too short"));
  check_clean_shutdown(server);
}

TEST_CASE("ss-server writes its replay state every replay_state_interval seconds: a kill keeps it",
          "[integration][hostile]") {
  const std::string method = "aes-128-gcm";
  NodeOptions opt{method, password_for(method), 30, {}};
  TargetServer target(TargetBehavior::echo());
  const std::filesystem::path dir = test_state_dir() / "interval";
  std::filesystem::remove_all(dir);
  const uint16_t port = pick_free_port();
  const std::filesystem::path file = dir / ("ss-server-" + std::to_string(port) + ".replay");
  auto start = [&](const char* label) {
    return start_node(Impl::Ours, "ss-server",
                      {"-s", "127.0.0.1", "-p", std::to_string(port), "-k", opt.password, "-m",
                       method, "-t", "30", "-vv", "--allow-private-targets", "--state-dir",
                       dir.string(), "--replay-state-interval", "1"},
                      port, label);
  };
  const Bytes flight = capture_first_flight(opt, target.port(), random_bytes(64));
  Node server = start("ss-server-interval");
  CHECK(answered(port, flight));
  // Written by the timer while the server runs; then the server dies without a graceful exit.
  CHECK(wait_log(server, "replay state: saved", 1, 5s));
  CHECK(std::filesystem::exists(file));
  server.proc->signal(SIGKILL);
  server.proc->wait_exit(5s);
  server = start("ss-server-after-kill");
  CHECK(wait_log(server, "replay state: loaded"));
  CHECK_FALSE(answered(port, flight));
  CHECK(target.accepted() == 1);
  check_clean_shutdown(server, 12s);
}

}  // namespace ss::test
