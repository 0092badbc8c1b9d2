#pragma once
// A router over several Shadowsocks servers: health checks, a score per server, and a choice
// with hysteresis (see balancer.cpp for the state machine).
//
// The probe. Each server is probed on the main thread's loop, every balancer.check_interval:
// - by default, a TCP handshake with the server, timed, then closed without a byte. Nothing in it
//   is Shadowsocks-specific or names a host: every client connection starts the same way, and no
//   fixed public target is contacted (shadowsocks-rust's probes to fixed hosts are
//   fingerprintable, its issue #706). It proves the server accepts connections, not that its key
//   or its network beyond work;
// - with balancer.probe_target ("host:port"), a real request through the tunnel: the server's
//   cipher, a request to that target with a small first flight (a DNS query for the root's NS
//   records if the port is 53, else an HTTP HEAD), passed when the first response byte arrives.
//   On the wire it is an ordinary client connection to a target of the user's choosing.
// A probe slower than balancer.max_server_rtt failed.
//
// UDP is probed apart, when the client serves UDP and a target is configured
// (balancer.udp_probe_target, else probe_target): each full round sends each server one datagram
// sealed with its packet suite, to that target through the server, carrying a DNS query for the
// root's NS records (the same on the wire as a client's DNS over the tunnel to a resolver of the
// user's choosing); the first reply the server's session authenticates passes it. A server's UDP
// is down after two failed UDP probes in a row and up again after one passes, logged like the
// TCP states. New UDP associations (route_datagram) go to a server whose TCP and UDP are both up:
// the current one in "best" if it qualifies, else the best ranked that does (the TCP choice does
// not switch for it); weighted and round_robin skip servers whose UDP is down. TCP keeps using a
// server whose UDP is down. Without a target there are no UDP probes and UDP follows TCP.
//
// The score of a server is the mean of its last `window` probes, a failed one counting as twice
// max_server_rtt (lower is better). A server is down after two failed probes in a row, or at once
// when a connection cannot reach it; it is up again only after a probe passes.
//
// "best" sends every new connection to the current server. The current one changes only when
// another up server scored better by switch_margin (a fraction) in switch_rounds rounds in a row
// and min_switch_interval has passed since the last change, or at once when the current one is
// down. "weighted" spreads new connections over the up servers in proportion to their weights
// scaled by latency: server i's share is weight_i * best_score / score_i (weighted_share), where
// best_score is the lowest score among the servers that qualify, so a server twice as slow as the
// fastest gets half the share its weight alone would give it (a server not yet probed: its
// weight alone);
// "round_robin" gives them to the up servers in turn (libev's and our former behaviour).
// Down, up and switch lines are logged at the default level (warning, notice, notice): each
// follows a state change, and a down server changes state again only through a probe, so there
// is at most one pair per server per check interval.
//
// A live UDP association stays on its server while that server is usable for UDP (TCP and UDP
// up). Each state change bumps a generation counter; an association whose next datagram sees a
// new generation and a server no longer usable moves to route_datagram()'s choice
// (client/udp/ss_udp_outbound.h).

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "crypto/udp_cipher.h"
#include "relay/config.h"
#include "relay/outbound.h"

namespace ss {

// A server's UDP side, for the UDP probes: where its datagrams go (the server itself, also behind
// a plugin) and its packet suite.
struct UdpProbeServer {
  Address address;
  std::shared_ptr<const UdpCipherSuite> suite;
};

// "weighted": a server's share of new connections, `weight` scaled by its latency against the
// best (scores in ms, lower is better; 0: not probed yet, its weight unscaled).
double weighted_share(double weight, uint32_t score_ms, uint32_t best_score_ms);

class Balancer final : public Router {
 public:
  Balancer(std::vector<Outbound> servers, std::vector<double> weights, BalancerSpec spec);
  ~Balancer() override;

  const Outbound* route(const Address& target) override;
  const Outbound* route_datagram() override;
  // Turns the UDP probes on: each server's UDP side, in the servers' order (before
  // start_probes(); needs a udp_probe_target or probe_target).
  void set_udp_servers(std::vector<UdpProbeServer> servers);
  const Outbound* retry(const Address& target, uint64_t tried) override;
  void server_failed(const Outbound& o, int uv_err) override;
  void start_probes(uv_loop_t* loop) override;
  void stop_probes() override;
  uint64_t connect_timeout_ms() const override { return spec_.connect_timeout_ms; }
  std::vector<ServerHealth> health() const override;
  void restore_health(const std::vector<ServerHealth>& health) override;
  const std::atomic<uint64_t>* health_generation() const override { return &generation_; }
  bool datagram_usable(uint32_t index) const override {
    return index < servers_.size() && usable(index, true);
  }

  size_t size() const { return servers_.size(); }
  size_t current() const { return current_.load(std::memory_order_relaxed); }
  bool up(size_t i) const { return health_[i].up.load(std::memory_order_relaxed); }
  bool udp_up(size_t i) const { return health_[i].udp_up.load(std::memory_order_relaxed); }

 private:
  struct Health {
    std::atomic<bool> up{true};
    std::atomic<bool> udp_up{true};
    std::atomic<uint32_t> score_ms{0};
  };
  // The prober's own view (main loop only).
  struct Record {
    std::vector<uint32_t> samples;  // ring of the last `window` probes' values, ms
    size_t next = 0;
    int failures_in_row = 0;
    int better_rounds = 0;     // rounds in a row this one beat the current by the margin
    uint32_t last_rtt_us = 0;  // the last probe that passed (0: none yet)
    int udp_failures_in_row = 0;
  };
  struct Probe;

  std::string name(size_t i) const;
  // A server for a new connection (`datagram`: a UDP association, whose server's UDP must be up).
  const Outbound* pick(bool datagram);
  double effective_weight(size_t i, uint32_t best_score_ms) const;
  bool usable(size_t i, bool datagram) const { return up(i) && (!datagram || udp_up(i)); }
  // The best up server by the published rank; `fallback` if none is up.
  size_t best_up(size_t fallback) const;
  void switch_to(size_t to, const char* why);
  void mark_down(size_t i, const char* why);

  static void on_round_timer(uv_timer_t* t);
  void start_round(bool all);
  // A probe of server i; `counted`: part of a full round (round_done() after the last); `udp`:
  // of its UDP side.
  void launch(size_t i, bool counted, bool udp = false);
  void udp_probe_done(size_t i, bool ok, uint64_t rtt);
  void probe_done(Probe* p, bool ok);
  void round_done();
  // Orders rank_ by health: up servers first, then by score.
  std::vector<uint32_t> rerank();

  std::vector<Outbound> servers_;
  std::vector<UdpProbeServer> udp_servers_;  // empty: no UDP probes
  std::vector<double> weights_;
  BalancerSpec spec_;
  std::unique_ptr<Health[]> health_;
  std::unique_ptr<std::atomic<uint32_t>[]> rank_;  // server indices, best score first
  std::atomic<uint32_t> current_{0};
  std::atomic<size_t> next_{0};  // round_robin
  std::atomic<uint64_t> last_switch_ms_{0};
  // Bumped (release) after each change of a server's up or udp_up: live UDP associations
  // compare it (relay/outbound.h, health_generation()).
  std::atomic<uint64_t> generation_{0};

  // Main loop only.
  uv_loop_t* loop_ = nullptr;
  uv_timer_t* timer_ = nullptr;  // owned; deleted in its close callback
  std::vector<Record> records_;
  std::vector<Probe*> live_;  // probes not yet finished
  int outstanding_ = 0;       // probes of the current full round still running
  uint64_t last_full_round_ = 0;
  bool stopped_ = false;
};

}  // namespace ss
