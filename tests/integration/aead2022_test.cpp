// The Shadowsocks 2022 edition (SIP022, SIP023) end to end through our real binaries on loopback:
// TCP and UDP round trips for every 2022 method and ss-tunnel; SIP023 users on one server port;
// clock skew (SS_CLOCK_OFFSET); the server's reaction to hostile first flights sent by a raw TCP
// client (hostile-inputs.md B1, B2, B5, B11, B12); UDP garbage, replays and sessions (U1, U3, U5);
// key errors.
//
// Valid flights for the replay tests are captured by pointing our ss-local at a listener that
// only records (it never forwards), so the server first sees them when the test sends them.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

using Clock = std::chrono::steady_clock;

constexpr const char* kAes128 = "2022-blake3-aes-128-gcm";
constexpr const char* kAes256 = "2022-blake3-aes-256-gcm";
constexpr const char* kChacha = "2022-blake3-chacha20-poly1305";
constexpr std::array<const char*, 3> k2022Methods = {kAes128, kAes256, kChacha};

constexpr size_t kBulkBytes = 10u << 20;

// How long a refused connection is watched for a byte, a close or an outbound connect. The
// server refuses at once, so a reaction would show within milliseconds.
constexpr Millis kWatch = 1000ms;

// The PSK and the salt have the same length: 16 bytes for AES-128, 32 for the others.
size_t key_len(const std::string& method) {
  return method == kAes128 ? 16 : 32;
}

// What the server must take in its first read: salt + fixed-length header (11) + tag (16).
size_t first_read_len(const std::string& method) {
  return key_len(method) + 27;
}

std::string base64(std::span<const uint8_t> data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string new_key(const std::string& method) {
  return base64(random_bytes(key_len(method)));
}

// The log lines that contain every one of `needles`.
std::vector<std::string> lines_with(const Node& node, std::initializer_list<std::string> needles) {
  std::vector<std::string> out;
  for (const std::string& line : nonempty_lines(node.proc->log_text())) {
    if (std::all_of(needles.begin(), needles.end(),
                    [&](const std::string& n) { return line.find(n) != std::string::npos; })) {
      out.push_back(line);
    }
  }
  return out;
}

// Waits until a line of the node's log matches `re`.
bool wait_log(const Node& node, const std::regex& re, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    for (const std::string& line : nonempty_lines(node.proc->log_text())) {
      if (std::regex_search(line, re)) return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);  // a log file gives no notification to wait on
  }
}

// ---- starting our binaries ----------------------------------------------------------------------

// One of our programs with `args` plus its listen address: "-s 127.0.0.1 -p PORT" for ss-server,
// "-b 127.0.0.1 -l PORT" for the clients. With `clock_offset`, the child runs under
// `env SS_CLOCK_OFFSET=N`. REQUIREs that the port accepts connections within 10 s.
Node start_ours(const std::string& program, const std::vector<std::string>& args,
                const std::string& label, std::optional<int> clock_offset = std::nullopt) {
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    const uint16_t port = pick_free_port();
    std::vector<std::string> argv;
    if (clock_offset) argv = {"env", "SS_CLOCK_OFFSET=" + std::to_string(*clock_offset)};
    argv.push_back(binary_path(Impl::Ours, program));
    argv.insert(argv.end(), args.begin(), args.end());
    if (program == "ss-server") {
      argv.insert(argv.end(), {"-s", "127.0.0.1", "-p", std::to_string(port)});
    } else {
      argv.insert(argv.end(), {"-b", "127.0.0.1", "-l", std::to_string(port)});
    }
    Node node;
    node.impl = Impl::Ours;
    node.port = port;
    node.proc = spawn(argv, label);
    const auto deadline = Clock::now() + 10s;
    bool retry = false;
    while (!retry) {
      if (auto st = node.proc->wait_exit(0ms)) {
        const std::string log = node.proc->log_text();
        // Another test took the port between pick_free_port() and our bind: try another.
        if (attempt < kAttempts && log.find("in use") != std::string::npos) {
          retry = true;
          continue;
        }
        FAIL(label << " exited with status " << *st << " before listening on port " << port
                   << "\n$ " << node.proc->command_line() << "\n"
                   << log);
      }
      try {
        connect_tcp("127.0.0.1", port, 500ms);
        return node;
      } catch (const NetError&) {
      }
      if (Clock::now() >= deadline) {
        FAIL(label << " is not listening on port " << port << " after 10 s\n$ "
                   << node.proc->command_line());
      }
      // A listening socket gives no notification we could wait on: retry the connect.
      std::this_thread::sleep_for(10ms);
    }
  }
}

struct Opts {
  int timeout_s = 5;
  std::vector<std::string> extra;  // e.g. {"-u"}
  std::optional<int> clock_offset;
};

Node start_server22(const std::string& method, const std::string& psk, const Opts& o = {}) {
  std::vector<std::string> args = {
      "-m", method, "-k", psk, "-t", std::to_string(o.timeout_s), "-vv", "--allow-private-targets"};
  args.insert(args.end(), o.extra.begin(), o.extra.end());
  return start_ours("ss-server", args, "ss-server-" + method, o.clock_offset);
}

std::vector<std::string> client_args(const std::string& method, const std::string& password,
                                     uint16_t server_port, const Opts& o) {
  std::vector<std::string> args = {
      "-s", "127.0.0.1", "-p", std::to_string(server_port), "-m", method,
      "-k", password,    "-t", std::to_string(o.timeout_s), "-vv"};
  args.insert(args.end(), o.extra.begin(), o.extra.end());
  return args;
}

Node start_local22(const std::string& method, const std::string& password, uint16_t server_port,
                   const Opts& o = {}, const std::string& label = "ss-local") {
  return start_ours("ss-local", client_args(method, password, server_port, o), label,
                    o.clock_offset);
}

Node start_tunnel22(const std::string& method, const std::string& password, uint16_t server_port,
                    uint16_t target_port, const Opts& o = {}) {
  auto args = client_args(method, password, server_port, o);
  args.insert(args.end(), {"-L", "127.0.0.1:" + std::to_string(target_port)});
  return start_ours("ss-tunnel", args, "ss-tunnel", o.clock_offset);
}

// A fresh key from `ss-server --genkey METHOD`.
std::string genkey(const std::string& method) {
  auto p = spawn({binary_path(Impl::Ours, "ss-server"), "--genkey", method}, "genkey");
  const auto st = p->wait_exit(5s);
  REQUIRE(st.has_value());
  REQUIRE(*st == 0);
  const auto lines = nonempty_lines(p->log_text());
  REQUIRE(lines.size() == 1);
  return lines[0];
}

// ---- TCP helpers --------------------------------------------------------------------------------

// Everything that arrives on `s` within `window`, stopping early at EOF or a reset.
Bytes recv_for(const Socket& s, Millis window) {
  Bytes out;
  const auto deadline = Clock::now() + window;
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{s.fd(), POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    uint8_t buf[4096];
    const ssize_t n = ::recv(s.fd(), buf, sizeof buf, 0);
    if (n > 0) {
      out.insert(out.end(), buf, buf + n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      break;
    }
  }
  return out;
}

// A CONNECT through ss-local that the server should refuse: sends a request and returns the
// payload bytes that came back within `window` (the SOCKS5 reply itself is not counted).
Bytes socks_attempt(uint16_t local_port, uint16_t target_port, Millis window) {
  auto conn = socks5_connect(local_port, AddrType::IPv4, "127.0.0.1", target_port);
  if (!conn.reply) return {};  // closed before the SOCKS5 reply: no data either
  try {
    send_all(conn.socket, random_bytes(200), 2s);
  } catch (const NetError&) {
    return {};  // ss-local closed the connection
  }
  return recv_for(conn.socket, window);
}

// A CONNECT through ss-local with 200 bytes of request sent; the connection, to be watched.
Socket socks_send(uint16_t local_port, uint16_t target_port) {
  auto conn = socks5_connect(local_port, AddrType::IPv4, "127.0.0.1", target_port);
  REQUIRE(conn.reply.has_value());
  send_all(conn.socket, random_bytes(200), 2s);
  return std::move(conn.socket);
}

// A raw TCP connection to the server, with Nagle off so that every send is its own segment.
Socket raw_connect(uint16_t port) {
  Socket s = connect_tcp("127.0.0.1", port);
  const int one = 1;
  ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

enum class Reaction { Silent, Data, Closed };

const char* reaction_name(Reaction r) {
  switch (r) {
    case Reaction::Silent:
      return "silent";
    case Reaction::Data:
      return "sent data";
    case Reaction::Closed:
      return "closed";
  }
  return "?";
}

// Watches the sockets for `window`: one that receives a byte is Data, one that sees EOF or a
// reset is Closed, one that sees neither is Silent. Nothing is consumed.
std::vector<Reaction> watch(const std::vector<const Socket*>& socks, Millis window) {
  std::vector<Reaction> out(socks.size(), Reaction::Silent);
  const auto deadline = Clock::now() + window;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    for (size_t i = 0; i < socks.size(); ++i) {
      if (out[i] != Reaction::Silent) continue;
      fds.push_back({socks[i]->fd(), POLLIN, 0});
      index.push_back(i);
    }
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (fds.empty() || left.count() <= 0) break;
    const int r = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      uint8_t b = 0;
      const ssize_t n = ::recv(fds[k].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n > 0) {
        out[index[k]] = Reaction::Data;
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        out[index[k]] = Reaction::Closed;
      }
    }
  }
  return out;
}

// The probe reaction seen from the client: for `kWatch` no byte and no close; then, once we
// send FIN, the server closes too (it held the connection only because we kept it open).
void check_held_until_we_close(std::vector<Socket*> socks, const std::vector<std::string>& what) {
  std::vector<const Socket*> view(socks.begin(), socks.end());
  const auto reactions = watch(view, kWatch);
  for (size_t i = 0; i < socks.size(); ++i) {
    INFO(what[i]);
    CHECK(std::string(reaction_name(reactions[i])) == "silent");
  }
  for (Socket* s : socks) s->shutdown_write();
  for (size_t i = 0; i < socks.size(); ++i) {
    INFO(what[i] << ": after our FIN");
    if (reactions[i] == Reaction::Silent) CHECK(wait_peer_closed(*socks[i], 3s));
  }
}

// A valid first flight as our ss-local sends it for a CONNECT to 127.0.0.1:`target_port` with
// `payload` as the first data: ss-local is pointed at a listener that records and never
// forwards, so no server has seen this flight.
Bytes capture_flight(const std::string& method, const std::string& password, uint16_t target_port,
                     const Bytes& payload) {
  TargetServer recorder(TargetBehavior::sink());
  Node local = start_local22(method, password, recorder.port(), {}, "ss-local-capture");
  auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target_port);
  REQUIRE(conn.reply.has_value());
  REQUIRE(conn.reply->rep == 0x00);
  send_all(conn.socket, payload);
  conn.socket.shutdown_write();  // ss-local passes the FIN on: the recorder's report completes
  const auto reports = recorder.wait_reports(1, 10s);
  REQUIRE(reports.size() == 1);
  const std::string& head = reports[0].received_head;
  conn.socket.reset();
  check_clean_shutdown(local);
  // salt + fixed header + tag, then the variable header (address, padding, payload) + tag.
  REQUIRE(head.size() >= first_read_len(method) + 7 + 2 + payload.size() + 16);
  REQUIRE(head.size() < 4096);  // all of it (the recorder keeps the first 4 KiB)
  return Bytes(head.begin(), head.end());
}

// ---- UDP helpers --------------------------------------------------------------------------------

constexpr std::string_view kProbePrefix = "ss-probe:";

bool is_probe(const Bytes& data) {
  return data.size() >= kProbePrefix.size() &&
         std::equal(kProbePrefix.begin(), kProbePrefix.end(), data.begin());
}

// A SOCKS5 UDP client: a UDP socket on 127.0.0.1 and its UDP ASSOCIATE through ss-local.
class UdpClient {
 public:
  explicit UdpClient(uint16_t proxy_port)
      : udp_("127.0.0.1"), assoc_(socks5_udp_associate(proxy_port, "127.0.0.1", udp_.port())) {}

  void send(const std::string& host, uint16_t port, const Bytes& data) {
    Socks5UdpPacket p;
    p.atyp = AddrType::IPv4;
    p.host = host;
    p.port = port;
    p.data = data;
    udp_.send_to(assoc_.relay_host, assoc_.relay_port, socks5_udp_encode(p));
  }
  void send(const UdpTarget& target, const Bytes& data) {
    send(target.host(), target.port(), data);
  }

  // The next reply that is not a probe echo, decoded; nullopt on timeout.
  std::optional<Socks5UdpPacket> recv(Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
      auto d = udp_.recv(std::max(left, Millis(0)));
      if (!d) return std::nullopt;
      CHECK(d->host == assoc_.relay_host);
      CHECK(d->port == assoc_.relay_port);
      auto p = socks5_udp_decode(d->data);
      if (!p) FAIL("reply is not a SOCKS5 UDP datagram: " << to_hex(d->data));
      if (is_probe(p->data)) continue;
      return p;
    }
  }

  // The UDP side of a server has no connect-style readiness check: sends probes to the echo
  // target until one comes back.
  void wait_ready(const UdpTarget& target) {
    const auto deadline = Clock::now() + 10s;
    for (int n = 0; Clock::now() < deadline; ++n) {
      const std::string text = std::string(kProbePrefix) + std::to_string(n);
      const Bytes probe(text.begin(), text.end());
      send(target, probe);
      const auto until = Clock::now() + 250ms;
      while (Clock::now() < until) {
        auto d = udp_.recv(250ms);
        if (!d) break;
        auto p = socks5_udp_decode(d->data);
        if (p && p->data == probe) return;
      }
    }
    FAIL("no probe came back through the UDP relay within 10 s");
  }

  void close_association() { assoc_.control.reset(); }

 private:
  UdpSocket udp_;
  Socks5UdpAssociation assoc_;
};

// One datagram of `size` random bytes to the echo target and back: byte-exact, and the reply's
// SOCKS5 header names the target.
void check_udp_echo(UdpClient& client, const UdpTarget& target, size_t size) {
  INFO("datagram of " << size << " bytes to port " << target.port());
  const Bytes payload = random_bytes(size);
  client.send(target, payload);
  auto reply = client.recv(5s);
  REQUIRE(reply.has_value());
  CHECK(reply->frag == 0);
  CHECK(reply->atyp == AddrType::IPv4);
  CHECK(reply->host == target.host());
  CHECK(reply->port == target.port());
  CHECK(reply->data.size() == size);
  CHECK(sha256_hex(reply->data) == sha256_hex(payload));
}

// ---- round trips --------------------------------------------------------------------------------

// 10 MiB each way at once through ss-local and ss-server, byte-exact both ways; then ss-tunnel
// to an echo target through the same server.
void tcp_round_trip(const std::string& method) {
  const std::string psk = genkey(method);
  CHECK(psk.size() == base64(Bytes(key_len(method))).size());
  TargetServer target(TargetBehavior::duplex(kBulkBytes, kBulkBytes));
  TargetServer echo(TargetBehavior::echo());
  Node srv = start_server22(method, psk, {60, {}, {}});
  Node local = start_local22(method, psk, srv.port, {60, {}, {}});
  Node tun = start_tunnel22(method, psk, srv.port, echo.port(), {60, {}, {}});

  {
    auto conn = socks5_connect(local.port, AddrType::IPv4, "127.0.0.1", target.port());
    REQUIRE(conn.reply.has_value());
    REQUIRE(conn.reply->rep == 0x00);
    const Bytes upload = random_bytes(kBulkBytes);
    const TransferResult down = duplex_transfer(conn.socket, upload, kBulkBytes, 20s);
    CHECK(recv_until_eof(conn.socket, 20s).empty());  // the target's FIN comes through
    conn.socket.reset();

    const auto reports = target.wait_reports(1, 20s);
    REQUIRE(reports.size() == 1);
    const ConnectionReport& r = reports[0];
    CHECK(r.error.empty());
    CHECK(r.received == kBulkBytes);
    CHECK(to_hex(r.received_sha256) == sha256_hex(upload));
    CHECK(r.sent == kBulkBytes);
    CHECK(down.received == kBulkBytes);
    CHECK(to_hex(down.received_sha256) == to_hex(r.sent_sha256));
  }

  for (size_t size : {size_t{1}, size_t{70000}, size_t{1} << 20}) {
    INFO("ss-tunnel, " << size << " bytes");
    Socket s = connect_tcp("127.0.0.1", tun.port);
    const Bytes payload = random_bytes(size);
    const TransferResult r = duplex_transfer(s, payload, payload.size(), 20s);
    CHECK(r.received == size);
    CHECK(to_hex(r.received_sha256) == sha256_hex(payload));
  }

  check_clean_shutdown(tun);
  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

}  // namespace

TEST_CASE("2022 TCP: 10 MiB both ways and ss-tunnel with 2022-blake3-aes-128-gcm",
          "[integration][2022]") {
  tcp_round_trip(kAes128);
}

TEST_CASE("2022 TCP: 10 MiB both ways and ss-tunnel with 2022-blake3-aes-256-gcm",
          "[integration][2022]") {
  tcp_round_trip(kAes256);
}

TEST_CASE("2022 TCP: 10 MiB both ways and ss-tunnel with 2022-blake3-chacha20-poly1305",
          "[integration][2022]") {
  tcp_round_trip(kChacha);
}

TEST_CASE("2022 UDP: 1 and 1400 and 8000 byte datagrams through ss-local -u and ss-tunnel -u",
          "[integration][2022][udp]") {
  const std::string method = GENERATE(from_range(k2022Methods.begin(), k2022Methods.end()));
  INFO("method " << method);
  const std::string psk = new_key(method);
  UdpTarget target;
  Node srv = start_server22(method, psk, {5, {"-u"}, {}});
  Node local = start_local22(method, psk, srv.port, {5, {"-u"}, {}});
  {
    UdpClient client(local.port);
    client.wait_ready(target);
    for (size_t size : {size_t{1}, size_t{1400}, size_t{8000}}) {
      check_udp_echo(client, target, size);
    }
  }

  // ss-tunnel -u -L target: plain datagrams to the tunnel port come back from it.
  Node tun = start_tunnel22(method, psk, srv.port, target.port(), {5, {"-u"}, {}});
  UdpSocket app;
  bool ready = false;
  for (int i = 0; i < 40 && !ready; ++i) {  // the tunnel's UDP side has no readiness check
    const std::string text = std::string(kProbePrefix) + std::to_string(i);
    app.send_to("127.0.0.1", tun.port, Bytes(text.begin(), text.end()));
    ready = app.recv(250ms).has_value();
  }
  REQUIRE(ready);
  while (app.recv(100ms)) {
  }  // late probe echoes
  for (size_t size : {size_t{1}, size_t{1400}, size_t{8000}}) {
    INFO("ss-tunnel: datagram of " << size << " bytes");
    const Bytes payload = random_bytes(size);
    app.send_to("127.0.0.1", tun.port, payload);
    auto reply = app.recv(5s);
    REQUIRE(reply.has_value());
    CHECK(reply->host == "127.0.0.1");
    CHECK(reply->port == tun.port);
    CHECK(sha256_hex(reply->data) == sha256_hex(payload));
  }
  check_clean_shutdown(tun);
  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

// ---- SIP023 users -------------------------------------------------------------------------------

TEST_CASE("2022 SIP023: three users on one port are told apart and an unknown user gets nothing",
          "[integration][2022][sip023]") {
  const std::string method = GENERATE(as<std::string>{}, kAes128, kAes256);
  INFO("method " << method);
  const std::string ipsk = new_key(method);
  const std::vector<std::string> names = {"alice", "bob", "carol"};
  std::vector<std::string> upsk;
  for (size_t i = 0; i < names.size(); ++i) upsk.push_back(new_key(method));
  const std::string stranger_key = new_key(method);

  // The users table only exists in the JSON config.
  std::filesystem::path config = test_log_path("ss-server-config");
  config.replace_extension(".json");
  std::filesystem::create_directories(config.parent_path());
  {
    std::ofstream f(config);
    f << "{\"password\": \"" << ipsk << "\", \"users\": [";
    for (size_t i = 0; i < names.size(); ++i) {
      f << (i ? ", " : "") << "{\"name\": \"" << names[i] << "\", \"password\": \"" << upsk[i]
        << "\"}";
    }
    f << "]}\n";
  }
  Node srv = start_ours(
      "ss-server",
      {"-c", config.string(), "-m", method, "-t", "5", "-vv", "--allow-private-targets", "-u"},
      "ss-server-users");

  // One echo target per user, so each server log line can be matched to the client that made it.
  std::vector<std::unique_ptr<TargetServer>> targets;
  std::vector<Node> locals;
  for (size_t i = 0; i < names.size(); ++i) {
    targets.push_back(std::make_unique<TargetServer>(TargetBehavior::echo()));
    locals.push_back(start_local22(method, ipsk + ":" + upsk[i], srv.port, {5, {"-u"}, {}},
                                   "ss-local-" + names[i]));
  }
  TargetServer stranger_target(TargetBehavior::echo());
  Node stranger = start_local22(method, ipsk + ":" + stranger_key, srv.port, {5, {"-u"}, {}},
                                "ss-local-unknown-user");

  for (size_t i = 0; i < names.size(); ++i) {
    socks_echo(locals[i].port, targets[i]->port(), 3000 + 1000 * i);
    socks_echo(locals[i].port, targets[i]->port(), 100);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    INFO("user " << names[i]);
    const std::string target = "127.0.0.1:" + std::to_string(targets[i]->port());
    CHECK(targets[i]->accepted() == 2);
    // INFO: "server: user NAME: connect HOST:PORT", once per connection, with the right name.
    const auto connects = lines_with(srv, {"connect " + target});
    CHECK(connects.size() == 2);
    for (const auto& line : connects) CHECK_THAT(line, Catch::Contains("user " + names[i] + ":"));
    // -v: the close line names the user too.
    CHECK(wait_log(srv, std::regex(target + " user " + names[i] + " closed"), 5s));
  }

  // A fourth client with a uPSK the server does not know, and (B12) a client with the iPSK
  // alone, which sends no identity header: no data, no outbound connection.
  Node no_eih = start_local22(method, ipsk, srv.port, {}, "ss-local-without-eih");
  {
    Socket a = socks_send(stranger.port, stranger_target.port());
    Socket b = socks_send(no_eih.port, stranger_target.port());
    const auto reactions = watch({&a, &b}, kWatch);
    CHECK(std::string(reaction_name(reactions[0])) != "sent data");
    CHECK(std::string(reaction_name(reactions[1])) != "sent data");
  }
  CHECK(stranger_target.accepted() == 0);
  CHECK(lines_with(srv, {"rejected a client", "unknown user"}).size() == 2);
  CHECK(lines_with(srv, {"connect 127.0.0.1:" + std::to_string(stranger_target.port())}).empty());

  // UDP: the first user works and is named; the unknown user's datagrams go nowhere.
  UdpTarget udp_target;
  UdpTarget udp_stranger_target;
  {
    UdpClient client(locals[0].port);
    client.wait_ready(udp_target);
    check_udp_echo(client, udp_target, 1200);
    CHECK(wait_log(srv, std::regex("udp: session of user " + names[0] + " from"), 5s));

    UdpClient unknown(stranger.port);
    for (int i = 0; i < 5; ++i) unknown.send(udp_stranger_target, random_bytes(100));
    CHECK_FALSE(unknown.recv(kWatch).has_value());
    CHECK(udp_stranger_target.received() == 0);
  }
  CHECK(lines_with(srv, {"udp: session of user"}).size() == 1);

  for (Node& l : locals) check_clean_shutdown(l);
  check_clean_shutdown(stranger);
  check_clean_shutdown(no_eih);
  check_clean_shutdown(srv);
}

// ---- clock skew ---------------------------------------------------------------------------------

TEST_CASE("2022 clock skew: a client 45 s off is refused and the server says why and 29 s is fine",
          "[integration][2022][skew]") {
  const std::string method = kAes256;
  const std::string psk = new_key(method);
  TargetServer target(TargetBehavior::echo());
  TargetServer refused_target(TargetBehavior::echo());

  for (int offset : {45, -45}) {
    INFO("client SS_CLOCK_OFFSET=" << offset);
    // A server per case: its clock warning is rate-limited to one per 10 s.
    Node srv = start_server22(method, psk, {5, {"-u"}, {}});
    Node local = start_local22(method, psk, srv.port, {5, {"-u"}, offset});
    CHECK(socks_attempt(local.port, refused_target.port(), kWatch).empty());
    CHECK(refused_target.accepted() == 0);
    const std::string dir = offset > 0 ? "ahead of" : "behind";
    // Whole seconds on both sides, and under load (sanitizers, two jobs) the request may take
    // more than a second to arrive: the measured skew may be a few seconds off.
    CHECK(wait_log(srv,
                   std::regex("server: refused a client whose header is stamped outside \\+-30 s: "
                              "client clock 4[1-9] s " +
                              dir + " ours"),
                   5s));

    // UDP: the same client's datagrams are dropped, and the server says so.
    UdpTarget udp_target;
    UdpClient client(local.port);
    const std::regex udp_line("udp: dropped a packet that is stamped outside \\+-30 s: 4[1-9] s " +
                              dir + " our clock");
    bool logged = false;
    // Resent until logged: the server's UDP socket may not be ready when TCP accepts.
    for (int i = 0; i < 20 && !logged; ++i) {
      client.send(udp_target, random_bytes(64));
      logged = wait_log(srv, udp_line, 250ms);
    }
    CHECK(logged);
    CHECK_FALSE(client.recv(200ms).has_value());
    CHECK(udp_target.received() == 0);
    client.close_association();
    check_clean_shutdown(local);
    check_clean_shutdown(srv);
  }

  Node srv = start_server22(method, psk, {5, {"-u"}, {}});
  UdpTarget udp_target;
  for (int offset : {29, -29}) {
    INFO("client SS_CLOCK_OFFSET=" << offset);
    Node local = start_local22(method, psk, srv.port, {5, {"-u"}, offset});
    socks_echo(local.port, target.port(), 5000);
    UdpClient client(local.port);
    client.wait_ready(udp_target);
    check_udp_echo(client, udp_target, 500);
    client.close_association();
    check_clean_shutdown(local);
  }
  CHECK(target.accepted() == 2);
  CHECK(lines_with(srv, {"stamped"}).empty());
  check_clean_shutdown(srv);
}

TEST_CASE("2022 clock skew: a server 40 s ahead is explained on one side",
          "[integration][2022][skew]") {
  const std::string method = kAes128;
  const std::string psk = new_key(method);
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server22(method, psk, {5, {}, 40});
  Node local = start_local22(method, psk, srv.port);
  CHECK(socks_attempt(local.port, target.port(), kWatch).empty());
  CHECK(target.accepted() == 0);
  // The server checks the request first (the client's stamp is 40 s behind its clock), so the
  // client never gets a response to check; either side's explanation is operator-visible text.
  const std::regex server_says("stamped outside \\+-30 s: client clock 4[0-4] s behind ours");
  const std::regex client_says("the server's response is stamped outside \\+-30 s");
  const bool explained = wait_log(srv, server_says, 3s) || wait_log(local, client_says, 0ms);
  CHECK(explained);
  check_clean_shutdown(local);
  check_clean_shutdown(srv);
}

// ---- hostile first flights (raw TCP client) ----------------------------------------------------

TEST_CASE("2022 B1 B2: short or garbage first flights get no byte and no connect and are held",
          "[integration][2022][hostile]") {
  const std::string method = GENERATE(from_range(k2022Methods.begin(), k2022Methods.end()));
  const size_t salt = key_len(method);
  INFO("method " << method);
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server22(method, new_key(method), {3, {}, {}});

  // B1: shorter than salt + 27 (several lengths); B2: exactly salt + 27, and 1 KiB.
  const std::set<size_t> lengths = {1, 42, 58, salt + 26, salt + 27, 1024};
  std::vector<Socket> socks;
  std::vector<std::string> what;
  for (size_t n : lengths) {
    socks.push_back(raw_connect(srv.port));
    send_all(socks.back(), random_bytes(n));
    what.push_back(std::to_string(n) + " random bytes");
  }
  std::vector<Socket*> ptrs;
  for (Socket& s : socks) ptrs.push_back(&s);
  check_held_until_we_close(ptrs, what);
  CHECK(target.accepted() == 0);
  CHECK(lines_with(srv, {"connect 127.0.0.1:"}).empty());
  socks.clear();
  check_clean_shutdown(srv);
}

TEST_CASE(
    "2022 B11 B5: a valid flight split in two writes is refused and a replayed flight is "
    "refused",
    "[integration][2022][hostile]") {
  const std::string method = GENERATE(from_range(k2022Methods.begin(), k2022Methods.end()));
  const size_t salt = key_len(method);
  INFO("method " << method);
  const std::string psk = new_key(method);
  TargetServer target(TargetBehavior::echo());
  const Bytes payload = random_bytes(64);
  const Bytes flight = capture_flight(method, psk, target.port(), payload);
  Node srv = start_server22(method, psk, {3, {"--workers", "4"}, {}});

  // B11: the first write is shorter than salt + 27, the rest follows after a pause.
  {
    Socket s = raw_connect(srv.port);
    const size_t first = salt + 10;
    send_all(s, std::span<const uint8_t>(flight.data(), first));
    std::this_thread::sleep_for(200ms);  // the pause is the point: two reads on the server
    send_all(s, std::span<const uint8_t>(flight.data() + first, flight.size() - first));
    check_held_until_we_close({&s}, {"the flight in two writes"});
    CHECK(target.accepted() == 0);
    CHECK(lines_with(srv, {"rejected a client", "header too short"}).size() == 1);
  }

  // Control: the same flight in one write is accepted (it was valid, and the split attempt did
  // not put its salt in the pool): the target gets the payload and a response comes back.
  {
    Socket s = raw_connect(srv.port);
    send_all(s, flight);
    // Response salt + fixed-length header (1 + 8 + salt + 2) + tag, then the echoed chunk.
    const Bytes head = recv_exact(s, salt + 11 + salt + 16, 5s);
    CHECK(head.size() == salt + 11 + salt + 16);
    s.reset();
    const auto reports = target.wait_reports(1, 5s);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].received == payload.size());
    CHECK(to_hex(reports[0].received_sha256) == sha256_hex(payload));
  }

  // B5: the flight replayed within 60 s, on four connections: no byte, no connect, held. With
  // them, a second valid flight that no server has seen, sent on six connections at once
  // (spread over the workers): exactly one is accepted, the salt pool is shared and exact.
  {
    const Bytes payload2 = random_bytes(64);
    const Bytes flight2 = capture_flight(method, psk, target.port(), payload2);
    std::vector<Socket> socks;
    for (int i = 0; i < 10; ++i) socks.push_back(raw_connect(srv.port));
    for (int i = 0; i < 10; ++i) send_all(socks[i], i < 4 ? flight : flight2);
    std::vector<const Socket*> view;
    for (const Socket& s : socks) view.push_back(&s);
    const auto reactions = watch(view, kWatch);
    size_t answered = 0;
    for (int i = 0; i < 10; ++i) {
      INFO((i < 4 ? "replay " : "new flight, copy ") << i);
      if (i < 4) CHECK(std::string(reaction_name(reactions[i])) == "silent");
      if (i >= 4 && reactions[i] == Reaction::Data) ++answered;
      if (i >= 4 && reactions[i] != Reaction::Data) {
        CHECK(std::string(reaction_name(reactions[i])) == "silent");
      }
    }
    CHECK(answered == 1);
    CHECK(lines_with(srv, {"replayed salt"}).size() == 4 + 5);
    // The refused ones close once we send FIN.
    for (int i = 0; i < 10; ++i) {
      if (reactions[i] == Reaction::Silent) {
        socks[i].shutdown_write();
        CHECK(wait_peer_closed(socks[i], 3s));
      }
    }
    socks.clear();
    const auto reports = target.wait_reports(2, 5s);
    REQUIRE(reports.size() == 2);
    CHECK(target.accepted() == 2);
    CHECK(to_hex(reports[1].received_sha256) == sha256_hex(payload2));
  }
  check_clean_shutdown(srv);
}

// The reaction to a refused first flight does not depend on what was sent: every such
// connection, and one that sent nothing, is closed with FIN at the same deadline (-t 3: 3 s
// after accept), and none of them gets a byte.
TEST_CASE("2022 B1 B2: refused connections all end at the same deadline whatever their length",
          "[integration][2022][hostile]") {
  const std::string method = kAes128;
  const size_t salt = key_len(method);
  TargetServer target(TargetBehavior::echo());
  Node srv = start_server22(method, new_key(method), {3, {}, {}});
  const std::vector<size_t> lengths = {0, 1, salt + 26, salt + 27, 1024};
  std::vector<Socket> socks;
  for (size_t n : lengths) {
    socks.push_back(raw_connect(srv.port));
    if (n > 0) send_all(socks.back(), random_bytes(n));
  }
  const auto start = Clock::now();
  std::vector<std::optional<Millis>> closed_at(socks.size());
  std::vector<Bytes> got(socks.size());
  std::vector<std::string> how(socks.size());
  std::vector<const Socket*> view;
  for (const Socket& s : socks) view.push_back(&s);
  while (Clock::now() - start < 6s) {
    std::vector<const Socket*> open;
    std::vector<size_t> index;
    for (size_t i = 0; i < socks.size(); ++i) {
      if (!closed_at[i]) {
        open.push_back(view[i]);
        index.push_back(i);
      }
    }
    if (open.empty()) break;
    const auto r = watch(open, 100ms);
    for (size_t k = 0; k < open.size(); ++k) {
      if (r[k] == Reaction::Silent) continue;
      const size_t i = index[k];
      if (r[k] == Reaction::Data) {
        got[i] = recv_for(socks[i], 10ms);  // then it is closed too, or left to the timeout
        continue;
      }
      closed_at[i] = std::chrono::duration_cast<Millis>(Clock::now() - start);
      uint8_t b = 0;
      const ssize_t n = ::recv(socks[i].fd(), &b, 1, MSG_DONTWAIT);
      how[i] = n == 0 ? "FIN" : (n < 0 && errno == ECONNRESET) ? "RST" : "other";
    }
  }
  std::vector<Millis> times;
  for (size_t i = 0; i < socks.size(); ++i) {
    INFO(lengths[i] << " bytes sent");
    CHECK(got[i].empty());
    REQUIRE(closed_at[i].has_value());
    CHECK(closed_at[i]->count() >= 2500);
    CHECK(how[i] == how[0]);
    times.push_back(*closed_at[i]);
  }
  const auto [lo, hi] = std::minmax_element(times.begin(), times.end());
  CHECK((*hi - *lo).count() < 500);
  CHECK(target.accepted() == 0);
  socks.clear();
  check_clean_shutdown(srv);
}

// ---- UDP replays and sessions -------------------------------------------------------------------

TEST_CASE(
    "2022 U3 U5: a replayed UDP packet is dropped and does not move the session but a valid "
    "one does",
    "[integration][2022][udp][hostile]") {
  const std::string method = GENERATE(as<std::string>{}, kAes128, kChacha);
  INFO("method " << method);
  const std::string psk = new_key(method);
  // An echo target that holds back its reply to payloads starting with "slow" for 500 ms, so a
  // replay can reach the server while the reply to the original is still due.
  UdpTarget target("127.0.0.1", [](std::span<const uint8_t> d) -> std::optional<Bytes> {
    if (d.size() >= 4 && std::equal(d.begin(), d.begin() + 4, "slow")) {
      std::this_thread::sleep_for(500ms);
    }
    return Bytes(d.begin(), d.end());
  });
  Node srv = start_server22(method, psk, {5, {"-u"}, {}});
  {
    Node probe_local = start_local22(method, psk, srv.port, {5, {"-u"}, {}}, "ss-local-probe");
    UdpClient probe(probe_local.port);
    probe.wait_ready(target);  // the server's UDP side is up
    probe.close_association();
    check_clean_shutdown(probe_local);
  }
  const size_t base = target.received();
  const size_t sessions_before = count_occurrences(srv.proc->log_text(), "udp: new association");

  // Captured packets: ss-local -u sends to `recorder` instead of a server.
  UdpSocket recorder;
  Node cap = start_local22(method, psk, recorder.port(), {5, {"-u"}, {}}, "ss-local-capture");
  UdpClient c1(cap.port);
  UdpClient c2(cap.port);  // another source port: another session ID
  auto capture = [&](UdpClient& c, const std::string& text) {
    const Bytes data(text.begin(), text.end());
    for (int i = 0; i < 20; ++i) {
      c.send(target, data);
      if (auto d = recorder.recv(250ms)) return d->data;
    }
    FAIL("ss-local sent nothing to the recorder");
    return Bytes{};
  };
  const Bytes p0 = capture(c1, "slow packet 0 of session 1");
  const Bytes p1 = capture(c1, "packet 1 of session 1");
  const Bytes q0 = capture(c2, "packet 0 of session 2");
  c1.close_association();
  c2.close_association();
  check_clean_shutdown(cap);

  UdpSocket a;
  UdpSocket b;
  UdpSocket c;
  // U1 on the way: garbage of every size around the minimum creates nothing and gets nothing
  // (the session count is checked at the end).
  for (size_t n : {0, 1, 15, 16, 17, 49, 50, 73, 74, 100, 1500}) {
    c.send_to("127.0.0.1", srv.port, random_bytes(n));
  }
  // The original from a; while its reply is held back, the same packet from a and from b.
  a.send_to("127.0.0.1", srv.port, p0);
  REQUIRE(target.wait_received(base + 1, 5s));
  a.send_to("127.0.0.1", srv.port, p0);
  b.send_to("127.0.0.1", srv.port, p0);
  // U5: the reply goes to a: the replay from b did not move the session's return address.
  auto ra = a.recv(3s);
  REQUIRE(ra.has_value());
  CHECK(ra->port == srv.port);
  // U3: the replays reached neither the target nor produced a reply.
  CHECK_FALSE(b.recv(300ms).has_value());
  CHECK_FALSE(a.recv(0ms).has_value());
  CHECK(target.received() == base + 1);

  // U5: a new, valid packet of the same session from c: accepted, and the reply follows it to c.
  c.send_to("127.0.0.1", srv.port, p1);
  REQUIRE(target.wait_received(base + 2, 5s));
  CHECK(c.recv(3s).has_value());
  CHECK_FALSE(a.recv(200ms).has_value());
  // And p1 again (from a): a replay.
  a.send_to("127.0.0.1", srv.port, p1);
  CHECK_FALSE(a.recv(300ms).has_value());
  CHECK_FALSE(c.recv(0ms).has_value());
  CHECK(target.received() == base + 2);

  // U5: a new session ID from a new address (b): a new session, replies go to b.
  b.send_to("127.0.0.1", srv.port, q0);
  REQUIRE(target.wait_received(base + 3, 5s));
  CHECK(b.recv(3s).has_value());
  CHECK_FALSE(c.recv(200ms).has_value());
  // Two sessions; with several workers, session 1 moving to c may land on another worker's
  // socket, which then keeps an association of its own for it (sharing its replay window).
  const size_t created =
      count_occurrences(srv.proc->log_text(), "udp: new association") - sessions_before;
  CHECK(created >= 2);
  CHECK(created <= 3);
  check_clean_shutdown(srv);
}

// ---- the helpers themselves ----

TEST_CASE("2022 test helpers: watch() tells data and close and silence apart",
          "[integration][2022]") {
  TargetServer echo(TargetBehavior::echo());
  Socket talks = raw_connect(echo.port());
  Socket closes = raw_connect(echo.port());
  Socket silent = raw_connect(echo.port());
  send_all(talks, random_bytes(10));
  closes.shutdown_write();  // the echo target answers our FIN with its own
  const auto r = watch({&talks, &closes, &silent}, 300ms);
  CHECK(std::string(reaction_name(r[0])) == "sent data");
  CHECK(std::string(reaction_name(r[1])) == "closed");
  CHECK(std::string(reaction_name(r[2])) == "silent");
}

// ---- key errors ---------------------------------------------------------------------------------

TEST_CASE("2022 key errors: exit 1 with one line naming password or method",
          "[integration][2022][config]") {
  struct Case {
    std::string name;
    std::string method;
    std::string password;
    std::string names;  // the line must contain this
  };
  const std::vector<Case> cases = {
      {"a 32-byte key for aes-128", kAes128, base64(random_bytes(32)), "password"},
      {"a 16-byte key for aes-256", kAes256, base64(random_bytes(16)), "password"},
      {"a 31-byte key for chacha20", kChacha, base64(random_bytes(31)), "password"},
      {"bad base64", kAes128, "not*base64!key==", "password"},
      {"2022-blake3-chacha8-poly1305", "2022-blake3-chacha8-poly1305", base64(random_bytes(32)),
       "method"},
  };
  const std::string program = GENERATE(as<std::string>{}, "ss-server", "ss-local", "ss-tunnel");
  for (const Case& c : cases) {
    INFO(program << ": " << c.name);
    std::vector<std::string> argv = {binary_path(Impl::Ours, program), "-m", c.method, "-k",
                                     c.password};
    if (program == "ss-server") {
      argv.insert(argv.end(), {"-s", "127.0.0.1", "-p", std::to_string(pick_free_port())});
    } else {
      argv.insert(argv.end(), {"-s", "127.0.0.1", "-p", std::to_string(pick_free_port()), "-b",
                               "127.0.0.1", "-l", std::to_string(pick_free_port())});
    }
    if (program == "ss-tunnel") argv.insert(argv.end(), {"-L", "127.0.0.1:9"});
    auto p = spawn(argv, program);
    const auto st = p->wait_exit(5s);
    REQUIRE(st.has_value());
    CHECK(*st == 1);
    const auto lines = nonempty_lines(p->log_text());
    REQUIRE(lines.size() == 1);
    CHECK_THAT(lines[0], Catch::Contains(c.names));
    CHECK_THAT(lines[0], !Catch::Contains(c.password));  // never echo a secret
  }
}

}  // namespace ss::test
