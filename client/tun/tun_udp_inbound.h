#pragma once
// tun mode's datagram inbound: the tun engine hands the NAT each UDP packet's payload, its
// source as `from` and its destination as `dest`. One association per source (full cone, as
// SOCKS5 UDP): replies from any address become IP/UDP packets from that address to the source, so
// STUN sees the address it talked to.

#include <memory>

#include "relay/udp_flow.h"

namespace ss {

class TunDevice;

class TunUdpInbound final : public UdpInbound {
 public:
  // dev: the device whose DNS settings apply (tun_dns.h); null: none.
  explicit TunUdpInbound(std::shared_ptr<const TunDevice> dev = nullptr);
  bool receive(std::span<const uint8_t> datagram, const sockaddr* from, const sockaddr* dest,
               UdpFlows& flows, std::span<uint8_t> scratch, UdpRequest& req,
               UdpStats& stats) override;
  // The whole IP packet, ready for the TUN.
  size_t reply(UdpFlowState* state, std::span<const uint8_t> address,
               std::span<const uint8_t> payload, std::span<uint8_t> out) override;

 private:
  std::shared_ptr<const TunDevice> dev_;
};

}  // namespace ss
