// UDP relay, classic AEAD packets (one salt per packet, each packet independent):
//
//   ss-local:  client --[RSV RSV FRAG | ATYP addr port | data]--> relay socket
//              --> seal([ATYP addr port | data]) --> ss-server;  replies are opened and sent back
//              as [00 00 00 | ATYP src port | data] to the client's address.
//   ss-tunnel: client --[data]--> seal([fixed target | data]) --> ss-server; replies lose their
//              address header on the way back.
//   ss-server: open([ATYP target port | data]) --> target through the association's socket;
//              replies become seal([ATYP source port | data]) back to the client.
//
// The NAT: one association per client address (ip:port), created only for a datagram that
// authenticated and parsed, with one outbound socket per address family, created on first use.
// Associations expire after udp_timeout idle seconds (a sweep once a second) and the least
// recently used is evicted beyond udp_max_associations. Nothing queues: a send that would block
// drops the datagram and counts it, so memory does not grow with load.

#include "relay/udp_relay.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "crypto/kdf.h"
#include "crypto/udp_packet.h"
#include "relay/address.h"
#include "relay/ip_policy.h"
#include "relay/log.h"
#include "relay/resolve.h"
#include "relay/warnings.h"

namespace ss {
namespace {

constexpr size_t kBufSize = 65536 + 1024;
constexpr size_t kMaxPendingResolves = 64;
constexpr size_t kMaxDnsCache = 1024;
constexpr uint64_t kDnsCacheMs = 60'000;
constexpr int kSocketBuffer = 4 << 20;

uv_handle_t* as_handle(uv_udp_t* u) {
  return reinterpret_cast<uv_handle_t*>(u);
}

bool resolve_now(const std::string& host, uint16_t port, sockaddr_storage& out) {
  if (literal_to_sockaddr(host, port, out)) return true;
  const LookupArgs args(SOCK_DGRAM, 0, port);
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), args.port, &args.hints, &res) != 0 || res == nullptr) return false;
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

}  // namespace

struct UdpRelay::PendingResolve {
  uv_getaddrinfo_t req;
  UdpRelay* relay;
  Key client;
  std::string host;
  uint16_t port;
  std::vector<uint8_t> data;
  std::list<PendingResolve*>::iterator it;
};

size_t UdpRelay::KeyHash::operator()(const Key& k) const {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : k.ip) h = (h ^ b) * 1099511628211ull;
  h = (h ^ k.port) * 1099511628211ull;
  return static_cast<size_t>(h ^ k.family);
}

UdpRelay::Key UdpRelay::key_of(const sockaddr* sa) {
  Key k;
  if (sa->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(k.ip.data(), &v4->sin_addr, 4);
    k.port = ntohs(v4->sin_port);
    k.family = 4;
  } else if (sa->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(k.ip.data(), &v6->sin6_addr, 16);
    k.port = ntohs(v6->sin6_port);
    k.family = 6;
  }
  return k;
}

UdpRelay::UdpRelay(uv_loop_t* loop, const Config& cfg)
    : loop_(loop),
      cfg_(cfg),

      rbuf_(new uint8_t[kBufSize]),
      wbuf_(new uint8_t[kBufSize]),
      pbuf_(new uint8_t[kBufSize]) {
  if (cfg.method_kind == MethodKind::Classic) aead_.emplace(*cfg.cipher);
  if (cfg.method_kind == MethodKind::Aead2022) {
    const Method2022& m = *cfg.method2022;
    scratch_key_ = std::make_unique<Udp2022SessionKey>(m);
    if (cfg.role == Role::Server) {
      std::vector<Udp2022User> users;
      for (const User2022& u : cfg.users) users.push_back({u.name, u.key});
      server22_ = std::make_unique<Udp2022Server>(m, cfg.psk_keys.front(), users);
      if (!server22_->valid()) LOG_ERROR("udp: 2022 keys unusable: %s", server22_->error().c_str());
    } else {
      client22_ = std::make_unique<Udp2022Client>(m, cfg.psk_keys);
      if (!client22_->valid()) LOG_ERROR("udp: 2022 keys unusable for %s", cfg.method.c_str());
    }
  }
  uv_timer_init(loop_, &sweep_);
  sweep_.data = this;
  sweep_inited_ = true;
  uv_timer_start(&sweep_, on_sweep, 1000, 1000);
  closer_.data = this;
  uv_async_init(loop_, &closer_, on_closer);
  closer_open_ = true;
}

UdpRelay::~UdpRelay() = default;

int UdpRelay::listen(const std::string& host, uint16_t port) {
  if (cfg_.role != Role::Server && server_addr_.ss_family == 0) {
    if (!resolve_now(cfg_.server.front(), cfg_.server_port, server_addr_)) return UV_EAI_NONAME;
  }
  sockaddr_storage ss;
  if (!resolve_now(host, port, ss)) return UV_EAI_NONAME;
  auto* h = new uv_udp_t;
  int r = uv_udp_init_ex(loop_, h, ss.ss_family);
  if (r != 0) {
    delete h;
    return r;
  }
  h->data = this;
  uv_os_fd_t fd;
  if (cfg_.reuse_port && uv_fileno(as_handle(h), &fd) == 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  r = uv_udp_bind(h, reinterpret_cast<sockaddr*>(&ss), 0);
  if (r == 0) r = uv_udp_recv_start(h, on_alloc_in, on_inbound);
  if (r != 0) {
    uv_close(as_handle(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_udp_t*>(x); });
    return r;
  }
  int size = kSocketBuffer;
  uv_recv_buffer_size(as_handle(h), &size);
  size = kSocketBuffer;
  uv_send_buffer_size(as_handle(h), &size);
  inbound_.push_back(h);
  if (port_.load() == 0) {
    sockaddr_storage bound{};
    int len = sizeof bound;
    if (uv_udp_getsockname(h, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
      port_.store(key_of(reinterpret_cast<sockaddr*>(&bound)).port);
    }
  }
  return 0;
}

uint16_t UdpRelay::port() const {
  return port_.load();
}

void UdpRelay::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (uv_udp_t* h : inbound_) {
    uv_close(as_handle(h), [](uv_handle_t* x) { delete reinterpret_cast<uv_udp_t*>(x); });
  }
  inbound_.clear();
  while (!lru_.empty()) close_assoc(lru_.front());
  for (PendingResolve* p : resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&p->req));
  if (sweep_inited_) uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
  std::lock_guard<std::mutex> lock(controls_mu_);
  if (closer_open_) {
    closer_open_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&closer_), nullptr);
  }
}

// ---- receiving --------------------------------------------------------------------------------

void UdpRelay::on_alloc_in(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<UdpRelay*>(h->data);
  *buf = uv_buf_init(reinterpret_cast<char*>(self->rbuf_.get()), kBufSize);
}

void UdpRelay::on_alloc_out(uv_handle_t* h, size_t, uv_buf_t* buf) {
  UdpRelay* self = static_cast<Outbound*>(h->data)->assoc->owner;
  *buf = uv_buf_init(reinterpret_cast<char*>(self->rbuf_.get()), kBufSize);
}

void UdpRelay::on_inbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                          unsigned flags) {
  auto* self = static_cast<UdpRelay*>(h->data);
  if (n < 0 || from == nullptr || (flags & UV_UDP_PARTIAL) != 0) return;
  self->handle_inbound(h, reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(n),
                       from);
}

void UdpRelay::on_outbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                           unsigned flags) {
  auto* o = static_cast<Outbound*>(h->data);
  if (n < 0 || from == nullptr || (flags & UV_UDP_PARTIAL) != 0 || o->assoc->closing) return;
  o->assoc->owner->handle_outbound(o->assoc, reinterpret_cast<const uint8_t*>(buf->base),
                                   static_cast<size_t>(n), from);
}

void UdpRelay::handle_inbound(uv_udp_t* h, const uint8_t* data, size_t n, const sockaddr* from) {
  ++stats_.packets_in;
  if (server22_) {
    server_inbound_2022(h, data, n, from);
    return;
  }
  switch (cfg_.role) {
    case Role::Server: {
      auto len = open_packet(data, n, wbuf_.get());
      if (!len) {
        ++stats_.drop_auth;
        warn::client_auth_failed(Address::from_sockaddr(from).to_string(), "UDP packet");
        return;
      }
      Address target;
      size_t used = 0;
      if (parse_address({wbuf_.get(), *len}, target, used) != ParseStatus::Ok) {
        ++stats_.drop_malformed;
        return;
      }
      Assoc* a = find_or_create(from, h, 0);
      send_to_target(a, target, wbuf_.get() + used, *len - used);
      return;
    }
    case Role::Local: {
      // RSV RSV FRAG, then the address header and the data.
      Address target;
      size_t used = 0;
      if (n < 3 || data[2] != 0 ||
          parse_address({data + 3, n - 3}, target, used) != ParseStatus::Ok) {
        ++stats_.drop_malformed;
        return;
      }
      Assoc* a = nullptr;
      auto it = by_client_.find(key_of(from));
      if (it != by_client_.end() && it->second->control_alive &&
          !it->second->control_alive->load()) {
        // Its UDP ASSOCIATE connection has just closed: the association is gone.
        close_assoc(it->second);
        it = by_client_.end();
      }
      if (it != by_client_.end()) {
        a = it->second;
      } else {
        uint64_t id = control_for(from);
        if (id == 0) {
          ++stats_.drop_unassociated;
          return;
        }
        a = find_or_create(from, h, id);
      }
      if (client22_) {
        client_send_2022(a, {data + 3, used}, {data + 3 + used, n - 3 - used});
        return;
      }
      size_t m = seal_packet(data + 3, n - 3, wbuf_.get());
      if (m != 0) send_out(a, reinterpret_cast<sockaddr*>(&server_addr_), wbuf_.get(), m);
      return;
    }
    case Role::Tunnel: {
      size_t hl = encode_address(*cfg_.tunnel_target, pbuf_.get());
      if (hl + n > kMaxDatagram) {
        ++stats_.drop_malformed;
        return;
      }
      Assoc* a = find_or_create(from, h, 0);
      if (client22_) {
        client_send_2022(a, {pbuf_.get(), hl}, {data, n});
        return;
      }
      std::memcpy(pbuf_.get() + hl, data, n);
      size_t m = seal_packet(pbuf_.get(), hl + n, wbuf_.get());
      if (m != 0) send_out(a, reinterpret_cast<sockaddr*>(&server_addr_), wbuf_.get(), m);
      return;
    }
    case Role::Redir:  // no UDP relay: its config refuses UDP
      return;
  }
}

void UdpRelay::handle_outbound(Assoc* a, const uint8_t* data, size_t n, const sockaddr* from) {
  if (a->control_alive && !a->control_alive->load()) {
    close_assoc(a);
    return;
  }
  touch(a);
  if (server22_) {
    server_outbound_2022(a, data, n, from);
    return;
  }
  if (client22_) {
    client_outbound_2022(a, data, n);
    return;
  }
  switch (cfg_.role) {
    case Role::Server: {
      // Tell the client which address this reply came from.
      size_t hl = encode_address(Address::from_sockaddr(from), pbuf_.get());
      if (hl + n > kMaxDatagram) {
        ++stats_.drop_malformed;
        return;
      }
      std::memcpy(pbuf_.get() + hl, data, n);
      size_t m = seal_packet(pbuf_.get(), hl + n, wbuf_.get());
      if (m != 0) reply_to_client(a, wbuf_.get(), m);
      return;
    }
    case Role::Local: {
      auto len = open_packet(data, n, pbuf_.get() + 3);
      Address src;
      size_t used = 0;
      if (!len || parse_address({pbuf_.get() + 3, *len}, src, used) != ParseStatus::Ok) {
        ++stats_.drop_auth;
        return;
      }
      pbuf_[0] = pbuf_[1] = pbuf_[2] = 0;
      reply_to_client(a, pbuf_.get(), *len + 3);
      return;
    }
    case Role::Tunnel: {
      auto len = open_packet(data, n, pbuf_.get());
      Address src;
      size_t used = 0;
      if (!len || parse_address({pbuf_.get(), *len}, src, used) != ParseStatus::Ok) {
        ++stats_.drop_auth;
        return;
      }
      reply_to_client(a, pbuf_.get() + used, *len - used);
      return;
    }
    case Role::Redir:  // no UDP relay: its config refuses UDP
      return;
  }
}

// ---- associations -----------------------------------------------------------------------------

UdpRelay::Assoc* UdpRelay::find_or_create(const sockaddr* from, uv_udp_t* inbound,
                                          uint64_t control_id) {
  Key k = key_of(from);
  auto it = by_client_.find(k);
  if (it != by_client_.end()) {
    touch(it->second);
    return it->second;
  }
  return create(k, from, inbound, control_id);
}

UdpRelay::Assoc* UdpRelay::create(const Key& k, const sockaddr* from, uv_udp_t* inbound,
                                  uint64_t control_id) {
  while (by_client_.size() >= std::max<size_t>(1, cfg_.udp_max_associations) && !lru_.empty()) {
    ++stats_.associations_evicted;
    close_assoc(lru_.back());
  }
  auto* a = new Assoc;
  a->owner = this;
  a->key = k;
  std::memcpy(&a->client, from,
              from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  a->inbound = inbound;
  a->control_id = control_id;
  a->last_active = uv_now(loop_);
  lru_.push_front(a);
  a->lru = lru_.begin();
  by_client_.emplace(k, a);
  ++stats_.associations_created;
  if (control_id != 0) {
    std::lock_guard<std::mutex> lock(controls_mu_);
    auto c = controls_.find(control_id);
    if (c != controls_.end()) {
      c->second.bound = true;
      c->second.bound_key = k;
      a->control_alive = c->second.alive;
    }
  }
  LOG_DEBUG("udp: new association for %s", Address::from_sockaddr(from).to_string().c_str());
  return a;
}

void UdpRelay::touch(Assoc* a) {
  a->last_active = uv_now(loop_);
  if (a->lru != lru_.begin()) lru_.splice(lru_.begin(), lru_, a->lru);
}

void UdpRelay::close_assoc(Assoc* a) {
  if (a->closing) return;
  a->closing = true;
  by_client_.erase(a->key);
  lru_.erase(a->lru);
  for (Outbound& o : a->out) {
    if (!o.inited) continue;
    uv_close(as_handle(&o.udp), [](uv_handle_t* h) {
      Assoc* owner = static_cast<Outbound*>(h->data)->assoc;
      if (--owner->refs == 0) delete owner;
    });
  }
  if (a->refs == 0) delete a;
}

void UdpRelay::on_sweep(uv_timer_t* t) {
  auto* self = static_cast<UdpRelay*>(t->data);
  uint64_t now = uv_now(self->loop_);
  uint64_t idle = static_cast<uint64_t>(self->cfg_.udp_timeout) * 1000;
  while (!self->lru_.empty() && self->lru_.back()->last_active + idle <= now) {
    ++self->stats_.associations_expired;
    self->close_assoc(self->lru_.back());
  }
}

uint64_t UdpRelay::open_control(const sockaddr* client, uint16_t expected_port) {
  Control c;
  c.client = key_of(client);
  c.client.port = expected_port;
  c.alive = std::make_shared<std::atomic<bool>>(true);
  std::lock_guard<std::mutex> lock(controls_mu_);
  uint64_t id = next_control_++;
  controls_.emplace(id, c);
  return id;
}

void UdpRelay::close_control(uint64_t id) {
  std::lock_guard<std::mutex> lock(controls_mu_);
  auto it = controls_.find(id);
  if (it == controls_.end()) return;
  it->second.alive->store(false);
  if (it->second.bound && closer_open_) {
    to_close_.emplace_back(id, it->second.bound_key);
    uv_async_send(&closer_);
  }
  controls_.erase(it);
}

void UdpRelay::on_closer(uv_async_t* a) {
  auto* self = static_cast<UdpRelay*>(a->data);
  std::vector<std::pair<uint64_t, Key>> batch;
  {
    std::lock_guard<std::mutex> lock(self->controls_mu_);
    batch.swap(self->to_close_);
  }
  for (auto& [id, key] : batch) {
    auto it = self->by_client_.find(key);
    if (it != self->by_client_.end() && it->second->control_id == id) self->close_assoc(it->second);
  }
}

uint64_t UdpRelay::control_for(const sockaddr* from) {
  Key k = key_of(from);
  std::lock_guard<std::mutex> lock(controls_mu_);
  for (auto& [id, c] : controls_) {
    if (c.client.family != k.family || c.client.ip != k.ip) continue;
    if (c.client.port != 0 && c.client.port != k.port) continue;
    if (c.bound && !(c.bound_key == k)) continue;
    return id;
  }
  return 0;
}

size_t UdpRelay::seal_packet(const uint8_t* pt, size_t n, uint8_t* out) {
  if (!aead_) {
    std::memmove(out, pt, n);
    return n;
  }
  return udp_seal(*aead_, cfg_.key, pt, n, out);
}

std::optional<size_t> UdpRelay::open_packet(const uint8_t* in, size_t n, uint8_t* out) {
  if (!aead_) {
    std::memmove(out, in, n);
    return n;
  }
  return udp_open(*aead_, cfg_.key, in, n, out);
}

// ---- the 2022 edition ---------------------------------------------------------------------------
//
// Receiving follows the codec's two phases around the replay window: decrypt the header, check
// the packet ID against that session's window, open and validate the body, and only then move the
// window, create the session, and (server) follow the client's address. A packet that fails any
// step changes nothing.

int64_t UdpRelay::now_seconds() const {
  return static_cast<int64_t>(time(nullptr)) + cfg_.clock_offset;
}

void UdpRelay::note_2022_failure(const Udp2022Status& st, const sockaddr* from) {
  switch (st.error) {
    case Udp2022Error::Timestamp: {
      ++stats_.drop_clock;
      int64_t skew = st.skew;
      char detail[160];
      snprintf(
          detail, sizeof detail, "%lld s %s our clock (the %s clock is off, or a replay)",
          static_cast<long long>(skew < 0 ? -skew : skew), skew < 0 ? "behind" : "ahead of",
          cfg_.role == Role::Server ? "client's or this server's" : "server's or this client's");
      warn::clock_skew("udp: dropped a packet that", detail, /*datagram=*/true);
      return;
    }
    case Udp2022Error::TooShort:
    case Udp2022Error::BadTag:
    case Udp2022Error::UnknownUser:
    case Udp2022Error::Crypto:
      ++stats_.drop_auth;
      if (from != nullptr) {
        warn::client_auth_failed(
            Address::from_sockaddr(from).to_string(),
            st.error == Udp2022Error::UnknownUser ? "UDP packet, unknown user" : "UDP packet");
      }
      return;
    default:
      ++stats_.drop_malformed;
      return;
  }
}

void UdpRelay::server_inbound_2022(uv_udp_t* h, const uint8_t* data, size_t n,
                                   const sockaddr* from) {
  Udp2022Header hdr;
  Udp2022Status st = server22_->open_request_header({data, n}, {wbuf_.get(), kBufSize}, hdr);
  if (!st.ok()) {
    note_2022_failure(st, from);
    return;
  }
  // Sessions are identified by client session ID (and user), not by address.
  Key k;
  k.family = 22;
  std::memcpy(k.ip.data(), &hdr.session_id, 8);
  uint64_t user = hdr.user;
  std::memcpy(k.ip.data() + 8, &user, 8);
  auto it = by_client_.find(k);
  Assoc* a = it == by_client_.end() ? nullptr : it->second;
  if (a == nullptr) scratch_window_.reset();
  SlidingWindow& window = a != nullptr ? a->s22->window : scratch_window_;
  if (!window.check(hdr.packet_id)) {
    ++stats_.drop_replay;
    return;
  }
  Udp2022Request req;
  st = server22_->open_request_body(hdr, a != nullptr ? a->s22->recv_key : *scratch_key_,
                                    now_seconds(), req);
  if (!st.ok()) {
    note_2022_failure(st, from);
    return;
  }
  Address target;
  size_t used = 0;
  if (parse_address(req.address, target, used) != ParseStatus::Ok) {
    ++stats_.drop_malformed;
    return;
  }
  if (a == nullptr) {
    a = create(k, from, h, 0);
    a->s22 = std::make_unique<State2022>(*cfg_.method2022);
    a->s22->session_id = hdr.session_id;
    a->s22->user = hdr.user;
    random_bytes({reinterpret_cast<uint8_t*>(&a->s22->server_session_id), 8});
    std::swap(a->s22->recv_key, *scratch_key_);
    if (!req.user_name.empty()) {
      LOG_INFO("udp: session of user %.*s from %s", static_cast<int>(req.user_name.size()),
               req.user_name.data(), Address::from_sockaddr(from).to_string().c_str());
    }
  } else {
    touch(a);
  }
  a->s22->window.accept(hdr.packet_id);
  // Follow the client to a new address, but only on a packet that fully validated.
  std::memcpy(&a->client, from,
              from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  a->inbound = h;
  send_to_target(a, target, req.payload.data(), req.payload.size());
}

void UdpRelay::server_outbound_2022(Assoc* a, const uint8_t* data, size_t n, const sockaddr* from) {
  uint8_t addr[kMaxAddressLen];
  size_t al = encode_address(Address::from_sockaddr(from), addr);
  size_t pad = udp2022_padding(Udp2022Padding::Dns, {addr, al}, n);
  State2022& st = *a->s22;
  size_t m = server22_->seal_response(st.send_key, st.user, st.server_session_id,
                                      st.next_packet_id++, st.session_id, {addr, al}, pad,
                                      {data, n}, now_seconds(), {wbuf_.get(), kBufSize});
  if (m == 0) {
    ++stats_.drop_malformed;
    return;
  }
  reply_to_client(a, wbuf_.get(), m);
}

void UdpRelay::client_send_2022(Assoc* a, std::span<const uint8_t> address,
                                std::span<const uint8_t> payload) {
  if (!a->s22) {
    a->s22 = std::make_unique<State2022>(*cfg_.method2022);
    random_bytes({reinterpret_cast<uint8_t*>(&a->s22->session_id), 8});
  }
  State2022& st = *a->s22;
  size_t pad = udp2022_padding(Udp2022Padding::Dns, address, payload.size());
  size_t m = client22_->seal_request(st.send_key, st.session_id, st.next_packet_id++, address, pad,
                                     payload, now_seconds(), {wbuf_.get(), kBufSize});
  if (m == 0) {
    ++stats_.drop_malformed;
    return;
  }
  send_out(a, reinterpret_cast<sockaddr*>(&server_addr_), wbuf_.get(), m);
}

void UdpRelay::client_outbound_2022(Assoc* a, const uint8_t* data, size_t n) {
  if (!a->s22) return;  // we never sent on this association: nothing can be a reply
  State2022& st = *a->s22;
  Udp2022Header hdr;
  Udp2022Status status = client22_->open_response_header({data, n}, {pbuf_.get(), kBufSize}, hdr);
  if (!status.ok()) {
    note_2022_failure(status, nullptr);
    return;
  }
  ServerPeer* peer = nullptr;
  for (auto& p : st.servers) {
    if (p->id == hdr.session_id) peer = p.get();
  }
  if (peer == nullptr) scratch_window_.reset();
  SlidingWindow& window = peer != nullptr ? peer->window : scratch_window_;
  if (!window.check(hdr.packet_id)) {
    ++stats_.drop_replay;
    return;
  }
  Udp2022Response resp;
  status = client22_->open_response_body(hdr, peer != nullptr ? peer->key : *scratch_key_,
                                         now_seconds(), resp);
  if (!status.ok()) {
    note_2022_failure(status, nullptr);
    return;
  }
  if (resp.client_session_id != st.session_id) {
    ++stats_.drop_malformed;
    return;
  }
  if (peer == nullptr) {
    // A new server session (e.g. the server restarted): remember a few, newest first.
    auto p = std::make_unique<ServerPeer>(*cfg_.method2022);
    p->id = hdr.session_id;
    std::swap(p->key, *scratch_key_);
    st.servers.insert(st.servers.begin(), std::move(p));
    if (st.servers.size() > 4) st.servers.pop_back();
    peer = st.servers.front().get();
  }
  peer->window.accept(hdr.packet_id);
  peer->last_seen = uv_now(loop_);
  if (cfg_.role == Role::Local) {
    uint8_t* out = wbuf_.get();
    out[0] = out[1] = out[2] = 0;
    std::memcpy(out + 3, resp.address.data(), resp.address.size());
    std::memcpy(out + 3 + resp.address.size(), resp.payload.data(), resp.payload.size());
    reply_to_client(a, out, 3 + resp.address.size() + resp.payload.size());
  } else {
    reply_to_client(a, resp.payload.data(), resp.payload.size());
  }
}

// ---- sending ----------------------------------------------------------------------------------

void UdpRelay::send_out(Assoc* a, const sockaddr* to, const uint8_t* data, size_t n) {
  if (cfg_.role == Role::Server && !cfg_.allow_private_targets && is_private_address(to)) {
    ++stats_.drop_blocked;
    warn::target_refused(
        Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&a->client)).to_string(),
        Address::from_sockaddr(to).to_string(),
        "a private address (UDP); allow_private_targets permits it");
    return;
  }
  Outbound& o = a->out[to->sa_family == AF_INET6 ? 1 : 0];
  if (!o.inited) {
    if (uv_udp_init(loop_, &o.udp) != 0) return;
    o.udp.data = &o;
    o.assoc = a;
    o.inited = true;
    ++a->refs;
    sockaddr_storage any{};
    any.ss_family = to->sa_family;
    if (uv_udp_bind(&o.udp, reinterpret_cast<sockaddr*>(&any), 0) != 0 ||
        uv_udp_recv_start(&o.udp, on_alloc_out, on_outbound) != 0) {
      ++stats_.drop_overflow;
      return;
    }
  }
  uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data)), n);
  int r = uv_udp_try_send(&o.udp, &b, 1, to);
  if (r < 0) ++stats_.drop_overflow;
}

void UdpRelay::reply_to_client(Assoc* a, const uint8_t* data, size_t n) {
  if (a->inbound == nullptr || shut_down_) return;
  uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(data)), n);
  int r = uv_udp_try_send(a->inbound, &b, 1, reinterpret_cast<sockaddr*>(&a->client));
  if (r < 0) {
    ++stats_.drop_overflow;
  } else {
    ++stats_.packets_out;
  }
}

void UdpRelay::send_to_target(Assoc* a, const Address& target, const uint8_t* data, size_t n) {
  sockaddr_storage ss;
  if (target.to_sockaddr(ss) || literal_to_sockaddr(target.host, target.port, ss)) {
    send_out(a, reinterpret_cast<sockaddr*>(&ss), data, n);
    return;
  }
  auto cached = dns_cache_.find(target.host);
  if (cached != dns_cache_.end() && cached->second.expires > uv_now(loop_)) {
    std::memcpy(&ss, &cached->second.addr, sizeof ss);
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(target.port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(target.port);
    }
    send_out(a, reinterpret_cast<sockaddr*>(&ss), data, n);
    return;
  }
  if (resolving_.size() >= kMaxPendingResolves) {
    ++stats_.drop_resolve;
    return;
  }
  auto* p = new PendingResolve;
  p->relay = this;
  p->client = a->key;
  p->host = target.host;
  p->port = target.port;
  p->data.assign(data, data + n);
  p->req.data = p;
  const LookupArgs args(SOCK_DGRAM, AI_ADDRCONFIG, target.port);
  if (uv_getaddrinfo(loop_, &p->req, on_resolved, p->host.c_str(), args.port, &args.hints) != 0) {
    ++stats_.drop_resolve;
    delete p;
    return;
  }
  resolving_.push_front(p);
  p->it = resolving_.begin();
}

void UdpRelay::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* p = static_cast<PendingResolve*>(req->data);
  UdpRelay* self = p->relay;
  self->resolving_.erase(p->it);
  if (status == 0 && res != nullptr && !self->shut_down_) {
    const addrinfo* pick = pick_address(res, self->cfg_.ipv6_first);
    if (self->dns_cache_.size() >= kMaxDnsCache) self->dns_cache_.clear();
    DnsEntry& e = self->dns_cache_[p->host];
    std::memcpy(&e.addr, pick->ai_addr, std::min<size_t>(pick->ai_addrlen, sizeof e.addr));
    e.expires = uv_now(self->loop_) + kDnsCacheMs;
    auto it = self->by_client_.find(p->client);
    if (it != self->by_client_.end()) {
      self->send_out(it->second, pick->ai_addr, p->data.data(), p->data.size());
    }
  } else if (!self->shut_down_) {
    ++self->stats_.drop_resolve;
    LOG_DEBUG("udp: cannot resolve %s", p->host.c_str());
  }
  if (res != nullptr) uv_freeaddrinfo(res);
  delete p;
}

}  // namespace ss
