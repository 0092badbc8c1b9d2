// ss-local, ss-tunnel and ss-redir reloading on SIGHUP (see client_reload.h): what may change is
// compared key by key against the running configuration, and everything else is refused.

#include "relay/client_reload.h"

#include <uv.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "relay/acl.h"
#include "relay/log.h"
#include "relay/sip008.h"

namespace ss {
namespace {

bool has_plugin(const Config& c) {
  const Specs s = specs_of(c);
  return std::any_of(s.servers.begin(), s.servers.end(),
                     [](const ServerSpec& v) { return !v.plugin.empty(); });
}

// One listener's fixed parts, as text.
std::string describe_listener(const ListenerSpec& l) {
  std::ostringstream o;
  o << static_cast<int>(l.protocol) << '|' << l.address << '|' << l.port << '|'
    << (l.forward ? l.forward->to_string() : "") << '|' << l.transparent << l.tcp << l.udp << '|'
    << l.tun_name << '|' << l.tun_cidr << '|' << l.tun_cidr6 << '|' << l.tun_dns << '|'
    << (l.local_dns ? l.local_dns->to_string() : "") << '|'
    << (l.remote_dns ? l.remote_dns->to_string() : "") << '|' << l.dns_cache_size << '|'
    << l.fake_dns_ipv4_network << '|' << l.fake_dns_ipv6_network << '|' << l.fake_dns_expire_s;
  return o.str();
}

std::string listeners_of(const Config& c) {
  std::string out;
  for (const ListenerSpec& l : specs_of(c).listeners) out += describe_listener(l) + "\n";
  return out;
}

bool serves_udp(const Config& c) {
  const Specs s = specs_of(c);
  return std::any_of(s.listeners.begin(), s.listeners.end(),
                     [](const ListenerSpec& l) { return l.udp; });
}

uint64_t acl_digest(const Config& c) {
  return c.acl ? c.acl->digest() : 0;
}

}  // namespace

std::string client_fixed_key_changed(const Config& a, const Config& b) {
  const std::string restart = " cannot change while running (restart to apply)";
  if (listeners_of(a) != listeners_of(b)) {
    return "local_address/local_port/locals:" + restart + " (listen addresses, ports and modes)";
  }
  if (a.workers != b.workers) return "workers:" + restart;
  if (a.pin_workers != b.pin_workers) return "pin_workers:" + restart;
  if (a.run_as_user != b.run_as_user) return "user:" + restart;
  if (a.log_file != b.log_file) return "--log-file:" + restart;
  if (a.use_syslog != b.use_syslog) return "use_syslog:" + restart;
  if (a.pid_file != b.pid_file) return "-f:" + restart;
  if (a.nofile != b.nofile) return "nofile:" + restart;
  if (a.verbose != b.verbose || a.quiet != b.quiet) return "-v/-q:" + restart;
  if (a.state_dir != b.state_dir) return "state_dir:" + restart;
  if (a.replay_state_interval != b.replay_state_interval) return "replay_state_interval:" + restart;
  if (a.replay_capacity != b.replay_capacity || a.replay_fp_rate != b.replay_fp_rate) {
    return "replay_capacity:" + restart;
  }
  if (a.metrics_address != b.metrics_address) return "metrics_address:" + restart;
  if (a.reuse_port != b.reuse_port) return "reuse_port:" + restart;
  if (a.fast_open != b.fast_open) return "fast_open:" + restart;
  if (a.max_connections != b.max_connections) return "max_connections:" + restart;
  if (a.timeout != b.timeout) return "timeout:" + restart;
  if (a.no_delay != b.no_delay) return "no_delay:" + restart;
  if (a.ipv6_first != b.ipv6_first) return "ipv6_first:" + restart;
  if (a.udp_timeout != b.udp_timeout) return "udp_timeout:" + restart;
  if (a.udp_max_associations != b.udp_max_associations) return "udp_max_associations:" + restart;
  if (a.nameserver != b.nameserver) return "nameserver:" + restart;
  if (a.socks5_auth_config_path != b.socks5_auth_config_path) {
    return "socks5_auth_config_path:" + restart;
  }
  if (a.outbound_fwmark != b.outbound_fwmark) return "outbound_fwmark:" + restart;
  if (a.tun_setup != b.tun_setup) return "tun_setup:" + restart;
  if (a.allow_private_targets != b.allow_private_targets) return "allow_private_targets:" + restart;
  if (a.online_config.has_value() != b.online_config.has_value() ||
      (a.online_config &&
       (a.online_config->url != b.online_config->url ||
        a.online_config->update_interval_s != b.online_config->update_interval_s ||
        a.online_config->ca_file != b.online_config->ca_file))) {
    return "online_config:" + restart;
  }
  if (has_plugin(a) || has_plugin(b)) {
    return "plugin: a process with SIP003 plugins cannot reload (restart to apply)";
  }
  if (acl_digest(a) != acl_digest(b) && serves_udp(a)) {
    return "acl:" + restart + " while UDP is served (its sockets keep the ACL they started with)";
  }
  return {};
}

ClientReload::ClientReload(Role role, Config running, int argc, char** argv, Apply apply)
    : role_(role),
      running_(std::move(running)),
      argc_(argc),
      argv_(argv),
      apply_(std::move(apply)) {}

void ClientReload::reload() {
  const uint64_t started = uv_hrtime();
  std::string error;
  try {
    std::ostringstream out;
    std::optional<Config> next = load_config(role_, argc_, argv_, out, std::cerr);
    if (!next) {
      error = "command line: no configuration to apply";
    } else if (std::string fixed = client_fixed_key_changed(running_, *next); !fixed.empty()) {
      error = fixed;
    } else if (apply_(*next, &error)) {
      const Specs specs = specs_of(*next);
      std::string list;
      for (const ServerSpec& s : specs.servers)
        list += (list.empty() ? "" : ", ") + describe_server(s);
      LOG_NOTICE("reload: applied in %.3f ms: %zu server%s: %s",
                 static_cast<double>(uv_hrtime() - started) / 1e6, specs.servers.size(),
                 specs.servers.size() == 1 ? "" : "s", list.c_str());
      running_ = std::move(*next);
      return;
    }
  } catch (const ConfigError& e) {
    error = e.what();
  }
  if (error.empty()) error = "the new configuration could not be applied";
  LOG_ERROR("reload: refused: %s; keeping the running config", error.c_str());
}

}  // namespace ss
