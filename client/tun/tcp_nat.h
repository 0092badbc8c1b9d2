#pragma once
// The kernel-terminated TCP NAT of tun mode (see tcp_nat.cpp): rewrites each TCP packet read from
// the TUN so that the kernel's own TCP terminates the flow at our listener, and tells the
// listener where each accepted connection was going. One table per address family.

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "client/tun/packet.h"

namespace ss {

class TcpNat {
 public:
  // listener: the TUN's own address and our listening port there. spare: another address in the
  // TUN's prefix (not assigned to any interface), the source of every translated connection.
  // idle_ms: an entry unused this long is reclaimed; closed_ms: after a RST, or a FIN each way.
  TcpNat(const IpEndpoint& listener, const IpBytes& spare, uint64_t idle_ms = 600'000,
         uint64_t closed_ms = 60'000);

  // Translates a TCP packet read from the TUN, in place (pkt from parse_ip_packet). True: write it
  // back to the TUN. False: drop it (no entry for it and not a SYN, the table is full, or the
  // family differs).
  bool translate(uint8_t* p, IpPacket& pkt, uint64_t now_ms);

  // The original destination of the connection the listener accepted from peer (spare:nat port);
  // nullopt if peer is not a translated source. Safe from any thread.
  std::optional<IpEndpoint> original_dst(const IpEndpoint& peer) const;

  size_t size() const;

 private:
  struct Entry {
    IpEndpoint client, target;
    uint64_t last_ms = 0;
    uint8_t fins = 0;  // 1: from the client, 2: from the target
    bool rst = false;
    bool used = false;
  };
  struct Key {
    IpEndpoint client, target;
    bool operator==(const Key& o) const { return client == o.client && target == o.target; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  static constexpr uint16_t kFirstPort = 1024;

  bool expired(const Entry& e, uint64_t now_ms) const;
  std::optional<uint16_t> allocate(const Key& k, uint64_t now_ms);

  IpEndpoint listener_;
  IpBytes spare_;
  uint64_t idle_ms_, closed_ms_;
  mutable std::mutex mu_;       // the packet path and the listeners' lookups
  std::vector<Entry> entries_;  // by NAT port
  std::unordered_map<Key, uint16_t, KeyHash> by_flow_;
  uint16_t next_ = kFirstPort;
};

}  // namespace ss
