// The TCP connection state machine shared by every front end (see connection.h).
//
//   Handshake --(inbound: Connect; routed)--> Connecting --(remote connected)--> Relay
//        \                                           \                               |
//         +------------> Draining <-------------------+-------(auth error)----------+
//   any state --close()--> Closing --(last close callback)--> deleted by the Listener
//
// Relay moves bytes both ways (the pump): what is read from a side with a cipher state is opened,
// what goes to a side with one is sealed, and between two plaintext sides the read block itself
// is passed on. Each side is a Stream (relay/net/stream.h): each read becomes one pooled block,
// and each block is written through the other side's stream. Each read takes at most the room
// left under its pump's high mark in the queue it goes to; when a side's queued bytes reach the
// mark the other side stops reading, and resumes once they fall to the low mark (the marks adapt
// to how fast that side drains, up to Pump::kHighWater and Pump::kLowWater). A pump's limiter
// (none by default) may also hold its source's reading back until a retry time, which the timer
// serves. A FIN is forwarded as a shutdown once the queued bytes towards that side are written; the
// session closes when both directions have ended (the second FIN is the close's own, not a
// shutdown), on an error, or on a deadline.
//
// An inbound that carries one exchange after another (HTTP forward proxying) goes from Relay back
// to Connecting when its next request names another target or the upstream has closed: the
// remote stream is closed, opened again once its close completes, and routed and connected like
// the first (see "one exchange after another" below).
//
// One timer serves every deadline: the handshake/connect/drain deadline, the idle timeout while
// relaying, and the short wait for a client's first bytes before the address header goes alone.

#include "relay/connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "relay/acl.h"
#include "relay/address.h"
#include "relay/counters.h"
#include "relay/ip_policy.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "relay/net/listener.h"
#include "relay/udp_relay.h"
#include "relay/user_limits.h"
#include "relay/warnings.h"

namespace ss {

bool ReplyBytes::append(const uint8_t* p, size_t n) {
  if (n > kCapacity - len) return false;
  std::memcpy(data + len, p, n);
  len += n;
  return true;
}

size_t Connection::orphaned_lookups() {
  return static_cast<size_t>(counters::read(Counter::OrphanedLookups));
}

Connection::Connection(Listener& owner, std::unique_ptr<Inbound> inbound)
    : owner_(owner), runtime_(owner.runtime()), inbound_(std::move(inbound)) {
  pumps_[kClient].set_limiter(owner.limiters().from_client);
  pumps_[kRemote].set_limiter(owner.limiters().from_remote);
  for (int i = 0; i < 2; ++i) {
    peers_[i].side = static_cast<Side>(i);
    peers_[i].tcp.set_handler(this, static_cast<uint8_t>(i));
  }
  uv_timer_init(owner.loop(), &timer_);
  timer_.data = this;
  ++refs_;
  started_at_ = uv_now(owner.loop());
  last_active_ = started_at_;
}

Connection::~Connection() {
  BlockPool::local().release(early_);
  BlockPool::local().release(first_flight_);
}

std::string_view Connection::user() const {
  std::string_view u = inbound_->user();
  if (u.empty() && peers_[kClient].opener) u = peers_[kClient].opener->user();
  return u;
}

// ---- metrics -----------------------------------------------------------------------------------
// Counted under (port, user) once the request is read: the bytes read from the client before it
// go in at once; replies sent during a local proxy's handshake are not counted.

void Connection::count_opened() {
  if (metrics_ != nullptr || owner_.metrics() == nullptr) return;
  const metrics::SlotId id = owner_.metrics()->find(user());
  if (id == metrics::kNoSlot) return;
  metrics_ = &metrics::slot(id);
  metrics_->opened.fetch_add(1, std::memory_order_relaxed);
  metrics::add_bytes(*metrics_, metrics::kClientToProxy,
                     static_cast<int64_t>(peers_[kClient].bytes_read));
}

// ---- quotas and rate limits (relay/user_limits.h) -----------------------------------------------
// A user over its quota is refused after authentication the way a refused target is: the
// connection closes with no byte of reply. A live session whose next read would pass the quota
// drops that read and stops reading both sides; what was already queued is written, then it
// closes, so what a user gets never exceeds its quota and stops within one read (64 KiB) of it.

bool Connection::attach_user_limits() {
  if (user_limits_ != nullptr || !runtime_->user_limits) return true;
  const std::string_view who = user();
  UserState* u = who.empty() ? nullptr : runtime_->user_limits->find(who);
  if (u == nullptr) return true;
  const int64_t now = runtime_->user_limits->now_s();
  if (u->over_quota(now)) {
    warn::user_over_quota(who, peer_text(kClient), u->quota(), false);
    ReplyBytes reply;
    inbound_->refused_reply(reply);
    reply_and_end(reply, "user over quota");
    return false;
  }
  user_limits_ = u;
  u->add(peers_[kClient].bytes_read, now);
  if (u->limiter()) {
    pumps_[kClient].set_limiter(u->limiter());
    pumps_[kRemote].set_limiter(u->limiter());
  }
  return true;
}

void Connection::cut_at_quota() {
  warn::user_over_quota(user(), peer_text(kClient), user_limits_->quota(), true);
  quota_cut_ = true;
  set_want_read(kClient, false);
  set_want_read(kRemote, false);
  const bool queued = (peers_[kClient].live && peers_[kClient].stream->queued() > 0) ||
                      (peers_[kRemote].live && peers_[kRemote].stream->queued() > 0);
  if (!queued) {
    close("quota reached");
    return;
  }
  set_deadline_ms(kConnectTimeoutMs);  // a peer that reads nothing more does not hold it
}

metrics::Reject Connection::metrics_reject(RejectKind kind) {
  switch (kind) {
    case RejectKind::Replay:
      return metrics::Reject::Replay;
    case RejectKind::Clock:
      return metrics::Reject::Timestamp;
    case RejectKind::BadRequest:
      return metrics::Reject::Header;
    case RejectKind::Auth:
      break;
  }
  return metrics::Reject::Auth;
}

uv_loop_t* Connection::loop() const {
  return owner_.loop();
}
UdpRelay* Connection::udp_relay() const {
  return owner_.udp();
}

void Connection::start(uv_stream_t* server) {
  Peer& c = peers_[kClient];
  if (c.tcp.init(loop()) != 0) {
    close("tcp init failed");
    return;
  }
  c.live = true;
  ++refs_;
  int r = c.tcp.accept(server);
  if (r != 0) {
    close("accept failed", r);
    return;
  }
  c.connected = true;
  metrics::accepted(owner_.metrics());
  if (runtime().client_acl) {
    sockaddr_storage peer{};
    if (c.tcp.peer_address(peer) &&
        runtime().client_acl->client_blocked(reinterpret_cast<const sockaddr*>(&peer))) {
      warn::client_refused(peer_text(kClient));
      close("client refused by the ACL");
      return;
    }
  }
  if (runtime().tcp.no_delay) c.tcp.set_nodelay(true);
  set_deadline_ms(std::min<uint64_t>(kMaxHandshakeMs, uint64_t(runtime().limits.timeout) * 1000));
  const InboundAction first =
      inbound_->start(inbound_->wants_accept_info() ? accept_info() : AcceptInfo{});
  if (first == InboundAction::NeedMore) set_want_read(kClient, true);
  dispatch(first);
}

AcceptInfo Connection::accept_info() const {
  AcceptInfo info;
  const TcpStream& t = peers_[kClient].tcp;
  sockaddr_storage ss{};
  // A dual-stack listener reports an IPv4 connection with IPv4-mapped IPv6 addresses: inbounds
  // see them as the IPv4 addresses they are (a target ::ffff:a.b.c.d would reach ss-server as an
  // IPv6 address).
  if (t.local_address(ss)) {
    info.local = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).unmapped();
  }
  if (t.peer_address(ss)) {
    info.peer = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).unmapped();
  }
  // netfilter's NAT: the address the client connected to before REDIRECT/DNAT, looked up for
  // the connection's family (info.local, unmapped above), not the socket's.
  if (inbound_->wants_original_dst() &&
      t.original_dst(info.local.type == Address::Type::IPv6, ss)) {
    info.original_dst = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
  }
  return info;
}

// ---- inbound -> route -> outbound ---------------------------------------------------------------

void Connection::dispatch(InboundAction action) {
  switch (action) {
    case InboundAction::NeedMore:
      return;
    case InboundAction::Connect:
      route_and_connect();
      return;
    case InboundAction::UdpAssociate:
      udp_associate();
      return;
    case InboundAction::Reply:
      // The reply (an error answer) was queued by the caller: FIN after it, then drain.
      if (inbound_->auth_failed()) warn::proxy_auth_failed(peer_text(kClient), inbound_->failure());
      drain(true);
      return;
    case InboundAction::Close:
    case InboundAction::Handover:  // only a second handover in a row: a bug, not a peer's doing
      close("bad request");
      return;
    case InboundAction::Reject:
      on_reject();
      return;
  }
}

void Connection::on_reject() {
  std::string_view detail = inbound_->failure();
  const std::string from = peer_text(kClient);
  metrics::reject(metrics_reject(inbound_->reject_kind()));
  switch (inbound_->reject_kind()) {
    case RejectKind::Clock:
      warn::clock_skew(std::string(inbound_->name()) + ": refused a client whose header", detail);
      break;
    case RejectKind::Replay:
      warn::client_replay(from);
      break;
    case RejectKind::Auth:
    case RejectKind::BadRequest:
      warn::client_auth_failed(from, detail);
      break;
  }
  LOG_DEBUG("%s: rejected a client from %s: %.*s", inbound_->name(), from.c_str(),
            static_cast<int>(detail.size()), detail.data());
  drain(false);
}

void Connection::route_and_connect() {
  const Address& target = inbound_->target();
  target_ = target;
  std::string_view who = user();
  if (who.empty()) {
    LOG_DEBUG("%s: connect %s", inbound_->name(), target.to_string().c_str());
  } else {
    LOG_INFO("%s: user %.*s: connect %s", inbound_->name(), static_cast<int>(who.size()),
             who.data(), target.to_string().c_str());
  }
  // A Shadowsocks inbound hands over the client side's cipher state.
  if (std::unique_ptr<TcpOpener> opener = inbound_->take_opener()) {
    peers_[kClient].opener = std::move(opener);
    peers_[kClient].server_suite = inbound_->suite();
  }
  count_opened();
  if (!attach_user_limits()) return;
  if (target.type == Address::Type::Domain && runtime_->router->needs_address(target)) {
    // The route depends on the name's address: look it up first (on_resolved goes on).
    set_phase(Phase::Connecting);
    set_want_read(kClient, false);
    dns_for_route_ = true;
    dns_req_.data = this;
    dns_started_ = uv_hrtime();
    if (resolve(loop(), dns_req_, target.host, target.port, runtime().tcp.ipv6_first,
                on_resolved) != 0) {
      dns_for_route_ = false;
      outbound_ = runtime_->router->route_resolved(target, nullptr);
      connect_routed(target, nullptr);
      return;
    }
    dns_pending_ = true;
    ++refs_;
    return;
  }
  outbound_ = runtime_->router->route(target);
  connect_routed(target, nullptr);
}

void Connection::connect_routed(const Address& target, const sockaddr* resolved) {
  if (outbound_ == nullptr) {
    warn::target_refused(peer_text(kClient), target.to_string(), "no route");
    ReplyBytes reply;
    inbound_->refused_reply(reply);
    reply_and_end(reply, "no route");
    return;
  }
  acl_allowed_ = false;
  if (outbound_->acl != nullptr) {
    const Acl::Verdict v = outbound_->acl->outbound(target);
    if (v == Acl::Verdict::Block) {
      on_target_blocked(nullptr);
      return;
    }
    acl_allowed_ = v == Acl::Verdict::Allow;
  }
  if (outbound_->kind == Outbound::Kind::Shadowsocks) {
    tried_ = outbound_->index < 64 ? uint64_t{1} << outbound_->index : 0;
    connect_server();
    return;
  }
  connect_remote(target, "target", resolved);
}

// ---- failover ---------------------------------------------------------------------------------
// A request whose Shadowsocks server fails before answering goes to the next server the router
// offers, until none is left (at most one try per server), and the client sees nothing of it:
//
//   Connecting --(connect refused/timed out, server unresolved)--+
//   Relay, no response byte yet --(server closed or reset)-------+--> router.retry()
//       --(another server)--> close the remote stream --(closed)--> Connecting to it, the kept
//                             first flight as early data
//       --(none left)--> the failure as before (the inbound's error reply, or the close)
//
// The inbound's connected reply goes to the client once, on the first connect that succeeds.
// Plaintext sent to the server is kept (one block) until its first response byte; a first
// flight longer than that cannot be replayed, and then no retry happens once it was sent. A
// server that cannot be connected is reported to the router (server_failed), which stops
// choosing it until its probes pass again.

void Connection::connect_server() {
  Peer& r = peers_[kRemote];
  r.connected = r.reading = r.want_read = false;
  r.eof = r.shut_sent = r.shut_done = false;
  r.sealer = outbound_->suite->client_sealer();
  r.opener = outbound_->suite->client_opener(*r.sealer);
  pending_header_ = target_;
  connect_remote(outbound_->server, "server");
}

bool Connection::fail_over(const char* what) {
  if (outbound_ == nullptr || outbound_->kind != Outbound::Kind::Shadowsocks) return false;
  if (!first_flight_whole_ || phase_ == Phase::Closing || phase_ == Phase::Draining) return false;
  if (phase_ == Phase::Relay && response_started_) return false;
  const Outbound* next = runtime_->router->retry(target_, tried_);
  if (next == nullptr) return false;
  LOG_INFO("%s: %s: server %s %s; trying server %s", inbound_->name(), target_.to_string().c_str(),
           outbound_->server.to_string().c_str(), what, next->server.to_string().c_str());
  outbound_ = next;
  if (next->index < 64) tried_ |= uint64_t{1} << next->index;
  if (first_flight_ != nullptr && early_ == nullptr) {
    early_ = first_flight_;  // sent again, first, once the next server is connected
    first_flight_ = nullptr;
  }
  drop_first_flight();
  first_flight_whole_ = true;
  set_phase(Phase::Connecting);
  set_want_read(kClient, false);
  header_flush_at_ = 0;
  pumps_[kClient].sink_written(
      0, uv_now(loop()));  // the next remote's queue is empty: no watermark pause
  Peer& r = peers_[kRemote];
  r.connected = false;
  if (r.live) {
    retry_after_close_ = true;
    close_peer(kRemote);  // on_stream_closed() goes on with connect_server()
    return true;
  }
  connect_server();
  return true;
}

void Connection::keep_first_flight(const uint8_t* data, size_t n) {
  if (outbound_ == nullptr || outbound_->kind != Outbound::Kind::Shadowsocks || response_started_ ||
      !first_flight_whole_) {
    return;
  }
  if (first_flight_ == nullptr) {
    first_flight_ = BlockPool::local().acquire();
    first_flight_->len = 0;
  }
  if (n > kBlockCapacity - first_flight_->len) {
    first_flight_whole_ = false;  // too long to replay: this request is not retried any more
    drop_first_flight();
    return;
  }
  std::memcpy(first_flight_->data + first_flight_->len, data, n);
  first_flight_->len += static_cast<uint32_t>(n);
}

void Connection::drop_first_flight() {
  BlockPool::local().release(first_flight_);
  first_flight_ = nullptr;
}

void Connection::udp_associate() {
  sockaddr_storage peer{}, local{};
  ReplyBytes reply;
  const Stream& client = *peers_[kClient].stream;
  if (udp_relay() == nullptr || !client.peer_address(peer) || !client.local_address(local)) {
    inbound_->failed_reply(UV_EINVAL, reply);
    reply_and_end(reply, "UDP association failed");
    return;
  }
  // The inbound's target is where the client will send from; a zero port means "not known yet".
  udp_control_ =
      udp_relay()->open_control(reinterpret_cast<sockaddr*>(&peer), inbound_->target().port);
  Address bind = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local));
  bind.port = udp_relay()->port_for(bind.port);
  inbound_->udp_reply(bind, reply);
  if (!send_copy(kClient, reply.data, reply.len)) return;
  LOG_DEBUG("%s: UDP ASSOCIATE from %s, relay at %s", inbound_->name(),
            Address::from_sockaddr(reinterpret_cast<sockaddr*>(&peer)).to_string().c_str(),
            bind.to_string().c_str());
  // The association lives exactly as long as this connection: no handshake deadline, and the
  // client's FIN or reset closes the connection (and the association with it). Whatever else the
  // client sends is ignored.
  clear_deadline();
  hold_after_handshake();
}

void Connection::on_remote_connected() {
  if (!client_answered_) {
    client_answered_ = true;
    ReplyBytes reply;
    inbound_->connected_reply(reply);
    if (reply.len > 0 && !send_copy(kClient, reply.data, reply.len)) return;
  }
  if (early_ != nullptr) {
    // With a Shadowsocks outbound: the address header and the pipelined bytes in one flight.
    Block* b = early_;
    early_ = nullptr;
    if (!forward(kRemote, b, b->len)) BlockPool::local().release(b);
    if (phase_ == Phase::Closing || !peers_[kRemote].connected) return;
  }
  start_relay();
}

void Connection::on_remote_failed(int err) {
  if (outbound_ != nullptr && outbound_->kind == Outbound::Kind::Shadowsocks) {
    warn::server_unreachable(remote_.to_string(), err);
    runtime_->router->server_failed(*outbound_, err);
    if (fail_over(uv_err_name(err))) return;
    if (client_answered_) {
      // A failover's last try failed after the client was told it is connected: just end.
      close("no server answered", err);
      return;
    }
  } else {
    LOG_DEBUG("%s: cannot reach %s: %s", inbound_->name(), remote_.to_string().c_str(),
              uv_strerror(err));
  }
  // End the client's stream promptly (FIN after the reply, if any) rather than leave it hanging.
  ReplyBytes reply;
  inbound_->failed_reply(err, reply);
  if (reply.len > 0) send_copy(kClient, reply.data, reply.len);
  drain(true);
}

void Connection::reply_and_end(const ReplyBytes& reply, const char* why) {
  if (reply.len == 0) {
    close(why);
    return;
  }
  // The answer, then a FIN once it is written; the client's bytes are discarded meanwhile.
  send_copy(kClient, reply.data, reply.len);
  drain(true);
}

void Connection::on_target_blocked(const sockaddr* sa) {
  // The client authenticated: it holds the key, so there is nothing to hide from it. Close at
  // once rather than leave it waiting for the handshake deadline. `sa`: the resolved address
  // refused (by the SSRF guard or the ACL), or null: the ACL refused the target as requested.
  if (sa == nullptr) {
    warn::target_refused(peer_text(kClient), target_.to_string(), "the ACL blocks it");
  } else if (outbound_->block_private && is_refused_target(sa)) {
    warn::target_refused(peer_text(kClient), remote_.to_string(),
                         "a private address (" + Address::from_sockaddr(sa).to_string() +
                             "); allow_private_targets permits it");
  } else {
    warn::target_refused(peer_text(kClient), remote_.to_string(),
                         "the ACL blocks its address " + Address::from_sockaddr(sa).to_string());
  }
  ReplyBytes reply;
  inbound_->refused_reply(reply);
  reply_and_end(reply, "target not allowed");
}

// ---- reading ----------------------------------------------------------------------------------

void Connection::set_want_read(Side s, bool on) {
  peers_[s].want_read = on;
  update_reading(s);
}

void Connection::update_reading(Side s) {
  Peer& p = peers_[s];
  bool want =
      p.connected && p.want_read && !pumps_[s].paused() && !p.eof && phase_ != Phase::Closing;
  if (want == p.reading) return;
  if (want) {
    if (p.stream->read_start() == 0) p.reading = true;
  } else {
    p.stream->read_stop();
    p.reading = false;
  }
}

size_t Connection::read_size(uint8_t ctx) {
  // The room under the high mark of the side this read goes to (none yet: a whole read).
  const Peer& sink = peers_[other(static_cast<Side>(ctx))];
  return pumps_[ctx].read_size(sink.live ? sink.stream->queued() : 0);
}

bool Connection::on_stream_read(uint8_t ctx, Block* block, size_t n) {
  Peer& p = peers_[ctx];
  p.bytes_read += n;
  if (metrics_ != nullptr) {
    metrics::add_bytes(*metrics_,
                       ctx == kClient ? metrics::kClientToProxy : metrics::kTargetToProxy,
                       static_cast<int64_t>(n));
  }
  return handle_read(p.side, block, n);  // true: passed on
}

void Connection::on_stream_end(uint8_t ctx, int err) {
  Peer& p = peers_[ctx];
  if (err == UV_EOF) {
    handle_eof(p.side);
    return;
  }
  if (p.side == kRemote && response_ended_ && phase_ == Phase::Relay) {
    drop_upstream();  // an idle kept-alive upstream was reset: not the client's concern
    return;
  }
  if (p.side == kRemote && phase_ == Phase::Relay && fail_over("reset before answering")) return;
  // A reset or error: what was already read has been queued towards the other side, so let it
  // drain before closing (bounded by the deadline).
  p.eof = true;
  update_reading(p.side);
  Side dst = other(p.side);
  if (phase_ == Phase::Relay && peers_[dst].stream->queued() > 0) {
    close_when_flushed_ = true;
    set_deadline_ms(kConnectTimeoutMs);
  } else {
    // Graceful: the other side still gets every byte read before the error, then a FIN.
    close(p.side == kClient ? "client read error" : "remote read error", err);
  }
}

bool Connection::handle_read(Side s, Block* block, size_t n) {
  last_active_ = uv_now(loop());
  switch (phase_) {
    case Phase::Handshake:
      if (s == kClient) {
        ReplyBytes reply;
        const InboundAction action = feed_inbound(block->data, n, reply);
        if (reply.len > 0 && !send_copy(kClient, reply.data, reply.len)) return false;
        dispatch(action);
      }
      return false;
    case Phase::Relay:
      if (user_limits_ != nullptr) {
        if (quota_cut_) return false;  // a read already under way when the cut stopped reading
        if (!user_limits_->charge(n, runtime_->user_limits->now_s())) {
          cut_at_quota();
          return false;
        }
      }
      if (pumps_[s].charge(n, last_active_)) {
        update_reading(s);
        arm_timer();
      }
      return relay(s, block, n);
    case Phase::Draining:  // discard
    case Phase::Connecting:
    case Phase::Closing:
      return false;
  }
  return false;
}

InboundAction Connection::feed_inbound(const uint8_t* data, size_t n, ReplyBytes& reply) {
  if (early_ == nullptr) early_ = BlockPool::local().acquire();
  EarlyData early{early_->data, kBlockCapacity, 0};
  InboundAction action = inbound_->feed(data, n, reply, early);
  if (action == InboundAction::Handover) {
    if (std::unique_ptr<Inbound> next = inbound_->take_next()) {
      inbound_ = std::move(next);
      action = inbound_->feed(data, n, reply, early);
    } else {
      action = InboundAction::Close;
    }
  }
  early_->len = static_cast<uint32_t>(early.len);
  if (early.len == 0) {
    BlockPool::local().release(early_);
    early_ = nullptr;
  }
  return action;
}

void Connection::handle_eof(Side s) {
  Peer& p = peers_[s];
  p.eof = true;
  update_reading(s);
  if (phase_ != Phase::Relay) {
    close(s == kClient ? "client closed" : "remote closed");
    return;
  }
  if (s == kRemote && response_ended_) {
    drop_upstream();  // an idle kept-alive upstream closed: the next request connects again
    return;
  }
  if (s == kRemote && fail_over("closed before answering")) return;
  if (s == kClient && between_requests_) {
    end_after_response();  // the client is done, between two requests
    return;
  }
  if (p.opener && p.opener->buffered() > 0) {
    close("stream ended inside a chunk");
    return;
  }
  if (s == kRemote && p.opener && p.bytes_read == 0) {
    // ss-server said nothing at all and closed: it refused the target, or it could not
    // authenticate us (it then holds the connection until its handshake deadline).
    const uint64_t ms = uv_now(loop()) - started_at_;
    warn::server_closed_silently(remote_.to_string(), target_.to_string(), ms);
  }
  if (s == kClient && pending_header_) {
    // The client half-closed before sending anything: the server still needs the target.
    Block* b = BlockPool::local().acquire();
    b->len = static_cast<uint32_t>(seal_request(nullptr, 0, b->data));
    if (!send(kRemote, b)) return;
  }
  if (s == kRemote && !response_started_) {
    // Nothing came back for the request: the inbound may say so (HTTP: 502), then it ends.
    ReplyBytes reply;
    inbound_->no_response_reply(reply);
    if (reply.len > 0) {
      send_copy(kClient, reply.data, reply.len);
      end_after_response();
      return;
    }
  }
  maybe_shutdown(other(s));
  maybe_finish();
}

// ---- relaying ---------------------------------------------------------------------------------

void Connection::start_relay() {
  set_phase(Phase::Relay);
  deadline_ = 0;
  last_active_ = uv_now(loop());
  set_want_read(kClient, true);
  set_want_read(kRemote, true);
  if (pending_header_) header_flush_at_ = uv_now(loop()) + kHeaderFlushDelayMs;
  // A FIN that arrived while connecting is forwarded now.
  if (peers_[kClient].eof) handle_eof(kClient);
  note_request_done();
  arm_timer();
}

std::string Connection::peer_text(Side s) const {
  return peers_[s].stream->peer_text();
}

size_t Connection::seal_request(const uint8_t* pt, size_t n, uint8_t* out) {
  uint8_t hdr[kMaxAddressLen];
  size_t len = encode_address(*pending_header_, hdr);
  pending_header_.reset();
  header_flush_at_ = 0;
  return peers_[kRemote].sealer->seal_request(hdr, len, pt, n, out);
}

bool Connection::open_into(Side s, const uint8_t* data, size_t n, Block* out) {
  auto r = peers_[s].opener->feed(data, n, out->data);
  if (r.status == DecryptStatus::Error) return false;
  out->len = static_cast<uint32_t>(r.produced);
  return true;
}

bool Connection::relay(Side src, Block* in, size_t n) {
  Block* data = in;  // the plaintext
  if (peers_[src].opener) {
    Block* out = BlockPool::local().acquire();
    if (!open_into(src, in->data, n, out)) {
      BlockPool::local().release(out);
      on_decrypt_error(src);
      return false;
    }
    if (out->len == 0) {
      BlockPool::local().release(out);
      return false;
    }
    data = out;
    n = out->len;
  }
  bool taken = false;
  if (src == kClient && between_requests_) {
    read_next_request(data->data, n);  // the inbound reads the next request
  } else if (src == kRemote && response_ended_) {
    drop_upstream();  // bytes nobody asked for: this upstream is out of step
  } else {
    // Only the bytes of the current exchange go on (all of them, but for HTTP forwarding).
    ResponseEnd end = ResponseEnd::No;
    size_t keep = n;
    if (src == kClient) {
      keep = inbound_->forwardable(data->data, n);
      if (keep < n) end_request();
    } else {
      response_started_ = true;
      drop_first_flight();
      end = inbound_->response(data->data, n, keep);
    }
    taken = keep != 0 && forward(other(src), data, keep);
    if (src == kClient) {
      note_request_done();
    } else {
      after_response(end, keep < n);
    }
  }
  if (data == in) return taken;
  if (!taken) BlockPool::local().release(data);
  return false;
}

bool Connection::forward(Side dst, Block* in, size_t n) {
  Peer& to = peers_[dst];
  if (dst == kRemote) keep_first_flight(in->data, n);
  if (!to.sealer && to.server_suite != nullptr) {
    to.sealer = to.server_suite->server_sealer(*to.opener);
  }
  if (to.sealer) {
    Block* out = BlockPool::local().acquire();
    const size_t len = pending_header_ ? seal_request(in->data, n, out->data)
                                       : to.sealer->seal(in->data, n, out->data);
    if (len == 0) {
      BlockPool::local().release(out);
      close("encryption failed");
      return false;
    }
    out->len = static_cast<uint32_t>(len);
    send(dst, out);
    return false;
  }
  // Plaintext both ways: the read block itself goes on.
  in->len = static_cast<uint32_t>(n);
  send(dst, in);
  return true;
}

// ---- one exchange after another (HTTP forward proxying) ----------------------------------------
// The inbound tells where each request and each response ends (forwardable(), request_done(),
// response()); for every other inbound the one exchange never ends and none of this runs. Once
// both have ended, the inbound reads the next request (feed(), as in the handshake), and its
// Connect either goes on the same upstream or, for another target (or a closed upstream), on a
// new one through the router: the old remote handle is closed first and the same Peer is
// initialised again after its close callback, so refs_ and the single close path are unchanged.

void Connection::end_request() {
  if (request_ended_) return;
  request_ended_ = true;
  set_want_read(kClient, false);  // the inbound holds what follows until the response ends
}

void Connection::note_request_done() {
  if (phase_ != Phase::Relay) return;
  if (inbound_->request_done()) end_request();
  if (request_ended_ && response_ended_) next_request();
}

void Connection::after_response(ResponseEnd end, bool more) {
  if (phase_ != Phase::Relay) return;
  switch (end) {
    case ResponseEnd::No:
      return;
    case ResponseEnd::Reuse:
      response_ended_ = true;
      if (more) drop_upstream();  // bytes after the response: this upstream is out of step
      if (request_ended_) next_request();
      return;
    case ResponseEnd::Last:
      end_after_response();
      return;
    case ResponseEnd::Bad:
      LOG_DEBUG("%s: bad response from %s", inbound_->name(), target_.to_string().c_str());
      abort("bad response from the origin");
      return;
  }
}

void Connection::end_after_response() {
  end_request();
  close_peer(kRemote);
  peers_[kRemote].eof = true;
  maybe_shutdown(kClient);  // a FIN once the response is written; maybe_finish() then closes
}

void Connection::drop_upstream() {
  close_peer(kRemote);
  peers_[kRemote].eof = true;
}

void Connection::next_request() {
  request_ended_ = false;
  response_ended_ = false;
  response_started_ = false;
  between_requests_ = true;
  read_next_request(nullptr, 0);  // the inbound may hold it already
  if (!between_requests_ || phase_ != Phase::Relay) return;
  if (peers_[kClient].eof) {
    end_after_response();
    return;
  }
  set_want_read(kClient, true);
}

void Connection::read_next_request(const uint8_t* data, size_t n) {
  ReplyBytes reply;
  const InboundAction action = feed_inbound(data, n, reply);
  if (reply.len > 0 && !send_copy(kClient, reply.data, reply.len)) return;
  if (action == InboundAction::NeedMore) return;
  between_requests_ = false;
  if (action != InboundAction::Connect) {
    dispatch(action);  // an error answer and the end, or a close
    return;
  }
  Peer& r = peers_[kRemote];
  if (inbound_->reuses_upstream() && inbound_->target() == target_ && r.connected && !r.eof &&
      !r.shut_sent) {
    LOG_DEBUG("%s: next request to %s on the same upstream", inbound_->name(),
              target_.to_string().c_str());
    if (early_ != nullptr) {
      Block* b = early_;
      early_ = nullptr;
      if (!forward(kRemote, b, b->len)) BlockPool::local().release(b);
    }
    note_request_done();
    return;
  }
  // Another target, or the upstream is gone: a new one, routed like the first.
  set_want_read(kClient, false);
  connect_after_close_ = true;
  if (r.live) {
    close_peer(kRemote);  // on_stream_closed() goes on with connect_next_upstream()
    return;
  }
  connect_next_upstream();
}

void Connection::connect_next_upstream() {
  connect_after_close_ = false;
  if (phase_ != Phase::Relay) return;
  Peer& r = peers_[kRemote];
  r.connected = r.reading = r.want_read = false;
  r.eof = r.shut_sent = r.shut_done = false;
  r.opener.reset();
  r.sealer.reset();
  r.server_suite = nullptr;
  pumps_[kClient].sink_written(
      0, uv_now(loop()));  // the new remote's queue is empty: no watermark pause
  pending_header_.reset();
  header_flush_at_ = 0;
  // A new exchange: its own failover.
  drop_first_flight();
  first_flight_whole_ = true;
  client_answered_ = false;
  route_and_connect();
}

void Connection::on_decrypt_error(Side s) {
  const TcpOpener& opener = *peers_[s].opener;
  std::string_view detail = opener.failure();
  if (s == kClient) {
    // The client's stream stopped authenticating mid-way: stop forwarding, close the remote, and
    // drain the client quietly (the reject policy).
    LOG_DEBUG("%s: authentication failed mid-stream: %.*s", inbound_->name(),
              static_cast<int>(detail.size()), detail.data());
    drain(false);
    return;
  }
  if (detail.find("clock") != std::string_view::npos) {
    warn::clock_skew(std::string(inbound_->name()) + ": the server's response", detail);
  } else {
    warn::server_reply_unauthenticated(remote_.to_string(), detail.empty() ? "bad tag" : detail);
  }
  close("authentication failed");
}

// ---- writing ----------------------------------------------------------------------------------

bool Connection::send_copy(Side dst, const uint8_t* data, size_t n) {
  Block* b = BlockPool::local().acquire();
  n = std::min(n, kBlockCapacity);
  std::memcpy(b->data, data, n);
  b->len = static_cast<uint32_t>(n);
  return send(dst, b);
}

bool Connection::send(Side dst, Block* b) {
  Peer& p = peers_[dst];
  if (!p.connected || p.shut_sent || phase_ == Phase::Closing) {
    BlockPool::local().release(b);
    return false;
  }
  const size_t len = b->len;
  const int r = p.stream->write(b);
  if (metrics_ != nullptr && r == 0) {
    metrics::add_bytes(*metrics_,
                       dst == kRemote ? metrics::kProxyToTarget : metrics::kProxyToClient,
                       static_cast<int64_t>(len));
  }
  if (r != 0) {
    abort(dst == kClient ? "client write error" : "remote write error", r);
    return false;
  }
  if (pumps_[other(dst)].sink_queued(p.stream->queued(), uv_now(loop()))) {
    update_reading(other(dst));
    arm_timer();  // start watching the now unread side for a reset
  }
  return true;
}

void Connection::on_stream_written(uint8_t ctx, int status) {
  const Side dst = static_cast<Side>(ctx);
  if (status == UV_ECANCELED) return;  // the handle is closing; the session is still alive
  if (status < 0) {
    abort(dst == kClient ? "client write error" : "remote write error", status);
    return;
  }
  after_write(dst);
}

void Connection::after_write(Side dst) {
  Peer& p = peers_[dst];
  Peer& src = peers_[other(dst)];
  if (pumps_[src.side].sink_written(p.stream->queued(), uv_now(loop()))) {
    update_reading(src.side);
  }
  if (p.stream->queued() != 0) return;
  if (quota_cut_) {
    const Peer& o = peers_[other(dst)];
    if (!o.live || o.stream->queued() == 0) close("quota reached");
    return;
  }
  if (close_when_flushed_) {
    close("peer reset, pending data delivered");
    return;
  }
  maybe_shutdown(dst);
}

// ---- half-close -------------------------------------------------------------------------------

void Connection::maybe_shutdown(Side dst) {
  Peer& p = peers_[dst];
  Side src = other(dst);
  bool src_done = peers_[src].eof && phase_ == Phase::Relay;
  if (!src_done || !p.connected || p.shut_sent || p.stream->queued() != 0) return;
  if (p.eof && peers_[src].shut_sent) {
    // Both directions have ended and everything is written: closing sends the FIN this shutdown
    // would (and nothing is unread, so no reset), one system call less.
    close("done");
    return;
  }
  if (p.stream->shutdown() != 0) {
    close("shutdown failed");
    return;
  }
  p.shut_sent = true;
}

void Connection::on_stream_shutdown(uint8_t ctx, int status) {
  if (status == UV_ECANCELED) return;
  if (status < 0) {
    close("shutdown failed", status);
    return;
  }
  peers_[ctx].shut_done = true;
  maybe_finish();
}

void Connection::maybe_finish() {
  const Peer& c = peers_[kClient];
  const Peer& r = peers_[kRemote];
  if (c.eof && r.eof && c.shut_done && r.shut_done) close("done");
  // The request ended and its response has been relayed in full.
  if (request_ended_ && r.eof && c.shut_done) close("done");
}

// ---- draining and closing ---------------------------------------------------------------------

void Connection::drain(bool send_fin) {
  if (phase_ == Phase::Closing || phase_ == Phase::Draining) return;
  bool in_handshake = phase_ != Phase::Relay;
  set_phase(Phase::Draining);
  header_flush_at_ = 0;
  close_peer(kRemote);
  // Before relaying, the deadline counted from accept stays, so the reaction does not depend on
  // what the client sent; otherwise (or if none is left) drain for at most the handshake time.
  uint64_t now = uv_now(loop());
  if (!in_handshake || deadline_ <= now) {
    set_deadline_ms(std::min<uint64_t>(kMaxHandshakeMs, uint64_t(runtime().limits.timeout) * 1000));
  }
  Peer& c = peers_[kClient];
  pumps_[kClient].release();
  set_want_read(kClient, true);
  if (send_fin && c.connected && !c.shut_sent) {
    // uv_shutdown waits for queued writes (a SOCKS5 error reply) to complete first.
    if (c.stream->shutdown() == 0) c.shut_sent = true;
  }
  arm_timer();
}

void Connection::close_peer(Side s, bool reset) {
  Peer& p = peers_[s];
  bool was_connected = p.connected;
  p.connected = false;
  p.reading = false;
  // A stream may refuse the reset (a TCP socket with a shutdown in progress): then a FIN it is.
  p.stream->close(reset && was_connected);
}

void Connection::abort(const char* reason, int err) {
  if (phase_ == Phase::Closing) return;
  abortive_ = true;
  close(reason, err);
}

void Connection::close(const char* reason, int err) {
  if (phase_ == Phase::Closing) return;
  set_phase(Phase::Closing);
  // A UDP association ends with its TCP connection, at once: no datagram passes after this.
  if (udp_control_ != 0 && udp_relay() != nullptr) udp_relay()->close_control(udp_control_);
  udp_control_ = 0;
  if (log_enabled(LogLevel::Info)) {
    uint64_t ms = uv_now(loop()) - started_at_;
    std::string_view who = user();
    LOG_INFO("%s: %s%s%.*s closed: %s%s%s, %llu bytes in, %llu bytes out, %llu ms",
             inbound_->name(), target_.port != 0 ? target_.to_string().c_str() : "-",
             who.empty() ? "" : " user ", static_cast<int>(who.size()), who.data(), reason,
             err != 0 ? " " : "", err != 0 ? uv_err_name(err) : "",
             (unsigned long long)peers_[kClient].bytes_read,
             (unsigned long long)peers_[kRemote].bytes_read, (unsigned long long)ms);
  }
  if (metrics_ != nullptr) metrics_->closed.fetch_add(1, std::memory_order_relaxed);
  if (dns_pending_ && !cancel_resolve(dns_req_)) {
    dns_orphaned_ = true;
    counters::add(Counter::OrphanedLookups);
  }
  close_peer(kClient, abortive_);
  close_peer(kRemote, abortive_);
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_timer_closed);
  }
}

void Connection::on_timer_closed(uv_handle_t* h) {
  static_cast<Connection*>(h->data)->release_ref();
}

void Connection::on_stream_closed(uint8_t ctx) {
  Peer& p = peers_[ctx];
  p.live = false;  // the stream may be opened again (a new upstream)
  if (p.side == kRemote && connect_after_close_) connect_next_upstream();
  if (p.side == kRemote && retry_after_close_) {
    retry_after_close_ = false;
    if (phase_ == Phase::Connecting) connect_server();
  }
  release_ref();
}

void Connection::set_phase(Phase p) {
  const bool was = evictable();
  phase_ = p;
  if (evictable() != was) owner_.set_evictable(this, !was);
}

void Connection::hold_after_handshake() {
  const bool was = evictable();
  holding_ = true;
  if (evictable() != was) owner_.set_evictable(this, !was);
}

void Connection::release_ref() {
  if (--refs_ == 0) owner_.destroy(this);
}

// ---- connecting -------------------------------------------------------------------------------

void Connection::connect_remote(const Address& target, const char* what, const sockaddr* resolved) {
  set_phase(Phase::Connecting);
  remote_ = target;
  if (!pending_header_) target_ = target;
  connect_what_ = what;
  set_want_read(kClient, false);
  if (resolved != nullptr) {
    connect_to(resolved);
    return;
  }
  sockaddr_storage ss;
  if (target.to_sockaddr(ss)) {
    connect_to(reinterpret_cast<sockaddr*>(&ss));
    return;
  }
  if (literal_to_sockaddr(target.host, target.port, ss)) {
    connect_to(reinterpret_cast<sockaddr*>(&ss));
    return;
  }
  dns_req_.data = this;
  dns_started_ = uv_hrtime();
  int r =
      resolve(loop(), dns_req_, target.host, target.port, runtime().tcp.ipv6_first, on_resolved);
  if (r != 0) {
    on_remote_failed(r);
    return;
  }
  dns_pending_ = true;
  ++refs_;
}

void Connection::on_resolved(ResolveRequest* req, int status, const sockaddr* address) {
  Connection* s = static_cast<Connection*>(req->data);
  s->dns_pending_ = false;
  if (status != UV_ECANCELED) {
    metrics::dns_lookup(uv_hrtime() - s->dns_started_, status == 0 && address != nullptr);
  }
  if (s->dns_orphaned_) {
    s->dns_orphaned_ = false;
    counters::sub(Counter::OrphanedLookups);
  }
  if (s->dns_for_route_) {
    // The router's lookup: route by the address (null: the name did not resolve), then connect,
    // to that address if the route is direct.
    s->dns_for_route_ = false;
    if (s->phase_ != Phase::Closing) {
      sockaddr_storage ss{};
      const sockaddr* sa = nullptr;
      if (status == 0 && address != nullptr) {
        std::memcpy(&ss, address, sizeof ss);
        sa = reinterpret_cast<const sockaddr*>(&ss);
      }
      s->outbound_ = s->runtime_->router->route_resolved(s->target_, sa);
      s->connect_routed(s->target_, sa);
    }
    s->release_ref();
    return;
  }
  if (s->phase_ == Phase::Closing || status < 0 || address == nullptr) {
    bool closing = s->phase_ == Phase::Closing;
    if (!closing) {
      LOG_DEBUG("%s: cannot resolve %s: %s", s->inbound_->name(), s->remote_.host.c_str(),
                uv_strerror(status));
      s->on_remote_failed(status < 0 ? status : UV_EAI_NONAME);
    }
    s->release_ref();
    return;
  }
  sockaddr_storage ss;
  std::memcpy(&ss, address, sizeof ss);
  s->connect_to(reinterpret_cast<sockaddr*>(&ss));
  s->release_ref();
}

void Connection::connect_to(const sockaddr* sa) {
  if ((outbound_->block_private && is_refused_target(sa)) ||
      (outbound_->acl != nullptr && !acl_allowed_ && outbound_->acl->outbound_blocked(sa))) {
    on_target_blocked(sa);
    return;
  }
  Peer& r = peers_[kRemote];
  int rc = r.tcp.init(loop(), sa->sa_family);
  if (rc == 0) r.live = true;
  if (rc != 0) {
    on_remote_failed(rc);
    return;
  }
  ++refs_;
  // With TFO the connect "completes" at once, so a refused peer shows up as a reset on the first
  // write instead of a connect error.
  if (runtime().tcp.fast_open) r.tcp.set_fast_open_connect();
  r.tcp.set_mark(runtime().tcp.fwmark);
  if (!outbound_->bind_address.empty()) {
    sockaddr_storage local;
    if (literal_to_sockaddr(outbound_->bind_address, 0, local) &&
        local.ss_family == sa->sa_family) {
      r.tcp.bind(reinterpret_cast<sockaddr*>(&local));
    }
  }
  rc = r.tcp.connect(sa);
  if (rc != 0) {
    on_remote_failed(rc);
    return;
  }
  uint64_t timeout = kConnectTimeoutMs;
  if (outbound_->kind == Outbound::Kind::Shadowsocks && runtime_->router->connect_timeout_ms()) {
    timeout = runtime_->router->connect_timeout_ms();
  }
  uint64_t left = deadline_ > uv_now(loop()) ? deadline_ - uv_now(loop()) : 0;
  if (deadline_ == 0 || left > timeout) set_deadline_ms(timeout);
}

void Connection::on_stream_connected(uint8_t, int status) {
  if (status == UV_ECANCELED || phase_ != Phase::Connecting) return;
  if (status < 0) {
    LOG_DEBUG("%s: cannot connect to %s %s: %s", inbound_->name(), connect_what_,
              remote_.to_string().c_str(), uv_strerror(status));
    on_remote_failed(status);
    return;
  }
  Peer& r = peers_[kRemote];
  r.connected = true;
  if (runtime().tcp.no_delay) r.tcp.set_nodelay(true);
  on_remote_connected();
}

// ---- timer ------------------------------------------------------------------------------------

void Connection::set_deadline_ms(uint64_t from_now_ms) {
  deadline_ = uv_now(loop()) + from_now_ms;
  arm_timer();
}

void Connection::clear_deadline() {
  deadline_ = 0;
  arm_timer();
}

void Connection::arm_timer() {
  if (phase_ == Phase::Closing) return;
  uint64_t now = uv_now(loop());
  uint64_t next = 0;
  auto consider = [&](uint64_t t) {
    if (t != 0 && (next == 0 || t < next)) next = t;
  };
  consider(deadline_);
  consider(header_flush_at_);
  // A side we stopped reading (backpressure) is not watched by the loop: look at it every 250 ms
  // so a reset is noticed before the idle timeout.
  // A side its limiter holds back is likewise not read until the limiter lets it.
  if (pumps_[kClient].paused() || pumps_[kRemote].paused()) consider(now + kThrottledCheckMs);
  consider(pumps_[kClient].resume_at());
  consider(pumps_[kRemote].resume_at());
  if (phase_ == Phase::Relay && !limited()) {
    consider(last_active_ + uint64_t(runtime().limits.timeout) * 1000);
  }
  if (next == 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uv_timer_start(&timer_, on_timer, next > now ? next - now : 0, 0);
}

void Connection::on_timer(uv_timer_t* t) {
  Connection* s = static_cast<Connection*>(t->data);
  uint64_t now = uv_now(s->loop());
  if (s->deadline_ != 0 && now >= s->deadline_) {
    const char* why = s->phase_ == Phase::Connecting ? "connect timeout"
                      : s->phase_ == Phase::Draining ? "drain deadline"
                                                     : "handshake timeout";
    if (s->phase_ == Phase::Connecting) {
      s->deadline_ = 0;
      s->on_remote_failed(UV_ETIMEDOUT);
      if (s->phase_ != Phase::Closing) s->arm_timer();
      return;
    }
    s->close(why);
    return;
  }
  if (s->header_flush_at_ != 0 && now >= s->header_flush_at_ && s->pending_header_) {
    // The client has not spoken: send the address alone so a server-first protocol can start.
    Block* b = BlockPool::local().acquire();
    b->len = static_cast<uint32_t>(s->seal_request(nullptr, 0, b->data));
    if (!s->send(kRemote, b)) return;
  }
  for (Peer& p : s->peers_) {
    if (!s->pumps_[p.side].retry(now)) continue;
    // Waiting for a limiter is not idleness: the idle time counts from the end of the wait.
    s->last_active_ = now;
    s->update_reading(p.side);
  }
  for (Peer& p : s->peers_) {
    if (!s->pumps_[p.side].paused() || !p.connected) continue;
    // Its sink has stayed above the mark: the pages that sink already took go back to the OS.
    if (Peer& sink = s->peers_[other(p.side)]; s->pumps_[p.side].throttled() && sink.live) {
      sink.stream->trim();
    }
    if (const int err = p.stream->pending_error(); err != 0) {
      s->abort(p.side == kClient ? "client reset while throttled" : "remote reset while throttled",
               err);
      return;
    }
  }
  if (s->phase_ == Phase::Relay && !s->limited() &&
      now >= s->last_active_ + uint64_t(s->runtime().limits.timeout) * 1000) {
    s->abort("idle timeout");
    return;
  }
  s->arm_timer();
}

}  // namespace ss
