// UDP relay end to end: a SOCKS5 UDP client in this process -> ss-local -u -> ss-server -u -> a
// UDP target on loopback, and ss-tunnel -u for a DNS-style exchange. Covers the SOCKS5 UDP rules
// of hostile-inputs.md S19-S22, the server's NAT (U1, idle expiry, the LRU cap) and interop with
// shadowsocks-libev.
//
// libev interop note: shadowsocks-libev 3.3.5 drops UDP datagrams larger than about 2.7 KB unless
// it is started with --mtu, so every pairing that involves a libev binary keeps payloads at or
// below 1400 bytes. Our own pairings also send 8000-byte datagrams.

#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "tests/integration/harness.h"

namespace ss::test {
namespace {

using namespace std::chrono_literals;

using Clock = std::chrono::steady_clock;

// Datagrams whose payload starts with this are readiness probes; replies to them are skipped.
constexpr std::string_view kProbePrefix = "ss-probe:";

NodeOptions udp_options(const std::string& method, std::vector<std::string> extra = {"-u"}) {
  return {method, random_token(24), 60, std::move(extra)};
}

Bytes probe_payload(int n) {
  const std::string text = std::string(kProbePrefix) + std::to_string(n);
  return Bytes(text.begin(), text.end());
}

bool is_probe(const Bytes& data) {
  return data.size() >= kProbePrefix.size() &&
         std::equal(kProbePrefix.begin(), kProbePrefix.end(), data.begin());
}

// Our binaries log "udp: new association for <client>" at -v for every NAT entry they create.
size_t associations_created(const Node& node) {
  return count_occurrences(node.proc->log_text(), "udp: new association for");
}

// A SOCKS5 UDP client: a UDP socket on 127.0.0.1 and its association through ss-local. With
// `announce`, the UDP ASSOCIATE request names the socket's address (so ss-local accepts only
// that port); otherwise it sends 0.0.0.0:0.
class UdpClient {
 public:
  explicit UdpClient(uint16_t proxy_port, bool announce = true,
                     const std::string& bind_host = "127.0.0.1")
      : udp_(bind_host),
        assoc_(socks5_udp_associate(proxy_port, announce ? bind_host : "0.0.0.0",
                                    announce ? udp_.port() : 0)) {}

  UdpSocket& socket() { return udp_; }
  Socks5UdpAssociation& association() { return assoc_; }
  const Socks5UdpAssociation& association() const { return assoc_; }

  void send(const std::string& host, uint16_t port, const Bytes& data, uint8_t frag = 0) {
    Socks5UdpPacket p;
    p.frag = frag;
    p.atyp = host.find(':') != std::string::npos ? AddrType::IPv6 : AddrType::IPv4;
    p.host = host;
    p.port = port;
    p.data = data;
    udp_.send_to(assoc_.relay_host, assoc_.relay_port, socks5_udp_encode(p));
  }
  void send(const UdpTarget& target, const Bytes& data, uint8_t frag = 0) {
    send(target.host(), target.port(), data, frag);
  }
  // Sends raw bytes to the relay, as they are.
  void send_raw(std::span<const uint8_t> data) {
    udp_.send_to(assoc_.relay_host, assoc_.relay_port, data);
  }

  // The next reply that is not a probe echo, decoded; nullopt on timeout. Every reply must come
  // from the relay address and be a well-formed SOCKS5 UDP datagram.
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

  // Readiness: the UDP side of a proxy has no connect-style check, and libev binds its UDP
  // socket after its TCP listener. Sends probes to the (echo) target until one comes back.
  void wait_ready(const UdpTarget& target) {
    const auto deadline = Clock::now() + 10s;
    for (int n = 0; Clock::now() < deadline; ++n) {
      const Bytes probe = probe_payload(n);
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

 private:
  UdpSocket udp_;
  Socks5UdpAssociation assoc_;
};

// One datagram of `size` random bytes to the echo target and back: byte-exact, and the reply's
// SOCKS5 header carries the target's address and port.
void check_echo(UdpClient& client, const UdpTarget& target, size_t size) {
  INFO("datagram of " << size << " bytes to " << target.host() << " port " << target.port());
  const Bytes payload = random_bytes(size);
  client.send(target, payload);
  auto reply = client.recv(5s);
  REQUIRE(reply.has_value());
  CHECK(reply->frag == 0);
  CHECK(reply->atyp ==
        (target.host().find(':') != std::string::npos ? AddrType::IPv6 : AddrType::IPv4));
  CHECK(reply->host == target.host());
  CHECK(reply->port == target.port());
  CHECK(reply->data.size() == size);
  CHECK(sha256_hex(reply->data) == sha256_hex(payload));
}

// Starts ss-server and ss-local with UDP. `server_extra`/`local_extra` replace the default "-u".
struct UdpPair {
  Node server;
  Node local;
};

UdpPair start_pair(Impl local, Impl server, const std::string& method,
                   std::vector<std::string> server_extra = {"-u"},
                   std::vector<std::string> local_extra = {"-u"}) {
  NodeOptions opt = udp_options(method, std::move(server_extra));
  UdpPair p;
  p.server = start_server(server, opt);
  opt.extra_args = std::move(local_extra);
  p.local = start_local(local, opt, p.server.port);
  return p;
}

void check_association_reply(const UdpClient& client, const Node& local) {
  const auto& a = client.association();
  // BND = the control connection's local IP and the UDP relay port (the TCP listener's port).
  CHECK(a.reply.atyp == 1);
  CHECK(a.relay_host == "127.0.0.1");
  CHECK(a.relay_port == local.port);
}

// The SOCKS5 UDP echo through one pairing, byte-exact.
void udp_echo_pairing(Impl local, Impl server, const std::string& method,
                      std::initializer_list<size_t> sizes) {
  INFO("ss-local: " << impl_name(local) << ", ss-server: " << impl_name(server)
                    << ", method: " << method);
  UdpTarget target;
  UdpPair p = start_pair(local, server, method);
  {
    UdpClient client(p.local.port);
    check_association_reply(client, p.local);
    client.wait_ready(target);
    for (size_t size : sizes) check_echo(client, target, size);
  }  // the control connection closes here
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

}  // namespace

// ---- ours x ours -------------------------------------------------------------------------------

TEST_CASE("UDP: 1, 1400 and 8000 byte datagrams through our ss-local and ss-server",
          "[integration][udp]") {
  const std::string method = GENERATE(from_range(kAeadCiphers.begin(), kAeadCiphers.end()));
  udp_echo_pairing(Impl::Ours, Impl::Ours, method, {1, 1400, 8000});
}

TEST_CASE("UDP: one association to three targets, replies carry each target's address",
          "[integration][udp]") {
  UdpTarget a;
  UdpTarget b;
  UdpTarget v6("::1");
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "aes-256-gcm");
  UdpClient client(p.local.port);
  client.wait_ready(a);
  for (int round = 0; round < 2; ++round) {
    check_echo(client, a, 100);
    check_echo(client, b, 200);
    check_echo(client, v6, 300);
  }
  // Interleaved without waiting: each reply still names its own target.
  const Bytes pa = random_bytes(64);
  const Bytes pb = random_bytes(65);
  client.send(a, pa);
  client.send(b, pb);
  for (int i = 0; i < 2; ++i) {
    auto r = client.recv(5s);
    REQUIRE(r.has_value());
    if (r->port == a.port()) {
      CHECK(r->data == pa);
    } else {
      CHECK(r->port == b.port());
      CHECK(r->data == pb);
    }
  }
  // One association on the server: every target saw the same source address (one outbound
  // socket per family).
  REQUIRE(a.sources().size() == 1);
  REQUIRE(b.sources().size() == 1);
  CHECK(a.sources()[0].port == b.sources()[0].port);
  CHECK(v6.sources().size() == 1);
  CHECK(associations_created(p.server) == 1);

  client.association().control.reset();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: ss-local drops datagrams with FRAG != 0 (S19)", "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "chacha20-ietf-poly1305");
  UdpClient client(p.local.port);
  client.wait_ready(target);
  const size_t before = target.received();

  for (uint8_t frag : {uint8_t{1}, uint8_t{0x7F}, uint8_t{0x81}, uint8_t{0xFF}}) {
    client.send(target, random_bytes(32), frag);
  }
  // A good datagram after them: its reply is the first to come back, and the target got it
  // alone (the relay handles datagrams in order).
  const Bytes good = random_bytes(48);
  client.send(target, good);
  auto r = client.recv(5s);
  REQUIRE(r.has_value());
  CHECK(r->data == good);
  CHECK_FALSE(client.recv(200ms).has_value());
  CHECK(target.received() == before + 1);

  client.association().control.reset();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: ss-local drops datagrams from a port or IP other than the associated one (S20)",
          "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "aes-128-gcm");

  SECTION("DST.PORT given: another port on the same IP is dropped") {
    UdpClient client(p.local.port, /*announce=*/true);
    client.wait_ready(target);
    const size_t before = target.received();
    UdpSocket stranger("127.0.0.1");
    Socks5UdpPacket pkt{0, AddrType::IPv4, target.host(), target.port(), random_bytes(40)};
    stranger.send_to(client.association().relay_host, client.association().relay_port,
                     socks5_udp_encode(pkt));
    check_echo(client, target, 50);  // the associated port still works
    CHECK_FALSE(stranger.recv(300ms).has_value());
    CHECK(target.received() == before + 1);
  }
  SECTION("DST 0.0.0.0:0: another IP (127.0.0.2) is dropped") {
    UdpClient client(p.local.port, /*announce=*/false);
    client.wait_ready(target);
    const size_t before = target.received();
    UdpSocket stranger("127.0.0.2");
    Socks5UdpPacket pkt{0, AddrType::IPv4, target.host(), target.port(), random_bytes(40)};
    stranger.send_to(client.association().relay_host, client.association().relay_port,
                     socks5_udp_encode(pkt));
    check_echo(client, target, 50);
    CHECK_FALSE(stranger.recv(300ms).has_value());
    CHECK(target.received() == before + 1);
  }
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: ss-local drops short and malformed datagrams, the association lives on (S21)",
          "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "chacha20-ietf-poly1305");
  UdpClient client(p.local.port);
  client.wait_ready(target);
  const size_t before = target.received();

  const std::vector<Bytes> garbage = {
      {},                                                  // empty
      {0x00},                                              // 1 byte
      {0x00, 0x00},                                        // RSV only
      {0x00, 0x00, 0x00},                                  // no ATYP
      {0x00, 0x00, 0x00, 0x01},                            // IPv4 without address
      {0x00, 0x00, 0x00, 0x01, 127, 0, 0, 1},              // IPv4 without port
      {0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0},    // truncated IPv6
      {0x00, 0x00, 0x00, 0x03, 200, 'a', 'b', 'c'},        // name longer than the datagram
      {0x00, 0x00, 0x00, 0x05, 127, 0, 0, 1, 0x12, 0x34},  // ATYP 5
      {0x00, 0x00, 0x00, 0x00, 127, 0, 0, 1, 0x12, 0x34},  // ATYP 0
      {0x00, 0x00, 0x00, 0x11, 127, 0, 0, 1, 0x12, 0x34},  // ATYP 0x11 (libev masks with 0x0F)
  };
  for (const Bytes& g : garbage) client.send_raw(g);
  client.send_raw(random_bytes(3000));

  const Bytes good = random_bytes(100);
  client.send(target, good);
  auto r = client.recv(5s);
  REQUIRE(r.has_value());
  CHECK(r->data == good);
  CHECK_FALSE(client.recv(200ms).has_value());
  CHECK(target.received() == before + 1);
  check_echo(client, target, 1400);
  CHECK(p.local.proc->running());

  client.association().control.reset();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: ss-server drops garbage without a reply or an association (U1)",
          "[integration][udp]") {
  // Salt sizes: 16 for aes-128-gcm, 32 for chacha20-ietf-poly1305; the tag is 16 bytes.
  const auto [method, salt] = GENERATE(table<std::string, size_t>(
      {{"aes-128-gcm", size_t{16}}, {"chacha20-ietf-poly1305", size_t{32}}}));
  INFO("method " << method);
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, method);

  UdpSocket prober("127.0.0.1");
  for (size_t size : {size_t{0}, size_t{1}, salt - 1, salt, salt + 16 - 1, salt + 16, size_t{2000},
                      size_t{65507}}) {
    prober.send_to("127.0.0.1", p.server.port, random_bytes(size));
  }
  // The server reads its socket in order: once a good client's datagram has come back, all the
  // garbage before it has been handled.
  UdpClient client(p.local.port);
  client.wait_ready(target);
  check_echo(client, target, 1400);
  CHECK_FALSE(prober.recv(300ms).has_value());
  CHECK(associations_created(p.server) == 1);  // the good client's only
  CHECK(target.sources().size() == 1);
  CHECK(p.server.proc->running());

  client.association().control.reset();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: ss-server association expires after udp_timeout and is created again",
          "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "aes-256-gcm", {"-u", "--udp-timeout", "1"});
  UdpClient client(p.local.port);
  client.wait_ready(target);
  check_echo(client, target, 200);
  REQUIRE(associations_created(p.server) == 1);
  REQUIRE(target.sources().size() == 1);

  // Idle past the timeout (1 s, swept once a second): nothing to wait on but the clock.
  std::this_thread::sleep_for(2500ms);
  check_echo(client, target, 300);
  // A new association on the server: a new outbound socket, so the target sees a new source.
  CHECK(associations_created(p.server) == 2);
  CHECK(target.sources().size() == 2);
  // ss-local's association is tied to the control connection and did not expire.
  CHECK(associations_created(p.local) == 1);

  client.association().control.reset();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: ss-server beyond udp_max_associations evicts the least recently used",
          "[integration][udp]") {
  UdpTarget target;
  // One worker: the cap is shared out among the workers' NATs, and the kernel spreads the
  // clients over their sockets, so only with one are the evictions below exact.
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "aes-128-gcm",
                         {"-u", "--udp-max-associations", "2", "--workers", "1"});
  // Three SOCKS5 clients: three associations in ss-local, so three client addresses at ss-server.
  std::vector<std::unique_ptr<UdpClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(std::make_unique<UdpClient>(p.local.port));
  clients[0]->wait_ready(target);
  const size_t after_probe = associations_created(p.server);
  REQUIRE(after_probe == 1);

  // Round robin a, b, c, a, b, c with a cap of 2: every datagram finds its association evicted
  // and a new one is made (the least recently used goes), and every reply still arrives.
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < clients.size(); ++i) {
      INFO("round " << round << ", client " << i);
      check_echo(*clients[i], target, 100 + i);
    }
  }
  // a exists since the probe; then b is new, c evicts a, a evicts b, b evicts c, c evicts a.
  CHECK(associations_created(p.server) == after_probe + 5);
  CHECK(target.sources().size() == after_probe + 5);
  CHECK(associations_created(p.local) == 3);

  clients.clear();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

// At the connection cap, ss-local evicts its oldest connection still in a handshake. A UDP
// association's control connection has finished its handshake: a storm of half-finished
// greetings must evict the storm, never the association.
TEST_CASE("UDP: an association is not evicted at the connection cap", "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "chacha20-ietf-poly1305", {"-u"},
                         {"-u", "--workers", "1", "--max-connections", "3"});
  UdpClient client(p.local.port);
  client.wait_ready(target);
  check_echo(client, target, 100);

  const uint8_t partial[] = {0x05, 0x01};  // a greeting whose method byte never comes
  std::vector<Socket> storm;
  for (int i = 0; i < 10; ++i) {
    storm.push_back(connect_tcp("127.0.0.1", p.local.port, 5s));
    ::send(storm.back().fd(), partial, sizeof partial, MSG_NOSIGNAL);
  }
  // The storm met the cap: ss-local evicted its oldest greetings.
  REQUIRE(wait_log(p.local, "closing the oldest unfinished handshake", 1, 5s));
  REQUIRE(wait_peer_closed(storm.front(), 5s));
  CHECK_FALSE(wait_peer_closed(client.association().control, 300ms));
  check_echo(client, target, 100);
  storm.clear();
  client.association().control.reset();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: the association ends when its TCP control connection closes (S22)",
          "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "chacha20-ietf-poly1305");
  UdpClient client(p.local.port);
  client.wait_ready(target);
  check_echo(client, target, 100);

  // ss-local logs the control session's end at -v ("local: - closed: ..."; the harness's
  // readiness check made such a line already); after that the association must be gone.
  const size_t closed_before = count_occurrences(p.local.proc->log_text(), "closed:");
  client.association().control.reset();
  REQUIRE(wait_log(p.local, "closed:", closed_before + 1, 5s));
  const size_t before = target.received();
  client.send(target, random_bytes(100));
  CHECK_FALSE(client.recv(1s).has_value());
  CHECK(target.received() == before);

  // A new association from a new socket works.
  UdpClient again(p.local.port);
  check_echo(again, target, 100);
  again.association().control.reset();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: a closed UDP ASSOCIATE that never carried a datagram admits nobody (S22)",
          "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "aes-128-gcm");
  std::string relay_host;
  uint16_t relay_port = 0;
  {
    // DST 0.0.0.0:0: any port of 127.0.0.1 may claim the association while it lasts.
    UdpClient client(p.local.port, /*announce=*/false);
    relay_host = client.association().relay_host;
    relay_port = client.association().relay_port;
    const size_t closed_before = count_occurrences(p.local.proc->log_text(), "closed:");
    client.association().control.reset();
    REQUIRE(wait_log(p.local, "closed:", closed_before + 1, 5s));
  }
  // A socket of the same IP with no association of its own.
  UdpSocket stranger("127.0.0.1");
  Socks5UdpPacket pkt{0, AddrType::IPv4, target.host(), target.port(), random_bytes(40)};
  stranger.send_to(relay_host, relay_port, socks5_udp_encode(pkt));
  CHECK_FALSE(stranger.recv(1s).has_value());
  CHECK(target.received() == 0);

  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: with 4 workers, UDP ASSOCIATEs whose datagrams land on another worker work",
          "[integration][udp]") {
  // Each association's TCP connection and UDP socket are spread by two different SO_REUSEPORT
  // hashes over ss-local's 4 workers: with 24 of them, some datagrams (all but surely: the chance
  // that none does is 4^-24) reach a worker other than their control connection's.
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "aes-128-gcm", {"-u", "--workers", "4"},
                         {"-u", "--workers", "4", "-vv"});
  std::vector<std::unique_ptr<UdpClient>> clients;
  for (int i = 0; i < 24; ++i) clients.push_back(std::make_unique<UdpClient>(p.local.port));
  clients.front()->wait_ready(target);
  for (size_t i = 0; i < clients.size(); ++i) {
    INFO("client " << i);
    check_echo(*clients[i], target, 100 + i);
  }
  CHECK(count_occurrences(p.local.proc->log_text(), "is served on another worker") >= 1);
  // Closing the control connection ends the association on whichever worker has it.
  const size_t closed_before = count_occurrences(p.local.proc->log_text(), "closed:");
  for (auto& c : clients) c->association().control.reset();
  REQUIRE(wait_log(p.local, "closed:", closed_before + clients.size(), 5s));
  const size_t before = target.received();
  for (auto& c : clients) c->send(target, random_bytes(50));
  for (auto& c : clients) CHECK_FALSE(c->recv(100ms).has_value());
  CHECK(target.received() == before);
  clients.clear();
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

TEST_CASE("UDP: ss-local -U relays UDP and refuses CONNECT with 07", "[integration][udp]") {
  UdpTarget target;
  UdpPair p = start_pair(Impl::Ours, Impl::Ours, "aes-256-gcm", {"-u"}, {"-U"});
  {
    UdpClient client(p.local.port);
    check_association_reply(client, p.local);
    client.wait_ready(target);
    check_echo(client, target, 1400);
  }
  auto conn = socks5_connect(p.local.port, AddrType::IPv4, "127.0.0.1", target.port());
  REQUIRE(conn.reply.has_value());
  CHECK(conn.reply->rep == 0x07);
  CHECK(wait_peer_closed(conn.socket, 10s));
  check_clean_shutdown(p.local);
  check_clean_shutdown(p.server);
}

// ---- interop
// -------------------------------------------------------------------------------------

TEST_CASE("interop control: UDP libev ss-local x libev ss-server",
          "[integration][udp][interop][libev-only]") {
  const std::string method = GENERATE(as<std::string>{}, "chacha20-ietf-poly1305", "aes-256-gcm");
  udp_echo_pairing(Impl::Libev, Impl::Libev, method, {1, 700, 1400});
}

TEST_CASE("interop: UDP our ss-local x libev ss-server", "[integration][udp][interop]") {
  const std::string method = GENERATE(from_range(kAeadCiphers.begin(), kAeadCiphers.end()));
  udp_echo_pairing(Impl::Ours, Impl::Libev, method, {1, 700, 1400});
}

TEST_CASE("interop: UDP libev ss-local x our ss-server", "[integration][udp][interop]") {
  const std::string method = GENERATE(from_range(kAeadCiphers.begin(), kAeadCiphers.end()));
  udp_echo_pairing(Impl::Libev, Impl::Ours, method, {1, 700, 1400});
}

// ---- ss-tunnel -u: a DNS-style exchange
// ------------------------------------------------------------

namespace {

constexpr uint8_t kDnsAnswerIp[4] = {192, 0, 2, 53};

Bytes dns_query(uint16_t id, const std::string& name) {
  Bytes q = {static_cast<uint8_t>(id >> 8),
             static_cast<uint8_t>(id & 0xFF),
             0x01,
             0x00,  // RD
             0x00,
             0x01,
             0x00,
             0x00,
             0x00,
             0x00,
             0x00,
             0x00};
  size_t start = 0;
  while (start <= name.size()) {
    const size_t dot = std::min(name.find('.', start), name.size());
    q.push_back(static_cast<uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
             name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  q.push_back(0);
  q.insert(q.end(), {0x00, 0x01, 0x00, 0x01});  // QTYPE A, QCLASS IN
  return q;
}

// The fake resolver's answer: the query's ID and question, one A record.
std::optional<Bytes> dns_answer(std::span<const uint8_t> query) {
  if (query.size() < 12 + 5) return std::nullopt;
  Bytes r(query.begin(), query.end());
  r[2] = 0x81;  // QR, RD
  r[3] = 0x80;  // RA, NOERROR
  r[7] = 0x01;  // ANCOUNT 1
  r.insert(r.end(), {0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x00, 0x04});
  r.insert(r.end(), std::begin(kDnsAnswerIp), std::end(kDnsAnswerIp));
  return r;
}

uint16_t dns_id(const Bytes& msg) {
  return msg.size() >= 2 ? static_cast<uint16_t>((msg[0] << 8) | msg[1]) : 0;
}

// Sends the query until the answer with its ID comes back (readiness; libev binds its UDP
// socket after its TCP listener), within 10 s.
std::optional<Datagram> dns_exchange(const UdpSocket& s, uint16_t server_port, const Bytes& query,
                                     bool retry) {
  const auto deadline = Clock::now() + 10s;
  do {
    s.send_to("127.0.0.1", server_port, query);
    const auto until = Clock::now() + (retry ? 250ms : 5s);
    while (Clock::now() < until) {
      auto d = s.recv(std::chrono::duration_cast<Millis>(until - Clock::now()));
      if (!d) break;
      if (dns_id(d->data) == dns_id(query)) return d;  // others: answers to earlier retries
    }
  } while (retry && Clock::now() < deadline);
  return std::nullopt;
}

void dns_through_tunnel(Impl tunnel, Impl server) {
  const std::string method = GENERATE(as<std::string>{}, "chacha20-ietf-poly1305", "aes-128-gcm");
  INFO("ss-tunnel: " << impl_name(tunnel) << ", ss-server: " << impl_name(server)
                     << ", method: " << method);
  UdpTarget dns("127.0.0.1", dns_answer);
  const NodeOptions opt = udp_options(method);
  Node srv = start_server(server, opt);
  Node tun = start_tunnel(tunnel, opt, srv.port, dns.host(), dns.port());

  UdpSocket a("127.0.0.1");
  UdpSocket b("127.0.0.1");
  RandomBytes rng;
  REQUIRE(dns_exchange(a, tun.port, dns_query(1, "ready.example.test"), true).has_value());
  for (int i = 0; i < 4; ++i) {
    const UdpSocket& s = (i % 2 == 0) ? a : b;
    const Bytes id = rng.take(2);
    const Bytes query = dns_query(static_cast<uint16_t>((id[0] << 8) | id[1] | 0x100),
                                  "host" + std::to_string(i) + ".example.test");
    INFO("query " << i << " from port " << s.port());
    auto answer = dns_exchange(s, tun.port, query, false);
    REQUIRE(answer.has_value());
    CHECK(answer->host == "127.0.0.1");
    CHECK(answer->port == tun.port);
    CHECK(answer->data == *dns_answer(query));
  }
  // Nothing went to the wrong client.
  CHECK_FALSE(a.recv(100ms).has_value());
  CHECK_FALSE(b.recv(100ms).has_value());

  check_clean_shutdown(tun);
  check_clean_shutdown(srv);
}

// Workers whose NAT received datagrams, from the "udp: worker N: M datagrams in" lines at
// shutdown (-vv).
size_t busy_workers(const Node& node) {
  const std::string log = node.proc->log_text();
  static const std::regex line("udp: worker [0-9]+: ([0-9]+) datagrams in");
  size_t busy = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator();
       ++it) {
    if (std::stoull((*it)[1].str()) > 0) ++busy;
  }
  return busy;
}

}  // namespace

TEST_CASE("UDP: with 4 workers, 64 source ports through ss-tunnel and ss-server all get answers",
          "[integration][udp]") {
  UdpTarget dns("127.0.0.1", dns_answer);
  const NodeOptions opt = udp_options("aes-128-gcm", {"-u", "--workers", "4"});
  Node srv = start_server(Impl::Ours, opt);
  Node tun = start_tunnel(Impl::Ours, opt, srv.port, dns.host(), dns.port());
  // Each socket's 4-tuple picks one of each binary's four UDP sockets (SO_REUSEPORT).
  std::vector<std::unique_ptr<UdpSocket>> sockets;
  for (int i = 0; i < 64; ++i) sockets.push_back(std::make_unique<UdpSocket>("127.0.0.1"));
  for (size_t i = 0; i < sockets.size(); ++i) {
    INFO("socket " << i << ", port " << sockets[i]->port());
    const Bytes query = dns_query(static_cast<uint16_t>(0x1000 + i), "w.example.test");
    auto answer = dns_exchange(*sockets[i], tun.port, query, true);
    REQUIRE(answer.has_value());
    CHECK(answer->port == tun.port);
    CHECK(answer->data == *dns_answer(query));
  }
  check_clean_shutdown(tun);
  check_clean_shutdown(srv);
  // More than one worker served them, on both sides.
  CHECK(busy_workers(tun) >= 2);
  CHECK(busy_workers(srv) >= 2);
}

TEST_CASE("UDP: ss-tunnel -u reaches a server given by name", "[integration][udp]") {
  UdpTarget dns("127.0.0.1", dns_answer);
  const NodeOptions opt = udp_options("chacha20-ietf-poly1305");
  Node srv = start_server(Impl::Ours, opt);
  const uint16_t port = pick_free_port();
  Node tun = start_node(Impl::Ours, "ss-tunnel",
                        {"-s", "localhost", "-p", std::to_string(srv.port), "-k", opt.password,
                         "-m", opt.method, "-vv", "-u", "-b", "127.0.0.1", "-l",
                         std::to_string(port), "-L", "127.0.0.1:" + std::to_string(dns.port())},
                        port, "ss-tunnel-by-name");
  UdpSocket s("127.0.0.1");
  for (uint16_t id = 0x200; id < 0x204; ++id) {
    const Bytes query = dns_query(id, "by-name.example.test");
    auto answer = dns_exchange(s, tun.port, query, true);
    REQUIRE(answer.has_value());
    CHECK(answer->data == *dns_answer(query));
  }
  check_clean_shutdown(tun);
  check_clean_shutdown(srv);
}

// rust's "servers" array, `"servers": [...]`, for servers of ours on 127.0.0.1.
std::string servers_json(std::initializer_list<std::pair<const Node*, const NodeOptions*>> list) {
  std::ostringstream o;
  o << R"("servers": [)";
  const char* sep = "";
  for (const auto& [node, opt] : list) {
    o << sep << R"({"server": "127.0.0.1", "server_port": )" << node->port << R"(, "method": ")"
      << opt->method << R"(", "password": ")" << opt->password << R"("})";
    sep = ", ";
  }
  o << "]";
  return o.str();
}

TEST_CASE("UDP: rust-form locals (socks tcp_and_udp, tunnel udp_only) over two servers",
          "[integration][udp]") {
  UdpTarget echo;
  UdpTarget dns("127.0.0.1", dns_answer);
  const NodeOptions a = udp_options("aes-256-gcm");
  const NodeOptions b = udp_options("chacha20-ietf-poly1305");
  Node srv_a = start_server(Impl::Ours, a);
  Node srv_b = start_server(Impl::Ours, b);
  const uint16_t socks_port = pick_free_port();
  const uint16_t tunnel_port = pick_free_port();
  std::filesystem::path cfg = test_log_path("rust-config");
  cfg.replace_extension(".json");
  // The socks local second: its flows are those of the second listening socket.
  std::ofstream(cfg) << R"({"locals": [
      {"protocol": "tunnel", "mode": "udp_only", "local_address": "127.0.0.1",
       "local_port": )"
                     << tunnel_port << R"(, "forward_address": "127.0.0.1", "forward_port": )"
                     << dns.port() << R"(},
      {"protocol": "socks", "mode": "tcp_and_udp", "local_address": "127.0.0.1",
       "local_port": )"
                     << socks_port << R"(}],
    )" << servers_json({{&srv_a, &a}, {&srv_b, &b}})
                     << R"(,
    "balancer": {"mode": "round_robin"}})";
  Node local =
      start_node(Impl::Ours, "ss-local", {"-c", cfg.string(), "-vv"}, socks_port, "ss-local");
  {
    UdpClient client(socks_port);
    client.wait_ready(echo);
    check_echo(client, echo, 1400);
    check_echo(client, echo, 8000);
  }
  // Associations take the servers in turn (the balancer's round_robin): four more reach both.
  for (uint16_t id = 0x300; id < 0x304; ++id) {
    UdpSocket s("127.0.0.1");
    const Bytes query = dns_query(id, "rust.example.test");
    auto answer = dns_exchange(s, tunnel_port, query, true);
    REQUIRE(answer.has_value());
    CHECK(answer->data == *dns_answer(query));
  }
  CHECK(associations_created(srv_a) >= 1);
  CHECK(associations_created(srv_b) >= 1);
  // udp_only: the tunnel has no TCP listener.
  CHECK_FALSE(wait_until_listening(tunnel_port, 0ms));
  check_clean_shutdown(local);
  check_clean_shutdown(srv_a);
  check_clean_shutdown(srv_b);
}

TEST_CASE("UDP: DNS through ss-tunnel -u ours x ours", "[integration][udp]") {
  dns_through_tunnel(Impl::Ours, Impl::Ours);
}

TEST_CASE("interop control: UDP DNS through ss-tunnel libev x libev",
          "[integration][udp][interop][libev-only]") {
  dns_through_tunnel(Impl::Libev, Impl::Libev);
}

TEST_CASE("interop: UDP DNS through libev ss-tunnel x our ss-server",
          "[integration][udp][interop]") {
  dns_through_tunnel(Impl::Libev, Impl::Ours);
}

TEST_CASE("interop: UDP DNS through our ss-tunnel x libev ss-server",
          "[integration][udp][interop]") {
  dns_through_tunnel(Impl::Ours, Impl::Libev);
}

TEST_CASE(
    "UDP: the balancer probes UDP apart; associations avoid a server without UDP, TCP "
    "still uses both",
    "[integration][udp]") {
  UdpTarget probe_echo;  // the UDP probes' target: echoes their DNS query
  UdpTarget dns("127.0.0.1", dns_answer);
  TargetServer tcp_echo(TargetBehavior::echo());
  const NodeOptions a = udp_options("aes-256-gcm", {"-v"});  // TCP only
  const NodeOptions b = udp_options("chacha20-ietf-poly1305", {"-u", "-v"});
  Node srv_a = start_server(Impl::Ours, a);
  Node srv_b = start_server(Impl::Ours, b);
  const uint16_t socks_port = pick_free_port();
  const uint16_t tunnel_port = pick_free_port();
  std::filesystem::path cfg = test_log_path("udp-probe-config");
  cfg.replace_extension(".json");
  std::ofstream(cfg) << R"({"locals": [
      {"protocol": "socks", "local_address": "127.0.0.1", "local_port": )"
                     << socks_port << R"(},
      {"protocol": "tunnel", "mode": "udp_only", "local_address": "127.0.0.1",
       "local_port": )"
                     << tunnel_port << R"(, "forward_address": "127.0.0.1", "forward_port": )"
                     << dns.port() << R"(}],
    )" << servers_json({{&srv_a, &a}, {&srv_b, &b}})
                     << R"(,
    "balancer": {"mode": "round_robin", "check_interval_ms": 200, "max_server_rtt": 1,
                 "udp_probe_target": "127.0.0.1:)"
                     << probe_echo.port() << R"("}})";
  Node local =
      start_node(Impl::Ours, "ss-local", {"-c", cfg.string(), "-v"}, socks_port, "ss-local");
  const std::string a_name = "127.0.0.1:" + std::to_string(srv_a.port);
  const std::string b_name = "127.0.0.1:" + std::to_string(srv_b.port);
  REQUIRE(wait_log(local, "server " + a_name + "'s UDP is down"));
  // Every new association goes to the server whose UDP answers (round robin would give half
  // of them to the other).
  for (uint16_t id = 0x400; id < 0x406; ++id) {
    UdpSocket s("127.0.0.1");
    const Bytes query = dns_query(id, "probe.example.test");
    auto answer = dns_exchange(s, tunnel_port, query, false);
    REQUIRE(answer.has_value());
    CHECK(answer->data == *dns_answer(query));
  }
  CHECK(probe_echo.received() >= 2);  // srv_b's UDP probes reached the target
  // TCP still takes both servers in turn.
  for (int i = 0; i < 4; ++i) socks_echo(socks_port, tcp_echo.port(), 100);
  const std::string target = "127.0.0.1:" + std::to_string(tcp_echo.port());
  CHECK(wait_log(srv_a, target));
  CHECK(wait_log(srv_b, target));
  const std::string log = local.proc->log_text();
  CHECK(log.find(b_name + "'s UDP is down") == std::string::npos);
  CHECK(log.find("server " + a_name + " is down") == std::string::npos);
  check_clean_shutdown(local);
  check_clean_shutdown(srv_a);
  check_clean_shutdown(srv_b);
}

}  // namespace ss::test
