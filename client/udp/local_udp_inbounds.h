#pragma once
// The local datagram inbounds: SOCKS5 UDP (ss-local's port, RFC 1928 §7) and the tunnel's fixed
// destination (ss-tunnel).

#include "relay/address.h"
#include "relay/udp_flow.h"

namespace ss {

class UdpRelay;

// [RSV RSV FRAG | ATYP addr port | data] from a client with an open UDP ASSOCIATE (in the
// relay's registry); replies go back as [00 00 00 | ATYP source port | data]. FRAG != 0, a
// sender without an association, or one whose association closed: dropped.
class Socks5UdpInbound final : public UdpInbound {
 public:
  explicit Socks5UdpInbound(UdpRelay& relay) : relay_(relay) {}
  bool receive(std::span<const uint8_t> datagram, const sockaddr* from, const sockaddr* dest,
               UdpFlows& flows, std::span<uint8_t> scratch, UdpRequest& req,
               UdpStats& stats) override;
  size_t reply(UdpFlowState* state, std::span<const uint8_t> address,
               std::span<const uint8_t> payload, std::span<uint8_t> out) override;
  bool alive(const UdpFlowState* state) const override;

 private:
  UdpRelay& relay_;
};

// Every datagram goes to one fixed destination; replies lose their address header.
class TunnelUdpInbound final : public UdpInbound {
 public:
  explicit TunnelUdpInbound(const Address& target);
  bool receive(std::span<const uint8_t> datagram, const sockaddr* from, const sockaddr* dest,
               UdpFlows& flows, std::span<uint8_t> scratch, UdpRequest& req,
               UdpStats& stats) override;
  size_t reply(UdpFlowState* state, std::span<const uint8_t> address,
               std::span<const uint8_t> payload, std::span<uint8_t> out) override;

 private:
  uint8_t target_[kMaxAddressLen];
  size_t target_len_;
};

// ss-redir through TPROXY: every datagram goes to the address it was sent to (its original
// destination); a reply goes back from its source's address, as if that had answered.
class RedirUdpInbound final : public UdpInbound {
 public:
  bool receive(std::span<const uint8_t> datagram, const sockaddr* from, const sockaddr* dest,
               UdpFlows& flows, std::span<uint8_t> scratch, UdpRequest& req,
               UdpStats& stats) override;
  size_t reply(UdpFlowState* state, std::span<const uint8_t> address,
               std::span<const uint8_t> payload, std::span<uint8_t> out) override;
  bool reply_from_source() const override { return true; }
};

}  // namespace ss
