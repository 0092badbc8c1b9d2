#pragma once
// ss-server's datagram inbound: Shadowsocks packets opened with the method's packet suite.

#include <memory>

#include "crypto/udp_cipher.h"
#include "relay/udp_flow.h"

namespace ss {

class Acl;
class UserLimits;
namespace metrics {
class PortSlots;
}

class ShadowsocksUdpInbound final : public UdpInbound {
 public:
  // `client_acl`: drop datagrams from clients it refuses (--acl), or null.
  // `limits`: the users' quotas (relay/user_limits.h), or null: a user's datagrams both ways
  // count towards its quota, and once it is used up they are dropped (UDP has no rate limit).
  // `slots`: the port's metrics slots (relay/metrics.h), or null: each user's datagrams, bytes
  // and associations are counted there.
  // A reload gives the socket a new inbound (UdpNat::set_inbound); associations made by an older
  // one keep its opener, and their datagrams are opened with it: a user a reload removed keeps
  // its live classic (by address) associations until they idle out, while its 2022 packets are
  // refused at once (the header names a user the new table does not have).
  explicit ShadowsocksUdpInbound(const UdpCipherSuite& suite, const Acl* client_acl = nullptr,
                                 std::shared_ptr<UserLimits> limits = nullptr,
                                 const metrics::PortSlots* slots = nullptr)
      : opener_(suite.server_opener()),
        client_acl_(client_acl),
        limits_(std::move(limits)),
        slots_(slots) {}
  bool receive(std::span<const uint8_t> datagram, const sockaddr* from, const sockaddr* dest,
               UdpFlows& flows, std::span<uint8_t> scratch, UdpRequest& req,
               UdpStats& stats) override;
  size_t reply(UdpFlowState* state, std::span<const uint8_t> address,
               std::span<const uint8_t> payload, std::span<uint8_t> out) override;

 private:
  std::shared_ptr<UdpServerOpener> opener_;
  const Acl* client_acl_;
  std::shared_ptr<UserLimits> limits_;
  const metrics::PortSlots* slots_;
};

}  // namespace ss
