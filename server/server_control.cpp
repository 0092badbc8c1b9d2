// ss-server's reload (SIGHUP, and later ss-manager's add/remove and the management API): a new
// configuration is parsed, finalized and made into a snapshot on the main loop, and published to
// the workers (relay/app.cpp) only if all of that succeeds; otherwise it is refused whole and the
// running one stays.
//
// What applies at once: ports added and removed (their listeners open or close on every worker;
// listeners whose address, port and protocol stay are never reopened), users added and removed,
// methods and keys, the timeout, no_delay, ipv6_first, the outbound bind address,
// allow_private_targets and the ACL (TCP and UDP), udp_timeout and udp_max_associations. Live
// sessions finish on the snapshot they started with, unless reload_drop_removed closes those of
// removed users and ports. The replay filter and the 2022 salt pool are the process's and carry
// over (relay/runtime.h).
//
// UDP follows too: a new port's UDP socket binds on every worker, a removed port's closes with
// its associations, and a port whose keys or users change gets new packet suites (live
// associations go on with the keys they were made with; see server/udp/ss_udp_inbound.h).
//
// SIP003 plugins follow (relay/plugin.h): a port's plugin that stays the same keeps its process and
// loopback port; a new one is started once the snapshot is published; a removed or changed one is
// retired (SIGTERM once its connections have ended). A changed one's successor starts once the old
// one has been reaped (it needs the public port).
//
// What is refused (fixed_key_changed): settings fixed at start (workers, the log, the
// state file, max_connections...); a plugin whose program is not found; a port that drops its
// plugin while a plugin still holds its public TCP port.

#include "server/server_control.h"

#include <uv.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "crypto/aead2022.h"
#include "crypto/kdf.h"
#include "relay/log.h"
#include "relay/plugin.h"
#include "relay/reload.h"
#include "relay/udp_front.h"
#include "relay/udp_relay.h"
#include "server/api/api_server.h"

namespace ss {
namespace {

// The user names of each port's inbound (the first listener of the port; a plugin's listener by
// its public port).
std::map<uint16_t, std::set<std::string>> users_by_port(const Specs& specs) {
  std::map<uint16_t, std::set<std::string>> out;
  for (const ListenerSpec& l : specs.listeners) {
    const uint16_t port = l.public_port != 0 ? l.public_port : l.port;
    if (out.count(port) != 0) continue;
    std::set<std::string>& names = out[port];
    if (l.inbound < specs.inbounds.size()) {
      for (const UserSpec& u : specs.inbounds[l.inbound].users) names.insert(u.name);
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

}  // namespace

std::string fixed_key_changed(const Config& a, const Config& b) {
  const std::string restart = " cannot change while running (restart to apply)";
  if (a.workers != b.workers) return "workers:" + restart;
  if (a.run_as_user != b.run_as_user) return "user:" + restart;
  if (a.log_file != b.log_file) return "--log-file:" + restart;
  if (a.use_syslog != b.use_syslog) return "use_syslog:" + restart;
  if (a.pid_file != b.pid_file) return "-f:" + restart;
  if (a.nofile != b.nofile) return "nofile:" + restart;
  if (a.state_dir != b.state_dir) return "state_dir:" + restart;
  if (a.replay_state_interval != b.replay_state_interval) return "replay_state_interval:" + restart;
  if (a.metrics_address != b.metrics_address) return "metrics_address:" + restart;
  if (a.api_address != b.api_address || a.api_token != b.api_token ||
      a.api_allow_remote != b.api_allow_remote) {
    return "api_address/api_token:" + restart;
  }
  if (a.users_url != b.users_url) return "users_url:" + restart;
  if (a.reuse_port != b.reuse_port) return "reuse_port:" + restart;
  if (a.fast_open != b.fast_open) return "fast_open:" + restart + " (listening sockets keep it)";
  if (a.max_connections != b.max_connections) return "max_connections:" + restart;
  if (a.verbose != b.verbose || a.quiet != b.quiet) return "-v/-q:" + restart;
  return {};
}

std::string describe_changes(const Specs& running, const Specs& next) {
  const auto before = users_by_port(running);
  const auto after = users_by_port(next);
  std::vector<std::string> added_ports, removed_ports, parts;
  for (const auto& [port, users] : after) {
    if (before.count(port) == 0) added_ports.push_back(std::to_string(port));
  }
  for (const auto& [port, users] : before) {
    if (after.count(port) == 0) removed_ports.push_back(std::to_string(port));
  }
  if (!added_ports.empty()) parts.push_back("ports added " + join(added_ports));
  if (!removed_ports.empty()) parts.push_back("ports removed " + join(removed_ports));
  for (const auto& [port, users] : after) {
    auto old = before.find(port);
    if (old == before.end()) continue;
    std::vector<std::string> added, removed;
    for (const std::string& u : users) {
      if (old->second.count(u) == 0) added.push_back(u);
    }
    for (const std::string& u : old->second) {
      if (users.count(u) == 0) removed.push_back(u);
    }
    if (added.empty() && removed.empty()) continue;
    std::string p = "port " + std::to_string(port) + ":";
    if (!added.empty()) p += " users added " + join(added);
    if (!removed.empty())
      p += std::string(added.empty() ? "" : ";") + " users removed " + join(removed);
    parts.push_back(p);
  }
  if (parts.empty()) return "no port or user changed";
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

bool ServerControl::apply(Config next, std::string* error) {
  const uint64_t started = reload_started_ns_ != 0 ? reload_started_ns_ : uv_hrtime();
  reload_started_ns_ = 0;
  const std::string fixed = fixed_key_changed(running_, next);
  if (!fixed.empty()) {
    *error = fixed;
    return false;
  }
  Specs specs = specs_of(next);
  std::string why;
  // SIP003 plugins (relay/plugin.h): kept ones keep their loopback port, new ones get one.
  PluginSupervisor* plugins = engine_.plugin_supervisor();
  const std::vector<PluginLaunch> launches =
      arrange_plugins(specs, &why, plugins ? plugins->current() : std::vector<PluginLaunch>{});
  if (!why.empty()) {
    *error = why;
    return false;
  }
  if (plugins != nullptr) {
    for (const ListenerSpec& l : specs.listeners) {
      if (l.protocol != ListenerSpec::Protocol::Shadowsocks || !l.tcp || l.public_port != 0 ||
          !plugins->holds_public_port(l.address, l.port)) {
        continue;
      }
      *error = "plugin: port " + std::to_string(l.port) +
               ": its TCP is still held by a plugin (a port cannot drop its plugin while it "
               "is served: remove the port, then add it again once its plugin has stopped)";
      return false;
    }
  }
  std::shared_ptr<const Runtime> rt = make_runtime(specs, *engine_.runtime(), &why);
  if (!rt) {
    *error = why;
    return false;
  }
  // The UDP side's packet suites (Engine::publish makes them again for the workers).
  UdpRelay scratch;
  if (!UdpFronts::make(specs, scratch, &why)) {
    *error = "password: " + why + " (UDP)";
    return false;
  }
  const Specs& old = engine_.specs();
  Engine::Cuts cuts;
  cuts.removed_listeners = next.reload_drop_removed;
  cuts.users.resize(specs.listeners.size());
  if (next.reload_drop_removed) {
    const std::vector<std::optional<size_t>> match =
        match_listeners(old.listeners, specs.listeners);
    for (size_t j = 0; j < specs.listeners.size(); ++j) {
      if (!match[j]) continue;
      const ListenerSpec& was = old.listeners[*match[j]];
      const ListenerSpec& now = specs.listeners[j];
      if (was.inbound >= old.inbounds.size() || now.inbound >= specs.inbounds.size()) continue;
      std::set<std::string> keep;
      for (const UserSpec& u : specs.inbounds[now.inbound].users) keep.insert(u.name);
      for (const UserSpec& u : old.inbounds[was.inbound].users) {
        if (keep.count(u.name) == 0) cuts.users[j].push_back(u.name);
      }
      std::sort(cuts.users[j].begin(), cuts.users[j].end());
    }
  }
  std::vector<uint16_t> new_plugins;
  const size_t plugins_before = plugins != nullptr ? plugins->current().size() : 0;
  if (plugins != nullptr && !plugins->start_new(launches, &new_plugins, error)) return false;
  std::string changes = describe_changes(old, specs);
  engine_.publish(std::move(specs), std::move(rt), std::move(cuts));
  if (plugins != nullptr) {
    plugins->retire_except(launches);
    const size_t retired = plugins_before + new_plugins.size() - plugins->current().size();
    if (!new_plugins.empty() || retired != 0) {
      changes += "; plugins started " + std::to_string(new_plugins.size()) + ", retired " +
                 std::to_string(retired);
    }
  }
  // The main loop's time: parse, finalize, snapshot, metrics slots and the posts to the workers.
  LOG_NOTICE("reload: applied in %.3f ms: %s%s", static_cast<double>(uv_hrtime() - started) / 1e6,
             changes.c_str(),
             next.reload_drop_removed ? " (live sessions of removed users and ports closed)" : "");
  running_ = std::move(next);
  return true;
}

void ServerControl::reload() {
  reload_started_ns_ = uv_hrtime();
  std::string error;
  try {
    std::ostringstream out;
    std::optional<Config> next = load_config(Role::Server, argc_, argv_, out, std::cerr);
    if (!next) {
      error = "command line: no configuration to apply";
    } else {
      if (amend_) amend_(*next);
      apply(std::move(*next), &error);
    }
  } catch (const ConfigError& e) {
    error = e.what();
  }
  reload_started_ns_ = 0;
  if (!error.empty()) LOG_ERROR("reload: refused: %s; keeping the running config", error.c_str());
}

namespace {

// Removes `port`'s listeners from `next`, and the inbounds no listener uses any more (the others
// renumbered). False if no listener had that port.
bool drop_port(Config& next, uint16_t port) {
  std::set<size_t> dropped;
  std::erase_if(next.listeners, [&](const ListenerSpec& l) {
    if (l.port != port) return false;
    dropped.insert(l.inbound);
    return true;
  });
  if (dropped.empty()) return false;
  // Drop the inbounds no listener uses any more, renumbering the others.
  for (auto it = dropped.rbegin(); it != dropped.rend(); ++it) {
    const size_t k = *it;
    const bool used = std::any_of(next.listeners.begin(), next.listeners.end(),
                                  [k](const ListenerSpec& l) { return l.inbound == k; });
    if (used || k >= next.inbounds.size()) continue;
    next.inbounds.erase(next.inbounds.begin() + static_cast<std::ptrdiff_t>(k));
    for (ListenerSpec& l : next.listeners) {
      if (l.inbound > k) --l.inbound;
    }
  }
  return true;
}

// Adds `spec`'s listeners (one per listen address) and inbound to `next`.
void add_listeners(Config& next, ServerSpec spec) {
  for (const std::string& host : next.server) {
    ListenerSpec l{ListenerSpec::Protocol::Shadowsocks, host, spec.port, {}};
    l.mode = spec.mode;
    l.plugin = spec.plugin;
    l.inbound = next.inbounds.size();
    next.listeners.push_back(std::move(l));
  }
  next.inbounds.push_back(std::move(spec));
}

}  // namespace

bool ServerControl::add_port(ServerSpec spec, std::string* error) {
  Config next = running_;
  for (const ListenerSpec& l : next.listeners) {
    if (l.port == spec.port) {
      *error = "server_port: port " + std::to_string(spec.port) + " is already served";
      return false;
    }
  }
  add_listeners(next, std::move(spec));
  return apply(std::move(next), error);
}

bool ServerControl::remove_port(uint16_t port, std::string* error) {
  Config next = running_;
  if (!drop_port(next, port)) {
    *error = "server_port: port " + std::to_string(port) + " is not served";
    return false;
  }
  return apply(std::move(next), error);
}

bool ServerControl::put_port(ServerSpec spec, std::string* error) {
  Config next = running_;
  drop_port(next, spec.port);
  add_listeners(next, std::move(spec));
  return apply(std::move(next), error);
}

// The management API's user edits (server/api). A user's key comes from its password as the
// config's would: the base64 uPSK for a 2022 method (SIP023), the password's derived key for a
// classic one (key trial). A key another user of the port has is refused: a connection could not
// tell them apart.
namespace {

std::string user_key(const ServerSpec& in, UserSpec& u, const std::string& except) {
  if (u.password.empty()) return "uPSK: must not be empty";
  if (in.method_kind == MethodKind::Aead2022 && in.method2022 != nullptr) {
    Psk2022 k = parse_2022_password(*in.method2022, u.password);
    if (!k.error.empty()) return "uPSK: " + k.error;
    if (k.keys.size() != 1) return "uPSK: must be one key";
    u.key = std::move(k.keys.front());
  } else if (in.method_kind == MethodKind::Classic && in.cipher != nullptr) {
    u.key = derive_master_key(u.password, in.cipher->key_len);
  } else {
    return "the port's method has no user keys";
  }
  for (const UserSpec& other : in.users) {
    if (other.name != except && other.name != u.name && other.key == u.key) {
      return "uPSK: the same key as user \"" + other.name + "\"";
    }
  }
  return {};
}

// The inbound serving `port`, or null.
ServerSpec* inbound_of(Config& cfg, uint16_t port) {
  for (const ListenerSpec& l : cfg.listeners) {
    if (l.port == port && l.protocol == ListenerSpec::Protocol::Shadowsocks &&
        l.inbound < cfg.inbounds.size()) {
      return &cfg.inbounds[l.inbound];
    }
  }
  return nullptr;
}

}  // namespace

bool ServerControl::add_user(uint16_t port, UserSpec user, std::string* error) {
  Config next = running_;
  ServerSpec* in = inbound_of(next, port);
  if (in == nullptr || in->users.empty()) {
    *error = "port " + std::to_string(port) + " has no users to add to";
    return false;
  }
  for (const UserSpec& u : in->users) {
    if (u.name == user.name) {
      *error = "username: \"" + user.name + "\" already exists";
      return false;
    }
  }
  *error = user_key(*in, user, {});
  if (!error->empty()) return false;
  in->users.push_back(std::move(user));
  return apply(std::move(next), error);
}

bool ServerControl::remove_user(uint16_t port, const std::string& name, std::string* error) {
  Config next = running_;
  ServerSpec* in = inbound_of(next, port);
  if (in == nullptr) {
    *error = "port " + std::to_string(port) + " is not served";
    return false;
  }
  const size_t before = in->users.size();
  std::erase_if(in->users, [&](const UserSpec& u) { return u.name == name; });
  if (in->users.size() == before) {
    *error = "user \"" + name + "\" not found";
    return false;
  }
  if (in->users.empty()) {
    // Without users a port's key would serve alone: another protocol for its clients.
    *error = "the last user of port " + std::to_string(port) + " cannot be removed";
    return false;
  }
  return apply(std::move(next), error);
}

bool ServerControl::set_user_password(uint16_t port, const std::string& name, std::string password,
                                      std::string* error) {
  Config next = running_;
  ServerSpec* in = inbound_of(next, port);
  UserSpec* found = nullptr;
  if (in != nullptr) {
    for (UserSpec& u : in->users) {
      if (u.name == name) found = &u;
    }
  }
  if (found == nullptr) {
    *error = "user \"" + name + "\" not found";
    return false;
  }
  if (found->password == password) {
    *error = "uPSK: the same as the current one";
    return false;
  }
  UserSpec changed = *found;
  changed.password = std::move(password);
  *error = user_key(*in, changed, name);
  if (!error->empty()) return false;
  *found = std::move(changed);
  return apply(std::move(next), error);
}

ServerControl::ServerControl(Engine& engine, Config running, int argc, char** argv)
    : engine_(engine), running_(std::move(running)), argc_(argc), argv_(argv) {}

ServerControl::~ServerControl() = default;

bool ServerControl::start(uv_loop_t* main_loop, std::string* error) {
  if (running_.api_address.empty()) return true;
  const std::optional<Address> at = parse_host_port(running_.api_address);
  api_ = std::make_unique<ApiServer>(main_loop, *this, running_.api_token);
  const int r = at ? api_->listen(*at) : UV_EINVAL;
  if (r != 0) {
    *error = "api_address: cannot listen on " + running_.api_address + ": " + uv_strerror(r);
    api_->close();
    return false;
  }
  LOG_NOTICE("management API and status page at http://%s/", running_.api_address.c_str());
  return true;
}

void ServerControl::stop() {
  if (api_) api_->close();
}

}  // namespace ss
