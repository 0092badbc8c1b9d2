#pragma once
// The Shadowsocks datagram outbound of ss-local, ss-tunnel, ss-redir and tun: each association
// picks a server (the balancer's choice, or round robin over the configured ones, each with its
// own address and packet suite) and keeps that server's client session while the server is
// usable. When the balancer marks it down (TCP or UDP, by probes or failed connects), the
// association's next datagram moves it to the server route_datagram() picks now, with a new
// client session of that server's suite (SIP022: a new session ID and packet counter; a session
// is never continued across servers), and asks the NAT for new sockets (UdpFlowState::
// renew_sockets), so the old server's late replies are dropped. The check per datagram is one
// relaxed load of the router's health generation and a compare.

#include <atomic>
#include <memory>
#include <mutex>
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

// The servers associations pick from, and the router that picks (the TCP side's balancer; null:
// round robin). A refresh of the server list (online_config) replaces the whole set; an
// association keeps the set it started with.
struct UdpServerSet {
  std::vector<UdpServer> servers;
  std::shared_ptr<Router> router;
};

// The current set, shared by every worker's outbound: read when an association starts (not per
// datagram), replaced from the main thread.
class UdpServerSource {
 public:
  std::shared_ptr<const UdpServerSet> get() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return set_;
  }
  void set(std::shared_ptr<const UdpServerSet> set) {
    std::lock_guard<std::mutex> lock(mutex_);
    set_ = std::move(set);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const UdpServerSet> set_;
};

class ShadowsocksUdpOutbound final : public UdpOutbound {
 public:
  // Each association's server, from the source's current set: the router's choice (the TCP
  // router's outbound index i is servers[i]: the balancer's current or weighted pick), else round
  // robin with `next`, shared by the workers so it spans the process.
  ShadowsocksUdpOutbound(std::shared_ptr<UdpServerSource> source,
                         std::shared_ptr<std::atomic<size_t>> next)
      : source_(std::move(source)), next_(std::move(next)) {}
  std::unique_ptr<UdpFlowState> open_flow() override;
  bool send(UdpFlowState* state, std::span<const uint8_t> address, std::span<const uint8_t> payload,
            std::span<uint8_t> scratch, Address& to, std::span<const uint8_t>& bytes,
            UdpStats& stats) override;
  bool receive(UdpFlowState* state, std::span<const uint8_t> datagram, const sockaddr* from,
               std::span<uint8_t> scratch, UdpPacket& reply, UdpStats& stats) override;
  // The server an association of this outbound (its open_flow() state) talks to; null if none.
  static const Address* server_of(const UdpFlowState* state);

 private:
  std::shared_ptr<UdpServerSource> source_;
  std::shared_ptr<std::atomic<size_t>> next_;
};

}  // namespace ss
