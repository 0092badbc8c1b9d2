#pragma once
// ss-local's, ss-redir's and tun's datagram outbound under --acl: each datagram's target is looked
// up in the ACL (relay/acl.h, libev's order) and
// - proxied: handed to the wrapped Shadowsocks outbound (the association's server; when that
//   moves to another server, the association's sockets are renewed, its direct one too);
// - bypassed: sent as it is, straight to the target, from the association's own socket (a reply
//   from the target comes back with its address as the source);
// - blocked ([outbound_block_list], as on ss-server): dropped, counted in drop_blocked, and logged
//   (rate limited) the first time per association and target.
// A name target is decided by the name rules; a name only the address rules could decide is
// proxied (TCP resolves it first; the NAT resolves after the decision, so UDP cannot).
//
// Decisions are cached per association, by the target's address header (kSlots of them, replaced
// in turn), so a datagram to a target seen before costs a compare, not a regex search. A reply
// is the server's if it comes from the association's server address, a direct one otherwise
// (once the association has sent anything direct); with a server given by name, a reply that the
// server's session authenticates is the server's.

#include <array>
#include <memory>
#include <string>

#include "relay/address.h"
#include "relay/udp_flow.h"

namespace ss {

class Acl;

class AclUdpOutbound final : public UdpOutbound {
 public:
  static constexpr size_t kSlots = 8;

  AclUdpOutbound(std::shared_ptr<const Acl> acl, std::unique_ptr<UdpOutbound> proxy)
      : acl_(std::move(acl)), proxy_(std::move(proxy)) {}
  std::unique_ptr<UdpFlowState> open_flow() override;
  bool send(UdpFlowState* state, std::span<const uint8_t> address, std::span<const uint8_t> payload,
            std::span<uint8_t> scratch, Address& to, std::span<const uint8_t>& bytes,
            UdpStats& stats) override;
  bool receive(UdpFlowState* state, std::span<const uint8_t> datagram, const sockaddr* from,
               std::span<uint8_t> scratch, UdpPacket& reply, UdpStats& stats) override;

  enum class Route : uint8_t { Proxy, Bypass, Block };
  // The ACL's decision for one target (no cache).
  static Route decide(const Acl& acl, const Address& target);

 private:
  std::shared_ptr<const Acl> acl_;
  std::unique_ptr<UdpOutbound> proxy_;
  Address target_;  // parse scratch, reused (a long name allocates once per worker, not per packet)
};

}  // namespace ss
