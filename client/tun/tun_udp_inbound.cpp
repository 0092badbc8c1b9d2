// tun mode's UDP: datagrams arrive already parsed from IP packets (tun_engine.cpp); the target is
// the packet's destination. Replies are built as IPv4/IPv6 UDP packets (packet.h) whose source is
// the address the reply came from, per the Shadowsocks UDP reply's address header.
// With DNS on the device (tun_dns.h): a datagram to a fake address goes to its name (the server
// resolves it) and a reply to it comes back from the fake address; a DNS query to be relayed
// (port 53) goes to the resolver and its reply comes back from the address the client queried.

#include "client/tun/tun_udp_inbound.h"

#include <cstring>

#include "client/tun/packet.h"
#include "client/tun/tun_device.h"
#include "relay/address.h"

namespace ss {

namespace {

// A fake destination of the association and its address header (by name), built once.
struct FakeDst {
  IpEndpoint ep;
  uint8_t header[kMaxAddressLen] = {};
  uint16_t header_len = 0;
};

struct TunUdpState final : UdpFlowState {
  IpEndpoint client;
  IpEndpoint dns_dst;  // relay: where the client sent its last query
  bool relayed = false;
  static constexpr size_t kFakes = 4;
  FakeDst fakes[kFakes];
  uint8_t nfakes = 0, next_fake = 0;
};

}  // namespace

TunUdpInbound::TunUdpInbound(std::shared_ptr<const TunDevice> dev) : dev_(std::move(dev)) {}

bool TunUdpInbound::receive(std::span<const uint8_t> datagram, const sockaddr* from,
                            const sockaddr* dest, UdpFlows& flows, std::span<uint8_t> scratch,
                            UdpRequest& req, UdpStats& stats) {
  if (dest == nullptr || (dest->sa_family != AF_INET && dest->sa_family != AF_INET6)) {
    ++stats.drop_malformed;
    return false;
  }
  req.key = flow_key_of(from);
  auto* st = static_cast<TunUdpState*>(flows.inbound_state(req.key));
  if (st == nullptr) {
    const std::optional<IpEndpoint> client = endpoint_of(Address::from_sockaddr(from));
    if (!client) return false;
    auto fresh = std::make_unique<TunUdpState>();  // once per association
    fresh->client = *client;
    st = fresh.get();
    req.state = std::move(fresh);
  }
  req.payload = datagram;
  const Address target = Address::from_sockaddr(dest);
  TunDns* dns = dev_ ? dev_->dns() : nullptr;
  if (dns != nullptr && target.port == 53 && dns->resolver() != nullptr) {
    const std::optional<IpEndpoint> queried = endpoint_of(target);
    if (!queried) return false;
    st->dns_dst = *queried;
    st->relayed = true;
    req.address = scratch.first(encode_address(*dns->resolver(), scratch.data()));
    return true;
  }
  const std::optional<IpEndpoint> dst = endpoint_of(target);
  if (dns != nullptr && dst && dns->is_fake(dst->ip)) {
    const IpEndpoint ep = *dst;
    for (size_t i = 0; i < st->nfakes; ++i) {
      FakeDst& f = st->fakes[i];
      if (f.ep == ep) {
        if (dns->refuses(ep.ip, TunDns::now_ms())) break;  // expired: looked up afresh below
        std::memcpy(scratch.data(), f.header, f.header_len);
        req.address = scratch.first(f.header_len);
        return true;
      }
    }
    Address by_name = target;
    if (!tun_dns_target(dns, by_name)) {
      ++stats.drop_resolve;  // a fake address with no live entry
      return false;
    }
    FakeDst& f = st->fakes[st->next_fake];
    st->next_fake = static_cast<uint8_t>((st->next_fake + 1) % TunUdpState::kFakes);
    if (st->nfakes < TunUdpState::kFakes) ++st->nfakes;
    f.ep = ep;
    f.header_len = static_cast<uint16_t>(encode_address(by_name, f.header));
    std::memcpy(scratch.data(), f.header, f.header_len);
    req.address = scratch.first(f.header_len);
    return true;
  }
  req.address = scratch.first(encode_address(target, scratch.data()));
  return true;
}

size_t TunUdpInbound::reply(UdpFlowState* state, std::span<const uint8_t> address,
                            std::span<const uint8_t> payload, std::span<uint8_t> out) {
  const auto* st = static_cast<const TunUdpState*>(state);
  if (st == nullptr) return kNoReply;
  Address src;
  size_t used = 0;
  if (parse_address(address, src, used) != ParseStatus::Ok) return kNoReply;
  src = src.unmapped();
  const std::optional<IpEndpoint> src_ep = endpoint_of(src);
  std::optional<IpEndpoint> from;
  TunDns* dns = dev_ ? dev_->dns() : nullptr;
  if (dns != nullptr && st->relayed && dns->resolver() != nullptr && src == *dns->resolver()) {
    from = st->dns_dst;  // the address the client queried, not the resolver's
  } else if (st->nfakes > 0) {
    // A reply to a flow sent by name: from its fake address. The server reports the resolved
    // address it came from (or the name): matched by the header, else by the port.
    for (size_t k = 0; k < st->nfakes && !from; ++k) {
      const FakeDst& f =
          st->fakes[(st->next_fake + TunUdpState::kFakes - 1 - k) % TunUdpState::kFakes];
      if (f.header_len == used && std::memcmp(f.header, address.data(), used) == 0) from = f.ep;
    }
    for (size_t k = 0; k < st->nfakes && !from; ++k) {
      const FakeDst& f =
          st->fakes[(st->next_fake + TunUdpState::kFakes - 1 - k) % TunUdpState::kFakes];
      if (src_ep && f.ep.port == src_ep->port) from = f.ep;
    }
  }
  if (!from) from = src_ep;
  if (!from || from->ip.len != st->client.ip.len) return kNoReply;  // a name, or another family
  const size_t n =
      build_udp_packet(out.data(), out.size(), *from, st->client, payload.data(), payload.size());
  return n == 0 ? kNoReply : n;
}

}  // namespace ss
