#pragma once
// The Shadowsocks datagram outbound of ss-local, ss-tunnel and ss-redir: each association picks a
// server (round robin over the configured ones, each with its own address and packet suite) and
// keeps that server's client session for its life.

#include <atomic>
#include <memory>
#include <vector>

#include "crypto/udp_cipher.h"
#include "relay/address.h"
#include "relay/outbound.h"
#include "relay/udp_flow.h"

namespace ss {

struct UdpServer {
  Address address;
  std::shared_ptr<const UdpCipherSuite> suite;
};

class ShadowsocksUdpOutbound final : public UdpOutbound {
 public:
  // Each association's server: the router's choice (the TCP router's outbound index i is
  // servers[i]: the balancer's current or weighted pick), else round robin with `next`, shared
  // by the workers so it spans the process.
  ShadowsocksUdpOutbound(std::shared_ptr<const std::vector<UdpServer>> servers,
                         std::shared_ptr<std::atomic<size_t>> next,
                         std::shared_ptr<Router> router = nullptr)
      : servers_(std::move(servers)), next_(std::move(next)), router_(std::move(router)) {}
  std::unique_ptr<UdpFlowState> open_flow() override;
  bool send(UdpFlowState* state, std::span<const uint8_t> address, std::span<const uint8_t> payload,
            std::span<uint8_t> scratch, Address& to, std::span<const uint8_t>& bytes,
            UdpStats& stats) override;
  bool receive(UdpFlowState* state, std::span<const uint8_t> datagram, const sockaddr* from,
               std::span<uint8_t> scratch, UdpPacket& reply, UdpStats& stats) override;

 private:
  std::shared_ptr<const std::vector<UdpServer>> servers_;
  std::shared_ptr<std::atomic<size_t>> next_;
  std::shared_ptr<Router> router_;
};

}  // namespace ss
