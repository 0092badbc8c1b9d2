// Maps a listener's protocol to the factory of its inbound.

#include "client/inbound/registry.h"

#include "client/inbound/mixed_inbound.h"
#include "client/inbound/redir_inbound.h"
#include "client/inbound/tunnel_inbound.h"
#include "client/tun/tun_inbound.h"
#include "relay/ip_policy.h"

namespace ss {

Listener::Factory local_inbound_factory(const ListenerSpec& spec) {
  switch (spec.protocol) {
    case ListenerSpec::Protocol::Tunnel: {
      const Address target = *spec.forward;
      return [target](Listener&) { return std::make_unique<TunnelInbound>(target); };
    }
    case ListenerSpec::Protocol::Redir:
      // The configured port; only a listener on port 0 (tests) asks the socket, per connection.
      return [tproxy = spec.transparent, configured = spec.port](Listener& l) {
        const uint16_t port = !tproxy || configured != 0 ? configured : l.port();
        return std::make_unique<RedirInbound>(tproxy, port, [](const Address& a) {
          sockaddr_storage sa{};
          return a.to_sockaddr(sa) && is_own_address(reinterpret_cast<const sockaddr*>(&sa));
        });
      };
    case ListenerSpec::Protocol::Tun:
      return [dev = spec.tun_device](Listener&) { return std::make_unique<TunInbound>(dev); };
    case ListenerSpec::Protocol::Mixed:
    case ListenerSpec::Protocol::Shadowsocks:  // not a local protocol; never configured locally
    case ListenerSpec::Protocol::Dns:          // its own server on the main loop (client/dns)
      break;
  }
  return [tcp = spec.tcp, udp = spec.udp, users = spec.users](Listener&) {
    return std::make_unique<MixedInbound>(tcp, udp, users.get());
  };
}

}  // namespace ss
