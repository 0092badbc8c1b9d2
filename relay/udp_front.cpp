// Maps a listener's protocol to its datagram inbound and outbound (the UDP counterpart of the
// TCP inbound registries): adding one is a case here.

#include "relay/udp_front.h"

#include "client/udp/local_udp_inbounds.h"
#include "client/udp/ss_udp_outbound.h"
#include "relay/method.h"
#include "relay/udp_direct.h"
#include "relay/udp_relay.h"
#include "server/udp/ss_udp_inbound.h"

namespace ss {

std::unique_ptr<UdpFronts> UdpFronts::make(const Config& cfg, UdpRelay& relay, std::string* error) {
  std::unique_ptr<UdpFronts> f(new UdpFronts(relay));
  f->block_private_ = !cfg.allow_private_targets;
  bool shadowsocks = false;
  for (const ListenerSpec& spec : cfg.listeners) {
    shadowsocks = shadowsocks || spec.protocol == ListenerSpec::Protocol::Shadowsocks;
  }
  if (shadowsocks) {
    f->server_suite_ = make_udp_suite(cfg, error);
    if (!f->server_suite_) return nullptr;
  }
  auto servers = std::make_shared<std::vector<UdpServer>>();
  for (const ServerSpec& spec : cfg.servers) {
    UdpServer s;
    if (std::optional<Address> a = make_address(spec.host, spec.port)) {
      s.address = *a;
    } else {
      s.address.type = Address::Type::Domain;
      s.address.host = spec.host;
      s.address.port = spec.port;
    }
    s.suite = make_client_udp_suite(spec, cfg.clock_offset, error);
    if (!s.suite) return nullptr;
    servers->push_back(std::move(s));
  }
  f->servers_ = std::move(servers);
  return f;
}

std::unique_ptr<UdpInbound> UdpFronts::inbound(const ListenerSpec& spec) const {
  switch (spec.protocol) {
    case ListenerSpec::Protocol::Mixed:
      return std::make_unique<Socks5UdpInbound>(relay_);
    case ListenerSpec::Protocol::Tunnel:
      return std::make_unique<TunnelUdpInbound>(*spec.forward);
    case ListenerSpec::Protocol::Shadowsocks:
      return std::make_unique<ShadowsocksUdpInbound>(*server_suite_);
    case ListenerSpec::Protocol::Redir:
      return std::make_unique<RedirUdpInbound>();
  }
  return nullptr;
}

std::unique_ptr<UdpOutbound> UdpFronts::outbound(const ListenerSpec& spec) const {
  if (spec.protocol == ListenerSpec::Protocol::Shadowsocks) {
    return std::make_unique<DirectUdpOutbound>(block_private_);
  }
  return std::make_unique<ShadowsocksUdpOutbound>(servers_, next_);
}

}  // namespace ss
