// One worker's UDP NAT (the UDP side of every binary):
//
//   client --datagram--> listening socket --inbound.receive--> (flow, target, payload)
//          --> association of that flow --outbound.send--> (where, bytes) --> its socket
//   reply  --> association's socket --outbound.receive--> (source, payload)
//          --inbound.reply--> the client, from the listening socket
//
// An association is created only for a datagram that authenticated and parsed, with one outbound
// socket per address family, created on first use. Associations expire after udp_timeout idle
// seconds (a sweep once a second) and the least recently used is evicted beyond
// udp_max_associations. Names (targets, servers) are resolved with uv_getaddrinfo and cached for
// 60 s; a datagram waiting for an answer is held (at most 64 at a time), never the loop. Nothing
// queues: a send that would block drops the datagram and counts it.

#include "relay/udp_nat.h"

#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "relay/ip_policy.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "relay/net/resolve.h"
#include "relay/net/socket_mark.h"
#include "relay/net/udp_tproxy.h"
#include "relay/udp_relay.h"
#include "relay/warnings.h"

namespace ss {
namespace {

constexpr size_t kBufSize = 65536 + 4096;
// libuv's recvmmsg reads one datagram per 64 KiB of the buffer, at most 20 per call.
constexpr size_t kRecvBufSize = 20 * 65536;
constexpr size_t kMaxPendingResolves = 64;
constexpr size_t kMaxDnsCache = 1024;
constexpr uint64_t kDnsCacheMs = 60'000;
constexpr int kSocketBuffer = 4 << 20;
constexpr size_t kMaxSenders = 1024;       // transparent reply sockets per worker
constexpr int kMaxReadsPerWakeup = 64;     // a transparent socket's datagrams per poll event
constexpr size_t kTrimAfterClosed = 1024;  // associations closed before malloc_trim() runs

uv_handle_t* as_handle(uv_udp_t* u) {
  return reinterpret_cast<uv_handle_t*>(u);
}

size_t sockaddr_len(const sockaddr* sa) {
  return sa->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

}  // namespace

struct UdpNat::PendingResolve {
  ResolveRequest req;
  UdpNat* nat;
  UdpFlowKey key;
  std::string host;
  std::vector<uint8_t> data;
  std::list<PendingResolve*>::iterator it;
};

UdpNat::UdpNat(uv_loop_t* loop, UdpRelay& relay, UdpNatOptions options)
    : loop_(loop),
      relay_(relay),
      options_(options),
      rbuf_(new uint8_t[kRecvBufSize]),
      abuf_(new uint8_t[kBufSize]),
      batch_(kBufSize, stats_) {
  uv_timer_init(loop_, &sweep_);
  sweep_.data = this;
  uv_timer_start(&sweep_, on_sweep, 1000, 1000);
  uv_check_init(loop_, &flush_);
  flush_.data = this;
  uv_check_start(&flush_, on_flush);
  closer_.data = this;
  uv_async_init(loop_, &closer_, on_closer);
}

UdpNat::~UdpNat() = default;

int UdpNat::listen(const std::string& host, uint16_t port, std::unique_ptr<UdpInbound> inbound,
                   std::unique_ptr<UdpOutbound> outbound, bool transparent, UdpSocketId* index) {
  if (index != nullptr) *index = kNoUdpSocket;
  sockaddr_storage ss;
  if (!literal_to_sockaddr(host, port, ss)) {
    // A name: resolved once, at start-up, before the loops run.
    const LookupArgs args(SOCK_DGRAM, 0, port);
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), args.port, &args.hints, &res) != 0 || res == nullptr) {
      return UV_EAI_NONAME;
    }
    std::memcpy(&ss, res->ai_addr, std::min<size_t>(res->ai_addrlen, sizeof ss));
    freeaddrinfo(res);
  }
  const UdpSocketId id = take_slot();
  if (id == kNoUdpSocket) return UV_EMFILE;
  auto l = std::make_unique<Listening>();
  l->nat = this;
  l->id = id;
  l->index = static_cast<uint16_t>(id & 0xffff);
  l->inbound = std::move(inbound);
  l->outbound = std::move(outbound);
  if (index != nullptr) *index = id;
  if (transparent) {
    const int fd = tproxy_listen_socket(reinterpret_cast<sockaddr*>(&ss), options_.reuse_port);
    if (fd < 0) {
      release_slot(l->index);  // nothing to close; `id` names nothing from now on
      return fd;
    }
    int r = uv_poll_init_socket(loop_, &l->poll, fd);
    if (r != 0) {
      close(fd);
      release_slot(l->index);
      return r;
    }
    int size = kSocketBuffer;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    l->transparent = true;
    l->fd = fd;
    l->poll.data = l.get();
    Listening* lp = l.get();
    listening_[lp->index] = std::move(l);  // closed by shutdown() from now on
    r = uv_poll_start(&lp->poll, UV_READABLE, on_transparent);
    if (r != 0) return r;
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
      relay_.add_port(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&bound)).port);
    }
    return 0;
  }
  int r = uv_udp_init_ex(loop_, &l->udp, ss.ss_family | UV_UDP_RECVMMSG);
  if (r != 0) {
    release_slot(l->index);  // nothing to close; `id` names nothing from now on
    return r;
  }
  l->udp.data = l.get();
  Listening* lp = l.get();
  listening_[lp->index] = std::move(l);  // closed by shutdown() from now on
  uv_os_fd_t fd;
  if (options_.reuse_port && uv_fileno(as_handle(&lp->udp), &fd) == 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  r = uv_udp_bind(&lp->udp, reinterpret_cast<sockaddr*>(&ss), 0);
  if (r == 0) r = uv_udp_recv_start(&lp->udp, on_alloc_in, on_inbound);
  if (r != 0) return r;
  int size = kSocketBuffer;
  uv_recv_buffer_size(as_handle(&lp->udp), &size);
  size = kSocketBuffer;
  uv_send_buffer_size(as_handle(&lp->udp), &size);
  sockaddr_storage bound{};
  int len = sizeof bound;
  if (uv_udp_getsockname(&lp->udp, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    relay_.add_port(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&bound)).port);
  }
  return 0;
}

UdpSocketId UdpNat::take_slot() {
  if (!free_slots_.empty()) {
    const uint16_t slot = free_slots_.back();
    free_slots_.pop_back();
    return (static_cast<UdpSocketId>(generation_[slot]) << 16) | slot;
  }
  if (listening_.size() >= 0xffff) return kNoUdpSocket;  // slot 0xffff: kNoUdpSocket's
  listening_.emplace_back();
  generation_.push_back(0);
  return static_cast<UdpSocketId>(listening_.size() - 1);
}

void UdpNat::release_slot(uint16_t slot) {
  listening_[slot].reset();
  ++generation_[slot];  // wraps after 65,536 uses
  free_slots_.push_back(slot);
}

UdpNat::Listening* UdpNat::socket(UdpSocketId id) const {
  const size_t slot = id & 0xffff;
  if (id == kNoUdpSocket || slot >= listening_.size() || generation_[slot] != (id >> 16)) {
    return nullptr;
  }
  return listening_[slot].get();
}

void UdpNat::unlisten(UdpSocketId index) {
  // After shutdown() every handle is closing already, and the NAT frees its sockets.
  Listening* l = socket(index);
  if (shut_down_ || l == nullptr || l->closing) return;
  l->closing = true;
  for (Assoc* a = newest_; a != nullptr;) {
    Assoc* next = a->older;
    if (a->listening == l) close_assoc(a);
    a = next;
  }
  if (l->sink != nullptr) {
    l->closed = true;
    free_listening_if_done(l);
    return;
  }
  auto done = [](uv_handle_t* h) {
    auto* lp = static_cast<Listening*>(h->data);
    if (lp->transparent) close(lp->fd);
    lp->closed = true;
    lp->nat->free_listening_if_done(lp);
  };
  if (l->transparent) {
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), done);
  } else {
    uv_close(as_handle(&l->udp), done);
  }
}

void UdpNat::free_listening_if_done(Listening* l) {
  if (l->closed && l->assocs == 0) release_slot(l->index);
}

void UdpNat::set_inbound(UdpSocketId index, std::unique_ptr<UdpInbound> inbound,
                         std::unique_ptr<UdpOutbound> outbound) {
  Listening* l = socket(index);
  if (l != nullptr && !l->closing) {
    l->inbound = std::move(inbound);
    l->outbound = std::move(outbound);
  }
}

void UdpNat::set_limits(int udp_timeout, size_t max_associations) {
  options_.udp_timeout = udp_timeout;
  options_.max_associations = max_associations;
}

UdpSocketId UdpNat::attach(std::unique_ptr<UdpInbound> inbound,
                           std::unique_ptr<UdpOutbound> outbound, PacketSink* sink) {
  const UdpSocketId id = take_slot();
  if (id == kNoUdpSocket) return id;
  auto l = std::make_unique<Listening>();
  l->nat = this;
  l->id = id;
  l->index = static_cast<uint16_t>(id & 0xffff);
  l->inbound = std::move(inbound);
  l->outbound = std::move(outbound);
  l->sink = sink;
  listening_[l->index] = std::move(l);
  return id;
}

void UdpNat::inject(UdpSocketId index, std::span<const uint8_t> payload, const sockaddr* from,
                    const sockaddr* dest) {
  Listening* l = socket(index);
  if (shut_down_ || l == nullptr || l->closing) return;
  handle_inbound(*l, payload.data(), payload.size(), from, dest);
}

void UdpNat::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  batch_.flush();
  relay_.detach(this);
  for (auto& l : listening_) {
    if (!l || l->closing || l->sink != nullptr) continue;  // no handle of ours (any more)
    if (!l->transparent) {
      uv_close(as_handle(&l->udp), nullptr);
      continue;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll),
             [](uv_handle_t* h) { close(static_cast<Listening*>(h->data)->fd); });
  }
  while (!senders_lru_.empty()) close_sender(senders_lru_.front());
  while (newest_ != nullptr) close_assoc(newest_);
  for (PendingResolve* p : resolving_) cancel_resolve(p->req);
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&closer_), nullptr);
}

void UdpNat::on_flush(uv_check_t* c) {
  auto* self = static_cast<UdpNat*>(c->data);
  if (!self->batch_.empty()) self->batch_.flush();
}

void UdpNat::post_close(uint64_t id, const UdpFlowKey& key) {
  {
    std::lock_guard<std::mutex> lock(close_mu_);
    to_close_.emplace_back(id, key);
  }
  uv_async_send(&closer_);
}

void UdpNat::on_closer(uv_async_t* h) {
  auto* self = static_cast<UdpNat*>(h->data);
  std::vector<std::pair<uint64_t, UdpFlowKey>> batch;
  {
    std::lock_guard<std::mutex> lock(self->close_mu_);
    batch.swap(self->to_close_);
  }
  for (auto& [id, key] : batch) {
    auto it = self->by_key_.find(key);
    if (it != self->by_key_.end() && it->second->control == id) self->close_assoc(it->second);
  }
}

UdpFlowState* UdpNat::inbound_state(const UdpFlowKey& key) {
  UdpFlowKey k = key;
  k.listener = current_listener_;
  auto it = by_key_.find(k);
  return it == by_key_.end() ? nullptr : it->second->in_state.get();
}

void UdpNat::on_alloc_in(uv_handle_t* h, size_t, uv_buf_t* buf) {
  buf->base = reinterpret_cast<char*>(static_cast<Listening*>(h->data)->nat->rbuf_.get());
  buf->len = kRecvBufSize;
}

void UdpNat::on_alloc_out(uv_handle_t* h, size_t, uv_buf_t* buf) {
  buf->base = reinterpret_cast<char*>(static_cast<Socket*>(h->data)->assoc->owner->rbuf_.get());
  buf->len = kRecvBufSize;
}

void UdpNat::on_inbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                        unsigned flags) {
  auto* l = static_cast<Listening*>(h->data);
  // n == 0 with UV_UDP_MMSG_FREE ends a recvmmsg batch: the buffer is ours, nothing to free.
  if (n <= 0 || from == nullptr || (flags & UV_UDP_PARTIAL) != 0 || l->nat->shut_down_) return;
  l->nat->handle_inbound(*l, reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(n),
                         from, nullptr);
}

void UdpNat::on_transparent(uv_poll_t* p, int status, int events) {
  auto* l = static_cast<Listening*>(p->data);
  if (status < 0 || (events & UV_READABLE) == 0) return;
  UdpNat* self = l->nat;
  for (int i = 0; i < kMaxReadsPerWakeup && !self->shut_down_; ++i) {
    sockaddr_storage from;
    sockaddr_storage dst;
    const ssize_t n = tproxy_recv(l->fd, self->rbuf_.get(), kBufSize, from, dst);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;  // a truncated datagram, or an error queued on the socket: next
    }
    if (n == 0) continue;
    self->handle_inbound(*l, self->rbuf_.get(), static_cast<size_t>(n),
                         reinterpret_cast<sockaddr*>(&from),
                         dst.ss_family == 0 ? nullptr : reinterpret_cast<sockaddr*>(&dst));
  }
}

void UdpNat::on_outbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                         unsigned flags) {
  auto* s = static_cast<Socket*>(h->data);
  if (n <= 0 || from == nullptr || (flags & UV_UDP_PARTIAL) != 0 || s->assoc->closing) return;
  s->assoc->owner->handle_outbound(s->assoc, reinterpret_cast<const uint8_t*>(buf->base),
                                   static_cast<size_t>(n), from);
}

void UdpNat::handle_inbound(Listening& l, const uint8_t* data, size_t n, const sockaddr* from,
                            const sockaddr* dest) {
  ++stats_.packets_in;
  current_listener_ = l.id;
  UdpRequest req;
  if (!l.inbound->receive({data, n}, from, dest, *this, {abuf_.get(), kBufSize}, req, stats_)) {
    return;
  }
  req.key.listener = l.id;
  Assoc* a = nullptr;
  auto it = by_key_.find(req.key);
  if (it != by_key_.end()) {
    a = it->second;
    touch(a);
  } else {
    a = create(l, std::move(req.state), req, from);
  }
  if (req.follow) {
    // Follow the client to a new address, but only on a packet that fully validated.
    std::memcpy(&a->client, from, sockaddr_len(from));
  }
  Address to;
  std::span<const uint8_t> bytes;
  const bool sent = l.outbound->send(a->out_state.get(), req.address, req.payload, batch_.space(),
                                     to, bytes, stats_);
  if (a->out_state != nullptr && a->out_state->renew_sockets) {
    // It moved to another server: new sockets (the old server's replies are not for them).
    a->out_state->renew_sockets = false;
    close_sockets(a);
  }
  if (!sent) return;
  deliver(a, to, bytes);
}

void UdpNat::handle_outbound(Assoc* a, const uint8_t* data, size_t n, const sockaddr* from) {
  Listening& l = *a->listening;
  if (shut_down_ || !l.inbound->alive(a->in_state.get())) return;
  UdpPacket reply;
  if (!l.outbound->receive(a->out_state.get(), {data, n}, from, {abuf_.get(), kBufSize}, reply,
                           stats_)) {
    return;
  }
  const std::span<uint8_t> out = batch_.space();
  const size_t m = l.inbound->reply(a->in_state.get(), reply.address, reply.payload, out);
  if (m == kNoReply) {
    ++stats_.drop_malformed;
    return;
  }
  if (l.sink != nullptr) {
    l.sink->write_packet(out.first(m));
    ++stats_.packets_out;
    return;
  }
  const sockaddr* client = reinterpret_cast<sockaddr*>(&a->client);
  if (l.inbound->reply_from_source()) {
    if (send_from(reply.address, client, out.first(m))) ++stats_.packets_out;
    return;
  }
  uv_os_fd_t fd;
  if (uv_fileno(as_handle(&l.udp), &fd) != 0) return;
  batch_.push(fd, client, out.first(m), /*reply=*/true);
}

UdpNat::Assoc* UdpNat::create(Listening& l, std::unique_ptr<UdpFlowState> in_state,
                              const UdpRequest& req, const sockaddr* from) {
  evict_beyond(std::max<size_t>(1, options_.max_associations) - 1);
  auto* a = new Assoc;
  a->owner = this;
  a->key = req.key;
  a->listening = &l;
  ++l.assocs;
  std::memcpy(&a->client, from, sockaddr_len(from));
  a->in_state = std::move(in_state);
  a->out_state = l.outbound->open_flow();
  a->control = req.control;
  a->last_active = uv_now(loop_);
  lru_push_front(a);
  by_key_.emplace(a->key, a);
  ++stats_.associations_created;
  metrics::udp_association(metrics::UdpEvent::Created);
  if (req.control != 0) relay_.bind(req.control, a->key, this);
  LOG_DEBUG("udp: new association for %s", Address::from_sockaddr(from).to_string().c_str());
  return a;
}

void UdpNat::evict_beyond(size_t keep) {
  while (by_key_.size() > keep && oldest_ != nullptr) {
    ++stats_.associations_evicted;
    metrics::udp_association(metrics::UdpEvent::Evicted);
    close_assoc(oldest_);
  }
}

void UdpNat::touch(Assoc* a) {
  a->last_active = uv_now(loop_);
  if (a != newest_) {
    lru_unlink(a);
    lru_push_front(a);
  }
}

void UdpNat::lru_unlink(Assoc* a) {
  (a->newer != nullptr ? a->newer->older : newest_) = a->older;
  (a->older != nullptr ? a->older->newer : oldest_) = a->newer;
  a->newer = a->older = nullptr;
}

void UdpNat::lru_push_front(Assoc* a) {
  a->older = newest_;
  a->newer = nullptr;
  (newest_ != nullptr ? newest_->newer : oldest_) = a;
  newest_ = a;
}

void UdpNat::close_assoc(Assoc* a) {
  if (a->closing) return;
  a->closing = true;
  by_key_.erase(a->key);
  lru_unlink(a);
  ++closed_since_trim_;
  close_sockets(a);
  if (a->refs == 0) free_assoc(a);
}

void UdpNat::close_sockets(Assoc* a) {
  for (Socket*& s : a->out) {
    if (s == nullptr) continue;
    uv_os_fd_t fd;
    if (uv_fileno(as_handle(&s->udp), &fd) == 0) batch_.forget(fd);
    uv_close(as_handle(&s->udp), [](uv_handle_t* h) {
      auto* sock = static_cast<Socket*>(h->data);
      Assoc* owner = sock->assoc;
      delete sock;
      // A live association's old sockets (a move) close without it.
      if (--owner->refs == 0 && owner->closing) free_assoc(owner);
    });
    s = nullptr;
  }
}

void UdpNat::free_assoc(Assoc* a) {
  Listening* l = a->listening;
  UdpNat* nat = a->owner;
  delete a;
  if (l != nullptr && --l->assocs == 0 && l->closed) nat->free_listening_if_done(l);
}

void UdpNat::on_sweep(uv_timer_t* t) {
  auto* self = static_cast<UdpNat*>(t->data);
  const uint64_t now = uv_now(self->loop_);
  const uint64_t idle = static_cast<uint64_t>(self->options_.udp_timeout) * 1000;
  while (self->oldest_ != nullptr && self->oldest_->last_active + idle <= now) {
    ++self->stats_.associations_expired;
    metrics::udp_association(metrics::UdpEvent::Expired);
    self->close_assoc(self->oldest_);
  }
  // A reload lowered the cap (set_limits): the least recently used beyond it go.
  self->evict_beyond(std::max<size_t>(1, self->options_.max_associations));
  // After a burst has gone, give its memory back to the system (glibc keeps freed memory in its
  // arenas): at most once a second, once many associations have closed.
  // They are freed in their handles' close callbacks, after this: trim at the next sweep.
  if (self->trim_due_) {
    self->trim_due_ = false;
    malloc_trim(0);
  }
  if (self->closed_since_trim_ >= kTrimAfterClosed) {
    self->closed_since_trim_ = 0;
    self->trim_due_ = true;
  }
  while (!self->senders_lru_.empty() && self->senders_lru_.back()->last_used + idle <= now) {
    self->close_sender(self->senders_lru_.back());
  }
}

bool UdpNat::send_from(std::span<const uint8_t> source, const sockaddr* client,
                       std::span<const uint8_t> bytes) {
  Address src;
  size_t used = 0;
  sockaddr_storage src_sa;
  if (parse_address(source, src, used) != ParseStatus::Ok || !src.to_sockaddr(src_sa)) {
    ++stats_.drop_malformed;
    return false;
  }
  // An IPv4 client on a dual-stack socket is answered from an IPv4 socket: unmap its address.
  sockaddr_storage to;
  if (!Address::from_sockaddr(client).unmapped().to_sockaddr(to) ||
      to.ss_family != src_sa.ss_family) {
    ++stats_.drop_malformed;
    return false;
  }
  const UdpFlowKey key = flow_key_of(reinterpret_cast<sockaddr*>(&src_sa));
  Sender* s = nullptr;
  if (auto it = senders_.find(key); it != senders_.end()) {
    s = it->second;
    if (s->lru != senders_lru_.begin())
      senders_lru_.splice(senders_lru_.begin(), senders_lru_, s->lru);
  } else {
    const int fd = tproxy_send_socket(reinterpret_cast<sockaddr*>(&src_sa));
    if (fd < 0) {
      ++stats_.drop_overflow;
      LOG_DEBUG("udp: cannot send from %s: %s", src.to_string().c_str(), uv_strerror(fd));
      return false;
    }
    if (senders_.size() >= kMaxSenders) close_sender(senders_lru_.back());
    s = new Sender;
    s->key = key;
    uv_udp_init(loop_, &s->udp);
    s->udp.data = s;
    if (uv_udp_open(&s->udp, fd) != 0) {
      close(fd);
      uv_close(as_handle(&s->udp), [](uv_handle_t* h) { delete static_cast<Sender*>(h->data); });
      ++stats_.drop_overflow;
      return false;
    }
    senders_lru_.push_front(s);
    s->lru = senders_lru_.begin();
    senders_.emplace(key, s);
  }
  s->last_used = uv_now(loop_);
  uv_buf_t b = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(bytes.data())),
                           static_cast<unsigned>(bytes.size()));
  if (uv_udp_try_send(&s->udp, &b, 1, reinterpret_cast<sockaddr*>(&to)) < 0) {
    ++stats_.drop_overflow;
    return false;
  }
  return true;
}

void UdpNat::close_sender(Sender* s) {
  senders_.erase(s->key);
  senders_lru_.erase(s->lru);
  uv_close(as_handle(&s->udp), [](uv_handle_t* h) { delete static_cast<Sender*>(h->data); });
}

void UdpNat::send_out(Assoc* a, const sockaddr* to, std::span<const uint8_t> bytes) {
  if (a->listening->outbound->block_private() && is_refused_target(to)) {
    ++stats_.drop_blocked;
    warn::target_refused(
        Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&a->client)).to_string(),
        Address::from_sockaddr(to).to_string(),
        "a private address (UDP); allow_private_targets permits it");
    return;
  }
  if (a->listening->outbound->acl_blocks(to)) {
    ++stats_.drop_blocked;
    warn::target_refused(
        Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&a->client)).to_string(),
        Address::from_sockaddr(to).to_string(), "the ACL blocks its address (UDP)");
    return;
  }
  Socket*& sp = a->out[to->sa_family == AF_INET6 ? 1 : 0];
  if (sp == nullptr) {
    auto* fresh = new Socket;
    if (uv_udp_init_ex(loop_, &fresh->udp, AF_UNSPEC | UV_UDP_RECVMMSG) != 0) {
      delete fresh;
      return;
    }
    sp = fresh;
    sp->udp.data = sp;
    sp->assoc = a;
    ++a->refs;
    sockaddr_storage any{};
    any.ss_family = to->sa_family;
    if (uv_udp_bind(&sp->udp, reinterpret_cast<sockaddr*>(&any), 0) != 0 ||
        uv_udp_recv_start(&sp->udp, on_alloc_out, on_outbound) != 0) {
      ++stats_.drop_overflow;
      return;
    }
    uv_os_fd_t mfd;
    if (options_.fwmark != 0 && uv_fileno(as_handle(&sp->udp), &mfd) == 0) {
      set_socket_mark(mfd, options_.fwmark);
    }
  }
  Socket& s = *sp;
  uv_os_fd_t fd;
  if (uv_fileno(as_handle(&s.udp), &fd) != 0) {
    ++stats_.drop_overflow;
    return;
  }
  batch_.push(fd, to, bytes, /*reply=*/false);
}

void UdpNat::deliver(Assoc* a, const Address& to, std::span<const uint8_t> bytes) {
  sockaddr_storage ss;
  if (to.to_sockaddr(ss) || literal_to_sockaddr(to.host, to.port, ss)) {
    send_out(a, reinterpret_cast<sockaddr*>(&ss), bytes);
    return;
  }
  auto cached = dns_cache_.find(to.host);
  if (cached != dns_cache_.end() && cached->second.expires > uv_now(loop_)) {
    std::memcpy(&ss, &cached->second.addr, sizeof ss);
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(to.port);
    } else {
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(to.port);
    }
    send_out(a, reinterpret_cast<sockaddr*>(&ss), bytes);
    return;
  }
  if (resolving_.size() >= kMaxPendingResolves) {
    ++stats_.drop_resolve;
    return;
  }
  auto* p = new PendingResolve;
  p->nat = this;
  p->key = a->key;
  p->host = to.host;
  p->data.assign(bytes.begin(), bytes.end());
  p->req.data = p;
  if (resolve(loop_, p->req, p->host, to.port, options_.ipv6_first, on_resolved) != 0) {
    ++stats_.drop_resolve;
    delete p;
    return;
  }
  resolving_.push_front(p);
  p->it = resolving_.begin();
}

void UdpNat::on_resolved(ResolveRequest* req, int status, const sockaddr* address) {
  auto* p = static_cast<PendingResolve*>(req->data);
  UdpNat* self = p->nat;
  self->resolving_.erase(p->it);
  if (status == 0 && address != nullptr && !self->shut_down_) {
    if (self->dns_cache_.size() >= kMaxDnsCache) self->dns_cache_.clear();
    DnsEntry& e = self->dns_cache_[p->host];
    std::memcpy(&e.addr, address, sizeof e.addr);
    e.expires = uv_now(self->loop_) + kDnsCacheMs;
    auto it = self->by_key_.find(p->key);
    if (it != self->by_key_.end()) self->send_out(it->second, address, p->data);
  } else if (!self->shut_down_) {
    ++self->stats_.drop_resolve;
    LOG_DEBUG("udp: cannot resolve %s", p->host.c_str());
  }
  delete p;
}

}  // namespace ss
