// The process-wide part of UDP: the SOCKS5 UDP ASSOCIATE registry (RFC 1928 §7: datagrams are
// admitted from the associating client's address only, and the association ends with its TCP
// connection), the announced port and the counters' sum; plus the helpers every worker's NAT and
// its inbounds and outbounds share.

#include "relay/udp_relay.h"

#include <netinet/in.h>

#include <cstdio>
#include <cstring>

#include "relay/log.h"
#include "relay/udp_nat.h"
#include "relay/warnings.h"

namespace ss {

UdpStats& UdpStats::operator+=(const UdpStats& o) {
  packets_in += o.packets_in;
  packets_out += o.packets_out;
  drop_auth += o.drop_auth;
  drop_malformed += o.drop_malformed;
  drop_unassociated += o.drop_unassociated;
  drop_overflow += o.drop_overflow;
  drop_resolve += o.drop_resolve;
  drop_replay += o.drop_replay;
  drop_clock += o.drop_clock;
  drop_blocked += o.drop_blocked;
  associations_created += o.associations_created;
  associations_evicted += o.associations_evicted;
  associations_expired += o.associations_expired;
  return *this;
}

size_t UdpFlowKeyHash::operator()(const UdpFlowKey& k) const {
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : k.id) h = (h ^ b) * 1099511628211ull;
  h = (h ^ k.port) * 1099511628211ull;
  h = (h ^ k.listener) * 1099511628211ull;
  return static_cast<size_t>(h ^ k.kind);
}

UdpFlowKey flow_key_of(const sockaddr* sa) {
  UdpFlowKey k;
  if (sa->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(k.id.data(), &v4->sin_addr, 4);
    k.port = ntohs(v4->sin_port);
    k.kind = 4;
  } else if (sa->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(k.id.data(), &v6->sin6_addr, 16);
    k.port = ntohs(v6->sin6_port);
    k.kind = 6;
  }
  return k;
}

void note_udp_drop(const UdpStatus& st, const sockaddr* from, const char* whose, UdpStats& stats) {
  switch (st.drop) {
    case UdpDrop::None:
      return;
    case UdpDrop::Clock: {
      ++stats.drop_clock;
      const int64_t skew = st.skew;
      char detail[160];
      snprintf(detail, sizeof detail, "%lld s %s our clock (the %s clock is off, or a replay)",
               static_cast<long long>(skew < 0 ? -skew : skew), skew < 0 ? "behind" : "ahead of",
               whose);
      warn::clock_skew("udp: dropped a packet that", detail, /*datagram=*/true);
      return;
    }
    case UdpDrop::Auth:
    case UdpDrop::UnknownUser:
      ++stats.drop_auth;
      if (from != nullptr) {
        warn::client_auth_failed(
            Address::from_sockaddr(from).to_string(),
            st.drop == UdpDrop::UnknownUser ? "UDP packet, unknown user" : "UDP packet");
      }
      return;
    case UdpDrop::Replay:
      ++stats.drop_replay;
      return;
    case UdpDrop::Malformed:
      ++stats.drop_malformed;
      return;
  }
}

uint16_t UdpRelay::port_for(uint16_t tcp_port) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint16_t p : ports_) {
    if (p == tcp_port) return p;
  }
  return ports_.empty() ? 0 : ports_.front();
}

void UdpRelay::add_port(uint16_t port) {
  std::lock_guard<std::mutex> lock(mu_);
  ports_.push_back(port);
}

uint64_t UdpRelay::open_control(const sockaddr* client, uint16_t expected_port) {
  Entry e;
  e.client = flow_key_of(client);
  e.client.port = expected_port;
  e.alive = std::make_shared<std::atomic<bool>>(true);
  e.opener = std::this_thread::get_id();
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_++;
  controls_.emplace(id, std::move(e));
  return id;
}

void UdpRelay::close_control(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = controls_.find(id);
  if (it == controls_.end()) return;
  it->second.alive->store(false);
  if (it->second.bound && it->second.nat != nullptr) {
    it->second.nat->post_close(id, it->second.bound_key);
  }
  controls_.erase(it);
}

std::optional<UdpRelay::Control> UdpRelay::control_for(const sockaddr* from,
                                                       const UdpFlowKey& key) {
  const UdpFlowKey k = flow_key_of(from);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : controls_) {
    if (c.client.kind != k.kind || c.client.id != k.id) continue;
    if (c.client.port != 0 && c.client.port != k.port) continue;
    // Bound: only that flow (from whichever listening socket; `key.listener` is not known yet).
    if (c.bound && (c.bound_key.kind != key.kind || c.bound_key.id != key.id ||
                    c.bound_key.port != key.port)) {
      continue;
    }
    return Control{id, c.alive};
  }
  return std::nullopt;
}

void UdpRelay::bind(uint64_t id, const UdpFlowKey& key, UdpNat* nat) {
  bool elsewhere = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = controls_.find(id);
    if (it == controls_.end()) return;
    it->second.bound = true;
    it->second.bound_key = key;
    it->second.nat = nat;
    elsewhere = it->second.opener != std::this_thread::get_id();
  }
  if (elsewhere) {
    LOG_DEBUG("udp: UDP ASSOCIATE %llu is served on another worker than its TCP connection",
              static_cast<unsigned long long>(id));
  }
}

void UdpRelay::detach(UdpNat* nat) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, c] : controls_) {
    if (c.nat == nat) c.nat = nullptr;
  }
}

void UdpRelay::add_stats(const UdpStats& s) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ += s;
}

void UdpRelay::log_summary() const {
  const UdpStats& t = total_;
  LOG_INFO(
      "udp: %llu datagrams in, %llu replies out, %llu associations (%llu expired, %llu evicted); "
      "dropped: %llu unauthenticated, %llu malformed, %llu unassociated, %llu replayed, %llu "
      "clock, %llu blocked, %llu unresolved, %llu buffer full",
      static_cast<unsigned long long>(t.packets_in), static_cast<unsigned long long>(t.packets_out),
      static_cast<unsigned long long>(t.associations_created),
      static_cast<unsigned long long>(t.associations_expired),
      static_cast<unsigned long long>(t.associations_evicted),
      static_cast<unsigned long long>(t.drop_auth),
      static_cast<unsigned long long>(t.drop_malformed),
      static_cast<unsigned long long>(t.drop_unassociated),
      static_cast<unsigned long long>(t.drop_replay), static_cast<unsigned long long>(t.drop_clock),
      static_cast<unsigned long long>(t.drop_blocked),
      static_cast<unsigned long long>(t.drop_resolve),
      static_cast<unsigned long long>(t.drop_overflow));
}

}  // namespace ss
