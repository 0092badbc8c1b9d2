#pragma once
// SIP003 plugins: a child process that carries our TCP between two endpoints it is told in its
// environment (SS_REMOTE_HOST/PORT, SS_LOCAL_HOST/PORT, SS_PLUGIN_OPTIONS).
//
//   client: our outbound -> 127.0.0.1:P (the plugin, SS_LOCAL) -> the server (SS_REMOTE)
//   server: the client -> address:port (the plugin, SS_REMOTE) -> 127.0.0.1:P (our listener,
//           SS_LOCAL)
//
// UDP never goes through a plugin (SIP003 plugins are TCP tunnels): a client sends it to the
// server's own address and port, a server takes it on its public address and port, as
// shadowsocks-libev does (and shadowsocks-rust in its default "tcp_only" plugin mode).
//
// arrange_plugins() rewrites the specs before the runtime is built from them; a PluginSupervisor
// on the main loop runs the processes: it restarts one that dies (after a back-off that doubles
// from 1 s to 30 s, reset once it has run 30 s), logs what it prints (stdout and stderr, line by
// line, prefixed with its name), and on stop() sends SIGTERM, then SIGKILL to any still running
// after a grace period. Its handles are closed once every child has been reaped. Each plugin is
// started through util-linux's setpriv --pdeathsig TERM when setpriv is on PATH, so that it ends
// even when we are killed with SIGKILL.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "relay/config.h"

struct uv_loop_s;

namespace ss {

// One plugin process: its program and options, and the SIP003 endpoints.
struct PluginLaunch {
  PluginSpec spec;
  std::string remote_host;  // SS_REMOTE_HOST
  uint16_t remote_port = 0;
  std::string local_host;  // SS_LOCAL_HOST
  uint16_t local_port = 0;
  std::string what;  // for logs: "server 203.0.113.5:8388", "listener 0.0.0.0:8388"
};

// Sends the TCP of every spec with a plugin through one: a server's TCP to a free loopback port
// where its plugin will listen (ServerSpec::tcp_via); a Shadowsocks listener's TCP to a free
// loopback port, its public address left to the plugin (and to a UDP-only listener of ours when
// it serves UDP). Returns the plugins to run; empty with *error if no free port is found.
std::vector<PluginLaunch> arrange_plugins(Specs& specs, std::string* error);

// The child's environment: `base` ("NAME=value" strings, e.g. environ) without any SS_* variable
// of SIP003's, plus this launch's.
std::vector<std::string> plugin_environment(const PluginLaunch& launch,
                                            const std::vector<std::string>& base);

// The file `name` runs: `name` itself if it holds a '/', else the first executable regular file
// of that name in the ':'-separated `path` (an empty entry is "."). Empty if none.
std::string find_program(const std::string& name, const std::string& path);

class PluginSupervisor {
 public:
  PluginSupervisor(uv_loop_s* loop, std::vector<PluginLaunch> launches);
  ~PluginSupervisor();
  PluginSupervisor(const PluginSupervisor&) = delete;
  PluginSupervisor& operator=(const PluginSupervisor&) = delete;

  // Starts every plugin. False, with "plugin: ..." in *error, if one cannot be started at all
  // (no such program, not executable): the caller exits 1, as shadowsocks-libev does.
  bool start(std::string* error);
  // SIGTERM to every child, SIGKILL after the grace; no more restarts. Idempotent. The loop runs
  // until each child has been reaped and every handle closed.
  void stop();
  // For an exit that does not wait for the loop: SIGTERM to every running child, now.
  void kill_now();
  // Children running (for tests and logs).
  size_t running() const;
  std::vector<pid_t> pids() const;

  struct Process;
  struct Child;

 private:
  uv_loop_s* loop_;
  std::vector<std::unique_ptr<Process>> processes_;
  struct KillTimer;
  KillTimer* kill_timer_ = nullptr;  // freed by its close callback
  std::string setpriv_;              // util-linux's setpriv, if found (the parent-death signal)
  bool stopping_ = false;
};

}  // namespace ss
