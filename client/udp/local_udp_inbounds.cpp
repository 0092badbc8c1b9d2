// The local datagram inbounds. SOCKS5 UDP (RFC 1928 §7): a datagram is
// [RSV RSV FRAG | ATYP DST.ADDR DST.PORT | DATA]; fragments (FRAG != 0) are not supported and
// dropped, as the RFC allows; only the client that made the UDP ASSOCIATE may send, and only
// while its TCP connection lives. The tunnel: the payload alone, to one fixed destination.

#include "client/udp/local_udp_inbounds.h"

#include <atomic>
#include <cstring>

#include "client/socks5.h"
#include "relay/udp_relay.h"

namespace ss {
namespace {

// A SOCKS5 association's tie to its UDP ASSOCIATE: cleared (from any thread) the moment the TCP
// connection closes, so no datagram passes after that.
struct ControlState final : UdpFlowState {
  std::shared_ptr<std::atomic<bool>> alive;
};

// A reply without its address header (the client knows where it sent to).
size_t payload_only(std::span<const uint8_t> payload, std::span<uint8_t> out) {
  if (out.size() < payload.size()) return kNoReply;
  // An empty reply is a datagram too; its span may have no storage (memcpy must not see null).
  if (!payload.empty()) std::memcpy(out.data(), payload.data(), payload.size());
  return payload.size();
}

}  // namespace

bool Socks5UdpInbound::receive(std::span<const uint8_t> datagram, const sockaddr* from,
                               const sockaddr*, UdpFlows& flows, std::span<uint8_t>,
                               UdpRequest& req, UdpStats& stats) {
  uint8_t frag = 0;
  Address target;
  size_t header_len = 0;
  if (socks5::parse_udp_header(datagram, frag, target, header_len) != ParseStatus::Ok ||
      frag != 0) {
    ++stats.drop_malformed;
    return false;
  }
  req.key = flow_key_of(from);
  req.address = datagram.subspan(3, header_len - 3);
  req.payload = datagram.subspan(header_len);
  if (const UdpFlowState* s = flows.inbound_state(req.key)) {
    if (alive(s)) return true;
    ++stats.drop_unassociated;
    return false;
  }
  std::optional<UdpRelay::Control> c = relay_.control_for(from, req.key);
  if (!c) {
    ++stats.drop_unassociated;
    return false;
  }
  auto state = std::make_unique<ControlState>();
  state->alive = std::move(c->alive);
  req.state = std::move(state);
  req.control = c->id;
  return true;
}

size_t Socks5UdpInbound::reply(UdpFlowState*, std::span<const uint8_t> address,
                               std::span<const uint8_t> payload, std::span<uint8_t> out) {
  const size_t n = socks5::make_udp_datagram(address, payload, out);
  return n == 0 ? kNoReply : n;
}

bool Socks5UdpInbound::alive(const UdpFlowState* state) const {
  const auto* c = static_cast<const ControlState*>(state);
  return c != nullptr && c->alive->load();
}

TunnelUdpInbound::TunnelUdpInbound(const Address& target)
    : target_len_(encode_address(target, target_)) {}

bool TunnelUdpInbound::receive(std::span<const uint8_t> datagram, const sockaddr* from,
                               const sockaddr*, UdpFlows&, std::span<uint8_t>, UdpRequest& req,
                               UdpStats&) {
  req.key = flow_key_of(from);
  req.address = {target_, target_len_};
  req.payload = datagram;
  return true;
}

size_t TunnelUdpInbound::reply(UdpFlowState*, std::span<const uint8_t>,
                               std::span<const uint8_t> payload, std::span<uint8_t> out) {
  return payload_only(payload, out);
}

bool RedirUdpInbound::receive(std::span<const uint8_t> datagram, const sockaddr* from,
                              const sockaddr* dest, UdpFlows&, std::span<uint8_t> scratch,
                              UdpRequest& req, UdpStats& stats) {
  if (dest == nullptr || (dest->sa_family != AF_INET && dest->sa_family != AF_INET6)) {
    ++stats.drop_malformed;  // not delivered by TPROXY: no destination to take
    return false;
  }
  req.key = flow_key_of(from);
  const size_t n = encode_address(Address::from_sockaddr(dest).unmapped(), scratch.data());
  req.address = scratch.first(n);
  req.payload = datagram;
  return true;
}

size_t RedirUdpInbound::reply(UdpFlowState*, std::span<const uint8_t>,
                              std::span<const uint8_t> payload, std::span<uint8_t> out) {
  return payload_only(payload, out);
}

}  // namespace ss
