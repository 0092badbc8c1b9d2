// Resource limits: at the connection cap a new connection takes the place of the oldest session
// that has not finished its handshake; when every session is relaying, connections beyond the
// cap are refused (accepted and closed) until sessions end.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "client/inbound/tunnel_inbound.h"
#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "relay/counters.h"
#include "relay/net/listener.h"
#include "server/inbound_ss.h"
#include "tests/support/net.h"

using namespace ss;
using namespace ss::test;
using namespace std::chrono_literals;

namespace {

// A listener with a cap of 3 (or `cap`, shared with other listeners) on its own loop thread, as
// a worker's.
class CappedListener {
 public:
  CappedListener(Config cfg, Listener::Factory factory,
                 std::shared_ptr<ConnectionCap> cap = std::make_shared<ConnectionCap>(3))
      : cfg_(std::move(cfg)) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    listener_ = std::make_unique<Listener>(&loop_, make_runtime(cfg_), std::move(factory));
    listener_->set_connection_cap(std::move(cap));
    REQUIRE(listener_->listen("127.0.0.1", 0) == 0);
    stop_.data = listener_.get();
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      static_cast<Listener*>(a->data)->shutdown();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~CappedListener() {
    uv_async_send(&stop_);
    thread_.join();
    listener_.reset();
    CHECK(uv_loop_close(&loop_) == 0);
  }

  uint16_t port() const { return listener_->port(); }
  // The process-wide count: this process runs one set of listeners at a time.
  static size_t live() { return static_cast<size_t>(counters::read(Counter::LiveConnections)); }
  size_t wait_live(size_t n) const {
    for (int i = 0; i < 400 && live() != n; ++i) std::this_thread::sleep_for(5ms);
    return live();
  }

 private:
  Config cfg_;
  uv_loop_t loop_;
  std::unique_ptr<Listener> listener_;
  uv_async_t stop_;
  std::thread thread_;
};

Config base_config(Role role) {
  const CipherSpec& spec = *find_cipher("aes-128-gcm");
  Config cfg;
  cfg.role = role;
  cfg.method = std::string(spec.name);
  cfg.cipher = &spec;
  cfg.key = derive_master_key("cap test", spec.key_len);
  cfg.timeout = 30;
  return cfg;
}

// A plain listening socket on 127.0.0.1 that never accepts: the kernel completes connections
// into its backlog, which is all a connect needs.
Socket listen_loopback(uint16_t& port) {
  Socket s(::socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(s.valid());
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(s.fd(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(s.fd(), 64) == 0);
  socklen_t len = sizeof sa;
  REQUIRE(::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  port = ntohs(sa.sin_port);
  return s;
}

}  // namespace

TEST_CASE("connection cap: a new connection evicts the oldest unfinished handshake", "[relay]") {
  CappedListener srv(base_config(Role::Server),
                     [](Listener& l) { return std::make_unique<ShadowsocksInbound>(l.suite()); });

  // Three connections that never finish their handshake hold the three places.
  std::vector<Socket> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(connect_tcp("127.0.0.1", srv.port()));
    // One at a time, so their order in the listener is the order here.
    REQUIRE(srv.wait_live(static_cast<size_t>(i) + 1) == static_cast<size_t>(i) + 1);
  }
  // A fourth takes the place of the oldest: held[0] is closed, the others and the fourth stay.
  Socket fourth = connect_tcp("127.0.0.1", srv.port());
  CHECK(wait_peer_closed(held[0], 2000ms));
  CHECK_FALSE(wait_peer_closed(fourth, 300ms));
  CHECK_FALSE(wait_peer_closed(held[1], 0ms));
  CHECK_FALSE(wait_peer_closed(held[2], 0ms));
  CHECK(srv.wait_live(3) == 3);
  // And again: the next oldest (held[1]) goes.
  Socket fifth = connect_tcp("127.0.0.1", srv.port());
  CHECK(wait_peer_closed(held[1], 2000ms));
  CHECK_FALSE(wait_peer_closed(held[2], 300ms));
  CHECK_FALSE(wait_peer_closed(fourth, 0ms));
  CHECK_FALSE(wait_peer_closed(fifth, 0ms));
  CHECK(srv.wait_live(3) == 3);
}

TEST_CASE(
    "connection cap: with every session relaying, connections beyond it are closed at once, "
    "and capacity returns",
    "[relay]") {
  // ss-tunnel sessions connect to their server at once and relay from then on: none is
  // evictable. The "server" is a socket that never accepts.
  uint16_t upstream_port = 0;
  Socket upstream = listen_loopback(upstream_port);
  Config cfg = base_config(Role::Tunnel);
  cfg.server = {"127.0.0.1"};
  cfg.server_port = upstream_port;
  cfg.tunnel_target = parse_host_port("127.0.0.1:9");
  REQUIRE(cfg.tunnel_target.has_value());
  const Address target = *cfg.tunnel_target;
  CappedListener tun(cfg, [target](Listener&) { return std::make_unique<TunnelInbound>(target); });

  std::vector<Socket> held;
  for (int i = 0; i < 3; ++i) held.push_back(connect_tcp("127.0.0.1", tun.port()));
  CHECK(tun.wait_live(3) == 3);
  std::this_thread::sleep_for(100ms);  // their connects to the upstream complete
  // The fourth is accepted by the kernel but closed by us right away.
  Socket fourth = connect_tcp("127.0.0.1", tun.port());
  CHECK(wait_peer_closed(fourth, 2000ms));
  CHECK(tun.live() == 3);
  for (auto& h : held) CHECK_FALSE(wait_peer_closed(h, 0ms));
  // One place frees up (the client resets; a FIN would only half-close a relaying session): a
  // new connection is served (held open) again.
  held[0].reset_hard();
  CHECK(tun.wait_live(2) == 2);
  Socket fifth = connect_tcp("127.0.0.1", tun.port());
  CHECK_FALSE(wait_peer_closed(fifth, 300ms));
  CHECK(tun.live() == 3);
}

TEST_CASE(
    "connection cap: one cap for two workers; a worker with no unfinished handshake of its own "
    "has another worker evict its oldest",
    "[relay]") {
  auto cap = std::make_shared<ConnectionCap>(3);
  auto factory = [](Listener& l) { return std::make_unique<ShadowsocksInbound>(l.suite()); };
  CappedListener a(base_config(Role::Server), factory, cap);
  CappedListener b(base_config(Role::Server), factory, cap);

  // Worker a holds every place with handshakes that never finish.
  std::vector<Socket> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(connect_tcp("127.0.0.1", a.port()));
    REQUIRE(a.wait_live(static_cast<size_t>(i) + 1) == static_cast<size_t>(i) + 1);
  }
  CHECK(cap->live() == 3);
  // Worker b, at the process's cap with nothing to evict, takes the connection and has worker a
  // close its oldest.
  Socket fourth = connect_tcp("127.0.0.1", b.port());
  CHECK(wait_peer_closed(held[0], 2000ms));
  CHECK_FALSE(wait_peer_closed(fourth, 300ms));
  CHECK_FALSE(wait_peer_closed(held[1], 0ms));
  CHECK_FALSE(wait_peer_closed(held[2], 0ms));
  CHECK(a.wait_live(3) == 3);
  CHECK(cap->live() == 3);
  // Worker b now has one of its own: it evicts that one, not worker a's.
  Socket fifth = connect_tcp("127.0.0.1", b.port());
  CHECK(wait_peer_closed(fourth, 2000ms));
  CHECK_FALSE(wait_peer_closed(fifth, 300ms));
  CHECK_FALSE(wait_peer_closed(held[1], 0ms));
  CHECK_FALSE(wait_peer_closed(held[2], 0ms));
  CHECK(a.wait_live(3) == 3);
}

TEST_CASE("connection cap: one cap for two workers, every session relaying: the other refuses",
          "[relay]") {
  uint16_t upstream_port = 0;
  Socket upstream = listen_loopback(upstream_port);
  Config cfg = base_config(Role::Tunnel);
  cfg.server = {"127.0.0.1"};
  cfg.server_port = upstream_port;
  cfg.tunnel_target = parse_host_port("127.0.0.1:9");
  REQUIRE(cfg.tunnel_target.has_value());
  const Address target = *cfg.tunnel_target;
  auto factory = [target](Listener&) { return std::make_unique<TunnelInbound>(target); };
  auto cap = std::make_shared<ConnectionCap>(3);
  CappedListener a(cfg, factory, cap);
  CappedListener b(cfg, factory, cap);

  std::vector<Socket> held;
  for (int i = 0; i < 3; ++i) held.push_back(connect_tcp("127.0.0.1", a.port()));
  CHECK(a.wait_live(3) == 3);
  std::this_thread::sleep_for(100ms);  // their connects to the upstream complete
  Socket fourth = connect_tcp("127.0.0.1", b.port());
  CHECK(wait_peer_closed(fourth, 2000ms));
  CHECK(cap->live() == 3);
  for (auto& h : held) CHECK_FALSE(wait_peer_closed(h, 0ms));
}
