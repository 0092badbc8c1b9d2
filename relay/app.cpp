// Process start-up and shutdown.
//
// One libuv loop per worker thread. Each worker owns its TCP listener(s), bound with
// SO_REUSEPORT when there is more than one worker so the kernel spreads new connections, and the
// sessions it accepted. UDP runs on worker 0 only, so a 2022 UDP session or an ss-local UDP
// association never has to move between loops; ss-local's other workers reach it through its
// thread-safe control registry. The cipher suite (and with it any replay pool) is shared.
//
// The main thread only handles signals. On SIGINT/SIGTERM every worker stops accepting and
// closes its UDP side; live TCP sessions get a grace period (min(timeout, 10 s)) to finish, then
// are closed, and the process exits 0. A second signal closes everything at once. Sessions that
// are closed but wait for a DNS lookup already running in libuv's thread pool are not waited for:
// once only those are left, the process exits 0 at once.

#include "relay/app.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "relay/log.h"
#include "relay/method.h"
#include "relay/session.h"
#include "relay/udp_relay.h"

namespace ss {
namespace {

constexpr uint64_t kMaxGraceMs = 10'000;
constexpr uint64_t kDrainPollMs = 50;

const char* program_name(Role role) {
  switch (role) {
    case Role::Local:
      return "ss-local";
    case Role::Tunnel:
      return "ss-tunnel";
    case Role::Server:
      return "ss-server";
  }
  return "ss";
}

enum Command : int { kRun = 0, kDrain = 1, kCloseAll = 2 };

struct Worker {
  int index = 0;
  uv_loop_t loop;
  std::unique_ptr<UdpRelay> udp;
  std::unique_ptr<Listener> listener;
  uv_async_t wake;
  uv_timer_t drain_poll;
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
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&drain_poll), nullptr);
  }

  static void on_wake(uv_async_t* a) {
    auto* w = static_cast<Worker*>(a->data);
    int cmd = w->command.load();
    if (cmd >= kDrain && !w->draining) {
      w->draining = true;
      w->listener->drain();
      if (w->udp) w->udp->shutdown();
      uv_timer_start(&w->drain_poll, on_drain_poll, 0, kDrainPollMs);
    }
    if (cmd >= kCloseAll) {
      w->listener->shutdown();
      w->finish();
    }
  }

  static void on_drain_poll(uv_timer_t* t) {
    auto* w = static_cast<Worker*>(t->data);
    if (w->listener->session_count() == 0) w->finish();
  }
};

struct MainState {
  std::vector<std::unique_ptr<Worker>>* workers;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_timer_t grace;
  uv_timer_t settle;  // after the first signal: are only orphaned DNS lookups left?
  uv_async_t worker_done;
  std::shared_ptr<std::atomic<size_t>> live;
  uint64_t grace_ms = kMaxGraceMs;
  int signals = 0;

  void tell_all(Command c) {
    for (auto& w : *workers) {
      int cur = w->command.load();
      while (cur < c && !w->command.compare_exchange_weak(cur, c)) {
      }
      uv_async_send(&w->wake);
    }
  }

  static void on_signal(uv_signal_t* h, int signum) {
    auto* m = static_cast<MainState*>(h->data);
    ++m->signals;
    if (m->signals == 1) {
      LOG_INFO("received %s: no new connections; open ones get %llu s to finish",
               signum == SIGINT ? "SIGINT" : "SIGTERM",
               static_cast<unsigned long long>(m->grace_ms / 1000));
      m->tell_all(kDrain);
      uv_timer_start(&m->grace, on_grace, m->grace_ms, 0);
      uv_timer_start(&m->settle, on_settle, kDrainPollMs, kDrainPollMs);
    } else {
      LOG_INFO("received a second signal: closing every connection now");
      m->tell_all(kCloseAll);
    }
  }

  // Every session left is closed and waits only for a lookup running in libuv's thread pool,
  // which cannot be cancelled and may take the resolver's whole timeout (30 s and more): the
  // loops would not end before it returns. Nothing is left to flush, so exit now.
  static void on_settle(uv_timer_t* t) {
    auto* m = static_cast<MainState*>(t->data);
    const size_t orphans = Session::orphaned_lookups();
    if (orphans == 0 || m->live->load() != orphans) return;
    LOG_INFO("exiting without waiting for %zu DNS lookup%s still running in the resolver", orphans,
             orphans == 1 ? "" : "s");
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(0);
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
    uv_close(reinterpret_cast<uv_handle_t*>(&m->sigint), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->sigterm), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->grace), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->settle), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&m->worker_done), nullptr);
  }
};

}  // namespace

int run_app(Role role, int argc, char** argv, Listener::Factory factory) {
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
  set_log_level(cfg.verbose > 0 ? LogLevel::Debug : LogLevel::Info);

  int nworkers = cfg.workers > 0
                     ? cfg.workers
                     : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  // ss-local needs its TCP listener for SOCKS5 even in udp_only mode (UDP ASSOCIATE).
  bool serve_tcp = cfg.mode != Mode::UdpOnly || role == Role::Local;
  bool serve_udp = cfg.mode != Mode::TcpOnly;
  std::string suite_error;
  std::shared_ptr<const TcpCipherSuite> suite = make_tcp_suite(cfg, &suite_error);
  if (!suite) {
    std::fprintf(stderr, "%s: password: %s\n", prog, suite_error.c_str());
    return 1;
  }
  if (cfg.method_kind == MethodKind::None) {
    LOG_WARN(
        "method \"none\": NO ENCRYPTION, NO AUTHENTICATION. Anyone on the path reads and "
        "alters this traffic, and anyone can use this proxy. For measurements only.");
  }
  std::vector<std::string> hosts =
      role == Role::Server ? cfg.server : std::vector<std::string>{cfg.local_address};
  uint16_t port = role == Role::Server ? cfg.server_port : cfg.local_port;

  // Set up every worker's loop and sockets on this thread, so a bind error ends start-up cleanly.
  std::vector<std::unique_ptr<Worker>> workers;
  auto live_sessions = std::make_shared<std::atomic<size_t>>(0);
  uv_loop_t main_loop;
  uv_loop_init(&main_loop);
  MainState m;
  m.workers = &workers;
  m.grace_ms = std::min<uint64_t>(kMaxGraceMs, static_cast<uint64_t>(cfg.timeout) * 1000);
  uv_signal_init(&main_loop, &m.sigint);
  uv_signal_init(&main_loop, &m.sigterm);
  uv_timer_init(&main_loop, &m.grace);
  uv_timer_init(&main_loop, &m.settle);
  m.live = live_sessions;
  uv_async_init(&main_loop, &m.worker_done, MainState::on_worker_done);
  m.sigint.data = m.sigterm.data = m.grace.data = m.settle.data = m.worker_done.data = &m;

  // Handlers before any socket is bound: a signal that arrives while the workers are set up is
  // handled once the main loop runs, rather than killing the process with the default action.
  uv_signal_start(&m.sigint, MainState::on_signal, SIGINT);
  uv_signal_start(&m.sigterm, MainState::on_signal, SIGTERM);

  size_t max_sessions = default_max_connections(cfg);
  int status = 0;
  for (int i = 0; i < nworkers && status == 0; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    uv_loop_init(&w->loop);
    if (i == 0 && serve_udp) w->udp = std::make_unique<UdpRelay>(&w->loop, cfg);
    w->listener = std::make_unique<Listener>(&w->loop, cfg, factory, suite);
    w->listener->set_reuse_port(cfg.reuse_port || nworkers > 1);
    w->listener->set_connection_limit(
        live_sessions, max_sessions,
        max_sessions == 0 ? 0 : std::max<size_t>(1, max_sessions / static_cast<size_t>(nworkers)));
    for (const std::string& host : hosts) {
      if (i == 0 && w->udp) {
        int r = w->udp->listen(host, port);
        if (r != 0) {
          std::fprintf(stderr, "%s: cannot listen on UDP %s port %u: %s\n", prog, host.c_str(),
                       static_cast<unsigned>(port), uv_strerror(r));
          status = 1;
          break;
        }
        LOG_INFO("%s listening on UDP %s port %u (%s)", prog, host.c_str(),
                 static_cast<unsigned>(port), cfg.method.c_str());
      }
      if (serve_tcp) {
        int r = w->listener->listen(host, port);
        if (r != 0) {
          std::fprintf(stderr, "%s: cannot listen on TCP %s port %u: %s\n", prog, host.c_str(),
                       static_cast<unsigned>(port), uv_strerror(r));
          status = 1;
          break;
        }
        if (i == 0) {
          LOG_INFO("%s listening on TCP %s port %u (%s, %d worker%s)", prog, host.c_str(),
                   static_cast<unsigned>(port), cfg.method.c_str(), nworkers,
                   nworkers == 1 ? "" : "s");
        }
      }
    }
    w->wake.data = w.get();
    uv_async_init(&w->loop, &w->wake, Worker::on_wake);
    w->drain_poll.data = w.get();
    uv_timer_init(&w->loop, &w->drain_poll);
    workers.push_back(std::move(w));
  }
  // Every worker can reach the UDP relay (ss-local's UDP ASSOCIATE).
  if (!workers.empty() && workers.front()->udp) {
    for (auto& w : workers) w->listener->set_udp(workers.front()->udp.get());
  }
  if (role == Role::Tunnel && status == 0) {
    LOG_INFO("tunnel to %s through %s port %u", cfg.tunnel_target->to_string().c_str(),
             cfg.server.front().c_str(), static_cast<unsigned>(cfg.server_port));
  }

  for (auto& w : workers) {
    w->main_wake = &m.worker_done;
    Worker* wp = w.get();
    w->thread = std::thread([wp] {
      uv_run(&wp->loop, UV_RUN_DEFAULT);
      wp->loop_ended.store(true);
      uv_async_send(wp->main_wake);
    });
  }
  if (status != 0) m.tell_all(kCloseAll);
  uv_run(&main_loop, UV_RUN_DEFAULT);

  for (auto& w : workers) {
    if (w->thread.joinable()) w->thread.join();
    w->listener.reset();
    w->udp.reset();
    if (uv_loop_close(&w->loop) != 0)
      LOG_WARN("worker %d: event loop closed with live handles", w->index);
  }
  if (uv_loop_close(&main_loop) != 0) LOG_WARN("main loop closed with live handles");
  return status;
}

}  // namespace ss
