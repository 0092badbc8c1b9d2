// Process start-up and shutdown.
//
// One libuv loop per worker thread. Each worker owns its TCP listener(s), bound with
// SO_REUSEPORT when there is more than one worker so the kernel spreads new connections, and the
// sessions it accepted, and its UDP NAT with its own UDP socket per listen address (SO_REUSEPORT
// likewise). What UDP must share is process-wide and guarded: ss-local's UDP ASSOCIATE registry
// and the 2022 sessions' replay windows. The cipher suites (and with them any replay pool) are
// shared.
//
// The main thread only handles signals. On SIGINT/SIGTERM every worker stops accepting and
// closes its UDP side; live TCP sessions get a grace period (min(timeout, 10 s)) to finish, then
// are closed, and the process exits 0. A second signal closes everything at once. Sessions that
// are closed but wait for a DNS lookup already running in libuv's thread pool are not waited for:
// once only those are left, the process exits 0 at once.
//
// The replay state file (relay/replay_state) is loaded before the workers start, written from the
// main loop every replay_state_interval seconds (a snapshot taken under the filters' locks, the
// file written off the workers' loops), and written last once every worker has ended.

#include "relay/app.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/dns/dns_inbound.h"
#include "client/tun/tun_engine.h"
#include "client/tun/tun_routes.h"
#include "relay/client_reload.h"
#include "relay/connection.h"
#include "relay/counters.h"
#include "relay/log.h"
#include "relay/loop_tasks.h"
#include "relay/metrics.h"
#include "relay/metrics_server.h"
#include "relay/net/resolver.h"
#include "relay/online_config.h"
#include "relay/plugin.h"
#include "relay/reload.h"
#include "relay/replay_state.h"
#include "relay/runtime.h"
#include "relay/udp_front.h"
#include "relay/udp_nat.h"
#include "relay/udp_relay.h"
#include "relay/user_limits.h"
#include "relay/warnings.h"

namespace ss {
namespace {

constexpr uint64_t kMaxGraceMs = 10'000;
constexpr uint64_t kDrainPollMs = 50;
constexpr uint64_t kQuotaSaveMs = 10'000;  // the quota state file is written this often

enum Command : int { kRun = 0, kDrain = 1, kCloseAll = 2 };

struct Worker {
  int index = 0;
  uv_loop_t loop;
  std::unique_ptr<UdpNat> udp;
  // Every TCP listener this worker owns: those serving the running specs, and those a reload
  // removed, kept until their last session has ended.
  std::vector<std::unique_ptr<Listener>> listeners;
  std::vector<Listener*> by_spec;  // the running specs' listeners, by index; null: no TCP
  // ss-server: each running spec's UDP socket in `udp` (UdpNat::listen's id; kNoUdpSocket: none),
  // and the fronts its inbound and outbound were made from (they point into them).
  std::vector<UdpSocketId> udp_by_spec;
  std::vector<std::shared_ptr<const UdpFronts>> udp_fronts_by_spec;
  std::vector<std::unique_ptr<TunEngine>> tuns;  // worker 0: each tun listener's packets
  uv_async_t wake;
  uv_timer_t drain_poll;
  LoopTasks tasks;  // from the main loop: reloads, online_config refreshes
  std::atomic<int> command{kRun};
  bool draining = false;
  bool finished = false;
  uv_async_t* main_wake = nullptr;  // tells the main thread this worker's loop has ended
  std::atomic<bool> loop_ended{false};
  std::thread thread;

  // Closes this worker's own handles; the loop ends once its sessions have closed too.
  void finish() {
    if (finished) return;
    finished = true;
    for (auto& t : tuns) t->shutdown();
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_poll), nullptr);
    tasks.close();
  }

  static void on_wake(uv_async_t* a) {
    auto* w = static_cast<Worker*>(a->data);
    int cmd = w->command.load();
    if (cmd >= kDrain && !w->draining) {
      w->draining = true;
      for (auto& l : w->listeners) l->drain();
      if (w->udp) w->udp->shutdown();
      uv_timer_start(&w->drain_poll, on_drain_poll, 0, kDrainPollMs);
    }
    if (cmd >= kCloseAll) {
      for (auto& l : w->listeners) l->shutdown();
      w->finish();
    }
  }

  static void on_drain_poll(uv_timer_t* t) {
    auto* w = static_cast<Worker*>(t->data);
    size_t n = 0;
    for (auto& l : w->listeners) n += l->session_count();
    if (n == 0) w->finish();
  }
};

// Makes a worker's TCP listener for a spec (the binary's inbound, the process's socket options
// and share of the connection cap) and listens: *err is 0, or the libuv error if it could not.
using ListenerMaker = std::function<std::unique_ptr<Listener>(Worker&, const ListenerSpec&,
                                                              std::shared_ptr<const Runtime>,
                                                              const metrics::PortSlots*, int* err)>;

// Each listener's TCP (rust's "locals" may give their own mode). The mixed port keeps its TCP
// listener even in udp_only mode: SOCKS5's UDP ASSOCIATE needs it.
bool serve_tcp(const ListenerSpec& spec) {
  return spec.tcp || spec.protocol == ListenerSpec::Protocol::Mixed;
}

// A worker NAT's share of the process's udp_max_associations.
size_t nat_share(size_t max_associations, int nworkers) {
  const auto n = static_cast<size_t>(std::max(1, nworkers));
  return std::max<size_t>(1, (max_associations + n - 1) / n);
}

// A reload as each worker applies it (Engine::publish).
struct Publication {
  std::vector<ListenerSpec> listeners;           // the new specs' listeners
  std::vector<std::optional<size_t>> match;      // each one's running listener, if any
  std::vector<const metrics::PortSlots*> slots;  // each one's metrics slots (or null)
  std::shared_ptr<const Runtime> runtime;
  Engine::Cuts cuts;
  // ss-server's UDP side: the new specs' fronts (null: UDP unchanged), whether listener j's keys
  // or users changed (its socket takes a new inbound), and how a worker makes its NAT if it has
  // none yet.
  std::shared_ptr<const UdpFronts> udp_fronts;
  std::vector<bool> udp_rekey;
  UdpRelay* udp_relay = nullptr;
  UdpNatOptions udp_options;
};

// On worker `w`'s loop, ss-server's UDP side of a reload: sockets of kept listeners stay (with a
// new inbound if their keys or users changed), new ones bind (SO_REUSEPORT, as at start; a bind
// failure is logged and the rest applies), removed ones close with their associations.
void apply_udp(Worker& w, const Publication& p) {
  if (w.udp) w.udp->set_limits(p.udp_options.udp_timeout, p.udp_options.max_associations);
  const size_t n = p.listeners.size();
  std::vector<UdpSocketId> next(n, kNoUdpSocket);
  std::vector<std::shared_ptr<const UdpFronts>> fronts(n);
  for (size_t j = 0; j < n; ++j) {
    const ListenerSpec& spec = p.listeners[j];
    if (!spec.udp || spec.protocol != ListenerSpec::Protocol::Shadowsocks) continue;
    const std::optional<size_t>& m = p.match[j];
    const UdpSocketId kept = m && *m < w.udp_by_spec.size() ? w.udp_by_spec[*m] : kNoUdpSocket;
    if (kept != kNoUdpSocket) {
      next[j] = kept;
      if (p.udp_rekey[j]) {
        w.udp->set_inbound(kept, p.udp_fronts->inbound(spec, p.slots[j]),
                           p.udp_fronts->outbound(spec));
        fronts[j] = p.udp_fronts;
      } else {
        fronts[j] = w.udp_fronts_by_spec[*m];
      }
      continue;
    }
    if (!w.udp) w.udp = std::make_unique<UdpNat>(&w.loop, *p.udp_relay, p.udp_options);
    UdpSocketId index = kNoUdpSocket;
    const int r = w.udp->listen(spec.address, spec.port, p.udp_fronts->inbound(spec, p.slots[j]),
                                p.udp_fronts->outbound(spec), false, &index);
    if (r != 0) {
      w.udp->unlisten(index);
      LOG_WARN("reload: worker %d: cannot listen on UDP %s port %u: %s; its UDP is not served",
               w.index, spec.address.c_str(), static_cast<unsigned>(spec.port), uv_strerror(r));
      continue;
    }
    if (w.index == 0) {
      LOG_NOTICE("reload: listening on UDP %s port %u", spec.address.c_str(),
                 static_cast<unsigned>(spec.port));
    }
    next[j] = index;
    fronts[j] = p.udp_fronts;
  }
  for (const UdpSocketId old : w.udp_by_spec) {
    if (old != kNoUdpSocket && std::find(next.begin(), next.end(), old) == next.end()) {
      w.udp->unlisten(old);
    }
  }
  w.udp_by_spec = std::move(next);
  w.udp_fronts_by_spec = std::move(fronts);
}

// On worker `w`'s loop: the listeners kept take the new snapshot, new ones open, removed ones
// stop accepting (or close every session with cuts.removed_listeners), and listeners removed by
// an earlier reload whose last session has ended are freed (their handles closed back then).
void apply_publication(Worker& w, const Publication& p, const ListenerMaker& make) {
  if (w.draining) return;  // shutting down: nothing new opens
  // Listeners earlier reloads retired, once closed (their handles' callbacks have run: two
  // publications can run in one loop turn) and with no session left.
  std::erase_if(w.listeners, [&w](const std::unique_ptr<Listener>& l) {
    return l->session_count() == 0 && l->closed() &&
           std::find(w.by_spec.begin(), w.by_spec.end(), l.get()) == w.by_spec.end();
  });
  std::vector<Listener*> next(p.listeners.size(), nullptr);
  for (size_t j = 0; j < p.listeners.size(); ++j) {
    const ListenerSpec& spec = p.listeners[j];
    Listener* kept =
        p.match[j] && *p.match[j] < w.by_spec.size() ? w.by_spec[*p.match[j]] : nullptr;
    if (kept != nullptr && serve_tcp(spec)) {
      kept->set_runtime(p.runtime);
      kept->set_inbound(spec.inbound);
      kept->set_metrics(p.slots[j]);
      if (j < p.cuts.users.size()) kept->close_users(p.cuts.users[j], "user removed by a reload");
      next[j] = kept;
      continue;
    }
    if (!serve_tcp(spec)) continue;
    int err = 0;
    std::unique_ptr<Listener> l = make(w, spec, p.runtime, p.slots[j], &err);
    if (err != 0) {
      // The rest of the reload applies; the listener, with no socket, closes its other handles
      // (the connection cap's wake-up is open from the start) and is freed at a later reload.
      l->stop_accepting();
      LOG_WARN("reload: worker %d: cannot listen on TCP %s port %u: %s; that port is not served",
               w.index, spec.address.c_str(), static_cast<unsigned>(spec.port), uv_strerror(err));
      w.listeners.push_back(std::move(l));
      continue;
    }
    if (w.index == 0) {
      LOG_NOTICE("reload: listening on TCP %s port %u", spec.address.c_str(),
                 static_cast<unsigned>(spec.port));
    }
    next[j] = l.get();
    w.listeners.push_back(std::move(l));
  }
  for (Listener* old : w.by_spec) {
    if (old == nullptr || std::find(next.begin(), next.end(), old) != next.end()) continue;
    if (p.cuts.removed_listeners) {
      old->shutdown();
    } else {
      old->stop_accepting();
    }
  }
  w.by_spec = std::move(next);
  if (p.udp_fronts) apply_udp(w, p);
}

struct MainState final : Engine {
  std::vector<std::unique_ptr<Worker>>* workers;
  Router* router = nullptr;             // its health probes run on the main loop until shutdown
  PluginSupervisor* plugins = nullptr;  // SIP003 plugins: stopped once the workers have ended
  std::vector<DnsInbound*> dns;         // ss-local's DNS inbounds: stopped at the first signal
  OnlineConfig* online = nullptr;       // SIP008 refreshes: stopped at the first signal
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_signal_t sighup;
  uv_timer_t grace;
  uv_timer_t settle;  // after the first signal: are only orphaned DNS lookups left?
  uv_async_t worker_done;
  uv_timer_t state_timer;            // writes the replay state file
  ReplayStateFile* state = nullptr;  // null: no state file
  uv_timer_t quota_timer;            // writes the quota state file
  QuotaStateFile* quota = nullptr;   // null: no user has a quota, or no file
  MetricsServer* metrics = nullptr;  // null: no metrics endpoint
  uint64_t grace_ms = kMaxGraceMs;
  int signals = 0;
  uv_loop_t* loop = nullptr;
  // What the listeners serve now (Engine), and how a worker makes a new one.
  Specs running;
  std::shared_ptr<const Runtime> snapshot;
  ListenerMaker make_listener;
  bool count_metrics = false;
  std::unique_ptr<Controller> controller;  // SIGHUP's (null: none)
  UdpRelay* udp_relay = nullptr;           // ss-server: its UDP side follows a reload
  UdpNatOptions udp_options;               // ... and a worker's NAT is made with these

  const Specs& specs() const override { return running; }
  const std::shared_ptr<const Runtime>& runtime() const override { return snapshot; }
  uv_loop_t* main_loop() const override { return loop; }
  PluginSupervisor* plugin_supervisor() const override { return plugins; }

  void publish(Specs next, std::shared_ptr<const Runtime> rt, Cuts cuts) override {
    auto p = std::make_shared<Publication>();
    p->match = match_listeners(running.listeners, next.listeners);
    p->slots.assign(next.listeners.size(), nullptr);
    if (count_metrics) {
      for (size_t j = 0; j < next.listeners.size(); ++j) {
        const ListenerSpec& l = next.listeners[j];
        std::vector<std::string> names;
        if (l.protocol == ListenerSpec::Protocol::Shadowsocks && l.inbound < next.inbounds.size()) {
          for (const UserSpec& u : next.inbounds[l.inbound].users) names.push_back(u.name);
        }
        // A plugin's listener (relay/plugin.h) counts by the public port its plugin serves.
        p->slots[j] = metrics::add_port(l.public_port != 0 ? l.public_port : l.port, names);
      }
    }
    p->listeners = next.listeners;
    p->runtime = rt;
    p->cuts = std::move(cuts);
    if (udp_relay != nullptr) {
      std::string why;
      std::shared_ptr<UdpFronts> fronts = UdpFronts::make(next, *udp_relay, &why);
      if (fronts) {
        fronts->set_user_limits(rt->user_limits);
        p->udp_fronts = std::move(fronts);
        p->udp_relay = udp_relay;
        // udp_timeout and udp_max_associations follow a reload (UdpNat::set_limits).
        udp_options.udp_timeout = next.limits.udp_timeout;
        udp_options.max_associations =
            nat_share(next.limits.udp_max_associations, static_cast<int>(workers->size()));
        p->udp_options = udp_options;
        p->udp_rekey.assign(next.listeners.size(), true);
        for (size_t j = 0; j < next.listeners.size(); ++j) {
          if (!p->match[j]) continue;
          p->udp_rekey[j] = udp_keys_signature(running, running.listeners[*p->match[j]]) !=
                            udp_keys_signature(next, next.listeners[j]);
        }
      } else {
        // ServerControl::apply checked the suites first: not expected.
        LOG_ERROR("reload: UDP: %s; the UDP side is left as it was", why.c_str());
      }
    }
    for (auto& w : *workers) {
      Worker* wp = w.get();
      const ListenerMaker* make = &make_listener;
      wp->tasks.post([wp, p, make] { apply_publication(*wp, *p, *make); });
    }
    // The health probes follow the router (the clients' balancer; none on ss-server).
    if (router) router->stop_probes();
    router = rt->router.get();
    router->start_probes(loop);
    running = std::move(next);
    snapshot = std::move(rt);
  }

  void tell_all(Command c) {
    for (auto& w : *workers) {
      int cur = w->command.load();
      while (cur < c && !w->command.compare_exchange_weak(cur, c)) {
      }
      uv_async_send(&w->wake);
    }
  }

  static void on_hup(uv_signal_t* h, int) {
    auto* m = static_cast<MainState*>(h->data);
    if (m->signals > 0) {
      LOG_WARN("received SIGHUP while shutting down: ignored");
    } else if (m->controller) {
      LOG_NOTICE("received SIGHUP: reloading the configuration");
      m->controller->reload();
    } else {
      LOG_WARN("received SIGHUP: this program does not reload its configuration; ignored");
    }
  }

  static void on_signal(uv_signal_t* h, int signum) {
    auto* m = static_cast<MainState*>(h->data);
    ++m->signals;
    if (m->signals == 1) {
      LOG_NOTICE("received %s: no new connections; open ones get %llu s to finish",
                 signum == SIGINT ? "SIGINT" : "SIGTERM",
                 static_cast<unsigned long long>(m->grace_ms / 1000));
      m->tell_all(kDrain);
      if (m->controller) m->controller->stop();
      if (m->router) m->router->stop_probes();
      for (DnsInbound* d : m->dns) d->stop();
      if (m->online) m->online->stop();
      uv_timer_start(&m->grace, on_grace, m->grace_ms, 0);
      uv_timer_start(&m->settle, on_settle, kDrainPollMs, kDrainPollMs);
    } else {
      LOG_NOTICE("received a second signal: closing every connection now");
      m->tell_all(kCloseAll);
    }
  }

  // Every session left is closed and waits only for a lookup running in libuv's thread pool,
  // which cannot be cancelled and may take the resolver's whole timeout (30 s and more): the
  // loops would not end before it returns. Nothing is left to flush, so exit now.
  static void on_settle(uv_timer_t* t) {
    const size_t orphans = Connection::orphaned_lookups();
    const int64_t live = counters::read(Counter::LiveConnections);
    if (orphans == 0 || live != static_cast<int64_t>(orphans)) return;
    LOG_NOTICE("exiting without waiting for %zu DNS lookup%s still running in the resolver",
               orphans, orphans == 1 ? "" : "s");
    auto* m = static_cast<MainState*>(t->data);
    if (m->state) m->state->save();
    if (m->quota) m->quota->save();
    if (m->plugins) m->plugins->kill_now();
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(0);
  }

  static void on_state_timer(uv_timer_t* t) {
    auto* m = static_cast<MainState*>(t->data);
    m->state->save();
  }

  static void on_quota_timer(uv_timer_t* t) {
    auto* m = static_cast<MainState*>(t->data);
    m->quota->save();
  }

  static void on_grace(uv_timer_t* t) {
    auto* m = static_cast<MainState*>(t->data);
    m->tell_all(kCloseAll);
  }

  static void on_worker_done(uv_async_t* a) {
    auto* m = static_cast<MainState*>(a->data);
    for (auto& w : *m->workers) {
      if (!w->loop_ended.load()) return;
    }
    // Every loop has ended; the threads are past their last uv_async_send once joined.
    for (auto& w : *m->workers) {
      if (w->thread.joinable()) w->thread.join();
    }
    if (m->router) m->router->stop_probes();
    for (DnsInbound* d : m->dns) d->stop();
    if (m->online) m->online->stop();
    if (m->plugins) m->plugins->stop();  // the loop runs on until they are reaped
    if (m->metrics) m->metrics->close();
    if (m->controller) m->controller->stop();
    uv_close(reinterpret_cast<uv_handle_t*>(&m->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->sigterm), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->sighup), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->grace), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->settle), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->state_timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->quota_timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->worker_done), nullptr);
  }
};

// A listener's method for its start-up line: its Shadowsocks inbound's (with its users), or the
// clients' method.
std::string method_text(const Config& cfg, const Specs& specs, const ListenerSpec& spec) {
  if (spec.protocol == ListenerSpec::Protocol::Shadowsocks &&
      spec.inbound < specs.inbounds.size()) {
    const ServerSpec& in = specs.inbounds[spec.inbound];
    if (in.users.empty()) return in.method;
    return in.method + ", " + std::to_string(in.users.size()) + " user" +
           (in.users.size() == 1 ? "" : "s");
  }
  if (cfg.rust_servers)
    return cfg.online_config ? "servers from \"servers\" and online_config"
                             : "servers from \"servers\"";
  if (cfg.online_config && cfg.servers.empty()) return "servers from online_config";
  return cfg.online_config ? cfg.method + " and servers from online_config" : cfg.method;
}

// What a listener serves, for its start-up line.
const char* protocol_text(ListenerSpec::Protocol p) {
  switch (p) {
    case ListenerSpec::Protocol::Mixed:
      return "SOCKS5, SOCKS4, HTTP";
    case ListenerSpec::Protocol::Tunnel:
      return "tunnel";
    case ListenerSpec::Protocol::Redir:
      return "redir";
    case ListenerSpec::Protocol::Shadowsocks:
      return "Shadowsocks";
    case ListenerSpec::Protocol::Tun:
      return "tun NAT";
    case ListenerSpec::Protocol::Dns:
      return "DNS";
  }
  return "?";
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// Raises RLIMIT_NOFILE to n (soft and hard); without the privilege to raise the hard limit, the
// soft limit goes as far as the hard one allows, with a warning.
void raise_nofile(const char* prog, long long n) {
  rlimit rl{static_cast<rlim_t>(n), static_cast<rlim_t>(n)};
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0) return;
  const int err = errno;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max < static_cast<rlim_t>(n)) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    LOG_WARN("%s: nofile: cannot raise the open-file limit to %lld (%s); it is %llu", prog, n,
             errno_text(err).c_str(), static_cast<unsigned long long>(rl.rlim_cur));
  }
}

// Switches to `pw`'s user and groups for good. Empty, or the reason it failed.
std::string drop_privileges(const passwd& pw) {
  if (geteuid() == pw.pw_uid && getegid() == pw.pw_gid) return {};
  if (geteuid() != 0) return "only root can switch to another user";
  if (initgroups(pw.pw_name, pw.pw_gid) != 0) return "initgroups: " + errno_text(errno);
  if (setgid(pw.pw_gid) != 0) return "setgid: " + errno_text(errno);
  if (setuid(pw.pw_uid) != 0) return "setuid: " + errno_text(errno);
  if (pw.pw_uid != 0 && setuid(0) == 0) return "root could be regained after setuid";
  return {};
}

// -f: forks. The parent waits for the child's word that it is running (then exits 0), or for
// the child to end (then exits with its status); it never returns. The child returns the write
// end of that pipe, in a new session.
int daemonize(const char* prog) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "%s: -f: pipe: %s\n", prog, errno_text(errno).c_str());
    std::exit(1);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "%s: -f: fork: %s\n", prog, errno_text(errno).c_str());
    std::exit(1);
  }
  if (pid > 0) {
    close(fds[1]);
    char c;
    ssize_t n;
    do {
      n = read(fds[0], &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) _exit(0);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
  }
  close(fds[0]);
  setsid();
  return fds[1];
}

// The child is running: write the pid file, detach from the terminal, tell the parent.
bool finish_daemon(const char* prog, const std::string& pid_file, int ready_fd) {
  const int fd = open(pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "%s: -f: cannot write %s: %s\n", prog, pid_file.c_str(),
                 errno_text(errno).c_str());
    return false;
  }
  const std::string text = std::to_string(getpid()) + "\n";
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok) {
    std::fprintf(stderr, "%s: -f: cannot write %s\n", prog, pid_file.c_str());
    return false;
  }
  if (chdir("/") != 0) {
    // Not fatal: only keeps a directory busy.
  }
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    if (null_fd > STDERR_FILENO) close(null_fd);
  }
  const char c = 1;
  if (write(ready_fd, &c, 1) != 1) {
    // The parent is gone; nothing to tell.
  }
  close(ready_fd);
  return true;
}

// The replay state file of this process: `state_dir`/<program>-<first listening port>.replay,
// the directory made absolute now (-f changes to / later). Null with no state_dir, or nothing to
// keep (no classic filter, no 2022 salt pool).
std::unique_ptr<ReplayStateFile> replay_state_file(const char* prog, const Config& cfg,
                                                   const Specs& specs, const Runtime& rt) {
  if (cfg.state_dir.empty() || (!rt.replay_filter && !rt.salt_pool)) return nullptr;
  std::string dir = cfg.state_dir;
  if (dir.front() != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) != nullptr) dir = std::string(cwd) + "/" + dir;
  }
  const unsigned port = specs.listeners.empty() ? 0u : specs.listeners.front().port;
  const int64_t offset = specs.clock_offset;
  return std::make_unique<ReplayStateFile>(
      dir, std::string(prog) + "-" + std::to_string(port) + ".replay", rt.replay_filter,
      rt.salt_pool, [offset] { return static_cast<uint64_t>(time(nullptr) + offset); });
}

// The specs after a SIP008 refresh: the configured servers and the fetched ones, as configured
// (their plugins are arranged afterwards: relay/plugin.h). Nullopt (and a warning) if no server
// is left.
std::optional<Specs> with_fetched(const Specs& specs, const std::vector<ServerSpec>& configured,
                                  const std::vector<ServerSpec>& fetched) {
  Specs next = specs;
  next.servers = configured;
  next.servers.insert(next.servers.end(), fetched.begin(), fetched.end());
  if (next.servers.empty()) {
    LOG_WARN("online_config: no usable server in the new list; keeping the servers in use");
    return std::nullopt;
  }
  return next;
}

// Hands a new snapshot to every worker: its listeners give it to the connections they accept
// from now on; live connections keep theirs.
void publish(const std::vector<std::unique_ptr<Worker>>& workers,
             const std::shared_ptr<const Runtime>& rt) {
  for (const auto& w : workers) {
    Worker* wp = w.get();
    wp->tasks.post([wp, rt] {
      for (auto& l : wp->listeners) l->set_runtime(rt);
    });
  }
}

// The quota state file of this process (relay/user_limits.h): quota_state_file, or
// `state_dir`/<program>-<first listening port>.quota; the path made absolute now (-f changes to
// / later). Null if no user has a quota, or neither is set.
std::unique_ptr<QuotaStateFile> quota_state_file(const char* prog, const Config& cfg,
                                                 const Specs& specs, const Runtime& rt) {
  if (!rt.user_limits) return nullptr;
  bool any = false;
  for (const auto& u : rt.user_limits->states()) any = any || u->quota() != 0;
  if (!any) return nullptr;
  std::string path = cfg.quota_state_file;
  if (path.empty()) {
    if (cfg.state_dir.empty()) {
      LOG_NOTICE(
          "quota: no quota_state_file and no state_dir: the users' counts start from 0 at "
          "every start");
      return nullptr;
    }
    const unsigned port = specs.listeners.empty() ? 0u : specs.listeners.front().port;
    path = cfg.state_dir + "/" + prog + "-" + std::to_string(port) + ".quota";
  }
  if (path.front() != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) != nullptr) path = std::string(cwd) + "/" + path;
  }
  return std::make_unique<QuotaStateFile>(path, rt.user_limits);
}

}  // namespace

int run_app(Role role, int argc, char** argv, const InboundRegistry& inbounds,
            const ControllerFactory& control) {
  const char* prog = program_name(role);
  std::signal(SIGPIPE, SIG_IGN);
  Config cfg;
  try {
    auto loaded = load_config(role, argc, argv, std::cout, std::cerr);
    if (!loaded) return 0;
    cfg = std::move(*loaded);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
    return 1;
  }
  set_log_level(cfg.quiet          ? LogLevel::Error
                : cfg.verbose == 0 ? LogLevel::Notice
                : cfg.verbose == 1 ? LogLevel::Info
                                   : LogLevel::Debug);
  if (!cfg.log_file.empty()) {
    const std::string err = log_to_file(cfg.log_file);
    if (!err.empty()) {
      std::fprintf(stderr, "%s: --log-file: cannot open %s: %s\n", prog, cfg.log_file.c_str(),
                   err.c_str());
      return 1;
    }
  } else if (cfg.use_syslog || !cfg.pid_file.empty()) {
    // In the background stderr goes nowhere: log to syslog, as shadowsocks-libev does.
    log_to_syslog(prog);
  }
  if (cfg.nofile > 0) raise_nofile(prog, cfg.nofile);
  // Shared warnings name the role (the program's name without "ss-"): "local: refused target".
  warn::set_role(std::strncmp(prog, "ss-", 3) == 0 ? prog + 3 : prog);
  if (const std::string why = set_nameservers(cfg.nameserver); !why.empty()) {
    std::fprintf(stderr, "%s: nameserver: %s\n", prog, why.c_str());
    return 1;
  }
  if (cfg.merged_listeners > 0) {
    LOG_INFO("config: %zu duplicate listen address%s merged (one listener per distinct address)",
             cfg.merged_listeners, cfg.merged_listeners == 1 ? "" : "es");
  }
  // Look the user up now, so a typo fails before anything is bound or forked.
  std::optional<passwd> run_as;
  std::string run_as_name;
  if (!cfg.run_as_user.empty()) {
    errno = 0;
    const passwd* pw = getpwnam(cfg.run_as_user.c_str());
    if (pw == nullptr) {
      std::fprintf(stderr, "%s: user: no such user \"%s\"\n", prog, cfg.run_as_user.c_str());
      return 1;
    }
    run_as_name = pw->pw_name;
    run_as = *pw;
    run_as->pw_name = run_as_name.data();
    if (geteuid() != 0 && geteuid() != pw->pw_uid) {
      std::fprintf(stderr, "%s: user: cannot switch to \"%s\": only root can switch users\n", prog,
                   cfg.run_as_user.c_str());
      return 1;
    }
  }
  const int ready_fd = cfg.pid_file.empty() ? -1 : daemonize(prog);

  int nworkers = cfg.workers > 0
                     ? cfg.workers
                     : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  // The engine's snapshot: suites, router, limits. Listeners share it; each connection keeps a
  // reference to the one it was accepted with.
  const Specs configured = specs_of(cfg);
  uv_loop_t main_loop;
  uv_loop_init(&main_loop);
  // SIP008 (relay/online_config.h): the first fetch now, before anything is bound, on the main
  // loop; its servers join the configured ones. If it fails the configured servers serve alone,
  // and with none configured the process exits 1, as shadowsocks-rust's sslocal does.
  std::unique_ptr<OnlineConfig> online;
  std::vector<ServerSpec> fetched;
  if (cfg.online_config) {
    online = std::make_unique<OnlineConfig>(&main_loop, *cfg.online_config, role);
    std::string why;
    const std::string from = url_for_log(cfg.online_config->url);
    if (std::optional<std::vector<ServerSpec>> got = online->fetch_now(&why)) {
      fetched = std::move(*got);
      LOG_NOTICE("online_config: %zu server%s from %s, refreshed every %llu s", fetched.size(),
                 fetched.size() == 1 ? "" : "s", from.c_str(),
                 static_cast<unsigned long long>(cfg.online_config->update_interval_s));
    } else if (configured.servers.empty()) {
      std::fprintf(stderr,
                   "%s: online_config: the first fetch of %s failed: %s (and no server is "
                   "configured to fall back on)\n",
                   prog, from.c_str(), why.c_str());
      online->stop();
      uv_run(&main_loop, UV_RUN_DEFAULT);
      uv_loop_close(&main_loop);
      return 1;
    } else {
      LOG_WARN(
          "online_config: the first fetch of %s failed: %s; the %zu configured server%s "
          "serve%s until a fetch succeeds",
          from.c_str(), why.c_str(), configured.servers.size(),
          configured.servers.size() == 1 ? "" : "s", configured.servers.size() == 1 ? "s" : "");
    }
  }
  // A start-up error from here until the main state exists: the main loop is closed (no handle
  // of the program's is on it yet but the online fetcher's) and exit code 1.
  auto start_failed = [&] {
    if (online) {
      online->stop();
      uv_run(&main_loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&main_loop);
    return 1;
  };
  // SIP003 plugins (relay/plugin.h): their TCP goes through loopback ports picked now.
  Specs specs = configured;
  specs.servers.insert(specs.servers.end(), fetched.begin(), fetched.end());
  std::string runtime_error;
  std::vector<PluginLaunch> launches = arrange_plugins(specs, &runtime_error);
  if (!runtime_error.empty()) {
    std::fprintf(stderr, "%s: %s\n", prog, runtime_error.c_str());
    return start_failed();
  }
  // Tun listeners (client/tun): the devices first, so their NAT listeners can bind the devices'
  // own addresses. Needs CAP_NET_ADMIN.
  std::vector<ListenerSpec> tun6;  // the IPv6 NAT listeners of dual-stack devices
  // --tun-setup: deleted when run_app returns (after a signal too), once every worker stopped.
  std::unique_ptr<TunRoutes> tun_routes;
  for (ListenerSpec& spec : specs.listeners) {
    if (spec.protocol != ListenerSpec::Protocol::Tun) continue;
    std::string tun_error;
    // A flow's NAT entry outlives the relay's idle timeout, which closes the connection first.
    const uint64_t idle_ms =
        std::max<uint64_t>(600'000, (static_cast<uint64_t>(cfg.timeout) + 60) * 1000);
    // One queue per worker; SS_TUN_QUEUES=N in the environment (1 to the workers) sets fewer,
    // for measuring (README "tun mode").
    int queues = nworkers;
    if (const char* q = std::getenv("SS_TUN_QUEUES"); q != nullptr) {
      queues = std::clamp(std::atoi(q), 1, nworkers);
    }
    spec.tun_device = TunDevice::open(spec.tun_name, spec.tun_cidr, spec.tun_cidr6, spec.port,
                                      idle_ms, &tun_error, queues);
    if (!spec.tun_device) {
      std::fprintf(stderr, "%s: %s\n", prog, tun_error.c_str());
      return start_failed();
    }
    if (!spec.tun_dns.empty()) spec.tun_device->set_dns(make_tun_dns(spec));
    if (cfg.tun_setup) {
      tun_routes =
          TunRoutes::add(spec.tun_name, !spec.tun_cidr6.empty(), cfg.outbound_fwmark, &tun_error);
      if (!tun_routes) {
        std::fprintf(stderr, "%s: %s\n", prog, tun_error.c_str());
        return start_failed();
      }
    }
    spec.address = spec.tun_device->listener_host();
    spec.port = spec.tun_device->listener().port;
    if (!spec.tun_cidr6.empty()) {
      // The same device's IPv6 NAT listener: a listener only (no name: no second packet reader).
      ListenerSpec l6 = spec;
      l6.address = spec.tun_device->listener6_host();
      l6.tun_name.clear();
      l6.udp = false;
      tun6.push_back(std::move(l6));
    }
  }
  for (ListenerSpec& l6 : tun6) specs.listeners.push_back(std::move(l6));
  const std::shared_ptr<const Runtime> runtime = make_runtime(specs, &runtime_error);
  if (!runtime) {
    std::fprintf(stderr, "%s: %s\n", prog, runtime_error.c_str());
    return start_failed();
  }
  bool none = false;
  for (const ServerSpec& spec : specs.inbounds) none = none || spec.method_kind == MethodKind::None;
  for (const ServerSpec& spec : specs.servers) none = none || spec.method_kind == MethodKind::None;
  if (none) {
    LOG_WARN(
        "method \"none\": NO ENCRYPTION, NO AUTHENTICATION. Anyone on the path reads and "
        "alters this traffic, and anyone can use this proxy. For measurements only.");
  }

  const bool serve_udp = std::any_of(specs.listeners.begin(), specs.listeners.end(),
                                     [](const ListenerSpec& spec) {
                                       return spec.udp && spec.protocol != ListenerSpec::Protocol::Dns;
                                     });
  std::unique_ptr<UdpRelay> udp_relay;
  std::shared_ptr<UdpFronts> udp_fronts;
  // ss-server and ss-manager may add UDP ports at run time: the relay is there from the start.
  if (serves_ports(role)) udp_relay = std::make_unique<UdpRelay>();
  if (serve_udp) {
    if (!udp_relay) udp_relay = std::make_unique<UdpRelay>();
    std::string udp_error;
    udp_fronts = UdpFronts::make(specs, *udp_relay, &udp_error);
    if (udp_fronts && !specs.direct) udp_fronts->set_router(runtime->router);
    if (udp_fronts) udp_fronts->set_user_limits(runtime->user_limits);
    if (!udp_fronts) {
      std::fprintf(stderr, "%s: password: %s\n", prog, udp_error.c_str());
      return start_failed();
    }
  }

  // Quota counters: restored before any connection counts; written every 10 s and at exit. A
  // corrupt file stops the start (from zero, every user would get its whole quota again).
  std::unique_ptr<QuotaStateFile> quota = quota_state_file(prog, cfg, configured, *runtime);
  if (quota) {
    const std::string err = quota->load();
    if (!err.empty()) {
      std::fprintf(stderr, "%s: quota_state_file: %s\n", prog, err.c_str());
      return start_failed();
    }
  }

  // Set up every worker's loop and sockets on this thread, so a bind error ends start-up cleanly.
  std::vector<std::unique_ptr<Worker>> workers;
  MainState m;
  m.workers = &workers;
  m.loop = &main_loop;
  m.running = specs;
  m.snapshot = runtime;
  m.grace_ms = std::min<uint64_t>(kMaxGraceMs, static_cast<uint64_t>(cfg.timeout) * 1000);
  uv_signal_init(&main_loop, &m.sigint);
  uv_signal_init(&main_loop, &m.sigterm);
  uv_timer_init(&main_loop, &m.grace);
  uv_timer_init(&main_loop, &m.settle);
  uv_async_init(&main_loop, &m.worker_done, MainState::on_worker_done);
  uv_timer_init(&main_loop, &m.state_timer);
  uv_timer_init(&main_loop, &m.quota_timer);
  m.sigint.data = m.sigterm.data = m.grace.data = m.settle.data = m.worker_done.data =
      m.state_timer.data = m.quota_timer.data = &m;
  std::unique_ptr<ReplayStateFile> state = replay_state_file(prog, cfg, configured, *runtime);
  if (state) {
    state->load();
    m.state = state.get();
    if (cfg.replay_state_interval > 0) {
      const uint64_t ms = static_cast<uint64_t>(cfg.replay_state_interval) * 1000;
      uv_timer_start(&m.state_timer, MainState::on_state_timer, ms, ms);
    }
  }

  if (quota) {
    m.quota = quota.get();
    uv_timer_start(&m.quota_timer, MainState::on_quota_timer, kQuotaSaveMs, kQuotaSaveMs);
  }

  // Handlers before any socket is bound: a signal that arrives while the workers are set up is
  // handled once the main loop runs, rather than killing the process with the default action.
  uv_signal_start(&m.sigint, MainState::on_signal, SIGINT);
  uv_signal_start(&m.sigterm, MainState::on_signal, SIGTERM);
  uv_signal_init(&main_loop, &m.sighup);
  m.sighup.data = &m;
  uv_signal_start(&m.sighup, MainState::on_hup, SIGHUP);

  // Metrics: a slot per listening port and user, registered before any worker counts.
  std::unique_ptr<MetricsServer> metrics_server;
  std::vector<const metrics::PortSlots*> port_slots(specs.listeners.size(), nullptr);
  // The management API's per-user stats and ss-manager's ping read the same counters.
  if (!cfg.metrics_address.empty() || !cfg.api_address.empty() || cfg.count_ports) {
    metrics::set_start_time(static_cast<double>(time(nullptr)));
    for (size_t i = 0; i < specs.listeners.size(); ++i) {
      std::vector<std::string> names;  // the users of this listener's inbound (ss-server)
      const ListenerSpec& l = specs.listeners[i];
      if (l.protocol == ListenerSpec::Protocol::Shadowsocks && l.inbound < specs.inbounds.size()) {
        for (const UserSpec& u : specs.inbounds[l.inbound].users) names.push_back(u.name);
      }
      // Labelled by the public port: a plugin's listener (relay/plugin.h) has moved to loopback,
      // and the listeners the plugins' rewrite appended keep theirs.
      const uint16_t port =
          i < configured.listeners.size() ? configured.listeners[i].port : specs.listeners[i].port;
      port_slots[i] = metrics::add_port(port, names);
    }
    if (runtime->user_limits) {
      // The users' quotas: read from the table at each scrape (relaxed atomics, no lock).
      std::shared_ptr<UserLimits> limits = runtime->user_limits;
      metrics::set_user_quotas([limits] {
        std::vector<metrics::UserQuota> out;
        const int64_t now = limits->now_s();
        for (const auto& u : limits->states()) {
          if (u->quota() == 0) continue;
          out.push_back(
              {u->name(), static_cast<int64_t>(u->quota()), static_cast<int64_t>(u->used(now))});
        }
        return out;
      });
    }
    if (!cfg.metrics_address.empty()) {
      metrics_server = std::make_unique<MetricsServer>(&main_loop);
      m.metrics = metrics_server.get();
    }
    m.count_metrics = true;
  }

  // One worker per CPU the process may run on (its affinity mask), and pinning not turned off:
  // worker i runs on cpus[i] only, and the TCP listeners hand it the connections whose packets
  // that CPU received (keep-alive requests then stay on one core: no cross-core wake-ups).
  // Otherwise (fewer or more workers than CPUs, one worker) threads float and the kernel's hash
  // spreads connections.
  const std::vector<int> cpus = worker_cpus(nworkers, cfg.pin_workers);
  if (!cpus.empty()) LOG_DEBUG("workers pinned, one per CPU; connections steered by CPU");
  // One connection cap for the whole process: every listener of every worker counts against it.
  const auto connection_cap =
      std::make_shared<ConnectionCap>(default_max_connections(cfg.max_connections, cfg.workers));
  const bool reuse_port = cfg.reuse_port || nworkers > 1;
  UdpRelay* const relay_for_tcp = udp_relay.get();
  m.make_listener = [&inbounds, connection_cap, cpus, reuse_port, relay_for_tcp](
                        Worker& w, const ListenerSpec& spec, std::shared_ptr<const Runtime> rt,
                        const metrics::PortSlots* slots, int* err) {
    auto l = std::make_unique<Listener>(&w.loop, std::move(rt), inbounds(spec));
    l->set_inbound(spec.inbound);
    l->set_reuse_port(reuse_port);
    l->set_transparent(spec.transparent);
    l->set_connection_cap(connection_cap);
    l->set_cpu_steering(cpus);
    l->set_metrics(slots);
    l->set_udp(relay_for_tcp);
    *err = l->listen(spec.address, spec.port);
    return l;
  };
  int status = 0;
  const UdpNatOptions udp_options{
      specs.limits.udp_timeout, nat_share(specs.limits.udp_max_associations, nworkers),
      specs.tcp.ipv6_first, cfg.reuse_port || nworkers > 1, specs.tcp.fwmark};
  if (serves_ports(role)) {
    m.udp_relay = udp_relay.get();
    m.udp_options = udp_options;
  }
  for (int i = 0; i < nworkers && status == 0; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    uv_loop_init(&w->loop);
    if (serve_udp) w->udp = std::make_unique<UdpNat>(&w->loop, *udp_relay, udp_options);
    w->by_spec.assign(specs.listeners.size(), nullptr);
    w->udp_by_spec.assign(specs.listeners.size(), kNoUdpSocket);
    w->udp_fronts_by_spec.resize(specs.listeners.size());
    for (const ListenerSpec& spec : specs.listeners) {
      const std::string& host = spec.address;
      const uint16_t port = spec.port;
      if (spec.protocol == ListenerSpec::Protocol::Dns) continue;  // on the main loop (below)
      if (spec.protocol == ListenerSpec::Protocol::Tun) {
        // Worker i reads the device's queue i (one queue per worker: IFF_MULTI_QUEUE); its UDP
        // flows go to its own UDP NAT. Every worker's listener accepts from the TCP NAT.
        if (i < spec.tun_device->queues() && !spec.tun_name.empty()) {
          const bool udp = w->udp && spec.udp;
          w->tuns.push_back(std::make_unique<TunEngine>(
              &w->loop, spec.tun_device, i, udp ? w->udp.get() : nullptr,
              udp ? udp_fronts->inbound(spec) : nullptr,
              udp ? udp_fronts->outbound(spec) : nullptr));
          const int r = w->tuns.back()->start();
          if (r != 0) {
            std::fprintf(stderr, "%s: tun %s: %s\n", prog, spec.tun_name.c_str(), uv_strerror(r));
            status = 1;
            break;
          }
          if (i == 0) {
            LOG_NOTICE("%s: tun %s up (%s, %d queue%s), TCP%s", prog, spec.tun_name.c_str(),
                       spec.tun_cidr.c_str(), spec.tun_device->queues(),
                       spec.tun_device->queues() == 1 ? "" : "s",
                       udp ? " and UDP" : " only (UDP: mode)");
          }
        }
      } else if (w->udp && spec.udp) {
        const bool tproxy = udp_fronts->transparent(spec);
        const size_t index = static_cast<size_t>(&spec - specs.listeners.data());
        UdpSocketId at = kNoUdpSocket;
        int r = w->udp->listen(host, port, udp_fronts->inbound(spec, port_slots[index]),
                               udp_fronts->outbound(spec), tproxy, &at);
        if (r == 0) {
          w->udp_by_spec[index] = at;
          w->udp_fronts_by_spec[index] = udp_fronts;
        }
        if (r != 0) {
          std::fprintf(stderr, "%s: cannot listen on UDP %s port %u: %s%s\n", prog, host.c_str(),
                       static_cast<unsigned>(port), uv_strerror(r),
                       tproxy && r == UV_EPERM ? " (TPROXY needs CAP_NET_ADMIN)" : "");
          status = 1;
          break;
        }
        if (i == 0) {
          LOG_NOTICE("%s listening on UDP %s port %u (%s)", prog, host.c_str(),
                     static_cast<unsigned>(port), method_text(cfg, specs, spec).c_str());
        }
      }
      if (!serve_tcp(spec)) continue;
      const size_t index = static_cast<size_t>(&spec - specs.listeners.data());
      int r = 0;
      std::unique_ptr<Listener> l = m.make_listener(*w, spec, runtime, port_slots[index], &r);
      w->by_spec[index] = l.get();
      if (r != 0) {
        std::fprintf(stderr, "%s: cannot listen on TCP %s port %u: %s%s\n", prog, host.c_str(),
                     static_cast<unsigned>(port), uv_strerror(r),
                     spec.transparent && r == UV_EPERM ? " (TPROXY, -T, needs CAP_NET_ADMIN)" : "");
        status = 1;
        w->listeners.push_back(std::move(l));
        break;
      }
      if (i == 0) {
        const char* what = protocol_text(spec.protocol);
        LOG_NOTICE("%s listening on TCP %s port %u (%s; %s, %d worker%s)", prog, host.c_str(),
                   static_cast<unsigned>(port), what, method_text(cfg, specs, spec).c_str(),
                   nworkers, nworkers == 1 ? "" : "s");
        if (spec.forward) {
          LOG_NOTICE("  tunnel to %s", spec.forward->to_string().c_str());
        }
      }
      w->listeners.push_back(std::move(l));
    }
    w->tasks.init(&w->loop);
    w->wake.data = w.get();
    uv_async_init(&w->loop, &w->wake, Worker::on_wake);
    w->drain_poll.data = w.get();
    uv_timer_init(&w->loop, &w->drain_poll);
    workers.push_back(std::move(w));
  }
  if (status == 0) {
    for (const ServerSpec& spec : specs.servers) {
      LOG_NOTICE("server %s port %u (%s)", spec.host.c_str(), static_cast<unsigned>(spec.port),
                 spec.method.c_str());
    }
  }
  if (metrics_server && status == 0) {
    const std::optional<Address> at = parse_host_port(cfg.metrics_address);
    const int r = metrics_server->listen(*at);
    if (r != 0) {
      std::fprintf(stderr, "%s: metrics_address: cannot listen on %s: %s\n", prog,
                   cfg.metrics_address.c_str(), uv_strerror(r));
      status = 1;
    } else {
      LOG_NOTICE("metrics at http://%s/metrics", cfg.metrics_address.c_str());
    }
  }
  if (cfg.tcp_tproxy && status == 0) {
    LOG_NOTICE("TPROXY (-T): the listening sockets are transparent");
  }

  // Sockets are bound: the pid file, the switch to the -a user, and then the worker threads.
  if (status == 0 && ready_fd >= 0 && !finish_daemon(prog, cfg.pid_file, ready_fd)) status = 1;
  if (status == 0 && run_as) {
    const std::string err = drop_privileges(*run_as);
    if (!err.empty()) {
      std::fprintf(stderr, "%s: user: cannot switch to \"%s\": %s\n", prog, run_as->pw_name,
                   err.c_str());
      status = 1;
    } else {
      LOG_NOTICE("running as user %s (uid %u)", run_as->pw_name,
                 static_cast<unsigned>(run_as->pw_uid));
    }
  }

  // The plugins, from the main loop, once our sockets are bound and as the -a user.
  PluginSupervisor plugins(&main_loop, std::move(launches));
  m.plugins = &plugins;
  if (status == 0) {
    std::string plugin_error;
    if (!plugins.start(&plugin_error)) {
      std::fprintf(stderr, "%s: %s\n", prog, plugin_error.c_str());
      status = 1;
    }
  }

  for (auto& w : workers) {
    w->main_wake = &m.worker_done;
    Worker* wp = w.get();
    const int cpu = cpus.empty() ? -1 : cpus[static_cast<size_t>(wp->index)];
    w->thread = std::thread([wp, cpu] {
      if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      }
      uv_run(&wp->loop, UV_RUN_DEFAULT);
      wp->loop_ended.store(true);
      uv_async_send(wp->main_wake);
    });
  }
  // ss-local's DNS inbounds, on the main loop (client/dns/dns_inbound.h).
  std::vector<std::unique_ptr<DnsInbound>> dns_inbounds;
  if (status == 0) {
    std::vector<std::string> server_hosts;
    for (const ServerSpec& s : configured.servers) server_hosts.push_back(s.host);
    for (const ListenerSpec& spec : specs.listeners) {
      if (spec.protocol != ListenerSpec::Protocol::Dns) continue;
      dns_inbounds.push_back(
          std::make_unique<DnsInbound>(&main_loop, spec, runtime, specs.acl, server_hosts));
      m.dns.push_back(dns_inbounds.back().get());
      const char* what = "";
      const int r = dns_inbounds.back()->start(&what);
      if (r != 0) {
        std::fprintf(stderr, "%s: cannot listen on %s %s port %u: %s\n", prog, what,
                     spec.address.c_str(), static_cast<unsigned>(spec.port), uv_strerror(r));
        status = 1;
        break;
      }
      LOG_NOTICE("%s listening on %s%s%s %s port %u (DNS: local resolver %s, remote %s)", prog,
                 spec.udp ? "UDP" : "", spec.udp && spec.tcp ? " and " : "", spec.tcp ? "TCP" : "",
                 spec.address.c_str(), static_cast<unsigned>(spec.port),
                 spec.local_dns->to_string().c_str(), spec.remote_dns->to_string().c_str());
    }
  }
  if (status != 0) {
    for (DnsInbound* d : m.dns) d->stop();
    m.tell_all(kCloseAll);
  }
  m.router = runtime->router.get();
  if (status == 0) m.router->start_probes(&main_loop);
  if (metrics_server) {
    // The balancer's gauges, read at each scrape (on this loop) from the router in use.
    metrics::set_balancer([&m] {
      std::vector<metrics::BalancerServer> out;
      for (const ServerHealth& h : m.router->health()) {
        out.push_back(
            {h.server, h.up, h.udp_up, h.udp_probed, h.current, h.last_rtt_us, h.score_ms});
      }
      return out;
    });
  }
  // Refreshes of the SIP008 list and the clients' reloads: a new snapshot with the configured
  // servers and the fetched ones, published to every worker; live connections keep theirs, and
  // the balancer keeps the health of the servers that stay. False (nothing changed), with the
  // reason in *why, if keys are unusable.
  std::shared_ptr<const Runtime> current = runtime;
  Specs base = specs;  // a client reload replaces its servers, balancer and ACL
  std::vector<ServerSpec> configured_servers = configured.servers;
  // A server whose plugin is new gets it started (relay/plugin.h), and the snapshot is published
  // once each new plugin listens (at once when none is new); the plugins of servers no longer
  // listed are retired then (they stop once their connections have ended). A newer snapshot that
  // comes meanwhile wins.
  uint64_t installs = 0;
  auto install = [&](Specs next, std::string* why) {
    const std::vector<PluginLaunch> before = plugins.current();
    std::vector<PluginLaunch> wanted = arrange_plugins(next, why, before);
    if (!why->empty()) return false;
    std::shared_ptr<const Runtime> rt = make_runtime(next, why, current.get());
    if (!rt) return false;
    std::vector<uint16_t> started;
    if (!plugins.start_new(wanted, &started, why)) return false;
    if (udp_fronts && !udp_fronts->set_servers(next, rt->router, why)) {
      *why += " (UDP)";
      plugins.retire_except(before);
      return false;
    }
    const uint64_t n = ++installs;
    plugins.when_listening(std::move(started), [&, rt, wanted = std::move(wanted), n] {
      if (n != installs || m.signals > 0) return;  // a newer snapshot, or shutting down
      rt->router->restore_health(current->router->health());
      current->router->stop_probes();
      publish(workers, rt);
      for (DnsInbound* d : m.dns) d->set_runtime(rt);
      current = rt;
      m.router = rt->router.get();
      m.router->start_probes(&main_loop);
      plugins.retire_except(wanted);
    });
    return true;
  };
  if (online && status == 0) {
    m.online = online.get();
    online->start(fetched, [&](const std::vector<ServerSpec>& now) {
      std::optional<Specs> with = with_fetched(base, configured_servers, now);
      if (!with) return false;
      std::string why;
      if (!install(std::move(*with), &why)) {
        LOG_WARN("online_config: the new list is not usable (%s); keeping the servers in use",
                 why.c_str());
        return false;
      }
      return true;
    });
  } else if (online) {
    online->stop();
  }
  // ss-local, ss-tunnel, ss-redir: SIGHUP applies the -c file's servers, balancer and ACL
  // (relay/client_reload.h).
  if (status == 0 && !control && !serves_ports(role)) {
    m.controller = std::make_unique<ClientReload>(
        role, cfg, argc, argv, [&](const Config& next_cfg, std::string* why) {
          const Specs from = specs_of(next_cfg);
          Specs next_base = base;
          next_base.servers = from.servers;
          next_base.balancer = from.balancer;
          next_base.acl = from.acl;
          const std::vector<ServerSpec> none;
          std::optional<Specs> with =
              with_fetched(next_base, from.servers, online ? online->current() : none);
          if (!with) {
            *why = "servers: no usable server";
            return false;
          }
          if (!install(std::move(*with), why)) return false;
          base = std::move(next_base);
          configured_servers = from.servers;
          return true;
        });
  }
  if (status == 0 && control) {
    m.controller = control(m, cfg, argc, argv);
    std::string error;
    if (!m.controller) {  // it could not start (it said why): stop, exit 1
      status = 1;
      m.tell_all(kCloseAll);
    } else if (!m.controller->start(&main_loop, &error)) {
      std::fprintf(stderr, "%s: %s\n", prog, error.c_str());
      status = 1;
      m.tell_all(kCloseAll);
    }
  }
  uv_run(&main_loop, UV_RUN_DEFAULT);
  metrics::set_balancer(nullptr);

  for (auto& w : workers) {
    if (w->thread.joinable()) w->thread.join();
    w->listeners.clear();
    w->tuns.clear();
    if (w->udp) {
      LOG_DEBUG("udp: worker %d: %llu datagrams in", w->index,
                static_cast<unsigned long long>(w->udp->stats().packets_in));
      udp_relay->add_stats(w->udp->stats());
    }
    w->udp.reset();
    if (uv_loop_close(&w->loop) != 0)
      LOG_WARN("worker %d: event loop closed with live handles", w->index);
  }
  if (udp_relay && status == 0) udp_relay->log_summary();
  if (state) state->save();
  if (quota) quota->save();
  if (uv_loop_close(&main_loop) != 0) LOG_WARN("main loop closed with live handles");
  if (ready_fd >= 0 && status == 0) unlink(cfg.pid_file.c_str());  // may fail after -a: harmless
  return status;
}

}  // namespace ss
