// Maps a listener's protocol to the factory of its inbound.

#include "client/inbound/registry.h"

#include "client/inbound/mixed_inbound.h"
#include "client/inbound/redir_inbound.h"
#include "client/inbound/tunnel_inbound.h"

namespace ss {

Listener::Factory local_inbound_factory(const ListenerSpec& spec) {
  switch (spec.protocol) {
    case ListenerSpec::Protocol::Tunnel: {
      const Address target = *spec.forward;
      return [target](Listener&) { return std::make_unique<TunnelInbound>(target); };
    }
    case ListenerSpec::Protocol::Redir:
      return [transparent = spec.transparent](Listener&) {
        return std::make_unique<RedirInbound>(transparent);
      };
    case ListenerSpec::Protocol::Mixed:
    case ListenerSpec::Protocol::Shadowsocks:  // not a local protocol; never configured locally
      break;
  }
  return [tcp = spec.tcp, udp = spec.udp, users = spec.users](Listener&) {
    return std::make_unique<MixedInbound>(tcp, udp, users.get());
  };
}

}  // namespace ss
