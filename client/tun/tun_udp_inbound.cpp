// tun mode's UDP: datagrams arrive already parsed from IP packets (tun_engine.cpp); the target is
// the packet's destination. Replies are built as IPv4/IPv6 UDP packets (packet.h) whose source is
// the address the reply came from, per the Shadowsocks UDP reply's address header.

#include "client/tun/tun_udp_inbound.h"

#include "client/tun/packet.h"
#include "client/tun/tun_device.h"
#include "relay/address.h"

namespace ss {

namespace {

struct TunUdpState final : UdpFlowState {
  IpEndpoint client;
};

}  // namespace

bool TunUdpInbound::receive(std::span<const uint8_t> datagram, const sockaddr* from,
                            const sockaddr* dest, UdpFlows& flows, std::span<uint8_t> scratch,
                            UdpRequest& req, UdpStats& stats) {
  if (dest == nullptr || (dest->sa_family != AF_INET && dest->sa_family != AF_INET6)) {
    ++stats.drop_malformed;
    return false;
  }
  req.key = flow_key_of(from);
  if (flows.inbound_state(req.key) == nullptr) {
    const std::optional<IpEndpoint> client = endpoint_of(Address::from_sockaddr(from));
    if (!client) return false;
    auto st = std::make_unique<TunUdpState>();  // once per association
    st->client = *client;
    req.state = std::move(st);
  }
  const size_t n = encode_address(Address::from_sockaddr(dest), scratch.data());
  req.address = scratch.first(n);
  req.payload = datagram;
  return true;
}

size_t TunUdpInbound::reply(UdpFlowState* state, std::span<const uint8_t> address,
                            std::span<const uint8_t> payload, std::span<uint8_t> out) {
  const auto* st = static_cast<const TunUdpState*>(state);
  if (st == nullptr) return kNoReply;
  Address src;
  size_t used = 0;
  if (parse_address(address, src, used) != ParseStatus::Ok) return kNoReply;
  std::optional<IpEndpoint> from = endpoint_of(src.unmapped());
  if (!from || from->ip.len != st->client.ip.len) return kNoReply;  // a name, or another family
  const size_t n =
      build_udp_packet(out.data(), out.size(), *from, st->client, payload.data(), payload.size());
  return n == 0 ? kNoReply : n;
}

}  // namespace ss
