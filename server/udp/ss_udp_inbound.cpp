// ss-server's datagram inbound. A packet is opened in the suite's two steps around the NAT
// lookup: the first authenticates what it can and names the session (the sender's address for
// classic AEAD and none; the client session ID and SIP023 user for the 2022 edition, SIP022
// §3.2), the second opens the rest with that session's state, so a 2022 session is found by its
// ID and followed to a new address only once a packet of it fully validated. Nothing is created
// for a packet that fails.

#include "server/udp/ss_udp_inbound.h"

#include <netinet/in.h>

#include <cstring>

#include "crypto/key_trial.h"
#include "relay/acl.h"
#include "relay/address.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "relay/user_limits.h"
#include "relay/warnings.h"

namespace ss {
namespace {

struct Session final : UdpFlowState {
  // The opener that made it (the inbound's, or an earlier inbound's before a reload changed the
  // socket's keys): its packets are opened with it, and the session may point into it. Declared
  // first: destroyed after the session.
  std::shared_ptr<UdpServerOpener> opener;
  std::shared_ptr<UserLimits> limits;  // keeps `user` alive
  std::unique_ptr<UdpServerSession> session;
  UserState* user = nullptr;                  // the user's quota, if it has one (owned by `limits`)
  metrics::SlotCounters* counters = nullptr;  // this worker's, for its port and user; or null
};

void set_sender(UdpServerOpener& opener, const sockaddr* from) {
  if (from->sa_family == AF_INET6) {
    opener.set_sender(trial_ip_v6(reinterpret_cast<const sockaddr_in6*>(from)->sin6_addr.s6_addr));
  } else if (from->sa_family == AF_INET) {
    opener.set_sender(trial_ip_v4(
        reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(from)->sin_addr)));
  }
}

}  // namespace

bool ShadowsocksUdpInbound::receive(std::span<const uint8_t> datagram, const sockaddr* from,
                                    const sockaddr*, UdpFlows& flows, std::span<uint8_t> scratch,
                                    UdpRequest& req, UdpStats& stats) {
  if (client_acl_ != nullptr && client_acl_->client_blocked(from)) {
    ++stats.drop_blocked;
    warn::client_refused(Address::from_sockaddr(from).to_string() + " (UDP)");
    return false;
  }
  // An association by address made before a reload changed this socket's keys: opened with its
  // own opener (a 2022 one is found by its session ID below).
  // (Pointers, not copies of the shared_ptr: no reference count touched per datagram.)
  const std::shared_ptr<UdpServerOpener>* owner = &opener_;
  auto* early = static_cast<Session*>(flows.inbound_state(flow_key_of(from)));
  if (early != nullptr && early->opener != opener_) owner = &early->opener;
  UdpServerOpener* opener = owner->get();
  set_sender(*opener, from);
  UdpSessionId id;
  UdpStatus st = opener->open_header(datagram, scratch, id);
  if (!st.ok()) {
    note_udp_drop(st, from, "client's or this server's", stats);
    return false;
  }
  if (id.by_address) {
    req.key = flow_key_of(from);
  } else {
    req.key.kind = 22;
    std::memcpy(req.key.id.data(), &id.session_id, 8);
    std::memcpy(req.key.id.data() + 8, &id.user, 8);
    req.follow = true;
  }
  auto* known = id.by_address ? early : static_cast<Session*>(flows.inbound_state(req.key));
  if (known != nullptr && known->opener.get() != opener) {
    // A 2022 session from before a reload: its header again, with the opener that knows it.
    owner = &known->opener;
    opener = owner->get();
    set_sender(*opener, from);
    st = opener->open_header(datagram, scratch, id);
    if (!st.ok()) {
      note_udp_drop(st, from, "client's or this server's", stats);
      return false;
    }
  }
  UdpPacket packet;
  std::unique_ptr<UdpServerSession> created;
  st = opener->open_body(known != nullptr ? known->session.get() : nullptr, packet, created);
  if (!st.ok()) {
    note_udp_drop(st, from, "client's or this server's", stats);
    return false;
  }
  Address target;
  size_t used = 0;
  if (parse_address(packet.address, target, used) != ParseStatus::Ok) {
    ++stats.drop_malformed;
    return false;
  }
  // The user's quota: the whole datagram as received counts; a user over its quota gets nothing
  // through (dropped as a policy refusal).
  UserState* user = known != nullptr ? known->user : nullptr;
  if (created && limits_ && !created->user().empty()) user = limits_->find(created->user());
  if (user != nullptr && user->quota() != 0 && !user->charge(datagram.size(), limits_->now_s())) {
    ++stats.drop_blocked;
    warn::user_over_quota(user->name(), Address::from_sockaddr(from).to_string() + " (UDP)",
                          user->quota(), false);
    return false;
  }
  req.address = packet.address;
  req.payload = packet.payload;
  metrics::SlotCounters* counters = known != nullptr ? known->counters : nullptr;
  if (created) {
    if (!created->user().empty()) {
      LOG_INFO("udp: session of user %.*s from %s", static_cast<int>(created->user().size()),
               created->user().data(), Address::from_sockaddr(from).to_string().c_str());
    }
    auto s = std::make_unique<Session>();
    s->opener = *owner;
    s->limits = limits_;
    if (slots_ != nullptr) {
      const metrics::SlotId slot = slots_->find(created->user());
      if (slot != metrics::kNoSlot) {
        counters = s->counters = &metrics::slot(slot);
        counters->udp_sessions.fetch_add(1, std::memory_order_relaxed);
      }
    }
    s->session = std::move(created);
    s->user = user != nullptr && user->quota() != 0 ? user : nullptr;
    req.state = std::move(s);
  }
  if (counters != nullptr) {
    metrics::udp_datagram(*counters, false, static_cast<int64_t>(datagram.size()),
                          static_cast<int64_t>(packet.payload.size()));
  }
  return true;
}

size_t ShadowsocksUdpInbound::reply(UdpFlowState* state, std::span<const uint8_t> address,
                                    std::span<const uint8_t> payload, std::span<uint8_t> out) {
  auto* s = static_cast<Session*>(state);
  if (s == nullptr || s->session == nullptr) return kNoReply;
  if (s->user != nullptr && !s->user->charge(payload.size(), s->limits->now_s())) return kNoReply;
  const size_t n = s->session->seal(address, payload, out);
  if (n == 0) return kNoReply;
  if (s->counters != nullptr) {
    metrics::udp_datagram(*s->counters, true, static_cast<int64_t>(n),
                          static_cast<int64_t>(payload.size()));
  }
  return n;
}

}  // namespace ss
