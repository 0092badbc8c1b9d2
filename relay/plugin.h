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
//
// At run time (ss-server's reload, ss-manager's add and remove, a SIP008 refresh) the same
// supervisor starts the plugins a new configuration adds (start_new) and retires those it no
// longer has (retire_except). A plugin that keeps its spec keeps its process and loopback port
// (arrange_plugins reuses them), so its live connections are untouched. A retired plugin gets no
// new connections (the snapshot published no longer routes to it), and SIGTERM only once no
// connection through its loopback port is left: the kernel's socket table (/proc/net/tcp) is the
// count, so every worker's connections are seen with no counter on the data path. SIGKILL follows
// 3 s after SIGTERM. A server's plugin listens on the public port: a new one for that port starts
// once the old one has been reaped (until then the port has a gap: README, "Plugins").

#include <sys/types.h>

#include <cstdint>
#include <functional>
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
  // A listener's plugin: it binds SS_REMOTE (a public port) rather than SS_LOCAL (loopback).
  bool binds_remote = false;
};

// The same plugin for the same endpoint (all but the loopback port): a reload keeps it running.
bool same_plugin(const PluginLaunch& a, const PluginLaunch& b);

// Whether a TCP socket on 127.0.0.1 other than a listening or closing one (TIME_WAIT, CLOSE) has
// `port` at either end, in /proc/net/tcp's text `table`. listening: whether one listens on it.
bool loopback_port_busy(const std::string& table, uint16_t port);
bool loopback_port_listening(const std::string& table, uint16_t port);

// Sends the TCP of every spec with a plugin through one: a server's TCP to a free loopback port
// where its plugin will listen (ServerSpec::tcp_via); a Shadowsocks listener's TCP to a free
// loopback port, its public address left to the plugin (and to a UDP-only listener of ours when
// it serves UDP). Returns the plugins to run; empty with *error if no free port is found. A plugin
// the same as one of `running` (same_plugin) keeps its loopback port; new ones get a port that
// none of `running` has.
std::vector<PluginLaunch> arrange_plugins(Specs& specs, std::string* error,
                                          const std::vector<PluginLaunch>& running = {});

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
  // Run time, after start(): starts each of `launches` not running yet (same_plugin); the loopback
  // ports of those started go to *started. False with "plugin: ..." in *error, and nothing
  // started, if one's program cannot be found. A listener's plugin is spawned after a short delay
  // (the workers close our TCP listener on its public port first), or once a retired plugin on
  // the same public port has been reaped.
  bool start_new(const std::vector<PluginLaunch>& launches, std::vector<uint16_t>* started,
                 std::string* error);
  // Run time: retires every running plugin not in `launches` (see the top of this file).
  void retire_except(const std::vector<PluginLaunch>& launches);
  // Calls `ready` once a plugin listens on each of the loopback `ports` (at most 5 s; later, with
  // a warning, if one does not). Now if `ports` is empty.
  void when_listening(std::vector<uint16_t> ports, std::function<void()> ready);
  // The plugins that run or will (not the retired ones): what arrange_plugins keeps.
  std::vector<PluginLaunch> current() const;
  // Whether a listener's plugin, running or retired and not yet reaped, serves host:port.
  bool holds_public_port(const std::string& host, uint16_t port) const;
  // For an exit that does not wait for the loop: SIGTERM to every running child, now.
  void kill_now();
  // Children running (for tests and logs).
  size_t running() const;
  std::vector<pid_t> pids() const;

  struct Process;
  struct Child;
  friend bool port_held(const std::vector<std::unique_ptr<Process>>& all, const Process& p);

 private:
  uv_loop_s* loop_;
  std::vector<std::unique_ptr<Process>> processes_;
  struct KillTimer;
  struct ReadyWait;
  KillTimer* kill_timer_ = nullptr;  // freed by its close callback
  std::vector<ReadyWait*> waits_;    // when_listening's, closed by stop()
  void reaped(Process* p);           // a retired plugin is gone: its Process is freed
  void start_later(Process& p);      // the first spawn of a plugin added at run time
  void close_wait(ReadyWait* w);
  std::string setpriv_;  // util-linux's setpriv, if found (the parent-death signal)
  bool stopping_ = false;
};

}  // namespace ss
