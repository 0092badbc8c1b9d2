// The balancer (see balancer.h): health probes on the main loop, scores over a window, and the
// choice of server with hysteresis.
//
// Per server:   up --(2 failed probes in a row, or a connection cannot reach it)--> down
//               down --(a probe passes)--> up
// Best mode:    current --(another up server better by switch_margin for switch_rounds rounds,
//               and min_switch_interval since the last change)--> that one
//               current --(down; at the next route() or the end of a round)--> best up server
// A probe:      [resolve] -> connect -> (probe_target: write the request, read one byte) -> done;
//               UDP: [resolve] -> send one sealed datagram -> an authenticated reply -> done;
//               the timer (max_server_rtt) ends it as failed. Each probe owns its handles and
//               frees itself after their last close callback.

#include "relay/balancer.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "relay/log.h"
#include "relay/metrics.h"
#include "relay/net/resolve.h"
#include "relay/net/socket_mark.h"

namespace ss {

struct Balancer::Probe {
  Balancer* owner = nullptr;  // null once the balancer stopped caring
  uint32_t mark = 0;          // SO_MARK (outbound_fwmark)
  size_t index = 0;
  bool counted = false;  // part of a full round
  uint64_t started = 0;
  uint64_t started_ns = 0;  // uv_hrtime(), for the RTT shown in the metrics
  uv_timer_t timer;
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_getaddrinfo_t dns;
  bool dns_pending = false;
  bool tcp_open = false;
  bool udp = false;  // a probe of the server's UDP side
  bool udp_open = false;
  uv_udp_t udp_handle;
  std::unique_ptr<UdpClientSession> session;
  std::vector<uint8_t> opened;  // an opened reply
  bool finished = false;
  int open_handles = 0;
  std::unique_ptr<TcpSealer> sealer;
  std::vector<uint8_t> request;
  char in[4096];

  void maybe_delete() {
    if (open_handles == 0 && !dns_pending) delete this;
  }
  static void on_closed(uv_handle_t* h) {
    auto* p = static_cast<Probe*>(h->data);
    --p->open_handles;
    p->maybe_delete();
  }
  // Ends the probe once (reporting to the owner, if any) and closes its handles.
  void finish(bool ok) {
    if (finished) return;
    finished = true;
    if (owner != nullptr) owner->probe_done(this, ok);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
    if (tcp_open) uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_closed);
    if (udp_open) uv_close(reinterpret_cast<uv_handle_t*>(&udp_handle), on_closed);
    if (dns_pending) uv_cancel(reinterpret_cast<uv_req_t*>(&dns));
  }

  void connect_to(const sockaddr* sa) {
    if (udp) {
      send_to(sa);
      return;
    }
    if (uv_tcp_init_ex(timer.loop, &tcp, sa->sa_family) != 0) {
      finish(false);
      return;
    }
    uv_os_fd_t fd;
    if (mark != 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp), &fd) == 0) {
      set_socket_mark(fd, mark);
    }
    tcp.data = this;
    tcp_open = true;
    ++open_handles;
    connect.data = this;
    if (uv_tcp_connect(&connect, &tcp, sa, on_connect) != 0) {
      finish(false);
      return;
    }
  }

  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* p = static_cast<Probe*>(req->data);
    p->dns_pending = false;
    if (p->finished || status < 0 || res == nullptr) {
      if (res != nullptr) uv_freeaddrinfo(res);
      if (!p->finished) p->finish(false);
      p->maybe_delete();
      return;
    }
    sockaddr_storage ss;
    std::memcpy(&ss, res->ai_addr, std::min<size_t>(res->ai_addrlen, sizeof ss));
    uv_freeaddrinfo(res);
    p->connect_to(reinterpret_cast<sockaddr*>(&ss));
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* p = static_cast<Probe*>(req->data);
    if (p->finished) return;
    if (status < 0) {
      p->finish(false);
      return;
    }
    if (p->request.empty()) {
      p->finish(true);  // the handshake is the probe
      return;
    }
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(p->request.data()),
                               static_cast<unsigned>(p->request.size()));
    p->write.data = p;
    if (uv_write(&p->write, reinterpret_cast<uv_stream_t*>(&p->tcp), &buf, 1, on_written) != 0 ||
        uv_read_start(reinterpret_cast<uv_stream_t*>(&p->tcp), on_alloc, on_read) != 0) {
      p->finish(false);
    }
  }
  static void on_written(uv_write_t* req, int status) {
    auto* p = static_cast<Probe*>(req->data);
    if (status < 0 && !p->finished) p->finish(false);
  }
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* p = static_cast<Probe*>(h->data);
    *buf = uv_buf_init(p->in, sizeof p->in);
  }
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* p = static_cast<Probe*>(s->data);
    if (n == 0 || p->finished) return;
    p->finish(n > 0);  // the first response byte passes; an end or error before it fails
  }
  static void on_timeout(uv_timer_t* t) { static_cast<Probe*>(t->data)->finish(false); }

  // UDP: the sealed request from a socket of our own; the first reply that opens passes.
  void send_to(const sockaddr* sa) {
    if (uv_udp_init_ex(timer.loop, &udp_handle, sa->sa_family) != 0) {
      finish(false);
      return;
    }
    udp_handle.data = this;
    udp_open = true;
    ++open_handles;
    uv_os_fd_t fd;
    if (mark != 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(&udp_handle), &fd) == 0) {
      set_socket_mark(fd, mark);
    }
    sockaddr_storage any{};
    any.ss_family = sa->sa_family;
    uv_buf_t buf =
        uv_buf_init(reinterpret_cast<char*>(request.data()), static_cast<unsigned>(request.size()));
    if (uv_udp_bind(&udp_handle, reinterpret_cast<sockaddr*>(&any), 0) != 0 ||
        uv_udp_recv_start(&udp_handle, on_alloc, on_datagram) != 0 ||
        uv_udp_try_send(&udp_handle, &buf, 1, sa) < 0) {
      finish(false);
    }
  }
  static void on_datagram(uv_udp_t* h, ssize_t n, const uv_buf_t*, const sockaddr* from,
                          unsigned flags) {
    auto* p = static_cast<Probe*>(h->data);
    if (p->finished || n <= 0 || from == nullptr || (flags & UV_UDP_PARTIAL) != 0) return;
    p->opened.resize(static_cast<size_t>(n));
    UdpPacket reply;
    const std::span<const uint8_t> packet(reinterpret_cast<const uint8_t*>(p->in),
                                          static_cast<size_t>(n));
    if (p->session->open(packet, p->opened, reply).ok()) p->finish(true);
  }
};

namespace {

// A DNS query for the root's NS records, recursion desired, with a random ID (RFC 1035 §4.1);
// over TCP with its length prefix (RFC 7766).
std::vector<uint8_t> dns_probe_query(bool tcp) {
  static const uint8_t kQuery[] = {0x00, 0x11, 0x5a, 0x17, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
  std::vector<uint8_t> q(std::begin(kQuery) + (tcp ? 0 : 2), std::end(kQuery));
  const size_t id = tcp ? 2 : 0;
  q[id] = static_cast<uint8_t>(std::random_device{}());
  q[id + 1] = static_cast<uint8_t>(std::random_device{}());
  return q;
}

// The first flight of a probe through the tunnel to `target`.
std::vector<uint8_t> probe_payload(const Address& target) {
  if (target.port == 53) return dns_probe_query(true);
  const std::string host =
      target.type == Address::Type::IPv6 ? "[" + target.host + "]" : target.host;
  const std::string head =
      "HEAD / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
  return std::vector<uint8_t>(head.begin(), head.end());
}

thread_local std::minstd_rand t_rng{std::random_device{}()};

}  // namespace

Balancer::Balancer(std::vector<Outbound> servers, std::vector<double> weights, BalancerSpec spec)
    : servers_(std::move(servers)), weights_(std::move(weights)), spec_(std::move(spec)) {
  const size_t n = servers_.size();
  health_ = std::make_unique<Health[]>(n);
  rank_ = std::make_unique<std::atomic<uint32_t>[]>(n);
  records_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    servers_[i].index = static_cast<uint32_t>(i);
    rank_[i].store(static_cast<uint32_t>(i));
    records_[i].samples.reserve(static_cast<size_t>(std::max(spec_.window, 1)));
  }
  if (weights_.size() != n) weights_.assign(n, 1.0);
  if (spec_.check_best_interval_ms == 0) spec_.check_best_interval_ms = spec_.check_interval_ms;
}

Balancer::~Balancer() = default;

std::string Balancer::name(size_t i) const {
  return servers_[i].server.to_string();
}

size_t Balancer::best_up(size_t fallback) const {
  for (size_t k = 0; k < servers_.size(); ++k) {
    const size_t i = rank_[k].load(std::memory_order_relaxed);
    if (up(i)) return i;
  }
  return fallback;
}

void Balancer::switch_to(size_t to, const char* why) {
  uint32_t from = current_.load();
  if (from == to) return;
  if (!current_.compare_exchange_strong(from, static_cast<uint32_t>(to))) return;
  last_switch_ms_.store(monotonic_ms());
  metrics::balancer_switch();
  LOG_NOTICE("balancer: switched from server %s to %s (%s)", name(from).c_str(), name(to).c_str(),
             why);
}

void Balancer::mark_down(size_t i, const char* why) {
  if (!health_[i].up.exchange(false)) return;
  generation_.fetch_add(1, std::memory_order_release);
  LOG_WARN("balancer: server %s is down (%s): no new connections until a probe passes",
           name(i).c_str(), why);
}

const Outbound* Balancer::route(const Address&) {
  return pick(false);
}

const Outbound* Balancer::route_datagram() {
  // No server has its UDP up: the TCP choice (its datagrams may still pass).
  const Outbound* o = pick(true);
  return o != nullptr ? o : pick(false);
}

double Balancer::effective_weight(size_t i, uint32_t best_score_ms) const {
  return weighted_share(weights_[i], health_[i].score_ms.load(std::memory_order_relaxed),
                        best_score_ms);
}

double weighted_share(double weight, uint32_t score_ms, uint32_t best_score_ms) {
  if (score_ms == 0 || best_score_ms == 0) return weight;  // not probed yet: its weight alone
  return weight * static_cast<double>(best_score_ms) / static_cast<double>(score_ms);
}

void Balancer::set_udp_servers(std::vector<UdpProbeServer> servers) {
  if (!spec_.udp_probe_target && !spec_.probe_target) return;
  if (servers.size() == servers_.size()) udp_servers_ = std::move(servers);
}

const Outbound* Balancer::pick(bool datagram) {
  const size_t n = servers_.size();
  if (spec_.mode == BalancerSpec::Pick::RoundRobin) {
    const size_t start = next_.fetch_add(1, std::memory_order_relaxed);
    for (size_t k = 0; k < n; ++k) {
      if (usable((start + k) % n, datagram)) return &servers_[(start + k) % n];
    }
  }
  if (spec_.mode == BalancerSpec::Pick::Weighted) {
    uint32_t best_score = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t sc = health_[i].score_ms.load(std::memory_order_relaxed);
      if (usable(i, datagram) && sc > 0 && (best_score == 0 || sc < best_score)) best_score = sc;
    }
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
      if (usable(i, datagram)) total += effective_weight(i, best_score);
    }
    if (total > 0) {
      double r = std::uniform_real_distribution<double>(0, total)(t_rng);
      for (size_t i = 0; i < n; ++i) {
        if (!usable(i, datagram)) continue;
        const double w = effective_weight(i, best_score);
        if (r < w) return &servers_[i];
        r -= w;
      }
    }
  }
  size_t cur = current();
  if (!up(cur)) {
    const size_t to = best_up(cur);
    if (to != cur) switch_to(to, "it is down");
    cur = to;
  }
  if (datagram && !usable(cur, true)) {
    // The current server's UDP is down: the best ranked whose UDP is up, without switching.
    for (size_t k = 0; k < n; ++k) {
      const size_t i = rank_[k].load(std::memory_order_relaxed);
      if (usable(i, true)) return &servers_[i];
    }
    return nullptr;
  }
  return &servers_[cur];
}

const Outbound* Balancer::retry(const Address&, uint64_t tried) {
  const size_t n = std::min<size_t>(servers_.size(), 64);
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t k = 0; k < servers_.size(); ++k) {
      const size_t i = rank_[k].load(std::memory_order_relaxed);
      if (i >= n || (tried >> i) & 1) continue;
      if (pass == 0 && !up(i)) continue;
      return &servers_[i];
    }
  }
  return nullptr;
}

void Balancer::server_failed(const Outbound& o, int uv_err) {
  if (o.index < servers_.size()) mark_down(o.index, uv_err_name(uv_err));
}

// ---- probes (main loop) -------------------------------------------------------------------------

void Balancer::start_probes(uv_loop_t* loop) {
  if (loop_ != nullptr || servers_.size() < 2) return;
  loop_ = loop;
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  const uint64_t tick = std::min(spec_.check_interval_ms, spec_.check_best_interval_ms);
  uv_timer_start(timer_, on_round_timer, 0, tick);
}

void Balancer::stop_probes() {
  if (stopped_ || loop_ == nullptr) return;
  stopped_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_ = nullptr;
  std::vector<Probe*> live;
  live.swap(live_);
  for (Probe* p : live) {
    p->owner = nullptr;
    p->finish(false);
  }
}

void Balancer::on_round_timer(uv_timer_t* t) {
  auto* b = static_cast<Balancer*>(t->data);
  const uint64_t now = uv_now(b->loop_);
  const bool all =
      b->last_full_round_ == 0 || now - b->last_full_round_ >= b->spec_.check_interval_ms;
  if (all && b->outstanding_ == 0) {
    b->last_full_round_ = now;
    b->start_round(true);
  } else {
    b->start_round(false);
  }
}

void Balancer::start_round(bool all) {
  if (all) {
    outstanding_ = static_cast<int>(servers_.size());
    for (size_t i = 0; i < servers_.size(); ++i) launch(i, true);
    for (size_t i = 0; i < udp_servers_.size(); ++i) launch(i, false, true);
    return;
  }
  // Between full rounds: the current server alone, if it has no probe running.
  const size_t cur = current();
  for (Probe* p : live_) {
    if (p->index == cur && !p->udp) return;
  }
  launch(cur, false);
}

void Balancer::launch(size_t i, bool counted, bool udp) {
  auto* p = new Probe;
  p->owner = this;
  p->mark = spec_.fwmark;
  p->counted = counted;
  p->udp = udp;
  p->index = i;
  p->started = uv_now(loop_);
  p->started_ns = uv_hrtime();
  uv_timer_init(loop_, &p->timer);
  p->timer.data = p;
  p->open_handles = 1;
  uv_timer_start(&p->timer, Probe::on_timeout, spec_.max_server_rtt_ms, 0);
  live_.push_back(p);
  const Outbound& o = servers_[i];
  Address server = o.server;
  if (udp) {
    // A DNS query in one datagram sealed by a session of the server's packet suite.
    const Address& target = spec_.udp_probe_target ? *spec_.udp_probe_target : *spec_.probe_target;
    server = udp_servers_[i].address;
    p->session = udp_servers_[i].suite->client_session();
    uint8_t hdr[kMaxAddressLen];
    const size_t hlen = encode_address(target, hdr);
    const std::vector<uint8_t> query = dns_probe_query(false);
    p->request.resize(hlen + query.size() + udp_servers_[i].suite->max_overhead());
    p->opened.reserve(sizeof p->in);
    const size_t n = p->session->seal({hdr, hlen}, query, p->request);
    p->request.resize(n);
    if (n == 0) {
      p->finish(false);
      return;
    }
  } else if (spec_.probe_target) {
    p->sealer = o.suite->client_sealer();
    uint8_t hdr[kMaxAddressLen];
    const size_t hlen = encode_address(*spec_.probe_target, hdr);
    const std::vector<uint8_t> payload = probe_payload(*spec_.probe_target);
    p->request.resize(p->sealer->max_sealed_size(payload.size()) + hlen + 64);
    const size_t n =
        p->sealer->seal_request(hdr, hlen, payload.data(), payload.size(), p->request.data());
    p->request.resize(n);
    if (n == 0) {
      p->finish(false);
      return;
    }
  }
  sockaddr_storage ss;
  if (server.to_sockaddr(ss) || literal_to_sockaddr(server.host, server.port, ss)) {
    p->connect_to(reinterpret_cast<sockaddr*>(&ss));
    return;
  }
  const LookupArgs args(udp ? SOCK_DGRAM : SOCK_STREAM, AI_ADDRCONFIG, server.port);
  p->dns.data = p;
  if (uv_getaddrinfo(loop_, &p->dns, Probe::on_resolved, server.host.c_str(), args.port,
                     &args.hints) != 0) {
    p->finish(false);
    return;
  }
  p->dns_pending = true;
}

void Balancer::udp_probe_done(size_t i, bool ok, uint64_t rtt) {
  Record& r = records_[i];
  if (ok) {
    r.udp_failures_in_row = 0;
    if (!health_[i].udp_up.exchange(true)) {
      generation_.fetch_add(1, std::memory_order_release);
      LOG_NOTICE("balancer: server %s's UDP is up again (a UDP probe passed in %llu ms)",
                 name(i).c_str(), static_cast<unsigned long long>(rtt));
    }
  } else if (++r.udp_failures_in_row >= 2 && health_[i].udp_up.exchange(false)) {
    generation_.fetch_add(1, std::memory_order_release);
    LOG_WARN(
        "balancer: server %s's UDP is down (UDP probes failed): no new UDP associations until a "
        "UDP probe passes",
        name(i).c_str());
  }
  LOG_DEBUG("balancer: UDP probe of %s %s in %llu ms", name(i).c_str(), ok ? "passed" : "failed",
            static_cast<unsigned long long>(rtt));
}

void Balancer::probe_done(Probe* p, bool ok) {
  live_.erase(std::remove(live_.begin(), live_.end(), p), live_.end());
  const size_t i = p->index;
  Record& r = records_[i];
  const uint64_t rtt = uv_now(loop_) - p->started;
  if (p->udp) {
    udp_probe_done(i, ok, rtt);
    return;
  }
  const uint32_t value =
      ok ? static_cast<uint32_t>(std::max<uint64_t>(rtt, 1))
         : static_cast<uint32_t>(std::min<uint64_t>(2 * spec_.max_server_rtt_ms, UINT32_MAX));
  const size_t window = static_cast<size_t>(std::max(spec_.window, 1));
  if (r.samples.size() < window) {
    r.samples.push_back(value);
  } else {
    r.samples[r.next] = value;
  }
  r.next = (r.next + 1) % window;
  uint64_t sum = 0;
  for (uint32_t v : r.samples) sum += v;
  health_[i].score_ms.store(static_cast<uint32_t>(sum / r.samples.size()));
  if (ok) {
    r.failures_in_row = 0;
    r.last_rtt_us =
        static_cast<uint32_t>(std::min<uint64_t>((uv_hrtime() - p->started_ns) / 1000, UINT32_MAX));
    if (!health_[i].up.exchange(true)) {
      generation_.fetch_add(1, std::memory_order_release);
      LOG_NOTICE("balancer: server %s is up again (a probe passed in %llu ms)", name(i).c_str(),
                 static_cast<unsigned long long>(rtt));
    }
  } else if (++r.failures_in_row >= 2) {
    mark_down(i, "probes failed");
  }
  LOG_DEBUG("balancer: probe of %s %s in %llu ms, score %u ms", name(i).c_str(),
            ok ? "passed" : "failed", static_cast<unsigned long long>(rtt),
            health_[i].score_ms.load());
  if (p->counted && --outstanding_ == 0) round_done();
}

std::vector<uint32_t> Balancer::rerank() {
  const size_t n = servers_.size();
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
  // Up servers first, then by score; configuration order breaks ties.
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    if (up(a) != up(b)) return up(a);
    return health_[a].score_ms.load() < health_[b].score_ms.load();
  });
  for (size_t k = 0; k < n; ++k) rank_[k].store(order[k]);
  return order;
}

std::vector<ServerHealth> Balancer::health() const {
  std::vector<ServerHealth> out(servers_.size());
  for (size_t i = 0; i < servers_.size(); ++i) {
    out[i].server = name(i);
    out[i].up = up(i);
    out[i].current = i == current();
    out[i].failures_in_row = records_[i].failures_in_row;
    out[i].udp_up = udp_up(i);
    out[i].udp_probed = !udp_servers_.empty();
    out[i].last_rtt_us = records_[i].last_rtt_us;
    out[i].score_ms = health_[i].score_ms.load(std::memory_order_relaxed);
    // Oldest first.
    const Record& r = records_[i];
    for (size_t k = 0; k < r.samples.size(); ++k) {
      out[i].samples.push_back(r.samples[(r.next + k) % r.samples.size()]);
    }
  }
  return out;
}

void Balancer::restore_health(const std::vector<ServerHealth>& health) {
  const size_t window = static_cast<size_t>(std::max(spec_.window, 1));
  for (size_t i = 0; i < servers_.size(); ++i) {
    const std::string me = name(i);
    for (const ServerHealth& h : health) {
      if (h.server != me) continue;
      health_[i].up.store(h.up);
      Record& r = records_[i];
      r.failures_in_row = h.failures_in_row;
      r.samples.clear();
      const size_t skip = h.samples.size() > window ? h.samples.size() - window : 0;
      r.samples.assign(h.samples.begin() + static_cast<std::ptrdiff_t>(skip), h.samples.end());
      r.next = r.samples.size() % window;
      uint64_t sum = 0;
      for (uint32_t v : r.samples) sum += v;
      health_[i].score_ms.store(r.samples.empty() ? 0
                                                  : static_cast<uint32_t>(sum / r.samples.size()));
      if (h.current) current_.store(static_cast<uint32_t>(i));
      break;
    }
  }
  generation_.fetch_add(1, std::memory_order_release);
  rerank();
}

void Balancer::round_done() {
  const size_t n = servers_.size();
  const std::vector<uint32_t> order = rerank();
  if (spec_.mode != BalancerSpec::Pick::Best) return;
  const size_t cur = current();
  if (!up(cur)) {
    if (up(order[0])) switch_to(order[0], "it is down");
    return;
  }
  const size_t best = order[0];
  const double cur_score = health_[cur].score_ms.load();
  const double best_score = health_[best].score_ms.load();
  for (size_t i = 0; i < n; ++i) {
    if (i != best) records_[i].better_rounds = 0;
  }
  if (best == cur || !(best_score < cur_score * (1.0 - spec_.switch_margin))) {
    records_[best].better_rounds = 0;
    return;
  }
  Record& b = records_[best];
  ++b.better_rounds;
  const uint64_t since = monotonic_ms() - last_switch_ms_.load();
  if (b.better_rounds >= spec_.switch_rounds &&
      (last_switch_ms_.load() == 0 || since >= spec_.min_switch_interval_ms)) {
    b.better_rounds = 0;
    char why[128];
    snprintf(why, sizeof why, "score %.0f ms against %.0f ms for %d rounds", best_score, cur_score,
             spec_.switch_rounds);
    switch_to(best, why);
  }
}

}  // namespace ss
