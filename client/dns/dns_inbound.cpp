// ss-local's DNS inbound: a DNS server (RFC 1035 4.2.1 over UDP, 4.2.2 over TCP with a 2-byte
// length; several queries on one TCP connection, answered in any order, RFC 7766) in front of two
// resolvers.
//
// A query:  parse -> cache? -> reply
//                  -> upstream (dns_split.h): local resolver over UDP, retried over TCP when the
//                     answer is truncated (TC); or the remote resolver as DNS over TCP through a
//                     reused, pipelined Shadowsocks TCP connection to the server the router
//                     picks (dns_tunnel.h; no TC possible; works with tcp_only servers, libev's
//                     default). ByLocalAnswer asks the local one, then the remote one if the
//                     local answer has no bypassed address.
//                  -> answer checked (a response, our id, the same question) -> cache -> reply,
//                     with the client's id. A timeout (5 s per attempt) or a failure: SERVFAIL,
//                     except that a remote attempt whose connection failed is retried (the next
//                     server first, kMaxRemoteAttempts in all).
// A UDP reply larger than the client can take (512 bytes, or its EDNS size) goes out as the
// question alone with TC set, so the client retries over TCP.
// Each local attempt is a "leg" with its own socket; a query frees itself after its timer's and
// its legs' close callbacks. Malformed queries are dropped (UDP) or close the connection (TCP),
// with a rate-limited warning; at most kMaxInFlight queries are in flight.

#include "client/dns/dns_inbound.h"

#include <cerrno>
#include <cstring>

#include "relay/acl.h"
#include "relay/address.h"
#include "relay/dns/dns_message.h"
#include "relay/metrics_dns.h"
#include "relay/net/socket_mark.h"
#include "relay/outbound.h"
#include "relay/runtime.h"

namespace ss {

namespace {

constexpr size_t kScratch = 65536 + 2;

bool same_endpoint(const sockaddr* a, const sockaddr_storage& b) {
  if (a->sa_family != b.ss_family) return false;
  if (a->sa_family == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(a);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const auto* x = reinterpret_cast<const sockaddr_in6*>(a);
  const auto* y = reinterpret_cast<const sockaddr_in6*>(&b);
  return x->sin6_port == y->sin6_port &&
         std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

uint64_t now_ms(uv_loop_t* loop) {
  return uv_now(loop);
}

}  // namespace

struct DnsInbound::UdpLeg {
  Query* q = nullptr;  // null once the query let go of it
  uv_udp_t udp{};
};

struct DnsInbound::TcpLeg {
  Query* q = nullptr;
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  uv_write_t write{};
  std::vector<uint8_t> out;
};

struct DnsInbound::Client {
  DnsInbound* owner = nullptr;
  uv_tcp_t tcp{};
  uv_timer_t idle{};
  std::vector<uint8_t> in;
  int handles = 2;  // tcp and idle, until their close callbacks
  int pending = 0;  // queries and writes that still point here
  int queries = 0;  // of which queries
  bool closing = false;
  bool paused = false;

  // Backpressure: a client that does not read its answers, or sends queries faster than they
  // are answered, is not read from until its answers drain (128/32 KiB, 32/8 queries).
  void update_reading() {
    if (closing) return;
    const size_t queued = tcp.write_queue_size;
    if (!paused && (queued > 128 * 1024 || queries > 32)) {
      paused = true;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
    } else if (paused && queued < 32 * 1024 && queries < 8) {
      paused = false;
      uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp), on_alloc, on_read);
    }
  }
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf);

  void close() {
    if (closing) return;
    closing = true;
    owner->clients_.erase(this);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&idle), on_closed);
  }
  void release() {
    if (--pending == 0 && handles == 0) delete this;
  }
  static void on_closed(uv_handle_t* h) {
    auto* c = static_cast<Client*>(h->data);
    if (--c->handles == 0 && c->pending == 0) delete c;
  }
};

struct DnsInbound::Query final : DnsTunnelUser {
  DnsInbound* owner = nullptr;
  Client* client = nullptr;  // TCP; null: UDP from `peer`
  sockaddr_storage peer{};
  size_t udp_limit = dns::kMaxUdpSize;
  uint16_t client_id = 0;
  uint16_t id = 0;  // ours, upstream
  dns::Question question;
  DnsUpstream route = DnsUpstream::Remote;
  bool remote_stage = false;
  std::vector<uint8_t> query;  // with our id
  std::vector<uint8_t> in;     // the local resolver's TCP bytes
  uv_timer_t timer{};
  UdpLeg* udp = nullptr;
  TcpLeg* tcp = nullptr;
  DnsTunnel* tunnel = nullptr;  // the remote resolver's, while the query is outstanding on it
  int remote_attempts = 0;
  uint64_t tried = 0;     // the servers tried (bit Outbound::index), for Router::retry
  uint64_t start_ns = 0;  // uv_hrtime() at the query's arrival (metrics)
  int refs = 1;           // the timer, each leg
  bool done = false;

  void start() {
    uv_timer_init(owner->loop_, &timer);
    timer.data = this;
    if (route == DnsUpstream::Remote) {
      start_remote();
    } else {
      start_local_udp();
    }
  }

  // outbound_fwmark (tun mode: our own queries must not loop into the TUN device).
  void mark(uv_handle_t* h) {
    uv_os_fd_t fd;
    const uint32_t m = owner->runtime_->tcp.fwmark;
    if (m != 0 && uv_fileno(h, &fd) == 0 && set_socket_mark(fd, m) != 0) {
      LOG_WARN_LIMITED(owner->mark_log_, "dns: SO_MARK %u: %s", m, strerror(errno));
    }
  }

  void arm() { uv_timer_start(&timer, on_timeout, kUpstreamTimeoutMs, 0); }

  // --- local resolver ---
  void start_local_udp() {
    arm();
    udp = new UdpLeg;
    udp->q = this;
    ++refs;
    uv_udp_init(owner->loop_, &udp->udp);
    udp->udp.data = udp;
    sockaddr_storage any{};
    any.ss_family = owner->local_dns_.ss_family;
    uv_udp_bind(&udp->udp, reinterpret_cast<const sockaddr*>(&any), 0);
    mark(reinterpret_cast<uv_handle_t*>(&udp->udp));
    uv_buf_t b =
        uv_buf_init(reinterpret_cast<char*>(query.data()), static_cast<unsigned>(query.size()));
    if (uv_udp_recv_start(&udp->udp, on_leg_alloc, on_leg_read) != 0 ||
        uv_udp_try_send(&udp->udp, &b, 1, reinterpret_cast<const sockaddr*>(&owner->local_dns_)) <
            0) {
      failed();
    }
  }

  static void on_leg_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* leg = static_cast<UdpLeg*>(h->data);
    if (leg->q == nullptr) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    std::vector<uint8_t>& s = leg->q->owner->scratch_;
    *buf = uv_buf_init(reinterpret_cast<char*>(s.data()), static_cast<unsigned>(s.size()));
  }

  static void on_leg_read(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* addr,
                          unsigned) {
    auto* leg = static_cast<UdpLeg*>(h->data);
    Query* q = leg->q;
    if (q == nullptr || n <= 0 || addr == nullptr) return;
    if (!same_endpoint(addr, q->owner->local_dns_)) return;
    const auto* msg = reinterpret_cast<const uint8_t*>(buf->base);
    const size_t size = static_cast<size_t>(n);
    if (size < dns::kHeaderSize || dns::message_id(msg) != q->id) return;  // not ours: wait on
    q->drop_udp();
    dns::Reader r;
    if (r.start(msg, size) == ParseStatus::Ok && r.header().response() && r.header().truncated()) {
      q->start_tcp(reinterpret_cast<const sockaddr*>(&q->owner->local_dns_));
      return;
    }
    q->answered(msg, size);
  }

  void drop_udp() {
    if (udp == nullptr) return;
    udp->q = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&udp->udp), [](uv_handle_t* h) {
      auto* leg = static_cast<UdpLeg*>(h->data);
      delete leg;
    });
    udp = nullptr;
    release();
  }

  // --- TCP: the local resolver after TC ---
  void start_tcp(const sockaddr* to) {
    arm();
    tcp = new TcpLeg;
    tcp->q = this;
    ++refs;
    in.clear();
    uv_tcp_init_ex(owner->loop_, &tcp->tcp, to->sa_family);
    mark(reinterpret_cast<uv_handle_t*>(&tcp->tcp));
    tcp->tcp.data = tcp;
    tcp->connect.data = tcp;
    tcp->write.data = tcp;
    uv_tcp_nodelay(&tcp->tcp, 1);
    if (uv_tcp_connect(&tcp->connect, &tcp->tcp, to, on_connect) != 0) failed();
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* leg = static_cast<TcpLeg*>(req->data);
    Query* q = leg->q;
    if (q == nullptr) return;
    if (status != 0) {
      q->failed();
      return;
    }
    const size_t n = q->query.size();
    leg->out.resize(n + 2);
    leg->out[0] = static_cast<uint8_t>(n >> 8);
    leg->out[1] = static_cast<uint8_t>(n);
    std::memcpy(leg->out.data() + 2, q->query.data(), n);
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(leg->out.data()),
                             static_cast<unsigned>(leg->out.size()));
    if (uv_write(&leg->write, reinterpret_cast<uv_stream_t*>(&leg->tcp), &b, 1, on_written) != 0 ||
        uv_read_start(reinterpret_cast<uv_stream_t*>(&leg->tcp), on_tcp_alloc, on_tcp_read) != 0) {
      q->failed();
    }
  }

  static void on_written(uv_write_t* req, int status) {
    auto* leg = static_cast<TcpLeg*>(req->data);
    if (leg->q != nullptr && status != 0) leg->q->failed();
  }

  static void on_tcp_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* leg = static_cast<TcpLeg*>(h->data);
    if (leg->q == nullptr) {
      *buf = uv_buf_init(nullptr, 0);
      return;
    }
    std::vector<uint8_t>& s = leg->q->owner->scratch_;
    *buf = uv_buf_init(reinterpret_cast<char*>(s.data()), 16384);
  }

  static void on_tcp_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* leg = static_cast<TcpLeg*>(s->data);
    Query* q = leg->q;
    if (q == nullptr || n == 0) return;
    if (n < 0) {
      q->failed();
      return;
    }
    q->in.insert(q->in.end(), buf->base, buf->base + n);
    size_t msg_size = 0;
    const ParseStatus st = dns::tcp_frame(q->in.data(), q->in.size(), msg_size);
    if (st == ParseStatus::Error || q->in.size() > 2 + dns::kMaxMessageSize) {
      q->failed();
    } else if (st == ParseStatus::Ok) {
      std::vector<uint8_t> msg(q->in.begin() + 2, q->in.begin() + 2 + msg_size);
      q->drop_tcp();
      q->answered(msg.data(), msg.size());
    }
  }

  void drop_tcp() {
    if (tcp == nullptr) return;
    tcp->q = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp->tcp),
             [](uv_handle_t* h) { delete static_cast<TcpLeg*>(h->data); });
    tcp = nullptr;
    release();
  }

  // --- the remote resolver through a tunnel (client/dns/dns_tunnel.h) ---
  // An attempt on a server's reused connection. A failed attempt is retried: on the next server
  // the router offers (Router::retry, as a TCP connection's failover), else once more on the
  // same one over a new connection; at most kMaxRemoteAttempts in all.
  void start_remote() {
    remote_stage = true;
    arm();
    const Address& resolver = *owner->spec_.remote_dns;
    Router& router = *owner->runtime_->router;
    const Outbound* o = nullptr;
    if (remote_attempts > 0) o = router.retry(resolver, tried);
    if (o == nullptr && remote_attempts < 2) o = router.route_proxy(resolver);
    ++remote_attempts;
    if (o == nullptr || o->kind != Outbound::Kind::Shadowsocks || !o->suite) {
      finish_error(dns::kRcodeServFail);
      return;
    }
    if (o->index < 64) tried |= uint64_t{1} << o->index;
    DnsTunnel* t = owner->tunnel_for(o);
    if (t == nullptr || !t->send(this, query.data(), query.size(), &id)) {
      remote_failed();
      return;
    }
    tunnel = t;
  }

  void remote_failed() {
    if (done) return;
    if (remote_attempts < kMaxRemoteAttempts) {
      start_remote();
    } else {
      finish_error(dns::kRcodeServFail);
    }
  }

  void tunnel_answer(const uint8_t* msg, size_t size) override {
    tunnel = nullptr;
    answered(msg, size);
  }
  void tunnel_failed() override {
    tunnel = nullptr;
    remote_failed();
  }

  // Lets go of the tunnel; true if the tunnel took the timeout as its connection's death.
  bool drop_tunnel(bool timed_out) {
    if (tunnel == nullptr) return false;
    DnsTunnel* t = tunnel;
    tunnel = nullptr;
    return t->cancel(this, id, timed_out, kUpstreamTimeoutMs);
  }

  // --- outcomes ---
  static void on_timeout(uv_timer_t* t) {
    auto* q = static_cast<Query*>(t->data);
    if (q->drop_tunnel(true)) {
      q->remote_failed();  // the connection was dead: another one, the next server first
    } else {
      q->failed();
    }
  }

  // This attempt failed: the remote resolver is next for ByLocalAnswer, else SERVFAIL.
  void failed() {
    if (done) return;
    drop_udp();
    drop_tcp();
    drop_tunnel(false);
    if (route == DnsUpstream::ByLocalAnswer && !remote_stage) {
      start_remote();
    } else {
      finish_error(dns::kRcodeServFail);
    }
  }

  void answered(const uint8_t* msg, size_t size) {
    dns::Summary s;
    if (dns::summarize(msg, size, s) != ParseStatus::Ok || !s.header.response() ||
        s.header.id != id || s.header.qdcount != 1 || s.question.type != question.type ||
        s.question.klass != question.klass ||
        !dns::equal_names(s.question.name.view(), question.name.view())) {
      failed();
      return;
    }
    if (route == DnsUpstream::ByLocalAnswer && !remote_stage &&
        !local_answer_usable(*owner->acl_, msg, size)) {
      start_remote();
      return;
    }
    owner->cache_.store(question, msg, size, now_ms(owner->loop_));
    metrics::dns_inbound_answer(source(), uv_hrtime() - start_ns, true);
    std::vector<uint8_t>& out = owner->reply_;
    out.assign(msg, msg + size);
    dns::set_message_id(out.data(), client_id);
    owner->reply(client, reinterpret_cast<const sockaddr*>(&peer), udp_limit, out.data(),
                 out.size());
    finish();
  }

  metrics::DnsSource source() const {
    return remote_stage ? metrics::DnsSource::Remote : metrics::DnsSource::Local;
  }

  void finish_error(uint8_t rcode) {
    if (done) return;
    metrics::dns_inbound_answer(source(), 0, false);
    dns::set_message_id(query.data(), client_id);
    owner->reply_error(client, reinterpret_cast<const sockaddr*>(&peer), query.data(), query.size(),
                       rcode);
    finish();
  }

  // Lets go of everything; freed after the last close callback.
  void finish() {
    if (done) return;
    done = true;
    owner->queries_.erase(this);
    drop_udp();
    drop_tcp();
    drop_tunnel(false);
    if (client != nullptr) {
      Client* c = client;
      client = nullptr;
      --c->queries;
      c->update_reading();
      c->release();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&timer),
             [](uv_handle_t* h) { static_cast<Query*>(h->data)->release(); });
  }

  void release() {
    if (--refs == 0) delete this;
  }
};

DnsInbound::DnsInbound(uv_loop_t* loop, const ListenerSpec& spec,
                       std::shared_ptr<const Runtime> runtime, std::shared_ptr<const Acl> acl,
                       std::vector<std::string> server_hosts)
    : loop_(loop),
      spec_(spec),
      runtime_(std::move(runtime)),
      acl_(std::move(acl)),
      server_hosts_(std::move(server_hosts)),
      cache_(spec.dns_cache_size),
      scratch_(kScratch + 16384 + 65536),
      id_state_(static_cast<uint32_t>(uv_hrtime()) | 1) {
  spec_.local_dns->to_sockaddr(local_dns_);
}

DnsInbound::~DnsInbound() = default;

int DnsInbound::start(const char** what) {
  sockaddr_storage at;
  if (!literal_to_sockaddr(spec_.address, spec_.port, at)) {
    *what = "address";
    return UV_EINVAL;
  }
  const auto* sa = reinterpret_cast<const sockaddr*>(&at);
  if (spec_.udp) {
    *what = "UDP";
    uv_udp_init(loop_, &udp_);
    udp_.data = this;
    udp_open_ = true;
    int r = uv_udp_bind(&udp_, sa, 0);
    if (r == 0) r = uv_udp_recv_start(&udp_, on_udp_alloc, on_udp_read);
    if (r != 0) return r;
  }
  if (spec_.tcp) {
    *what = "TCP";
    uv_tcp_init(loop_, &tcp_);
    tcp_.data = this;
    tcp_open_ = true;
    int r = uv_tcp_bind(&tcp_, sa, 0);
    if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_), 128, on_accept);
    if (r != 0) return r;
  }
  return 0;
}

void DnsInbound::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (udp_open_) uv_close(reinterpret_cast<uv_handle_t*>(&udp_), nullptr);
  if (tcp_open_) uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
  udp_open_ = tcp_open_ = false;
  const std::vector<Query*> queries(queries_.begin(), queries_.end());
  for (Query* q : queries) q->finish();
  const std::vector<DnsTunnel*> tunnels = tunnels_;
  for (DnsTunnel* t : tunnels) t->close();
  const std::vector<Client*> clients(clients_.begin(), clients_.end());
  for (Client* c : clients) c->close();
}

DnsTunnel* DnsInbound::tunnel_for(const Outbound* o) {
  size_t count = 0;
  for (DnsTunnel* t : tunnels_) {
    if (t->outbound() != o) continue;
    if (!t->full()) return t;
    ++count;
  }
  if (count >= kTunnelsPerServer) return nullptr;
  return new DnsTunnel(loop_, runtime_, o, *spec_.remote_dns, &tunnels_);
}

uint16_t DnsInbound::next_id() {
  // xorshift32: ids that do not follow the clients' (not a secret: the sockets are ours).
  id_state_ ^= id_state_ << 13;
  id_state_ ^= id_state_ >> 17;
  id_state_ ^= id_state_ << 5;
  return static_cast<uint16_t>(id_state_);
}

void DnsInbound::malformed(const char* from) {
  LOG_WARN_LIMITED(malformed_log_, "dns: malformed quer%s from a %s client (%llu since last said)",
                   n == 1 ? "y" : "ies", from, static_cast<unsigned long long>(n));
}

bool DnsInbound::handle(Client* client, const sockaddr* peer, const uint8_t* msg, size_t size) {
  dns::Summary s;
  if (dns::summarize(msg, size, s) != ParseStatus::Ok || s.header.response() ||
      s.header.qdcount != 1) {
    malformed(client != nullptr ? "TCP" : "UDP");
    return false;
  }
  if (s.header.opcode() != 0) {
    reply_error(client, peer, msg, size, 4);  // NOTIMP
    return true;
  }
  // The client's UDP size: 512, or its EDNS OPT record's (RFC 6891 6.2.3).
  size_t limit = dns::kMaxUdpSize;
  {
    dns::Reader r;
    dns::Record rec;
    r.start(msg, size);
    while (r.next_record(rec)) {
      if (rec.type == dns::kTypeOpt && rec.klass > limit) limit = rec.klass;
    }
  }
  const uint64_t now = now_ms(loop_);
  const uint64_t arrived_ns = uv_hrtime();
  std::vector<uint8_t>& out = reply_;
  if (cache_.lookup(s.question, s.header.id, now, out)) {
    metrics::dns_inbound_answer(metrics::DnsSource::Cache, uv_hrtime() - arrived_ns, true);
    LOG_DEBUG("dns: %.*s type %u from the cache", static_cast<int>(s.question.name.size),
              s.question.name.text.data(), static_cast<unsigned>(s.question.type));
    reply(client, peer, limit, out.data(), out.size());
    return true;
  }
  if (queries_.size() >= kMaxInFlight) {
    LOG_WARN_LIMITED(flood_log_, "dns: %zu queries in flight; %llu dropped or refused",
                     queries_.size(), static_cast<unsigned long long>(n));
    if (client != nullptr) reply_error(client, peer, msg, size, dns::kRcodeServFail);
    return true;
  }
  auto* q = new Query;
  q->owner = this;
  q->client = client;
  if (client != nullptr) {
    ++client->pending;
    ++client->queries;
    client->update_reading();
  } else {
    std::memcpy(&q->peer, peer,
                peer->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  }
  q->udp_limit = limit;
  q->start_ns = arrived_ns;
  q->client_id = s.header.id;
  q->id = next_id();
  q->question = s.question;
  q->query.assign(msg, msg + size);
  dns::set_message_id(q->query.data(), q->id);
  q->route = dns_upstream(acl_.get(), s.question, server_hosts_);
  LOG_DEBUG("dns: %.*s type %u to the %s resolver", static_cast<int>(s.question.name.size),
            s.question.name.text.data(), static_cast<unsigned>(s.question.type),
            q->route == DnsUpstream::Remote  ? "remote"
            : q->route == DnsUpstream::Local ? "local"
                                             : "local (then remote)");
  queries_.insert(q);
  q->start();
  return true;
}

void DnsInbound::reply(Client* client, const sockaddr* peer, size_t udp_limit, uint8_t* msg,
                       size_t size) {
  if (stopped_) return;
  if (client == nullptr) {
    if (size > udp_limit) {
      // Too big for the client over UDP: the header and question with TC set.
      dns::Reader r;
      dns::Question q;
      if (r.start(msg, size) != ParseStatus::Ok || !r.next_question(q)) return;
      // The question ends where the first record starts: re-read its wire size.
      size_t pos = dns::kHeaderSize;
      dns::Name skip;
      if (!dns::read_name(msg, size, pos, skip) || pos + 4 > size) return;
      size = pos + 4;
      msg[2] |= 0x02;              // TC
      std::memset(msg + 6, 0, 6);  // no records
    }
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(msg), static_cast<unsigned>(size));
    uv_udp_try_send(&udp_, &b, 1, peer);  // a full socket buffer drops it, as UDP may
    return;
  }
  if (client->closing) return;
  struct Write {
    uv_write_t req;
    Client* client;
    std::vector<uint8_t> data;
  };
  auto* w = new Write;
  w->client = client;
  w->req.data = w;
  w->data.resize(size + 2);
  w->data[0] = static_cast<uint8_t>(size >> 8);
  w->data[1] = static_cast<uint8_t>(size);
  std::memcpy(w->data.data() + 2, msg, size);
  ++client->pending;
  uv_buf_t b =
      uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(w->data.size()));
  const int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&client->tcp), &b, 1,
                         [](uv_write_t* req, int) {
                           auto* wr = static_cast<Write*>(req->data);
                           Client* c = wr->client;
                           delete wr;
                           c->update_reading();
                           c->release();
                         });
  if (r != 0) {
    delete w;
    client->close();
    client->release();
    return;
  }
  uv_timer_again(&client->idle);
  client->update_reading();
}

void DnsInbound::reply_error(Client* client, const sockaddr* peer, const uint8_t* query,
                             size_t size, uint8_t rcode) {
  std::vector<uint8_t>& out = reply_;
  out.resize(dns::kMaxUdpSize + size);
  const size_t n = dns::build_answer(out.data(), out.size(), query, size, rcode, {}, 0);
  if (n == 0) return;
  reply(client, peer, dns::kMaxUdpSize, out.data(), n);
}

void DnsInbound::on_udp_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<DnsInbound*>(h->data);
  *buf = uv_buf_init(reinterpret_cast<char*>(self->scratch_.data()), 65536);
}

void DnsInbound::on_udp_read(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* addr,
                             unsigned) {
  auto* self = static_cast<DnsInbound*>(h->data);
  if (n <= 0 || addr == nullptr || self->stopped_) return;
  // The query is copied out of scratch_ before anything else reads into it.
  std::vector<uint8_t> msg(buf->base, buf->base + n);
  self->handle(nullptr, addr, msg.data(), msg.size());
}

void DnsInbound::on_accept(uv_stream_t* s, int status) {
  auto* self = static_cast<DnsInbound*>(s->data);
  if (status != 0 || self->stopped_) return;
  auto* c = new Client;
  c->owner = self;
  uv_tcp_init(self->loop_, &c->tcp);
  uv_timer_init(self->loop_, &c->idle);
  c->tcp.data = c;
  c->idle.data = c;
  self->clients_.insert(c);
  if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0 ||
      self->clients_.size() > kMaxClients) {
    c->close();
    return;
  }
  uv_timer_start(
      &c->idle, [](uv_timer_t* t) { static_cast<Client*>(t->data)->close(); }, kClientIdleMs,
      kClientIdleMs);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), Client::on_alloc, Client::on_read);
}

void DnsInbound::Client::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* cl = static_cast<Client*>(h->data);
  *buf = uv_buf_init(reinterpret_cast<char*>(cl->owner->scratch_.data()), 65536);
}

void DnsInbound::Client::on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t* buf) {
  auto* cl = static_cast<Client*>(st->data);
  if (nread == 0 || cl->closing) return;
  if (nread < 0) {
    cl->close();
    return;
  }
  cl->in.insert(cl->in.end(), buf->base, buf->base + nread);
  ++cl->pending;  // handle() may close it
  size_t used = 0;
  while (!cl->closing) {
    size_t size = 0;
    const ParseStatus st2 = dns::tcp_frame(cl->in.data() + used, cl->in.size() - used, size);
    if (st2 == ParseStatus::NeedMore) break;
    if (st2 == ParseStatus::Error) {
      cl->owner->malformed("TCP");
      cl->close();
      break;
    }
    std::vector<uint8_t> msg(cl->in.begin() + static_cast<std::ptrdiff_t>(used + 2),
                             cl->in.begin() + static_cast<std::ptrdiff_t>(used + 2 + size));
    used += 2 + size;
    if (!cl->owner->handle(cl, nullptr, msg.data(), msg.size())) cl->close();
  }
  cl->in.erase(cl->in.begin(), cl->in.begin() + static_cast<std::ptrdiff_t>(used));
  cl->release();
}

}  // namespace ss
