#pragma once
// --tun-setup ("tun_setup": true): the policy routing that sends every packet but ss-local's own
// (marked) ones into the TUN, added at start-up and deleted at exit by running ip(8).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ss {

class TunRoutes {
 public:
  // For IPv4, and IPv6 too if `ipv6`: a default route through `dev` in table kTable; a rule
  // (pref kPref) that looks the main table up ignoring its default routes, so local and more
  // specific routes still win; a rule (pref kPref + 1) sending packets without the mark `mark`
  // to kTable. Marked packets (ss-local's own sockets) fall through to the main table's default
  // route. nullptr with the reason in *error if a command failed; what was added is deleted.
  static std::unique_ptr<TunRoutes> add(const std::string& dev, bool ipv6, uint32_t mark,
                                        std::string* error);
  // Deletes what add() added, in reverse order.
  ~TunRoutes();
  TunRoutes(const TunRoutes&) = delete;
  TunRoutes& operator=(const TunRoutes&) = delete;

  static constexpr int kTable = 5354;
  static constexpr int kPref = 5354;

 private:
  TunRoutes() = default;
  struct Undo {
    std::vector<std::string> args;
    bool quiet;  // a route through the device goes away with the device: not an error
  };
  std::vector<Undo> undo_;
};

// Runs `ip ARGS...` and waits for it; its stderr is ss-local's (or /dev/null if quiet). true if
// it exited 0.
bool run_ip(const std::vector<std::string>& args, bool quiet);

}  // namespace ss
