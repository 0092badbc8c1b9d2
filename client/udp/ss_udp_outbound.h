#pragma once
// The Shadowsocks datagram outbound of ss-local, ss-tunnel and ss-redir: each association picks a
// server (round robin over the configured ones, each with its own address and packet suite) and
// keeps that server's client session for its life.

#include <atomic>
#include <memory>
#include <vector>

#include "crypto/udp_cipher.h"
#include "relay/address.h"
#include "relay/udp_flow.h"

namespace ss {

struct UdpServer {
  Address address;
  std::shared_ptr<const UdpCipherSuite> suite;
};

class ShadowsocksUdpOutbound final : public UdpOutbound {
 public:
  // `next` is shared by the workers so the round robin spans the process.
  ShadowsocksUdpOutbound(std::shared_ptr<const std::vector<UdpServer>> servers,
                         std::shared_ptr<std::atomic<size_t>> next)
      : servers_(std::move(servers)), next_(std::move(next)) {}
  std::unique_ptr<UdpFlowState> open_flow() override;
  bool send(UdpFlowState* state, std::span<const uint8_t> address, std::span<const uint8_t> payload,
            std::span<uint8_t> scratch, Address& to, std::span<const uint8_t>& bytes,
            UdpStats& stats) override;
  bool receive(UdpFlowState* state, std::span<const uint8_t> datagram, const sockaddr* from,
               std::span<uint8_t> scratch, UdpPacket& reply, UdpStats& stats) override;

 private:
  std::shared_ptr<const std::vector<UdpServer>> servers_;
  std::shared_ptr<std::atomic<size_t>> next_;
};

}  // namespace ss
