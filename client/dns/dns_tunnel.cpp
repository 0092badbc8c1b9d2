// A reused Shadowsocks TCP connection carrying DNS over TCP to the remote resolver (RFC 1035
// 4.2.2 framing; RFC 7766 6.2.1.1 pipelining: several queries outstanding, answers matched by
// id, in any order, ids unique on the connection).
//
//   created --(server a name)--> resolving --> connecting --(connected)--> open
//   queries sent before the connect wait as plaintext and leave in the first flight (with the
//   address header of the resolver); later ones are sealed as they come.
//   open --(an answer)--> the query with its id; none outstanding for kIdleMs --> closed
//   any state --(connect error, read error, EOF or a bad tag with queries outstanding; or a query
//   timed out while nothing came back for as long)--> closed, every outstanding query told
//   (tunnel_failed: the inbound retries it on a fresh tunnel, the next server first). When no
//   answer byte ever came back, the server is reported to the router (server_failed), as a TCP
//   connection's failover does.
// One close path (close()); the object is freed after its handles' and requests' callbacks.

#include "client/dns/dns_tunnel.h"

#include <cerrno>
#include <cstring>

#include "relay/dns/dns_message.h"
#include "relay/net/socket_mark.h"
#include "relay/outbound.h"
#include "relay/runtime.h"
#include "relay/warnings.h"

namespace ss {

namespace {

constexpr size_t kReadSize = 16384;
WarnLimiter mark_log;

}  // namespace

struct DnsTunnel::Write {
  uv_write_t req{};
  DnsTunnel* tunnel = nullptr;
  std::vector<uint8_t> data;
};

DnsTunnel::DnsTunnel(uv_loop_t* loop, std::shared_ptr<const Runtime> runtime,
                     const Outbound* outbound, const Address& resolver,
                     std::vector<DnsTunnel*>* tunnels)
    : loop_(loop),
      runtime_(std::move(runtime)),
      outbound_(outbound),
      resolver_(resolver),
      tunnels_(tunnels),
      id_state_(static_cast<uint32_t>(uv_hrtime()) | 1) {
  tunnels_->push_back(this);
  ++opened_;
  LOG_DEBUG("dns: tunnel %llu to %s via %s", static_cast<unsigned long long>(opened_),
            resolver_.to_string().c_str(), outbound_->server.to_string().c_str());
  sealer_ = outbound_->suite->client_sealer();
  opener_ = outbound_->suite->client_opener(*sealer_);
  rbuf_.resize(kReadSize + opener_->max_output(kReadSize));
  last_rx_ms_ = uv_now(loop_);
  uv_timer_init(loop_, &idle_);
  idle_.data = this;
  ++refs_;
  sockaddr_storage sa;
  const Address& s = outbound_->server;
  if (s.to_sockaddr(sa) || literal_to_sockaddr(s.host, s.port, sa)) {
    connect_to(reinterpret_cast<const sockaddr*>(&sa));
    return;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  const std::string port = std::to_string(s.port);
  gai_.data = this;
  if (uv_getaddrinfo(loop_, &gai_, on_resolved, s.host.c_str(), port.c_str(), &hints) != 0) {
    fail(UV_EAI_FAIL, "not resolved");
    return;
  }
  resolving_ = true;
  ++refs_;
}

void DnsTunnel::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* t = static_cast<DnsTunnel*>(req->data);
  t->resolving_ = false;
  if (!t->closing_) {
    if (status == 0 && res != nullptr) {
      t->connect_to(res->ai_addr);
    } else {
      t->fail(status != 0 ? status : UV_EAI_NONAME, "not resolved");
    }
  }
  uv_freeaddrinfo(res);
  t->release();
}

void DnsTunnel::connect_to(const sockaddr* sa) {
  uv_tcp_init_ex(loop_, &tcp_, sa->sa_family);
  tcp_.data = this;
  tcp_init_ = true;
  ++refs_;
  uv_tcp_nodelay(&tcp_, 1);
  uv_os_fd_t fd;
  const uint32_t m = runtime_->tcp.fwmark;  // tun mode: our queries must not loop into the TUN
  if (m != 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0 &&
      set_socket_mark(fd, m) != 0) {
    LOG_WARN_LIMITED(mark_log, "dns: SO_MARK %u: %s", m, strerror(errno));
  }
  connect_.data = this;
  const int r = uv_tcp_connect(&connect_, &tcp_, sa, on_connect);
  if (r != 0) {
    fail(r, "connect");
    return;
  }
  ++refs_;
}

void DnsTunnel::on_connect(uv_connect_t* req, int status) {
  auto* t = static_cast<DnsTunnel*>(req->data);
  if (!t->closing_) {
    if (status != 0) {
      t->fail(status, "connect");
    } else {
      t->connected_ = true;
      if (uv_read_start(reinterpret_cast<uv_stream_t*>(&t->tcp_), on_alloc, on_read) != 0) {
        t->fail(UV_EIO, "read");
      } else if (!t->pending_.empty()) {
        std::vector<uint8_t> first;
        first.swap(t->pending_);
        t->write_sealed(first.data(), first.size());
      }
    }
  }
  t->release();
}

bool DnsTunnel::send(DnsTunnelUser* user, uint8_t* query, size_t size, uint16_t* id) {
  if (closing_ || full() || size < dns::kHeaderSize || size > dns::kMaxMessageSize) return false;
  if (!connected_ && pending_.size() + size + 2 > kMaxPending) return false;
  uint16_t mine;
  do {  // xorshift32: not the client's ids, and unique among this connection's
    id_state_ ^= id_state_ << 13;
    id_state_ ^= id_state_ >> 17;
    id_state_ ^= id_state_ << 5;
    mine = static_cast<uint16_t>(id_state_);
  } while (users_.count(mine) != 0);
  dns::set_message_id(query, mine);
  *id = mine;
  users_.emplace(mine, user);
  uv_timer_stop(&idle_);
  const uint8_t len[2] = {static_cast<uint8_t>(size >> 8), static_cast<uint8_t>(size)};
  if (!connected_) {
    pending_.insert(pending_.end(), len, len + 2);
    pending_.insert(pending_.end(), query, query + size);
    return true;
  }
  std::vector<uint8_t> framed(size + 2);
  std::memcpy(framed.data(), len, 2);
  std::memcpy(framed.data() + 2, query, size);
  write_sealed(framed.data(), framed.size());
  return true;
}

void DnsTunnel::write_sealed(const uint8_t* plain, size_t n) {
  auto* w = new Write;
  w->tunnel = this;
  w->req.data = w;
  size_t sealed;
  if (!header_sent_) {
    uint8_t hdr[kMaxAddressLen];
    const size_t hlen = encode_address(resolver_, hdr);
    w->data.resize(sealer_->max_sealed_size(n) + hlen + 64);
    sealed = sealer_->seal_request(hdr, hlen, plain, n, w->data.data());
    header_sent_ = true;
  } else {
    w->data.resize(sealer_->max_sealed_size(n));
    sealed = sealer_->seal(plain, n, w->data.data());
  }
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->data.data()), static_cast<unsigned>(sealed));
  if (sealed == 0 || uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                              [](uv_write_t* req, int status) {
                                auto* wr = static_cast<Write*>(req->data);
                                DnsTunnel* t = wr->tunnel;
                                delete wr;
                                if (status != 0) t->fail(status, "write");
                                t->release();
                              }) != 0) {
    delete w;
    fail(UV_EIO, "write");
    return;
  }
  ++refs_;
}

void DnsTunnel::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* t = static_cast<DnsTunnel*>(h->data);
  *buf = uv_buf_init(reinterpret_cast<char*>(t->rbuf_.data()), kReadSize);
}

void DnsTunnel::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* t = static_cast<DnsTunnel*>(s->data);
  if (n == 0 || t->closing_) return;
  if (n < 0) {
    if (t->users_.empty()) {
      t->close();  // the server or the resolver ended an idle connection
    } else {
      t->fail(static_cast<int>(n), n == UV_EOF ? "closed" : "read");
    }
    return;
  }
  uint8_t* plain = t->rbuf_.data() + kReadSize;
  const TcpOpener::Result r =
      t->opener_->feed(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(n), plain);
  if (r.status == DecryptStatus::Error) {
    t->fail(UV_EPROTO, "answer not authenticated");
    return;
  }
  t->answered_ = true;
  t->last_rx_ms_ = uv_now(t->loop_);
  t->in_.insert(t->in_.end(), plain, plain + r.produced);
  ++t->refs_;  // a user's callback may close it
  size_t used = 0;
  while (!t->closing_) {
    size_t size = 0;
    const ParseStatus st = dns::tcp_frame(t->in_.data() + used, t->in_.size() - used, size);
    if (st == ParseStatus::NeedMore) break;
    if (st == ParseStatus::Error) {
      t->fail(UV_EPROTO, "bad DNS frame");
      break;
    }
    const uint8_t* msg = t->in_.data() + used + 2;
    used += 2 + size;
    if (size < dns::kHeaderSize) continue;
    auto it = t->users_.find(dns::message_id(msg));
    if (it == t->users_.end()) continue;  // a query given up on
    DnsTunnelUser* u = it->second;
    t->users_.erase(it);
    u->tunnel_answer(msg, size);
  }
  if (!t->closing_) {
    t->in_.erase(t->in_.begin(), t->in_.begin() + static_cast<std::ptrdiff_t>(used));
    if (t->users_.empty()) t->arm_idle();
  }
  t->release();
}

bool DnsTunnel::cancel(DnsTunnelUser* user, uint16_t id, bool timed_out, uint64_t waited_ms) {
  auto it = users_.find(id);
  if (it != users_.end() && it->second == user) users_.erase(it);
  if (closing_) return false;
  if (timed_out && uv_now(loop_) - last_rx_ms_ >= waited_ms) {
    fail(UV_ETIMEDOUT, "no answer");
    return true;
  }
  if (users_.empty()) arm_idle();
  return false;
}

void DnsTunnel::arm_idle() {
  uv_timer_start(
      &idle_, [](uv_timer_t* h) { static_cast<DnsTunnel*>(h->data)->close(); }, kIdleMs, 0);
}

void DnsTunnel::fail(int err, const char* what) {
  if (closing_) return;
  if (!answered_) {
    warn::server_unreachable(outbound_->server.to_string(), err);
    runtime_->router->server_failed(*outbound_, err);
  }
  LOG_DEBUG("dns: tunnel to %s via %s: %s (%s), %zu queries outstanding",
            resolver_.to_string().c_str(), outbound_->server.to_string().c_str(), what,
            uv_err_name(err), users_.size());
  close();
}

void DnsTunnel::close() {
  if (closing_) return;
  closing_ = true;
  std::erase(*tunnels_, this);
  if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&gai_));
  auto on_closed = [](uv_handle_t* h) { static_cast<DnsTunnel*>(h->data)->release(); };
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), on_closed);
  if (tcp_init_) uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
  std::unordered_map<uint16_t, DnsTunnelUser*> users;
  users.swap(users_);
  for (auto& [id, u] : users) u->tunnel_failed();
  release();
}

void DnsTunnel::release() {
  if (--refs_ == 0) delete this;
}

}  // namespace ss
