#pragma once
// The shared main() of ss-local, ss-tunnel, ss-redir and ss-server.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "relay/config.h"
#include "relay/net/listener.h"
#include "relay/runtime.h"

namespace ss {

class PluginSupervisor;

// Which inbound serves a listener: the binary's registry of protocols.
using InboundRegistry = std::function<Listener::Factory(const ListenerSpec&)>;

// The running engine as a controller sees it (main loop only): the specs and snapshot its
// listeners serve, and how to give them new ones.
class Engine {
 public:
  virtual ~Engine() = default;
  virtual const Specs& specs() const = 0;
  virtual const std::shared_ptr<const Runtime>& runtime() const = 0;
  // What a publish changes besides the snapshot: `cut_users[j]` (sorted) names the users whose
  // live sessions on listener j of the new specs are closed; `cut_removed` closes the live
  // sessions of removed listeners too (else they finish on their snapshot).
  struct Cuts {
    std::vector<std::vector<std::string>> users;
    bool removed_listeners = false;
  };
  // Publishes `next` and its snapshot to every worker (relay/app.cpp says how): listeners still
  // in `next` (relay/reload.h) take the new snapshot, new ones open on every worker (a bind
  // failure is logged and the rest applies), removed ones stop accepting. Metrics slots of new
  // ports and users are registered first.
  virtual void publish(Specs next, std::shared_ptr<const Runtime> runtime, Cuts cuts) = 0;
  // The main loop, for a controller's own handles (ss-manager's socket, the fleet's Redis
  // connections).
  virtual uv_loop_t* main_loop() const = 0;
  // The SIP003 plugins' supervisor (relay/plugin.h), on the main loop: a reload starts and
  // retires plugins through it.
  virtual PluginSupervisor* plugin_supervisor() const = 0;
};

// A binary's control of its running process (ss-server's server/server_control.h), made once
// the workers run, on the main loop.
class Controller {
 public:
  virtual ~Controller() = default;
  // SIGHUP: read the configuration again and apply it.
  virtual void reload() = 0;
  // Services of its own on the main loop (ss-server's management API), started once the workers
  // run: false with a one-line reason, "<key>: <why>" (the process then exits 1).
  virtual bool start(uv_loop_t* /*main_loop*/, std::string* /*error*/) { return true; }
  // The first SIGINT/SIGTERM, and again once the workers have ended: close the controller's own
  // handles on the main loop (the API's listener, ss-manager's socket, Redis; idempotent), so that
  // the loop can end.
  virtual void stop() {}
};
// `running` is the configuration the process started with; argc/argv its command line.
using ControllerFactory =
    std::function<std::unique_ptr<Controller>(Engine&, const Config& running, int, char**)>;

// Loads the configuration (exit 1 with one line on an error), listens on every listener spec,
// runs the loop until SIGINT/SIGTERM, and returns the process exit status. SIGHUP goes to the
// controller `control` makes; without one it is logged and ignored.
int run_app(Role role, int argc, char** argv, const InboundRegistry& inbounds,
            const ControllerFactory& control = nullptr);

}  // namespace ss
