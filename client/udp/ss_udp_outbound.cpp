// The Shadowsocks datagram outbound: requests sealed by the association's client session of its
// server's packet suite (SIP004 AEAD, none, or SIP022 2022), responses opened by it; which
// edition it is stays inside the suite.

#include "client/udp/ss_udp_outbound.h"

namespace ss {
namespace {

struct Flow final : UdpFlowState {
  std::shared_ptr<const UdpServerSet> set;  // keeps `server` alive across a refresh
  const UdpServer* server = nullptr;
  std::unique_ptr<UdpClientSession> session;
};

}  // namespace

std::unique_ptr<UdpFlowState> ShadowsocksUdpOutbound::open_flow() {
  auto f = std::make_unique<Flow>();
  f->set = source_->get();
  if (f->set == nullptr || f->set->servers.empty()) return f;
  const std::vector<UdpServer>& servers = f->set->servers;
  size_t i = servers.size();
  if (f->set->router) {
    if (const Outbound* o = f->set->router->route_datagram()) i = o->index;
  }
  if (i >= servers.size()) i = next_->fetch_add(1, std::memory_order_relaxed) % servers.size();
  f->server = &servers[i];
  f->session = f->server->suite->client_session();
  return f;
}

const Address* ShadowsocksUdpOutbound::server_of(const UdpFlowState* state) {
  const auto* f = static_cast<const Flow*>(state);
  return f == nullptr || f->server == nullptr ? nullptr : &f->server->address;
}

bool ShadowsocksUdpOutbound::send(UdpFlowState* state, std::span<const uint8_t> address,
                                  std::span<const uint8_t> payload, std::span<uint8_t> scratch,
                                  Address& to, std::span<const uint8_t>& bytes, UdpStats& stats) {
  auto* f = static_cast<Flow*>(state);
  if (f->session == nullptr) return false;
  const size_t n = f->session->seal(address, payload, scratch);
  if (n == 0) {
    ++stats.drop_malformed;
    return false;
  }
  to = f->server->address;
  bytes = scratch.first(n);
  return true;
}

bool ShadowsocksUdpOutbound::receive(UdpFlowState* state, std::span<const uint8_t> datagram,
                                     const sockaddr*, std::span<uint8_t> scratch, UdpPacket& reply,
                                     UdpStats& stats) {
  auto* f = static_cast<Flow*>(state);
  if (f->session == nullptr) return false;
  const UdpStatus st = f->session->open(datagram, scratch, reply);
  if (!st.ok()) {
    note_udp_drop(st, nullptr, "server's or this client's", stats);
    return false;
  }
  return true;
}

}  // namespace ss
