#pragma once
// ss-server's control of its running process: a new configuration applied without a restart
// (SIGHUP now; ss-manager's add/remove and the management API through the same calls). See
// server_control.cpp for what a reload changes and what it refuses.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "relay/app.h"
#include "relay/config.h"

namespace ss {

class ApiServer;

// Where the management API's user changes go instead of this process's table: a fleet's Redis
// (server/fleet/fleet.h), which every server of the fleet then applies. `done` is called once, on
// the main loop: with 0 once the change is stored (and this server has applied it), else with an
// HTTP status (400, 404, 503) and the reason.
class SharedUsers {
 public:
  using Done = std::function<void(int status, const std::string& error)>;
  virtual ~SharedUsers() = default;
  virtual void add_user(const UserSpec& user, Done done) = 0;
  virtual void remove_user(const std::string& name, Done done) = 0;
  // `user`: the entry as served now (its limits are kept), with its new password.
  virtual void set_user(const UserSpec& user, Done done) = 0;
};

class ServerControl final : public Controller {
 public:
  // `running`: the configuration the process serves; argc/argv: its command line (a reload reads
  // the -c file again and applies the same flags over it).
  ServerControl(Engine& engine, Config running, int argc, char** argv);
  ~ServerControl() override;

  // The management API (server/api), when api_address is set: listens on the main loop.
  bool start(uv_loop_t* main_loop, std::string* error) override;
  void stop() override;

  // SIGHUP: loads the configuration as at start and applies it; logs what changed, or one line
  // "reload: refused: <key>: <why>; keeping the running config".
  void reload() override;
  // Applies a finalized configuration. False, with "<key>: <why>" in *error and nothing changed,
  // if it is refused. Main loop only, like the calls below.
  bool apply(Config next, std::string* error);
  // ss-manager's "add": serves `spec` (a finalized inbound, its own port, method and keys) on
  // every listen address, as port_password's entries are. False with the reason in *error.
  bool add_port(ServerSpec spec, std::string* error);
  // ss-manager's "remove": stops serving `port` (its live sessions go on, or are closed with
  // reload_drop_removed). False with the reason in *error.
  bool remove_port(uint16_t port, std::string* error);
  // The management API (server/api): a user added to, removed from or given a new password on
  // the port `port` serves (a port configured with users). Its key is derived as the config's
  // would be (2022: the base64 uPSK; classic: the password's key). False with the reason in
  // *error: no such port or user, a name or key already there, the port's last user, or apply's
  // refusal.
  bool add_user(uint16_t port, UserSpec user, std::string* error);
  bool remove_user(uint16_t port, const std::string& name, std::string* error);
  bool set_user_password(uint16_t port, const std::string& name, std::string password,
                         std::string* error);
  // ss-manager's "add" as libev does it: serves `spec`, replacing the port's keys and users if it
  // is served already (its listeners are kept, not reopened). False with the reason in *error.
  bool put_port(ServerSpec spec, std::string* error);
  const Config& config() const { return running_; }
  // Changes every configuration a reload reads before it is applied: the fleet's users from
  // Redis (server/fleet/fleet.h) go into the file's ports.
  void set_amend(std::function<void(Config&)> amend) { amend_ = std::move(amend); }
  // The fleet's users (users_url): the API's user changes go there, not to add_user & co.
  void set_shared_users(SharedUsers* shared) { shared_users_ = shared; }
  SharedUsers* shared_users() const { return shared_users_; }

 private:
  Engine& engine_;
  Config running_;
  int argc_;
  char** argv_;
  uint64_t reload_started_ns_ = 0;  // SIGHUP's start, for the time a reload takes
  std::unique_ptr<ApiServer> api_;  // null: no api_address
  std::function<void(Config&)> amend_;
  SharedUsers* shared_users_ = nullptr;
};

// The first key whose change a running process cannot apply, as "<key>: <why>", or empty: the
// process-wide settings fixed at start (workers, user, log file, pid file, state file, metrics
// address, max_connections, ...) and SIP003 plugins.
std::string fixed_key_changed(const Config& running, const Config& next);

// What a reload from `running` to `next` changes, for the log: "ports added 8003; port 8001:
// users added carol, removed bob", or "nothing changed".
std::string describe_changes(const Specs& running, const Specs& next);

}  // namespace ss
