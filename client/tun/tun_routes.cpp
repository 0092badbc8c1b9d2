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

namespace {

// Runs `ip ARGS...`; its stdout goes to *out if out is set (else it is ss-local's).
bool spawn_ip(const std::vector<std::string>& args, bool quiet, std::string* out) {
  std::vector<char*> argv;
  std::string ip = "ip";
  argv.push_back(ip.data());
  std::vector<std::string> copy = args;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipe_fds[2] = {-1, -1};
  if (out != nullptr && pipe2(pipe_fds, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (out != nullptr) posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  if (quiet) posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int r = posix_spawnp(&pid, "ip", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (out != nullptr) {
    close(pipe_fds[1]);
    if (r == 0) {
      char buf[4096];
      ssize_t n;
      while ((n = read(pipe_fds[0], buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || out->size() > (1u << 20)) break;
        out->append(buf, static_cast<size_t>(n));
      }
    }
    close(pipe_fds[0]);
  }
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

}  // namespace

bool run_ip(const std::vector<std::string>& args, bool quiet) {
  return spawn_ip(args, quiet, nullptr);
}

namespace {

std::string join(const std::vector<std::string>& args) {
  std::string s = "ip";
  for (const std::string& a : args) s += " " + a;
  return s;
}

// The non-empty lines of `text`, each with its whitespace runs made one space.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::string cur;
  for (const char c : text + "\n") {
    if (c == '\n') {
      while (!cur.empty() && cur.back() == ' ') cur.pop_back();
      if (!cur.empty()) lines.push_back(cur);
      cur.clear();
    } else if (c == ' ' || c == '\t') {
      if (!cur.empty() && cur.back() != ' ') cur += ' ';
    } else {
      cur += c;
    }
  }
  return lines;
}

std::string quoted_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const std::string& l : lines) s += (s.empty() ? "`" : "`, `") + l + "`";
  return s;
}

// Before an add: what `show` lists must be nothing, or exactly what the add adds (`ours`: the
// whole line of a rule; the start of a route's line, before `scope`, `metric`...), left over by
// an ss-local that was SIGKILLed; that is deleted with a notice. Anything else is a rule or route
// of someone else's at our preference or in our table: false, naming it.
bool clear_leftover(const std::vector<std::string>& show, const std::string& ours,
                    const std::vector<std::string>& del, std::string* error) {
  std::string listed;
  if (!spawn_ip(show, true, &listed)) return true;  // nothing to list: the add will say
  const std::vector<std::string> lines = lines_of(listed);
  if (lines.empty()) return true;
  const bool route = show.size() > 1 && show[1] == "route";
  const bool mine =
      lines.size() == 1 && (lines[0] == ours || (route && lines[0].rfind(ours + " ", 0) == 0));
  if (!mine) {
    *error = "--tun-setup: `" + join(show) + "` lists " + quoted_lines(lines) +
             ", not ss-local's: delete it or move it to another preference or table";
    return false;
  }
  LOG_NOTICE("tun setup: `%s` was left over by an ss-local that did not exit cleanly: `%s`",
             lines[0].c_str(), join(del).c_str());
  if (!run_ip(del, false)) {
    *error =
        "--tun-setup: cannot delete the leftover `" + lines[0] + "`: `" + join(del) + "` failed";
    return false;
  }
  return true;
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
      // What `ip` lists where this step adds (our table, or our preference), and the line it
      // shows for what this step adds: anything else found there is not ours.
      std::vector<std::string> show;
      std::string ours;
    };
    const Step steps[] = {
        {{f, "route", "add", "default", "dev", dev, "table", table},
         {f, "route", "del", "default", "dev", dev, "table", table},
         true,
         {f, "route", "show", "table", table},
         "default dev " + dev},
        {{f, "rule", "add", "pref", std::to_string(kPref), "lookup", "main",
          "suppress_prefixlength", "0"},
         {f, "rule", "del", "pref", std::to_string(kPref), "lookup", "main",
          "suppress_prefixlength", "0"},
         false,
         {f, "rule", "show", "pref", std::to_string(kPref)},
         std::to_string(kPref) + ": from all lookup main suppress_prefixlength 0"},
        {{f, "rule", "add", "pref", std::to_string(kPref + 1), "not", "fwmark", mark_text, "lookup",
          table},
         {f, "rule", "del", "pref", std::to_string(kPref + 1), "not", "fwmark", mark_text, "lookup",
          table},
         false,
         {f, "rule", "show", "pref", std::to_string(kPref + 1)},
         std::to_string(kPref + 1) + ": not from all fwmark " + mark_text + " lookup " + table},
    };
    for (const Step& step : steps) {
      if (!clear_leftover(step.show, step.ours, step.del, error)) return nullptr;
      if (!run_ip(step.add, false)) {
        *error = "--tun-setup: `" + join(step.add) + "` failed";
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
