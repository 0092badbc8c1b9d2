// --tun-setup: the routes and policy rules of tun mode (README "tun mode"), set by running
// ip(8) (iproute2's `ip route` and `ip rule`), not by netlink: the commands are the ones the
// README gives, and what was added is deleted by the matching `del` at exit.
//
// Per family: `ip route add default dev DEV table T`, `ip rule add pref P lookup main
// suppress_prefixlength 0` (the main table except its default routes: local, LAN and host
// routes keep working, and the TUN prefix's own route reaches the device), and `ip rule add
// pref P+1 not fwmark M lookup T` (everything else, unless it carries ss-local's mark, into
// the TUN). Marked packets skip both and follow the main table's default route.

#include "client/tun/tun_routes.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "relay/log.h"

extern char** environ;

namespace ss {

bool run_ip(const std::vector<std::string>& args, bool quiet) {
  std::vector<char*> argv;
  std::string ip = "ip";
  argv.push_back(ip.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (quiet) posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int r = posix_spawnp(&pid, "ip", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (r != 0) {
    if (!quiet) LOG_ERROR("tun setup: cannot run ip: %s", std::strerror(r));
    return false;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

namespace {

std::string join(const std::vector<std::string>& args) {
  std::string s = "ip";
  for (const std::string& a : args) s += " " + a;
  return s;
}

}  // namespace

std::unique_ptr<TunRoutes> TunRoutes::add(const std::string& dev, bool ipv6, uint32_t mark,
                                          std::string* error) {
  std::unique_ptr<TunRoutes> routes(new TunRoutes());
  char mark_text[16];
  std::snprintf(mark_text, sizeof mark_text, "0x%x", mark);
  const std::string table = std::to_string(kTable);
  for (const char* family : {"-4", "-6"}) {
    if (family[1] == '6' && !ipv6) break;
    const std::string f = family;
    struct Step {
      std::vector<std::string> add;
      std::vector<std::string> del;
      bool quiet_undo;
    };
    const Step steps[] = {
        {{f, "route", "add", "default", "dev", dev, "table", table},
         {f, "route", "del", "default", "dev", dev, "table", table},
         true},
        {{f, "rule", "add", "pref", std::to_string(kPref), "lookup", "main",
          "suppress_prefixlength", "0"},
         {f, "rule", "del", "pref", std::to_string(kPref), "lookup", "main",
          "suppress_prefixlength", "0"},
         false},
        {{f, "rule", "add", "pref", std::to_string(kPref + 1), "not", "fwmark", mark_text, "lookup",
          table},
         {f, "rule", "del", "pref", std::to_string(kPref + 1), "not", "fwmark", mark_text, "lookup",
          table},
         false},
    };
    for (const Step& step : steps) {
      if (!run_ip(step.add, false)) {
        *error = "--tun-setup: `" + join(step.add) +
                 "` failed (left over from an ss-local that was killed? then `" + join(step.del) +
                 "`)";
        return nullptr;  // the destructor deletes what was added before
      }
      LOG_INFO("tun setup: %s", join(step.add).c_str());
      routes->undo_.push_back({step.del, step.quiet_undo});
    }
  }
  return routes;
}

TunRoutes::~TunRoutes() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    if (run_ip(it->args, it->quiet)) {
      LOG_INFO("tun setup: %s", join(it->args).c_str());
    } else if (!it->quiet) {
      LOG_WARN("tun setup: `%s` failed at exit: delete it by hand", join(it->args).c_str());
    }
  }
}

}  // namespace ss
