#pragma once
// Where a request leaves: directly to its target, or through a Shadowsocks server with that
// server's own address, port and cipher suite. The router picks one per request.

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <sys/socket.h>

#include "crypto/tcp_cipher.h"
#include "relay/address.h"

struct uv_loop_s;

namespace ss {

class Acl;

struct Outbound {
  enum class Kind : uint8_t { Direct, Shadowsocks };
  Kind kind = Kind::Direct;
  // Shadowsocks: the server and its suite (our sealer towards it, our opener from it).
  Address server;
  std::shared_ptr<const TcpCipherSuite> suite;
  // Direct: the local address outbound sockets bind to (empty: any), and the SSRF guard: refuse
  // loopback, private, link-local... destinations (checked after DNS).
  std::string bind_address;
  bool block_private = false;
  // Direct: the ACL whose outbound block/allow lists refuse targets, by name and after DNS by
  // address, on top of the SSRF guard (ss-server's --acl); null: none.
  const Acl* acl = nullptr;
  // Its place among the router's outbounds (failover remembers which were tried by this).
  uint32_t index = 0;
};

// What a router knows of one server's health (the balancer's probes), carried over to the router
// of a new snapshot so that a refresh of the server list does not forget it.
struct ServerHealth {
  std::string server;  // Outbound::server.to_string()
  bool up = true;
  bool current = false;  // the one "best" sends new connections to
  int failures_in_row = 0;
  std::vector<uint32_t> samples;  // the last probes, ms
  // Shown in the metrics, not carried over: its UDP side (probed: UDP probes run), the round trip
  // of its last probe that passed, µs (0: none yet), and its score, ms.
  bool udp_up = true;
  bool udp_probed = false;
  uint32_t last_rtt_us = 0;
  uint32_t score_ms = 0;
};

// Maps a request to an outbound. Shared by every worker of a process (thread-safe), held by
// connections through the runtime.
class Router {
 public:
  virtual ~Router() = default;
  // Null: no outbound takes this target (the inbound's refused reply is sent).
  virtual const Outbound* route(const Address& target) = 0;
  // A server for a new UDP association (the balancer skips servers whose UDP is down).
  virtual const Outbound* route_datagram() { return route(Address{}); }
  // A live UDP association's failover: a counter the router bumps at every change of a server's
  // health (TCP or UDP, up or down). An association compares it with the value it saw last, one
  // relaxed load per datagram, and asks datagram_usable() only after it changed. Null: health
  // never changes (no balancer).
  virtual const std::atomic<uint64_t>* health_generation() const { return nullptr; }
  // Whether server `index` still takes UDP associations (for the balancer: its TCP and its UDP
  // are up); an association on one that does not moves to route_datagram()'s choice.
  virtual bool datagram_usable(uint32_t index) const {
    (void)index;
    return true;
  }
  // The tunnel's choice for `target` whatever an ACL says (ss-local's DNS inbound sends the
  // names the ACL proxies to a resolver through it).
  virtual const Outbound* route_proxy(const Address& target) { return route(target); }
  // A domain target whose route depends on its address (an ACL's IP rules, as libev's ss-local
  // resolves such names): true, and the connection resolves the name first and asks
  // route_resolved() with the address (null if the name did not resolve).
  virtual bool needs_address(const Address& /*target*/) { return false; }
  virtual const Outbound* route_resolved(const Address& target, const sockaddr* /*resolved*/) {
    return route(target);
  }
  // Failover: another outbound for a request whose outbound failed before anything reached the
  // target. `tried` has bit i set for the outbounds (by index) already tried. Null: none left.
  virtual const Outbound* retry(const Address& target, uint64_t tried) {
    (void)target;
    (void)tried;
    return nullptr;
  }
  // A connection could not reach this outbound's server (refused, unreachable, timed out).
  virtual void server_failed(const Outbound& o, int uv_err) {
    (void)o;
    (void)uv_err;
  }
  // Health probes run on `loop` (the main thread's) from start_probes() until stop_probes()
  // (idempotent), which closes every handle they use.
  virtual void start_probes(uv_loop_s* loop) { (void)loop; }
  virtual void stop_probes() {}
  // Connect timeout towards a server, in ms (0: the connection's default).
  virtual uint64_t connect_timeout_ms() const { return 0; }
  // Each server's health (main loop only; empty: none kept), and the same given to a new router
  // before its probes start: servers are matched by address, others start afresh.
  virtual std::vector<ServerHealth> health() const { return {}; }
  virtual void restore_health(const std::vector<ServerHealth>& health) { (void)health; }
};

// The fixed choice of ss-local, ss-tunnel and ss-server: one direct outbound, or round robin over
// Shadowsocks servers.
class FixedRouter final : public Router {
 public:
  explicit FixedRouter(std::vector<Outbound> outbounds) : outbounds_(std::move(outbounds)) {}
  const Outbound* route(const Address&) override {
    if (outbounds_.empty()) return nullptr;
    return &outbounds_[next_.fetch_add(1, std::memory_order_relaxed) % outbounds_.size()];
  }

 private:
  std::vector<Outbound> outbounds_;
  std::atomic<size_t> next_{0};
};

// ss-local's and ss-redir's --acl: a target the ACL bypasses takes the direct outbound, one its
// [outbound_block_list] names has no route (refused, as on ss-server), any other the wrapped
// router's choice (the proxy servers).
class AclRouter final : public Router {
 public:
  AclRouter(std::shared_ptr<const Acl> acl, std::shared_ptr<Router> proxy, Outbound direct)
      : acl_(std::move(acl)), proxy_(std::move(proxy)), direct_(std::move(direct)) {}
  const Outbound* route(const Address& target) override;
  const Outbound* route_datagram() override { return proxy_->route_datagram(); }
  const Outbound* route_proxy(const Address& target) override { return proxy_->route(target); }
  bool needs_address(const Address& target) override;
  const Outbound* route_resolved(const Address& target, const sockaddr* resolved) override;
  // The proxy router's failover, health and probes (the direct outbound has none).
  const Outbound* retry(const Address& target, uint64_t tried) override {
    return proxy_->retry(target, tried);
  }
  void server_failed(const Outbound& o, int uv_err) override {
    if (&o != &direct_) proxy_->server_failed(o, uv_err);
  }
  void start_probes(uv_loop_s* loop) override { proxy_->start_probes(loop); }
  void stop_probes() override { proxy_->stop_probes(); }
  uint64_t connect_timeout_ms() const override { return proxy_->connect_timeout_ms(); }
  std::vector<ServerHealth> health() const override { return proxy_->health(); }
  void restore_health(const std::vector<ServerHealth>& h) override { proxy_->restore_health(h); }
  // The servers' router (the UDP side picks an association's server with it).
  const std::shared_ptr<Router>& proxy() const { return proxy_; }

 private:
  std::shared_ptr<const Acl> acl_;
  std::shared_ptr<Router> proxy_;
  Outbound direct_;
};

}  // namespace ss
