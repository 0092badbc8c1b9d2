// Per-user quotas and rate limits in ss-server (issue 14 item 6), through the real binaries on
// loopback, with 2022 SIP023 users and classic key-trial users: a live download is cut within
// 64 KiB of the quota and the user's next connection is refused while another user goes on; a
// rate-limited user gets its rate within 10 % over 5 s while another user's transfer runs
// unlimited; the counters survive a restart through the quota state file, and a new day
// (SS_CLOCK_OFFSET) starts them again; a corrupt state file and bad values stop the start.

#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kClassic = "chacha20-ietf-poly1305";
constexpr const char* k2022 = "2022-blake3-aes-128-gcm";
constexpr const char* kIpsk = "AAECAwQFBgcICQoLDA0ODw==";
constexpr uint64_t kReadSize = 64 * 1024;  // one read of the server: what a cut may drop
// At most what a client's request costs on the wire (a 2022 request pads up to 900 bytes).
constexpr uint64_t kRequestBytes = 2048;

struct TestUser {
  std::string name;
  std::string limits;  // extra JSON of the entry, e.g. R"("quota_bytes": 5)"
};

// A user's key: a 2022 uPSK (16 bytes, base64) or a classic password.
std::string user_key(const std::string& method, size_t i) {
  if (method == kClassic) return "pw-user-" + std::to_string(i);
  const char* keys[] = {
      "EBESExQVFhcYGRobHB0eHw==", "ICEiIyQlJicoKSorLC0uLw==", "MDEyMzQ1Njc4OTo7PD0+Pw=="};
  return keys[i];
}

// What the user's client is given as password.
std::string client_password(const std::string& method, size_t i) {
  return method == kClassic ? user_key(method, i) : std::string(kIpsk) + ":" + user_key(method, i);
}

std::string write_file(const std::string& label, const std::string& text) {
  std::filesystem::path path = test_log_path(label);
  path.replace_extension(".json");
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
  return path.string();
}

std::string server_config(const std::string& method, uint16_t port,
                          const std::vector<TestUser>& users, const std::string& state_file,
                          const std::string& extra = "") {
  std::string j = R"({"server": "127.0.0.1", "server_port": )" + std::to_string(port) +
                  R"(, "method": ")" + method + "\"" + extra;
  if (method != kClassic) j += R"(, "password": ")" + std::string(kIpsk) + "\"";
  j += R"(, "quota_state_file": ")" + state_file + R"(", "users": [)";
  for (size_t i = 0; i < users.size(); ++i) {
    j += std::string(i ? ", " : "") + R"({"name": ")" + users[i].name + R"(", "password": ")" +
         user_key(method, i) + "\"" + (users[i].limits.empty() ? "" : ", " + users[i].limits) + "}";
  }
  return j + "]}";
}

// Our ss-server with `config` on `port`, optionally under SS_CLOCK_OFFSET.
Node start_quota_server(const std::string& config, uint16_t port,
                        std::optional<int> clock_offset = std::nullopt,
                        const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv;
  if (clock_offset) argv = {"env", "SS_CLOCK_OFFSET=" + std::to_string(*clock_offset)};
  argv.insert(argv.end(), {binary_path(Impl::Ours, "ss-server"), "-c", config, "-v", "-t", "10",
                           "--allow-private-targets", "--state-dir", test_state_dir().string()});
  argv.insert(argv.end(), extra.begin(), extra.end());
  Node node;
  node.port = port;
  node.proc = spawn(argv, "ss-server");
  const auto deadline = Clock::now() + 10s;
  while (!wait_until_listening(port, 100ms)) {
    if (auto st = node.proc->wait_exit(0ms)) {
      FAIL("ss-server exited with " << *st << " before listening\n" << node.proc->log_text());
    }
    REQUIRE(Clock::now() < deadline);
  }
  return node;
}

Node start_user_client(const std::string& method, size_t i, uint16_t server_port,
                       bool udp = false) {
  NodeOptions o;
  o.method = method;
  o.password = client_password(method, i);
  if (udp) o.extra_args = {"-u"};
  return start_local(Impl::Ours, o, server_port);
}

// Reads and counts until EOF (a reset counts as the end too) or `timeout`.
uint64_t count_until_eof(const Socket& s, Millis timeout, bool* eof = nullptr) {
  const auto deadline = Clock::now() + timeout;
  uint64_t n = 0;
  uint8_t buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{s.fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t r = ::recv(s.fd(), buf, sizeof buf, 0);
    if (r <= 0) {
      if (eof) *eof = true;
      return n;
    }
    n += static_cast<uint64_t>(r);
  }
  if (eof) *eof = false;
  return n;
}

// Bytes received in `window` from the first byte on, and the window measured (seconds).
struct Rate {
  uint64_t bytes = 0;
  double seconds = 0;
  double per_second() const { return seconds > 0 ? static_cast<double>(bytes) / seconds : 0; }
};
Rate measure(const Socket& s, std::chrono::duration<double> window) {
  uint8_t buf[65536];
  pollfd p{s.fd(), POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10'000) == 1);
  const auto start = Clock::now();
  const auto end = start + window;
  Rate r;
  while (Clock::now() < end) {
    const auto left = std::chrono::duration_cast<Millis>(end - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 1))) <= 0) continue;
    const ssize_t got = ::recv(s.fd(), buf, sizeof buf, 0);
    if (got <= 0) break;
    r.bytes += static_cast<uint64_t>(got);
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

// GET /metrics from the endpoint on 127.0.0.1:`port`: the whole answer.
std::string scrape(uint16_t port) {
  Socket s = connect_tcp("127.0.0.1", port);
  send_all(s, std::string("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  const Bytes body = recv_until_eof(s);
  return std::string(body.begin(), body.end());
}

// The state file's line for `user`: "<period start> <used> <user>", or "".
std::string state_line(const std::string& path, const std::string& user) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.size() > user.size() && line.ends_with(" " + user)) return line;
  }
  return "";
}
std::pair<int64_t, uint64_t> state_of(const std::string& path, const std::string& user) {
  std::istringstream in(state_line(path, user));
  int64_t start = -1;
  uint64_t used = 0;
  in >> start >> used;
  return {start, used};
}

}  // namespace

TEST_CASE(
    "quotas: a live session is cut within 64 KiB of the quota, the next is refused, "
    "another user goes on",
    "[integration][quotas]") {
  const std::string method = GENERATE(as<std::string>{}, kClassic, k2022);
  INFO("method " << method);
  constexpr uint64_t kQuota = 1 << 20;
  const uint16_t port = pick_free_port();
  const std::string state = (test_state_dir() / ("quota-cut-" + method + ".state")).string();
  std::filesystem::create_directories(test_state_dir());
  const std::string config = write_file(
      "config",
      server_config(method, port,
                    {{"alice", R"("quota_bytes": )" + std::to_string(kQuota)}, {"bob", ""}},
                    state));
  const uint16_t metrics_port = pick_free_port();
  Node srv = start_quota_server(config, port, std::nullopt,
                                {"--metrics-address", "127.0.0.1:" + std::to_string(metrics_port)});
  REQUIRE(wait_until_listening(metrics_port, 10s));
  Node alice = start_user_client(method, 0, port);
  Node bob = start_user_client(method, 1, port);
  TargetServer source(TargetBehavior::source(4 * kQuota));
  CHECK_THAT(scrape(metrics_port),
             Catch::Contains("shadowsocks_user_quota_bytes{user=\"alice\"} 1048576\n") &&
                 Catch::Contains("shadowsocks_user_quota_used_bytes{user=\"alice\"} 0\n"));

  // Alice downloads 4 MiB: she gets at most her quota, and at least the quota less one read (and
  // less her request's bytes, which count too).
  {
    auto conn = socks5_connect(alice.port, AddrType::IPv4, "127.0.0.1", source.port());
    REQUIRE(conn.reply.has_value());
    REQUIRE(conn.reply->rep == 0x00);
    bool eof = false;
    const uint64_t got = count_until_eof(conn.socket, 30s, &eof);
    INFO("alice got " << got << " bytes of a " << kQuota << "-byte quota");
    CHECK(eof);
    CHECK(got <= kQuota);
    CHECK(got + kReadSize + kRequestBytes >= kQuota);
  }
  CHECK(wait_log(srv, "user alice has used its quota of 1048576 bytes: closed its connection"));
  // Her next connection is refused after authentication: no byte, the connection closes, the
  // target never sees it.
  const size_t before = source.accepted();
  {
    auto conn = socks5_connect(alice.port, AddrType::IPv4, "127.0.0.1", source.port());
    bool eof = false;
    CHECK(count_until_eof(conn.socket, 10s, &eof) == 0);
    CHECK(eof);
  }
  CHECK(wait_log(srv, "user alice has used its quota of 1048576 bytes: refused a new connection"));
  CHECK(source.accepted() == before);
  // The metrics show her quota used up; bob has no quota, so no series.
  const std::string metrics = scrape(metrics_port);
  CHECK_THAT(metrics,
             Catch::Contains("shadowsocks_user_quota_used_bytes{user=\"alice\"} 1048576\n"));
  CHECK_THAT(metrics, !Catch::Contains("shadowsocks_user_quota_used_bytes{user=\"bob\"}"));
  // Bob has no quota: his whole 4 MiB arrives.
  {
    auto conn = socks5_connect(bob.port, AddrType::IPv4, "127.0.0.1", source.port());
    REQUIRE(conn.reply.has_value());
    bool eof = false;
    CHECK(count_until_eof(conn.socket, 30s, &eof) == 4 * kQuota);
    CHECK(eof);
  }
  check_clean_shutdown(srv);
  // At exit the count went to the state file: what alice used, within one read of her quota.
  const auto [start, used] = state_of(state, "alice");
  CHECK(start == 0);      // a lifetime quota
  CHECK(used == kQuota);  // used up: what was left was less than the read the cut dropped
}

TEST_CASE(
    "quotas: a rate-limited user gets its rate within 10 % over 5 s while another user's "
    "transfer runs unlimited",
    "[integration][quotas]") {
  const std::string method = GENERATE(as<std::string>{}, kClassic, k2022);
  INFO("method " << method);
  constexpr uint64_t kRate = 1'000'000;
  const uint16_t port = pick_free_port();
  std::filesystem::create_directories(test_state_dir());
  const std::string config = write_file(
      "config",
      server_config(
          method, port,
          {{"slow", R"("rate_limit_bytes_per_second": )" + std::to_string(kRate)}, {"fast", ""}},
          (test_state_dir() / ("rate-" + method + ".state")).string()));
  Node srv = start_quota_server(config, port);
  Node slow = start_user_client(method, 0, port);
  Node fast = start_user_client(method, 1, port);
  TargetServer source(TargetBehavior::source(uint64_t{1} << 30));

  // The unlimited user alone first, for 2 s: the machine's figure for comparison.
  Rate alone;
  {
    auto conn = socks5_connect(fast.port, AddrType::IPv4, "127.0.0.1", source.port());
    REQUIRE(conn.reply.has_value());
    alone = measure(conn.socket, 2s);
  }
  // Both at once for 5 s.
  Rate limited, beside;
  {
    auto a = socks5_connect(slow.port, AddrType::IPv4, "127.0.0.1", source.port());
    auto b = socks5_connect(fast.port, AddrType::IPv4, "127.0.0.1", source.port());
    REQUIRE(a.reply.has_value());
    REQUIRE(b.reply.has_value());
    std::thread other([&] { beside = measure(b.socket, 5s); });
    limited = measure(a.socket, 5s);
    other.join();
  }
  INFO("limited user: " << limited.bytes << " bytes in " << limited.seconds
                        << " s = " << limited.per_second() << " B/s (limit " << kRate << ")");
  INFO("unlimited user alone: " << alone.per_second() << " B/s; beside the limited one: "
                                << beside.per_second() << " B/s");
  CHECK(limited.per_second() >= 0.9 * kRate);
  CHECK(limited.per_second() <= 1.1 * kRate);
  // Loosely (the machine is shared): the other user is not held to the limit.
  CHECK(beside.per_second() >= 3.0 * kRate);
  CHECK(beside.per_second() >= alone.per_second() / 20);
  check_clean_shutdown(srv, 12s);
}

TEST_CASE(
    "quotas: the counters survive a restart in the state file and a new day starts them "
    "again",
    "[integration][quotas]") {
  // Classic key-trial users: no timestamps, so the clients need no clock offset.
  const std::string method = kClassic;
  constexpr uint64_t kQuota = 1 << 20;
  constexpr uint64_t kFirst = 300'000;
  const uint16_t port = pick_free_port();
  std::filesystem::create_directories(test_state_dir());
  const std::string state = (test_state_dir() / "persist.state").string();
  const std::string config =
      write_file("config", server_config(method, port,
                                         {{"alice", R"("quota_bytes": )" + std::to_string(kQuota) +
                                                        R"(, "quota_period": "day")"}},
                                         state));
  TargetServer first(TargetBehavior::source(kFirst));
  TargetServer big(TargetBehavior::source(kQuota));

  // 1. 300 kB arrive whole; at exit the file holds them (plus the request's bytes).
  {
    Node srv = start_quota_server(config, port);
    Node alice = start_user_client(method, 0, port);
    auto conn = socks5_connect(alice.port, AddrType::IPv4, "127.0.0.1", first.port());
    bool eof = false;
    CHECK(count_until_eof(conn.socket, 30s, &eof) == kFirst);
    conn.socket.reset();
    REQUIRE(wait_log(srv, "user alice closed"));
    check_clean_shutdown(srv);
  }
  const auto [start1, used1] = state_of(state, "alice");
  INFO("state file after the first run: " << state_line(state, "alice"));
  CHECK(start1 > 0);
  CHECK(start1 % 86400 == 0);
  CHECK(used1 >= kFirst);
  CHECK(used1 <= kFirst + 256);

  // 2. Restarted: the quota left is what the file says, so a 1 MiB download stops there.
  {
    Node srv = start_quota_server(config, port);
    CHECK(wait_log(srv, "restored the counts of 1 user, dropped 0"));
    Node alice = start_user_client(method, 0, port);
    auto conn = socks5_connect(alice.port, AddrType::IPv4, "127.0.0.1", big.port());
    const uint64_t got = count_until_eof(conn.socket, 30s);
    INFO("second run: got " << got << " of the " << kQuota - used1 << " bytes left");
    CHECK(got <= kQuota - used1);
    CHECK(got + kReadSize + kRequestBytes >= kQuota - used1);
    check_clean_shutdown(srv);
  }
  const auto [start2, used2] = state_of(state, "alice");
  CHECK(start2 == start1);
  CHECK(used2 == kQuota);

  // 3. A day later (the server's clock a day ahead): a new period, the whole quota again.
  {
    Node srv = start_quota_server(config, port, 86400);
    CHECK(wait_log(srv, "restored the counts of 0 users, dropped 1"));
    Node alice = start_user_client(method, 0, port);
    auto conn = socks5_connect(alice.port, AddrType::IPv4, "127.0.0.1", first.port());
    bool eof = false;
    CHECK(count_until_eof(conn.socket, 30s, &eof) == kFirst);
    conn.socket.reset();
    REQUIRE(wait_log(srv, "user alice closed"));
    check_clean_shutdown(srv);
  }
  const auto [start3, used3] = state_of(state, "alice");
  CHECK(start3 == start1 + 86400);
  CHECK(used3 >= kFirst);
  CHECK(used3 <= kFirst + 256);
}

TEST_CASE("quotas: a corrupt state file and bad limits stop ss-server with the key named",
          "[integration][quotas]") {
  const uint16_t port = pick_free_port();
  // The configs first: the first log path of a test starts its directory afresh.
  const std::string state = (test_state_dir() / "corrupt.state").string();
  const std::string corrupt_config = write_file(
      "corrupt", server_config(kClassic, port, {{"alice", R"("quota_bytes": 5000)"}}, state));
  const std::string bad_config = write_file(
      "bad", server_config(k2022, port, {{"alice", R"("quota_period": "fortnight")"}}, state));
  std::filesystem::create_directories(test_state_dir());
  std::ofstream(state) << "ss-quota 1\n0 12 alice\n";  // no end line: cut short
  auto run = [&](const std::string& config) {
    auto p = spawn({binary_path(Impl::Ours, "ss-server"), "-c", config, "--state-dir",
                    test_state_dir().string()},
                   "ss-server");
    const auto st = p->wait_exit(10s);
    REQUIRE(st.has_value());
    CHECK(*st == 1);
    return p->log_text();
  };
  const std::string corrupt = run(corrupt_config);
  CHECK_THAT(corrupt, Catch::Contains("quota_state_file: " + state + ": no end line"));
  // The file was left as it was.
  std::ifstream f(state);
  CHECK(std::string(std::istreambuf_iterator<char>(f), {}) == "ss-quota 1\n0 12 alice\n");
  const std::string bad = run(bad_config);
  CHECK_THAT(bad, Catch::Contains("users[0].quota_period"));
}

}  // namespace ss::test

namespace ss::test {

TEST_CASE("quotas: a user's UDP datagrams count towards its quota and stop at it",
          "[integration][quotas][udp]") {
  const std::string method = GENERATE(as<std::string>{}, kClassic, k2022);
  INFO("method " << method);
  // About 1.1 kB a round trip of 500 bytes (the request as received, with its address header and
  // AEAD overhead, plus the reply's payload): a 20,000-byte quota lets fewer than 20 through.
  constexpr uint64_t kQuota = 20'000;
  constexpr size_t kSends = 60;
  const uint16_t port = pick_free_port();
  const std::string state = (test_state_dir() / ("udp-" + method + ".state")).string();
  const std::string config =
      write_file("config", server_config(method, port,
                                         {{"alice", R"("quota_bytes": )" + std::to_string(kQuota)}},
                                         state, R"(, "mode": "tcp_and_udp")"));
  std::filesystem::create_directories(test_state_dir());
  Node srv = start_quota_server(config, port);
  Node alice = start_user_client(method, 0, port, true);
  UdpTarget target;
  UdpSocket udp("127.0.0.1");
  auto assoc = socks5_udp_associate(alice.port, "127.0.0.1", udp.port());
  size_t echoes = 0, late_echoes = 0;
  for (size_t i = 0; i < kSends; ++i) {
    Socks5UdpPacket p;
    p.host = target.host();
    p.port = target.port();
    p.data = random_bytes(500);
    udp.send_to(assoc.relay_host, assoc.relay_port, socks5_udp_encode(p));
    const auto d = udp.recv(300ms);
    if (!d) continue;
    const auto reply = socks5_udp_decode(d->data);
    if (!reply || reply->data != p.data) continue;
    ++echoes;
    if (i >= kSends - 20) ++late_echoes;
  }
  INFO(echoes << " echoes of " << kSends);
  CHECK(echoes >= 10);
  CHECK(echoes <= 19);
  CHECK(late_echoes == 0);
  CHECK(wait_log(srv, "user alice has used its quota of 20000 bytes: refused a new connection"));
  check_clean_shutdown(srv);
  const auto [start, used] = state_of(state, "alice");
  CHECK(used == kQuota);
}

}  // namespace ss::test
