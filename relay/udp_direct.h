#pragma once
// ss-server's datagram outbound: straight to the target named in the request, with the SSRF
// guard (unless allow_private_targets); replies carry their source's address.

#include "relay/udp_flow.h"

namespace ss {

class DirectUdpOutbound final : public UdpOutbound {
 public:
  explicit DirectUdpOutbound(bool block_private) : block_private_(block_private) {}
  std::unique_ptr<UdpFlowState> open_flow() override { return nullptr; }
  bool send(UdpFlowState* state, std::span<const uint8_t> address, std::span<const uint8_t> payload,
            std::span<uint8_t> scratch, Address& to, std::span<const uint8_t>& bytes,
            UdpStats& stats) override;
  bool receive(UdpFlowState* state, std::span<const uint8_t> datagram, const sockaddr* from,
               std::span<uint8_t> scratch, UdpPacket& reply, UdpStats& stats) override;
  bool block_private() const override { return block_private_; }

 private:
  bool block_private_;
};

}  // namespace ss
