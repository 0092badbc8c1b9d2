#pragma once
// ss-local, ss-tunnel and ss-redir on SIGHUP: the -c file (and the same command line over it) read
// again, and its servers, balancer and ACL applied as a new runtime snapshot, as a SIP008 refresh
// applies a new server list: new connections use it, live ones finish on theirs. Anything else
// that changed is refused with one line naming the key, and the running configuration stays.

#include <cstdint>
#include <functional>
#include <string>

#include "relay/app.h"
#include "relay/config.h"

namespace ss {

// The first key whose change a running client cannot apply, as "<key>: <why>", or empty. What
// may change: the servers (addresses, methods, keys), the balancer and the ACL (not with UDP
// served: its sockets keep the ACL they started with).
std::string client_fixed_key_changed(const Config& running, const Config& next);

class ClientReload final : public Controller {
 public:
  // Makes and publishes the snapshot of `next` (finalized, checked by client_fixed_key_changed).
  // False, with "<key>: <why>" in *error, if it cannot (nothing changed then).
  using Apply = std::function<bool(const Config& next, std::string* error)>;
  ClientReload(Role role, Config running, int argc, char** argv, Apply apply);

  // Logs "reload: applied in X ms: N servers: ..." or "reload: refused: <key>: <why>; keeping
  // the running config".
  void reload() override;

 private:
  Role role_;
  Config running_;
  int argc_;
  char** argv_;
  Apply apply_;
};

}  // namespace ss
