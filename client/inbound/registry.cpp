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
      return [](Listener& l) { return std::make_unique<RedirInbound>(l.config().tcp_tproxy); };
    case ListenerSpec::Protocol::Mixed:
    case ListenerSpec::Protocol::Shadowsocks:  // not a local protocol; never configured locally
      break;
  }
  const std::optional<Mode> own = spec.mode;
  return [own](Listener& l) {
    const Config& cfg = l.config();
    const Mode mode = own.value_or(cfg.mode);
    return std::make_unique<MixedInbound>(mode != Mode::UdpOnly, mode != Mode::TcpOnly,
                                          cfg.local_users.get());
  };
}

}  // namespace ss
