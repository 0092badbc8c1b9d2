// The direct datagram outbound: the target's address header is parsed (a name is resolved by the
// NAT), the payload sent as it is; a reply's source becomes its address header.

#include "relay/udp_direct.h"

#include "relay/acl.h"
#include "relay/warnings.h"

namespace ss {

bool DirectUdpOutbound::send(UdpFlowState*, std::span<const uint8_t> address,
                             std::span<const uint8_t> payload, std::span<uint8_t>, Address& to,
                             std::span<const uint8_t>& bytes, UdpStats& stats) {
  size_t used = 0;
  if (parse_address(address, to, used) != ParseStatus::Ok) {
    ++stats.drop_malformed;
    return false;
  }
  if (acl_ != nullptr && acl_->outbound(to) == Acl::Verdict::Block) {
    ++stats.drop_blocked;
    warn::target_refused("a UDP client", to.to_string(), "the ACL blocks it (UDP)");
    return false;
  }
  bytes = payload;
  return true;
}

bool DirectUdpOutbound::acl_blocks(const sockaddr* to) const {
  return acl_ != nullptr && acl_->outbound_blocked(to);
}

bool DirectUdpOutbound::receive(UdpFlowState*, std::span<const uint8_t> datagram,
                                const sockaddr* from, std::span<uint8_t> scratch, UdpPacket& reply,
                                UdpStats&) {
  const size_t n = encode_address(Address::from_sockaddr(from), scratch.data());
  reply.address = scratch.first(n);
  reply.payload = datagram;
  return true;
}

}  // namespace ss
