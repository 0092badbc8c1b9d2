#pragma once
// ss-server's datagram outbound: straight to the target named in the request, with the SSRF
// guard (unless allow_private_targets); replies carry their source's address.

#include "relay/udp_flow.h"

// ss-server's --acl: the outbound block/allow lists apply to the target as requested here, and
// to the resolved address in the NAT (acl_blocks). Unlike TCP, a name the allow list names is
// still refused if its address is in the block list.

namespace ss {

class Acl;

class DirectUdpOutbound final : public UdpOutbound {
 public:
  // `acl`: refuse targets by its outbound block/allow lists too (owned by the caller's specs).
  DirectUdpOutbound(bool block_private, const Acl* acl)
      : block_private_(block_private), acl_(acl) {}
  std::unique_ptr<UdpFlowState> open_flow() override { return nullptr; }
  bool send(UdpFlowState* state, std::span<const uint8_t> address, std::span<const uint8_t> payload,
            std::span<uint8_t> scratch, Address& to, std::span<const uint8_t>& bytes,
            UdpStats& stats) override;
  bool receive(UdpFlowState* state, std::span<const uint8_t> datagram, const sockaddr* from,
               std::span<uint8_t> scratch, UdpPacket& reply, UdpStats& stats) override;
  bool block_private() const override { return block_private_; }
  bool acl_blocks(const sockaddr* to) const override;

 private:
  bool block_private_;
  const Acl* acl_;
};

}  // namespace ss
