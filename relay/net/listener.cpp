// Listening sockets and the list of live sessions. Sessions are created on accept and deleted
// only from Connection::release_ref(), after libuv's last close callback for them.

#include "relay/net/listener.h"

#include <linux/filter.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "relay/connection.h"
#include "relay/counters.h"
#include "relay/log.h"
#include "relay/net/resolve.h"

namespace ss {

size_t default_max_connections(size_t configured, int workers) {
  if (configured > 0) return configured;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 0;
  // Two descriptors per session, and some left over: 32 for the process (standard streams,
  // DNS, libuv's EMFILE reserve, ss-local's UDP sockets) and 8 per worker (its epoll and async
  // descriptors, its listening sockets, IPv4 and IPv6).
  const size_t loops = workers > 0 ? static_cast<size_t>(workers)
                                   : std::max<size_t>(1, std::thread::hardware_concurrency());
  const size_t reserve = 32 + 8 * loops;
  return lim.rlim_cur > 2 * reserve ? static_cast<size_t>((lim.rlim_cur - reserve) / 2) : 16;
}

std::vector<int> worker_cpus(int workers, bool enabled) {
  std::vector<int> cpus;
  if (!enabled || workers < 2) return cpus;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) != workers) {
    return cpus;
  }
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  return cpus;
}

int attach_cpu_steering(int fd, const std::vector<int>& cpus) {
  // A = the receiving CPU; for each worker i: if A == cpus[i], return i. Otherwise return an
  // index past the group, which makes the kernel fall back to its hash.
  std::vector<sock_filter> code;
  code.push_back({BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU)});
  for (size_t i = 0; i < cpus.size(); ++i) {
    code.push_back({BPF_JMP | BPF_JEQ | BPF_K, 0, 1, static_cast<uint32_t>(cpus[i])});
    code.push_back({BPF_RET | BPF_K, 0, 0, static_cast<uint32_t>(i)});
  }
  code.push_back({BPF_RET | BPF_K, 0, 0, 0xffffffffu});
  sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0 ? 0 : errno;
}

Listener::Listener(uv_loop_t* loop, std::shared_ptr<const Runtime> runtime, Factory factory)
    : loop_(loop), runtime_(std::move(runtime)), factory_(std::move(factory)) {
  cap_ =
      std::make_shared<ConnectionCap>(default_max_connections(runtime_->limits.max_connections, 0));
}

void Listener::set_connection_cap(std::shared_ptr<ConnectionCap> cap) {
  if (cap_wake_inited_) cap_->withdraw(&cap_wake_);
  cap_ = std::move(cap);
  if (!cap_wake_inited_) {
    uv_async_init(loop_, &cap_wake_,
                  [](uv_async_t* a) { static_cast<Listener*>(a->data)->pay_owed_evictions(); });
    cap_wake_.data = this;
    cap_wake_inited_ = true;
  }
  cap_->enroll(&cap_wake_);
}

Listener::~Listener() = default;

int Listener::listen(const std::string& host, uint16_t port) {
  int r = bind_and_listen(host, port);
  if (r == 0) addresses_.emplace_back(host, port == 0 ? this->port() : port);
  return r;
}

void Listener::pause_accepting() {
  if (paused_ || stopped_) return;
  paused_ = true;
  LOG_WARN("out of file descriptors: not accepting for 1 s");
  for (uv_tcp_t* t : listeners_) {
    uv_close(reinterpret_cast<uv_handle_t*>(t),
             [](uv_handle_t* hd) { delete reinterpret_cast<uv_tcp_t*>(hd); });
  }
  listeners_.clear();
  if (!relisten_inited_) {
    uv_timer_init(loop_, &relisten_);
    relisten_.data = this;
    relisten_inited_ = true;
  }
  uv_timer_start(&relisten_, on_relisten, 1000, 0);
}

void Listener::on_relisten(uv_timer_t* t) {
  auto* self = static_cast<Listener*>(t->data);
  if (self->stopped_) return;
  self->paused_ = false;
  for (const auto& [host, port] : self->addresses_) {
    int r = self->bind_and_listen(host, port);
    if (r != 0) {
      // Still short of descriptors (a socket is one): try again in a second.
      for (uv_tcp_t* l : self->listeners_) {
        uv_close(reinterpret_cast<uv_handle_t*>(l),
                 [](uv_handle_t* hd) { delete reinterpret_cast<uv_tcp_t*>(hd); });
      }
      self->listeners_.clear();
      self->paused_ = true;
      uv_timer_start(&self->relisten_, on_relisten, 1000, 0);
      return;
    }
  }
  LOG_NOTICE("accepting connections again");
}

int Listener::bind_and_listen(const std::string& host, uint16_t port) {
  const LookupArgs args(SOCK_STREAM, AI_PASSIVE | AI_NUMERICSERV, port);
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  addrinfo* res = nullptr;
  int gai = getaddrinfo(h.empty() ? nullptr : h.c_str(), args.port, &args.hints, &res);
  if (gai != 0 || res == nullptr) return UV_EAI_NONAME;

  auto* tcp = new uv_tcp_t;
  int r = uv_tcp_init_ex(loop_, tcp, res->ai_family);
  if (r != 0) {
    freeaddrinfo(res);
    delete tcp;
    return r;
  }
  tcp->data = this;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) == 0) {
    int one = 1;
    if (reuse_port_) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (transparent_) {
      const bool v6 = res->ai_family == AF_INET6;
      const int rc = v6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                        : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
      if (rc != 0) {
        const int err = uv_translate_sys_error(errno);
        freeaddrinfo(res);
        uv_close(reinterpret_cast<uv_handle_t*>(tcp),
                 [](uv_handle_t* hd) { delete reinterpret_cast<uv_tcp_t*>(hd); });
        return err;
      }
    }
    if (runtime_->tcp.fast_open) {
      int qlen = 256;
      setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof qlen);
    }
  }
  r = uv_tcp_bind(tcp, res->ai_addr, 0);
  freeaddrinfo(res);
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), SOMAXCONN, on_connection);
  if (r == 0 && reuse_port_ && !steer_cpus_.empty() &&
      uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) == 0) {
    const int err = attach_cpu_steering(fd, steer_cpus_);
    if (err != 0) LOG_DEBUG("reuseport CPU steering not attached: %s", std::strerror(err));
  }
  if (r != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp),
             [](uv_handle_t* hd) { delete reinterpret_cast<uv_tcp_t*>(hd); });
    return r;
  }
  listeners_.push_back(tcp);
  return 0;
}

const std::shared_ptr<TcpServerState>& Listener::server_state() {
  // Held, so a later snapshot cannot reuse its address.
  if (state_runtime_ != runtime_) {
    server_state_ = suite().server_state();
    state_runtime_ = runtime_;
  }
  return server_state_;
}

uint16_t Listener::port() const {
  if (listeners_.empty()) return 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(listeners_.front(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (status == UV_EMFILE || status == UV_ENFILE) {
    self->pause_accepting();
    return;
  }
  if (status < 0) {
    // EMFILE/ENFILE were handled above; anything else (e.g. ECONNABORTED) is logged
    // at most once a second.
    uint64_t now = uv_now(self->loop_);
    if (now - self->last_accept_error_log_ >= 1000) {
      self->last_accept_error_log_ = now;
      LOG_WARN("accept failed: %s", uv_strerror(status));
    }
    return;
  }
  // At the process-wide cap, a new connection takes the place of this worker's oldest session
  // that has not finished its handshake (or is being drained after a rejection); with none of
  // those, of another worker's (which evicts it on its next loop turn); with none anywhere, it is
  // refused. Evicted sessions still count until they are freed on the loop's next
  // turn; at most kMaxEvictedPending of them exist per worker.
  // Another worker at the cap may have taken a connection in this one's name: evict for it.
  if (self->cap_->full()) {
    self->pay_owed_evictions();
    // Another worker is asked only when this one has no unfinished handshake at all (not merely
    // too many evicted ones still closing).
    if (!self->evict_oldest() &&
        (self->evict_head_ != nullptr || !self->cap_->ask_eviction(&self->cap_wake_))) {
      self->refuse(server);
      return;
    }
  }
  self->cap_->add();
  counters::add(Counter::LiveConnections);
  counters::add(Counter::Accepted);
  Connection* s = new Connection(*self, self->factory_(*self));
  s->next_ = self->head_;
  if (self->head_ != nullptr) self->head_->prev_ = s;
  self->head_ = s;
  ++self->count_;
  if (s->evictable()) self->set_evictable(s, true);
  s->start(server);
}

bool Listener::evict_oldest() {
  Connection* victim = evict_head_;
  // libuv accepts a whole burst in one callback, while closed sessions are freed only after
  // their close callbacks (the loop's next turn): bound the sessions evicted but not yet freed.
  if (victim == nullptr || evicted_pending_ >= kMaxEvictedPending) return false;
  log_cap("closing the oldest unfinished handshake");
  victim->evicted_ = true;
  ++evicted_pending_;
  victim->close("evicted at the connection limit");
  // close() moved it off the evictable list.
  return true;
}

void Listener::pay_owed_evictions() {
  while (evict_head_ != nullptr && evicted_pending_ < kMaxEvictedPending && cap_->take_owed()) {
    evict_oldest();
  }
}

void Listener::log_cap(const char* what) {
  counters::add(Counter::Refused);
  uint64_t now = uv_now(loop_);
  if (now - last_cap_log_ >= 1000) {
    last_cap_log_ = now;
    LOG_WARN("connection limit (%zu) reached: %s", cap_->max(), what);
  }
}

// At the cap, with nothing to evict: take the connection off the backlog and close it at once,
// so it costs nothing and the kernel does not keep retrying it.
void Listener::refuse(uv_stream_t* server) {
  auto* t = new uv_tcp_t;
  uv_tcp_init(loop_, t);
  uv_accept(server, reinterpret_cast<uv_stream_t*>(t));
  uv_close(reinterpret_cast<uv_handle_t*>(t),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  log_cap("refusing new connections");
}

void Listener::set_evictable(Connection* s, bool on) {
  if (on == s->in_evict_list_) return;
  s->in_evict_list_ = on;
  cap_->evictable_changed(on);
  if (on) {
    s->evict_next_ = nullptr;
    s->evict_prev_ = evict_tail_;
    if (evict_tail_ != nullptr) evict_tail_->evict_next_ = s;
    evict_tail_ = s;
    if (evict_head_ == nullptr) evict_head_ = s;
    return;
  }
  if (s->evict_prev_ != nullptr) s->evict_prev_->evict_next_ = s->evict_next_;
  if (s->evict_next_ != nullptr) s->evict_next_->evict_prev_ = s->evict_prev_;
  if (evict_head_ == s) evict_head_ = s->evict_next_;
  if (evict_tail_ == s) evict_tail_ = s->evict_prev_;
  s->evict_prev_ = s->evict_next_ = nullptr;
}

void Listener::destroy(Connection* s) {
  set_evictable(s, false);
  if (s->evicted_) --evicted_pending_;
  if (s->prev_ != nullptr) s->prev_->next_ = s->next_;
  if (s->next_ != nullptr) s->next_->prev_ = s->prev_;
  if (head_ == s) head_ = s->next_;
  --count_;
  cap_->sub();
  counters::sub(Counter::LiveConnections);
  delete s;
  if (count_ == 0 && !stopped_) schedule_trim();
}

void Listener::schedule_trim() {
  if (!trim_inited_) {
    uv_timer_init(loop_, &trim_timer_);
    trim_inited_ = true;
  }
  uv_timer_start(
      &trim_timer_, [](uv_timer_t*) { BlockPool::local().trim(); },
      2 * BlockPool::kPeakWindowMs + 100, 0);
}

void Listener::stop_accepting() {
  stopped_ = true;
  // The handles inside this object: counted until their close callbacks have run (closed()).
  auto close_member = [this](uv_handle_t* h) {
    h->data = this;
    ++closing_;
    uv_close(h, [](uv_handle_t* hd) { --static_cast<Listener*>(hd->data)->closing_; });
  };
  if (relisten_inited_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&relisten_))) {
    close_member(reinterpret_cast<uv_handle_t*>(&relisten_));
  }
  if (trim_inited_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&trim_timer_))) {
    close_member(reinterpret_cast<uv_handle_t*>(&trim_timer_));
  }
  if (cap_wake_inited_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&cap_wake_))) {
    cap_->withdraw(&cap_wake_);
    close_member(reinterpret_cast<uv_handle_t*>(&cap_wake_));
  }
  for (uv_tcp_t* t : listeners_) {
    uv_close(reinterpret_cast<uv_handle_t*>(t),
             [](uv_handle_t* hd) { delete reinterpret_cast<uv_tcp_t*>(hd); });
  }
  listeners_.clear();
}

void Listener::drain() {
  stop_accepting();
  for (Connection* s = head_; s != nullptr; s = s->next_) {
    if (!s->relaying()) s->close("shutting down");
  }
}

void Listener::shutdown() {
  stop_accepting();
  for (Connection* s = head_; s != nullptr; s = s->next_) s->close("shutting down");
}

void Listener::close_users(const std::vector<std::string>& users, const char* reason) {
  if (users.empty()) return;
  for (Connection* s = head_; s != nullptr; s = s->next_) {
    const std::string_view u = s->user();
    if (!u.empty() && std::binary_search(users.begin(), users.end(), u)) s->close(reason);
  }
}

}  // namespace ss
