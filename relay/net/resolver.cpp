// Target lookups: getaddrinfo in libuv's pool, or c-ares on the worker's loop. c-ares is driven
// by its socket-state callback (one uv_poll_t per socket it opens, closed when it says so) and by
// ares_timeout (one uv_timer_t, live only while lookups are pending), so an idle resolver holds no
// libuv handle and a loop can close. Each worker thread has its own channel: no locks.

#include "relay/net/resolver.h"

#include <ares.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "relay/net/resolve.h"

namespace ss {

namespace {

std::string g_nameservers;  // written before the workers start, read only afterwards
uint64_t g_generation = 0;  // bumped by set_nameservers: idle engines made before are remade
// c-ares unless told otherwise: about a third of the CPU per lookup and no 4-thread pool limit
// (scripts/bench_resolver.sh; README, "DNS").
ResolverBackend g_default = ResolverBackend::Ares;

void library_init() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

int uv_status_of(int ares_status) {
  switch (ares_status) {
    case ARES_SUCCESS:
      return 0;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
      return UV_EAI_NONAME;
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
      return UV_EAI_AGAIN;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return UV_ECANCELED;
    case ARES_ENOMEM:
      return UV_EAI_MEMORY;
    default:
      return UV_EAI_FAIL;
  }
}

class AresEngine {
 public:
  // Null (with *error) if c-ares cannot make a channel or the name servers are not addresses.
  static std::unique_ptr<AresEngine> make(const std::string& nameservers, std::string* error) {
    library_init();
    std::unique_ptr<AresEngine> e(new AresEngine());
    ares_options o{};
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = e.get();
    o.timeout = kAresTimeoutMs;
    o.tries = kAresTries;
    const int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int rc = ares_init_options(&e->channel_, &o, mask);
    if (rc != ARES_SUCCESS) {
      if (error != nullptr) *error = ares_strerror(rc);
      return nullptr;
    }
    e->live_ = true;
    if (!nameservers.empty()) {
      rc = ares_set_servers_ports_csv(e->channel_, nameservers.c_str());
      if (rc != ARES_SUCCESS) {
        if (error != nullptr) {
          *error = "\"" + nameservers + "\" is not a list of addresses (" + ares_strerror(rc) + ")";
        }
        return nullptr;
      }
    }
    return e;
  }

  ~AresEngine() {
    if (!live_) return;
    // At thread exit: lookups still pending have owners that are gone; do not call them.
    destroying_ = true;
    ares_destroy(channel_);
  }

  int start(uv_loop_t* loop, ResolveRequest& req, const std::string& host) {
    if (pending_ == 0) loop_ = loop;  // an idle engine holds no handle: tests reuse threads
    if (loop != loop_) return UV_EINVAL;
    if (timer_ == nullptr) {
      timer_ = new uv_timer_t;
      uv_timer_init(loop_, timer_);
      timer_->data = this;
    }
    ++pending_;
    starting_ = true;
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, on_answer, &req);
    starting_ = false;
    rearm();
    return 0;
  }

 private:
  AresEngine() = default;

  struct Poll {
    uv_poll_t handle;
    ares_socket_t fd;
    AresEngine* engine;
  };

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* e = static_cast<AresEngine*>(data);
    if (e->destroying_) return;
    auto it = e->polls_.find(fd);
    if (!readable && !writable) {
      if (it == e->polls_.end()) return;
      Poll* p = it->second;
      e->polls_.erase(it);
      uv_poll_stop(&p->handle);
      uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
               [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
      return;
    }
    Poll* p;
    if (it == e->polls_.end()) {
      p = new Poll{{}, fd, e};
      if (uv_poll_init_socket(e->loop_, &p->handle, fd) != 0) {
        delete p;
        return;  // c-ares times the query out
      }
      p->handle.data = p;
      e->polls_.emplace(fd, p);
    } else {
      p = it->second;
    }
    const int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
    uv_poll_start(&p->handle, events, on_poll);
  }

  static void on_poll(uv_poll_t* h, int status, int events) {
    Poll* p = static_cast<Poll*>(h->data);
    AresEngine* e = p->engine;
    const ares_socket_t fd = p->fd;
    // On an error let c-ares read and write, so it sees the socket's error itself.
    const bool r = status < 0 || (events & UV_READABLE) != 0;
    const bool w = status < 0 || (events & UV_WRITABLE) != 0;
    ares_process_fd(e->channel_, r ? fd : ARES_SOCKET_BAD, w ? fd : ARES_SOCKET_BAD);
    e->rearm();
  }

  static void on_timer(uv_timer_t* t) {
    AresEngine* e = static_cast<AresEngine*>(t->data);
    // Answers c-ares gave inside ares_getaddrinfo (a hosts file entry, an immediate failure):
    // delivered now, never from inside resolve().
    std::vector<ResolveRequest*> ready;
    ready.swap(e->deferred_);
    for (ResolveRequest* req : ready) e->deliver(req);
    ares_process_fd(e->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    e->rearm();
  }

  // The timer follows c-ares's next timeout while lookups are pending, and is closed when none
  // is, so an idle engine holds no handle.
  void rearm() {
    if (timer_ == nullptr) return;
    if (!deferred_.empty()) {
      uv_timer_start(timer_, on_timer, 0, 0);
      return;
    }
    if (pending_ == 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer_),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer_ = nullptr;
      return;
    }
    timeval tv{};
    if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
      uv_timer_stop(timer_);
      return;
    }
    const uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + (tv.tv_usec + 999) / 1000;
    uv_timer_start(timer_, on_timer, ms, 0);
  }

  void deliver(ResolveRequest* req) {
    --pending_;
    req->done(req, req->status,
              req->status == 0 ? reinterpret_cast<const sockaddr*>(&req->address) : nullptr);
  }

  static void on_answer(void* arg, int status, int, ares_addrinfo* res) {
    auto* req = static_cast<ResolveRequest*>(arg);
    AresEngine* e = engine_of_thread();
    if (e == nullptr || e->destroying_) {
      if (res != nullptr) ares_freeaddrinfo(res);
      return;
    }
    sockaddr_storage& ss = req->address;
    int rc = uv_status_of(status);
    if (rc == 0) {
      const int preferred = req->ipv6_first ? AF_INET6 : AF_INET;
      const ares_addrinfo_node* pick = nullptr;
      for (const ares_addrinfo_node* n = res != nullptr ? res->nodes : nullptr; n != nullptr;
           n = n->ai_next) {
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
        if (pick == nullptr || (n->ai_family == preferred && pick->ai_family != preferred)) {
          pick = n;
        }
      }
      if (pick == nullptr) {
        rc = UV_EAI_NONAME;
      } else {
        std::memcpy(&ss, pick->ai_addr, std::min<size_t>(pick->ai_addrlen, sizeof ss));
        if (ss.ss_family == AF_INET) {
          reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(req->port);
        } else {
          reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(req->port);
        }
      }
    }
    if (res != nullptr) ares_freeaddrinfo(res);
    req->status = rc;
    if (e->starting_) {
      e->deferred_.push_back(req);
      return;
    }
    // The timer is rearmed (or closed) by whoever called into c-ares: on_poll, on_timer.
    e->deliver(req);
  }

  static AresEngine* engine_of_thread();

  ares_channel channel_ = nullptr;
  uint64_t generation_ = 0;
  uv_loop_t* loop_ = nullptr;
  std::unordered_map<ares_socket_t, Poll*> polls_;
  uv_timer_t* timer_ = nullptr;
  size_t pending_ = 0;
  std::vector<ResolveRequest*> deferred_;
  bool starting_ = false;
  bool live_ = false;
  bool destroying_ = false;

  friend AresEngine* thread_engine(std::string* error);
};

thread_local std::unique_ptr<AresEngine> t_engine;

AresEngine* AresEngine::engine_of_thread() {
  return t_engine.get();
}

AresEngine* thread_engine(std::string* error) {
  if (t_engine && t_engine->generation_ != g_generation && t_engine->pending_ == 0) {
    t_engine.reset();
  }
  if (!t_engine) {
    t_engine = AresEngine::make(g_nameservers, error);
    if (t_engine) t_engine->generation_ = g_generation;
  }
  return t_engine.get();
}

void on_uv_resolved(uv_getaddrinfo_t* r, int status, addrinfo* res) {
  auto* req = static_cast<ResolveRequest*>(r->data);
  sockaddr_storage ss{};
  const sockaddr* picked = nullptr;
  if (status == 0 && res != nullptr) {
    const addrinfo* pick = pick_address(res, req->ipv6_first);
    std::memcpy(&ss, pick->ai_addr, std::min<size_t>(pick->ai_addrlen, sizeof ss));
    picked = reinterpret_cast<const sockaddr*>(&ss);
  } else if (status == 0) {
    status = UV_EAI_NONAME;
  }
  if (res != nullptr) uv_freeaddrinfo(res);
  req->done(req, status, picked);
}

}  // namespace

int resolve(uv_loop_t* loop, ResolveRequest& req, const std::string& host, uint16_t port,
            bool ipv6_first, ResolveRequest::Done done) {
  req.done = done;
  req.port = port;
  req.ipv6_first = ipv6_first;
  req.by_ares = !g_nameservers.empty() || g_default == ResolverBackend::Ares;
  if (req.by_ares) {
    AresEngine* e = thread_engine(nullptr);
    if (e == nullptr) return UV_EAI_FAIL;
    return e->start(loop, req, host);
  }
  const LookupArgs args(SOCK_STREAM, AI_ADDRCONFIG, port);
  req.uv_req.data = &req;
  return uv_getaddrinfo(loop, &req.uv_req, on_uv_resolved, host.c_str(), args.port, &args.hints);
}

bool cancel_resolve(ResolveRequest& req) {
  if (req.by_ares) return false;
  return uv_cancel(reinterpret_cast<uv_req_t*>(&req.uv_req)) == 0;
}

std::string check_nameservers(const std::string& csv) {
  if (csv.empty()) return "an empty list";
  std::string error;
  if (!AresEngine::make(csv, &error)) return error;
  return "";
}

std::string set_nameservers(const std::string& csv) {
  if (!csv.empty()) {
    std::string error = check_nameservers(csv);
    if (!error.empty()) return error;
  }
  g_nameservers = csv;
  ++g_generation;
  return "";
}

void set_default_backend(ResolverBackend backend) {
  g_default = backend;
}

}  // namespace ss
