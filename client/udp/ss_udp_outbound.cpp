// The Shadowsocks datagram outbound: requests sealed by the association's client session of its
// server's packet suite (SIP004 AEAD, none, or SIP022 2022), responses opened by it; which
// edition it is stays inside the suite.

#include "client/udp/ss_udp_outbound.h"

#include "relay/log.h"
#include "relay/metrics.h"

namespace ss {
namespace {

struct Flow final : UdpFlowState {
  std::shared_ptr<const UdpServerSet> set;  // keeps `server` alive across a refresh
  const UdpServer* server = nullptr;
  std::unique_ptr<UdpClientSession> session;
  uint32_t index = 0;                                 // server == &set->servers[index]
  const std::atomic<uint64_t>* generation = nullptr;  // the router's; null: no failover
  uint64_t seen = 0;                                  // the generation last checked
};

// The association's server went down: to the router's choice for a new association, if that is
// another server that takes UDP, with a fresh session of its suite. Runs once per health change.
void check_server(Flow& f) {
  f.seen = f.generation->load(std::memory_order_acquire);
  Router& router = *f.set->router;
  if (router.datagram_usable(f.index)) return;
  const Outbound* o = router.route_datagram();
  // Only to a server that takes UDP associations (none does: it stays).
  if (o == nullptr || o->index >= f.set->servers.size() || o->index == f.index ||
      !router.datagram_usable(o->index)) {
    return;
  }
  const UdpServer* from = f.server;
  f.index = o->index;
  f.server = &f.set->servers[f.index];
  f.session = f.server->suite->client_session();
  f.renew_sockets = true;
  metrics::udp_association_moved();
  LOG_INFO("udp: an association moved from server %s to %s (the first is down)",
           from->address.to_string().c_str(), f.server->address.to_string().c_str());
}

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
  f->index = static_cast<uint32_t>(i);
  f->server = &servers[i];
  f->session = f->server->suite->client_session();
  if (f->set->router) {
    f->generation = f->set->router->health_generation();
    if (f->generation != nullptr) f->seen = f->generation->load(std::memory_order_acquire);
  }
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
  if (f->generation != nullptr && f->generation->load(std::memory_order_relaxed) != f->seen) {
    check_server(*f);
  }
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
