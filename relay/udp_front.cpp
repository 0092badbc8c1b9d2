// Maps a listener's protocol to its datagram inbound and outbound (the UDP counterpart of the
// TCP inbound registries): adding one is a case here.

#include "relay/udp_front.h"

#include <ctime>

#include "client/tun/tun_udp_inbound.h"
#include "client/udp/acl_udp_outbound.h"
#include "client/udp/local_udp_inbounds.h"
#include "client/udp/ss_udp_outbound.h"
#include "crypto/key_trial.h"
#include "relay/acl.h"
#include "relay/udp_direct.h"
#include "relay/udp_relay.h"
#include "server/udp/ss_udp_inbound.h"

namespace ss {

namespace {

// A method's packet suite: the Shadowsocks inbound's (`users`: its SIP023 users) or a client's
// towards one server. Null, with the reason in *error, if the keys do not suit the method.
std::shared_ptr<const UdpCipherSuite> udp_suite(const ServerSpec& spec, bool inbound,
                                                const std::vector<UserSpec>& users,
                                                int64_t clock_offset, std::string* error) {
  switch (spec.method_kind) {
    case MethodKind::None:
      return make_none_udp_suite();
    case MethodKind::Classic: {
      if (!inbound || (users.empty() && !spec.users_only)) {
        return make_classic_udp_suite(*spec.cipher, spec.key);
      }
      std::vector<TrialUser> trial;
      for (const UserSpec& u : users) trial.push_back({u.name, u.key});
      return make_classic_users_udp_suite(*spec.cipher, std::move(trial));
    }
    case MethodKind::Aead2022: {
      Udp2022Options o;
      o.method = spec.method2022;
      if (inbound) {
        o.server_psk = spec.psk_keys.front();
        for (const UserSpec& u : users) o.users.push_back({u.name, u.key});
        o.users_only = spec.users_only;
      } else {
        o.client_keys = spec.psk_keys;
      }
      o.clock = [clock_offset] { return static_cast<int64_t>(time(nullptr)) + clock_offset; };
      return make_2022_udp_suite(std::move(o), error);
    }
  }
  return nullptr;
}

// The router that picks among the servers: under --acl, the one the ACL router wraps (the UDP
// side decides by the ACL per datagram, in AclUdpOutbound).
std::shared_ptr<Router> servers_router(std::shared_ptr<Router> router) {
  if (const auto* acl = dynamic_cast<const AclRouter*>(router.get())) return acl->proxy();
  return router;
}

}  // namespace

std::shared_ptr<const UdpCipherSuite> client_udp_suite(const ServerSpec& spec, int64_t clock_offset,
                                                       std::string* error) {
  return udp_suite(spec, false, {}, clock_offset, error);
}

Address udp_server_address(const ServerSpec& spec) {
  if (std::optional<Address> a = make_address(spec.host, spec.port)) return *a;
  Address a;
  a.type = Address::Type::Domain;
  a.host = spec.host;
  a.port = spec.port;
  return a;
}

std::unique_ptr<UdpFronts> UdpFronts::make(const Specs& specs, UdpRelay& relay,
                                           std::string* error) {
  std::unique_ptr<UdpFronts> f(new UdpFronts(relay));
  f->block_private_ = !specs.direct || specs.direct->block_private;
  if (specs.acl && specs.acl->has_outbound_rules()) f->acl_ = specs.acl;
  if (specs.acl && specs.acl->has_client_rules()) f->client_acl_ = specs.acl;
  if (specs.acl && !specs.direct) f->local_acl_ = specs.acl;
  for (const ServerSpec& in : specs.inbounds) {
    f->server_suites_.push_back(udp_suite(in, true, in.users, specs.clock_offset, error));
    if (!f->server_suites_.back()) return nullptr;
  }
  f->servers_ = std::make_shared<UdpServerSource>();
  if (!f->set_servers(specs, nullptr, error)) return nullptr;
  return f;
}

bool UdpFronts::set_servers(const Specs& specs, std::shared_ptr<Router> router,
                            std::string* error) {
  auto set = std::make_shared<UdpServerSet>();
  for (const ServerSpec& spec : specs.servers) {
    UdpServer s;
    s.address = udp_server_address(spec);
    s.suite = client_udp_suite(spec, specs.clock_offset, error);
    if (!s.suite) return false;
    set->servers.push_back(std::move(s));
  }
  set->router = servers_router(std::move(router));
  servers_->set(std::move(set));
  return true;
}

void UdpFronts::set_router(std::shared_ptr<Router> router) {
  auto set = std::make_shared<UdpServerSet>(*servers_->get());
  set->router = servers_router(std::move(router));
  servers_->set(std::move(set));
}

std::unique_ptr<UdpInbound> UdpFronts::inbound(const ListenerSpec& spec,
                                               const metrics::PortSlots* slots) const {
  switch (spec.protocol) {
    case ListenerSpec::Protocol::Mixed:
      return std::make_unique<Socks5UdpInbound>(relay_);
    case ListenerSpec::Protocol::Tunnel:
      return std::make_unique<TunnelUdpInbound>(*spec.forward);
    case ListenerSpec::Protocol::Shadowsocks:
      return std::make_unique<ShadowsocksUdpInbound>(*server_suites_.at(spec.inbound),
                                                     client_acl_.get(), user_limits_, slots);
    case ListenerSpec::Protocol::Redir:
      return std::make_unique<RedirUdpInbound>();
    case ListenerSpec::Protocol::Tun:
      return std::make_unique<TunUdpInbound>(spec.tun_device);
    case ListenerSpec::Protocol::Dns:  // not through the NAT (client/dns/dns_inbound.h)
      break;
  }
  return nullptr;
}

std::unique_ptr<UdpOutbound> UdpFronts::outbound(const ListenerSpec& spec) const {
  if (spec.protocol == ListenerSpec::Protocol::Shadowsocks) {
    return std::make_unique<DirectUdpOutbound>(block_private_, acl_.get());
  }
  auto servers = std::make_unique<ShadowsocksUdpOutbound>(servers_, next_);
  if (local_acl_) return std::make_unique<AclUdpOutbound>(local_acl_, std::move(servers));
  return servers;
}

}  // namespace ss
