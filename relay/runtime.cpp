// The runtime snapshot (see runtime.h): the cipher suites (classic AEAD with the inbound's replay
// filter, none, or the 2022 edition with its salt pool), the router and its outbounds.

#include "relay/runtime.h"

#include <algorithm>
#include <ctime>
#include <functional>

#include "crypto/key_trial.h"
#include "crypto/none_suite.h"
#include "crypto/replay_filter.h"
#include "crypto/salt_pool.h"
#include "crypto/tcp2022.h"
#include "relay/acl.h"
#include "relay/balancer.h"
#include "relay/udp_front.h"
#include "relay/user_limits.h"

namespace ss {
namespace {

std::function<uint64_t()> offset_clock(int64_t offset) {
  if (offset == 0) return nullptr;
  return [offset] { return static_cast<uint64_t>(time(nullptr) + offset); };
}

// The process's classic replay filter, if a classic suite is used on either side and the
// capacity is not 0: one per snapshot, shared by every worker and every classic suite.
std::shared_ptr<ReplayFilter> classic_filter(const Specs& specs) {
  bool classic = false;
  for (const ServerSpec& s : specs.inbounds)
    classic = classic || s.method_kind == MethodKind::Classic;
  for (const ServerSpec& s : specs.servers)
    classic = classic || s.method_kind == MethodKind::Classic;
  if (!classic || specs.limits.replay_capacity == 0) return nullptr;
  return std::make_shared<ReplayFilter>(specs.limits.replay_capacity, specs.limits.replay_fp_rate);
}

// A Shadowsocks inbound's suite: a classic cipher gets the replay filter (with users, key
// trial), the 2022 edition the server PSK, the SIP023 users and the salt pool (rt.salt_pool).
// Every inbound of the process shares the one filter and the one pool (salts of different keys
// are as random as those of one: sharing costs no false positive worth counting).
std::shared_ptr<const TcpCipherSuite> inbound_suite(const ServerSpec& in, const Specs& specs,
                                                    Runtime& rt, std::string* error) {
  switch (in.method_kind) {
    case MethodKind::None:
      return make_none_suite();
    case MethodKind::Classic: {
      // No key and no users: a users_url port before Redis has named any (refuses everyone).
      if (in.users.empty() && !in.key.empty())
        return make_classic_suite(*in.cipher, in.key, rt.replay_filter);
      std::vector<TrialUser> users;
      for (const UserSpec& u : in.users) users.push_back({u.name, u.key});
      return make_classic_users_suite(*in.cipher, std::move(users), rt.replay_filter);
    }
    case MethodKind::Aead2022: {
      Tcp2022Options o;
      o.method = in.method2022;
      o.server_psk = in.psk_keys.front();
      for (const UserSpec& u : in.users) o.users.push_back({u.name, u.key});
      o.users_only = in.users_only;
      if (!rt.salt_pool) rt.salt_pool = std::make_shared<SaltPool>();
      o.salt_pool = rt.salt_pool;
      o.clock = offset_clock(specs.clock_offset);
      return make_2022_suite(std::move(o), error);
    }
  }
  return nullptr;
}

// A client's suite for one upstream server (its own method and keys; a classic one records its
// request salts and the response salts in the process's filter, and refuses a response salt seen
// before, so a replayed, reflected or reused response is refused).
std::shared_ptr<const TcpCipherSuite> client_suite(const ServerSpec& spec, int64_t clock_offset,
                                                   const std::shared_ptr<ReplayFilter>& replay,
                                                   std::string* error) {
  switch (spec.method_kind) {
    case MethodKind::None:
      return make_none_suite();
    case MethodKind::Classic:
      return make_classic_suite(*spec.cipher, spec.key, replay);
    case MethodKind::Aead2022: {
      Tcp2022Options o;
      o.method = spec.method2022;
      o.client_keys = spec.psk_keys;
      o.clock = offset_clock(clock_offset);
      return make_2022_suite(std::move(o), error);
    }
  }
  return nullptr;
}

// The router: the direct outbound if there is one (ss-server); one upstream server; or the
// balancer over several, each with its own suite. Null, with "<its source>: <reason>" in *error, if
// a server's keys do not suit its method.
std::shared_ptr<Router> make_router(const Specs& specs, const Runtime& rt, std::string* error) {
  std::vector<Outbound> outbounds;
  if (specs.direct) {
    Outbound o;
    o.kind = Outbound::Kind::Direct;
    o.bind_address = specs.direct->bind_address;
    o.block_private = specs.direct->block_private;
    if (specs.acl && specs.acl->has_outbound_rules()) o.acl = specs.acl.get();
    outbounds.push_back(std::move(o));
  }
  for (const ServerSpec& spec : specs.servers) {
    Outbound o;
    o.kind = Outbound::Kind::Shadowsocks;
    if (spec.tcp_via) {
      o.server = *spec.tcp_via;  // its plugin's loopback end (relay/plugin.h)
    } else if (std::optional<Address> a = make_address(spec.host, spec.port)) {
      o.server = *a;
    } else {
      o.server.type = Address::Type::Domain;
      o.server.host = spec.host;
      o.server.port = spec.port;
    }
    std::string why;
    o.suite = client_suite(spec, specs.clock_offset, rt.replay_filter, &why);
    if (!o.suite) {
      if (error) *error = spec.source + ": " + why;
      return nullptr;
    }
    o.index = static_cast<uint32_t>(outbounds.size());
    outbounds.push_back(std::move(o));
  }
  // Several upstream servers: the balancer (health checks, hysteresis, failover).
  std::shared_ptr<Router> proxy;
  if (!specs.direct && specs.servers.size() > 1) {
    std::vector<double> weights;
    for (const ServerSpec& spec : specs.servers) weights.push_back(spec.weight);
    auto balancer =
        std::make_shared<Balancer>(std::move(outbounds), std::move(weights), specs.balancer);
    // UDP probes, for a client that serves UDP (relay/balancer.h).
    const bool udp = std::any_of(specs.listeners.begin(), specs.listeners.end(),
                                 [](const ListenerSpec& l) { return l.udp; });
    if (udp) {
      std::vector<UdpProbeServer> sides;
      for (const ServerSpec& spec : specs.servers) {
        std::string why;
        std::shared_ptr<const UdpCipherSuite> suite =
            client_udp_suite(spec, specs.clock_offset, &why);
        if (!suite) break;  // the UDP side refuses these keys itself, naming why
        sides.push_back({udp_server_address(spec), std::move(suite)});
      }
      balancer->set_udp_servers(std::move(sides));
    }
    proxy = std::move(balancer);
  } else {
    proxy = std::make_shared<FixedRouter>(std::move(outbounds));
  }
  if (specs.acl && !specs.direct) {
    // A client's ACL: what it bypasses goes direct, with no SSRF guard (bypassing is the
    // operator's choice, as in libev), from any local address.
    Outbound direct;
    direct.kind = Outbound::Kind::Direct;
    return std::make_shared<AclRouter>(specs.acl, std::move(proxy), std::move(direct));
  }
  return proxy;
}

std::shared_ptr<const Runtime> build_runtime(const Specs& specs, const Runtime* carry,
                                             std::string* error) {
  auto rt = std::make_shared<Runtime>();
  rt->limits = specs.limits;
  rt->tcp = specs.tcp;
  rt->replay_filter = carry && carry->replay_filter ? carry->replay_filter : classic_filter(specs);
  if (carry) rt->salt_pool = carry->salt_pool;  // inbound_suite() makes one if still null
  std::string why;
  for (const ServerSpec& in : specs.inbounds) {
    rt->inbound_suites.push_back(inbound_suite(in, specs, *rt, &why));
    if (!rt->inbound_suites.back()) {
      if (error) *error = in.source + ": " + why;
      return nullptr;
    }
  }
  if (!specs.inbounds.empty() && specs.acl && specs.acl->has_client_rules())
    rt->client_acl = specs.acl;
  std::string limits_why;
  rt->user_limits = UserLimits::make(specs, &limits_why);
  if (!limits_why.empty()) {
    if (error) *error = limits_why;
    return nullptr;
  }
  // A reload's users keep their counts and buckets (by name).
  if (carry && carry->user_limits && rt->user_limits) {
    rt->user_limits->keep_states_of(*carry->user_limits);
  }
  rt->router = make_router(specs, *rt, error);
  if (!rt->router) return nullptr;
  return rt;
}

}  // namespace

std::shared_ptr<const Runtime> make_runtime(const Specs& specs, std::string* error,
                                            const Runtime* previous) {
  return build_runtime(specs, previous, error);
}

std::shared_ptr<const Runtime> make_runtime(const Specs& specs, const Runtime& carry,
                                            std::string* error) {
  return build_runtime(specs, &carry, error);
}

std::shared_ptr<const Runtime> make_runtime(const Config& cfg, std::string* error) {
  return make_runtime(specs_of(cfg), error);
}

}  // namespace ss
