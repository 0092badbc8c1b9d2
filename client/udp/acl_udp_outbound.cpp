// ss-local's datagram routing by --acl (see acl_udp_outbound.h): per datagram, a cached decision
// by the target's address header (SOCKS5 UDP, RFC 1928 §7, carries the same ATYP header as the
// Shadowsocks request); proxied datagrams are sealed by the wrapped outbound, bypassed ones leave
// as they are, blocked ones are dropped.

#include "client/udp/acl_udp_outbound.h"

#include <cstring>

#include "client/udp/ss_udp_outbound.h"
#include "relay/acl.h"
#include "relay/warnings.h"

namespace ss {
namespace {

struct Slot {
  std::string header;  // the target's address header; empty: unused
  AclUdpOutbound::Route route = AclUdpOutbound::Route::Proxy;
};

struct AclFlow final : UdpFlowState {
  std::unique_ptr<UdpFlowState> proxy;  // the Shadowsocks outbound's state (its server)
  std::array<Slot, AclUdpOutbound::kSlots> slots;
  size_t next_slot = 0;
  bool sent_direct = false;
};

// Whether `from` is the association's server, by address (false if the server is a name).
bool from_server(const UdpFlowState* proxy, const sockaddr* from) {
  const Address* server = ShadowsocksUdpOutbound::server_of(proxy);
  if (server == nullptr || server->type == Address::Type::Domain) return false;
  return Address::from_sockaddr(from).unmapped() == *server;
}

}  // namespace

AclUdpOutbound::Route AclUdpOutbound::decide(const Acl& acl, const Address& target) {
  if (acl.outbound(target) == Acl::Verdict::Block) return Route::Block;
  // A name the address rules would decide: proxied (see the header).
  return acl.bypass(target) ? Route::Bypass : Route::Proxy;
}

std::unique_ptr<UdpFlowState> AclUdpOutbound::open_flow() {
  auto f = std::make_unique<AclFlow>();
  f->proxy = proxy_->open_flow();
  return f;
}

bool AclUdpOutbound::send(UdpFlowState* state, std::span<const uint8_t> address,
                          std::span<const uint8_t> payload, std::span<uint8_t> scratch, Address& to,
                          std::span<const uint8_t>& bytes, UdpStats& stats) {
  auto* f = static_cast<AclFlow*>(state);
  const std::string_view header(reinterpret_cast<const char*>(address.data()), address.size());
  const Slot* hit = nullptr;
  for (const Slot& s : f->slots) {
    if (!s.header.empty() && s.header == header) {
      hit = &s;
      break;
    }
  }
  Route route;
  bool parsed = false;
  if (hit != nullptr) {
    route = hit->route;
  } else {
    size_t used = 0;
    if (parse_address(address, target_, used) != ParseStatus::Ok) {
      ++stats.drop_malformed;
      return false;
    }
    parsed = true;
    route = decide(*acl_, target_);
    Slot& s = f->slots[f->next_slot];
    f->next_slot = (f->next_slot + 1) % kSlots;
    s.header.assign(header);  // reuses the slot's capacity
    s.route = route;
    if (route == Route::Block) {
      warn::target_refused("a UDP client", target_.to_string(), "the ACL blocks it (UDP)");
    }
  }
  switch (route) {
    case Route::Proxy: {
      const bool sent = proxy_->send(f->proxy.get(), address, payload, scratch, to, bytes, stats);
      // The association moved to another server: its sockets are renewed (direct ones too).
      if (f->proxy->renew_sockets) {
        f->proxy->renew_sockets = false;
        f->renew_sockets = true;
      }
      return sent;
    }
    case Route::Block:
      ++stats.drop_blocked;
      return false;
    case Route::Bypass:
      break;
  }
  if (!parsed) {
    size_t used = 0;
    if (parse_address(address, target_, used) != ParseStatus::Ok) {
      ++stats.drop_malformed;
      return false;
    }
  }
  to = target_;
  bytes = payload;
  f->sent_direct = true;
  return true;
}

bool AclUdpOutbound::receive(UdpFlowState* state, std::span<const uint8_t> datagram,
                             const sockaddr* from, std::span<uint8_t> scratch, UdpPacket& reply,
                             UdpStats& stats) {
  auto* f = static_cast<AclFlow*>(state);
  if (!f->sent_direct || from_server(f->proxy.get(), from)) {
    return proxy_->receive(f->proxy.get(), datagram, from, scratch, reply, stats);
  }
  const Address* server = ShadowsocksUdpOutbound::server_of(f->proxy.get());
  if (server != nullptr && server->type == Address::Type::Domain) {
    // The server's address is not known here: what its session authenticates is its.
    UdpStats ignored;
    if (proxy_->receive(f->proxy.get(), datagram, from, scratch, reply, ignored)) return true;
  }
  const size_t n = encode_address(Address::from_sockaddr(from).unmapped(), scratch.data());
  reply.address = scratch.first(n);
  reply.payload = datagram;
  return true;
}

}  // namespace ss
