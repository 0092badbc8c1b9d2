// Kernel-terminated TCP for tun mode (the design sing-box calls its "system" stack). A packet from
// client C:cp to target D:dp becomes spare:n -> own:P (n: a NAT port for the flow, P: our
// listener's port) and goes back into the TUN; the kernel, which owns `own`, terminates the TCP
// connection at our listener, which asks original_dst(spare:n) for D:dp. The listener's replies
// own:P -> spare:n leave through the TUN (spare is routed there) and become D:dp -> C:cp. Only
// addresses and ports change; checksums are updated incrementally (packet.cpp).

#include "client/tun/tcp_nat.h"

#include <cstring>

namespace ss {

size_t TcpNat::KeyHash::operator()(const Key& k) const {
  // FNV-1a over the bytes that identify the flow.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  mix(k.client.ip.b, k.client.ip.len);
  mix(k.target.ip.b, k.target.ip.len);
  const uint8_t ports[4] = {
      static_cast<uint8_t>(k.client.port >> 8), static_cast<uint8_t>(k.client.port),
      static_cast<uint8_t>(k.target.port >> 8), static_cast<uint8_t>(k.target.port)};
  mix(ports, 4);
  return static_cast<size_t>(h);
}

TcpNat::TcpNat(const IpEndpoint& listener, const IpBytes& spare, uint64_t idle_ms,
               uint64_t closed_ms)
    : listener_(listener),
      spare_(spare),
      idle_ms_(idle_ms),
      closed_ms_(closed_ms),
      entries_(65536) {}

bool TcpNat::expired(const Entry& e, uint64_t now_ms) const {
  const uint64_t limit = (e.rst || e.fins == 3) ? closed_ms_ : idle_ms_;
  // Workers' loop clocks differ by a few ms (one queue per worker): a last_ms set by another
  // worker may be ahead of now_ms, and is not an expiry.
  return now_ms > e.last_ms && now_ms - e.last_ms >= limit;
}

std::optional<uint16_t> TcpNat::allocate(const Key& k, uint64_t now_ms) {
  // Round robin over the ports, so a port is reused as late as possible (the kernel may still
  // hold the old connection in TIME_WAIT).
  for (uint32_t tries = 0; tries < 65536u - kFirstPort; ++tries) {
    const uint16_t port = next_;
    next_ = next_ == 65535 ? kFirstPort : static_cast<uint16_t>(next_ + 1);
    if (port == listener_.port) continue;
    Entry& e = entries_[port];
    if (e.used) {
      if (!expired(e, now_ms)) continue;
      by_flow_.erase(Key{e.client, e.target});
    }
    e = Entry{k.client, k.target, now_ms, 0, false, true};
    by_flow_.emplace(k, port);
    return port;
  }
  return std::nullopt;
}

bool TcpNat::translate(uint8_t* p, IpPacket& pkt, uint64_t now_ms) {
  if (pkt.protocol != kIpProtoTcp || pkt.src.ip.len != listener_.ip.len) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (pkt.src == listener_ && pkt.dst.ip == spare_) {
    // Our listener's side of a translated connection, back to the client.
    Entry& e = entries_[pkt.dst.port];
    if (!e.used) return false;
    e.last_ms = now_ms;
    if ((pkt.tcp_flags & kTcpFin) != 0) e.fins |= 2;
    if ((pkt.tcp_flags & kTcpRst) != 0) e.rst = true;
    const IpEndpoint src = e.target;
    const IpEndpoint dst = e.client;
    return rewrite_ip_packet(p, pkt, src, dst);
  }
  const Key k{pkt.src, pkt.dst};
  uint16_t port = 0;
  const auto it = by_flow_.find(k);
  if (it != by_flow_.end()) {
    port = it->second;
    Entry& e = entries_[port];
    // A new SYN on a flow that had ended: the client reused its port; so do we.
    if (expired(e, now_ms) && (pkt.tcp_flags & (kTcpSyn | kTcpAck)) != kTcpSyn) {
      by_flow_.erase(it);
      e.used = false;
      return false;
    }
    if ((pkt.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn && (e.rst || e.fins == 3)) {
      e.rst = false;
      e.fins = 0;
    }
  } else {
    // Only a SYN opens a flow; anything else for an unknown flow is stale.
    if ((pkt.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) != kTcpSyn) return false;
    const std::optional<uint16_t> got = allocate(k, now_ms);
    if (!got) return false;
    port = *got;
  }
  Entry& e = entries_[port];
  e.last_ms = now_ms;
  if ((pkt.tcp_flags & kTcpFin) != 0) e.fins |= 1;
  if ((pkt.tcp_flags & kTcpRst) != 0) e.rst = true;
  return rewrite_ip_packet(p, pkt, IpEndpoint{spare_, port}, listener_);
}

std::optional<IpEndpoint> TcpNat::original_dst(const IpEndpoint& peer) const {
  if (peer.ip != spare_) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  const Entry& e = entries_[peer.port];
  if (!e.used) return std::nullopt;
  return e.target;
}

size_t TcpNat::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_flow_.size();
}

}  // namespace ss
