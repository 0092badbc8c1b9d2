// Process start-up and shutdown: configuration, logging, listeners, signals, the loop.

#include "relay/app.h"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "relay/log.h"
#include "relay/udp_relay.h"

namespace ss {
namespace {

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

struct SignalState {
  Listener* listener;
  UdpRelay* udp;
  uv_signal_t sigint;
  uv_signal_t sigterm;
};

void on_signal(uv_signal_t* handle, int signum) {
  auto* st = static_cast<SignalState*>(handle->data);
  LOG_INFO("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
  st->listener->shutdown();
  if (st->udp != nullptr) st->udp->shutdown();
  uv_close(reinterpret_cast<uv_handle_t*>(&st->sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&st->sigterm), nullptr);
}

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

  uv_loop_t loop;
  uv_loop_init(&loop);
  int status = 0;
  {
    // ss-local needs its TCP listener for SOCKS5 even in udp_only mode (UDP ASSOCIATE).
    bool serve_tcp = cfg.mode != Mode::UdpOnly || role == Role::Local;
    bool serve_udp = cfg.mode != Mode::TcpOnly;
    std::unique_ptr<UdpRelay> udp;
    if (serve_udp) udp = std::make_unique<UdpRelay>(&loop, cfg);
    Listener listener(&loop, cfg, std::move(factory));
    listener.set_udp(udp.get());
    std::vector<std::string> hosts =
        role == Role::Server ? cfg.server : std::vector<std::string>{cfg.local_address};
    uint16_t port = role == Role::Server ? cfg.server_port : cfg.local_port;
    for (const std::string& host : hosts) {
      if (status != 0) break;
      for (int proto = 0; proto < 2; ++proto) {
        bool is_udp = proto == 1;
        if (is_udp ? !serve_udp : !serve_tcp) continue;
        int r = is_udp ? udp->listen(host, port) : listener.listen(host, port);
        if (r != 0) {
          std::fprintf(stderr, "%s: cannot listen on %s %s port %u: %s\n", prog,
                       is_udp ? "UDP" : "TCP", host.c_str(), static_cast<unsigned>(port),
                       uv_strerror(r));
          status = 1;
          break;
        }
        LOG_INFO("%s listening on %s %s port %u (%s)", prog, is_udp ? "UDP" : "TCP", host.c_str(),
                 static_cast<unsigned>(port), cfg.method.c_str());
      }
    }
    if (role == Role::Tunnel && status == 0) {
      LOG_INFO("tunnel to %s through %s port %u", cfg.tunnel_target->to_string().c_str(),
               cfg.server.front().c_str(), static_cast<unsigned>(cfg.server_port));
    }
    SignalState sig{&listener, udp.get(), {}, {}};
    uv_signal_init(&loop, &sig.sigint);
    uv_signal_init(&loop, &sig.sigterm);
    sig.sigint.data = &sig;
    sig.sigterm.data = &sig;
    if (status == 0) {
      uv_signal_start(&sig.sigint, on_signal, SIGINT);
      uv_signal_start(&sig.sigterm, on_signal, SIGTERM);
    } else {
      listener.shutdown();
      if (udp) udp->shutdown();
      uv_close(reinterpret_cast<uv_handle_t*>(&sig.sigint), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&sig.sigterm), nullptr);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(&loop) != 0) LOG_WARN("event loop closed with live handles");
  return status;
}

}  // namespace ss
