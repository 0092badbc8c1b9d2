#pragma once
// ss-server's datagram inbound: Shadowsocks packets opened with the method's packet suite.

#include <memory>

#include "crypto/udp_cipher.h"
#include "relay/udp_flow.h"

namespace ss {

class ShadowsocksUdpInbound final : public UdpInbound {
 public:
  explicit ShadowsocksUdpInbound(const UdpCipherSuite& suite) : opener_(suite.server_opener()) {}
  bool receive(std::span<const uint8_t> datagram, const sockaddr* from, const sockaddr* dest,
               UdpFlows& flows, std::span<uint8_t> scratch, UdpRequest& req,
               UdpStats& stats) override;
  size_t reply(UdpFlowState* state, std::span<const uint8_t> address,
               std::span<const uint8_t> payload, std::span<uint8_t> out) override;

 private:
  std::unique_ptr<UdpServerOpener> opener_;
};

}  // namespace ss
