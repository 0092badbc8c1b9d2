// Address classification for the SSRF guard: the special-purpose ranges that ss-server refuses as
// targets (a table checked against IANA's "IPv4 Special-Purpose Address Registry" and "IPv6
// Special-Purpose Address Registry", RFC 6890 and its updates), and this host's own interface
// addresses, which are refused like loopback because on a real host they reach every service
// bound to 0.0.0.0 through `lo`, where firewall rules on the public interface do not apply.
//
// The registries' rule followed here: a block whose "Globally Reachable" column is False is
// refused; a more specific block marked True inside it is allowed. Multicast (not in the
// registries) and IPv4 broadcast are refused too. IPv6 forms that embed an IPv4 address are judged
// by that address, whatever the registry says of the IPv6 prefix, so ::ffff:127.0.0.1,
// ::ffff:0:7f00:1, 2002:7f00:1:: and 64:ff9b::7f00:1 are all as refused as 127.0.0.1.
//
// IPv4 (first match wins)             verdict   why
//   192.0.0.9/32, 192.0.0.10/32       allow     PCP and TURN anycast (RFC 7723, 8155): global
//   0.0.0.0/8                         refuse    "this network"; 0.0.0.0 reaches this host
//   10.0.0.0/8, 172.16.0.0/12,        refuse    private-use (RFC 1918)
//     192.168.0.0/16
//   100.64.0.0/10                     refuse    shared address space, carrier-grade NAT (RFC 6598)
//   127.0.0.0/8                       refuse    loopback
//   169.254.0.0/16                    refuse    link-local; cloud metadata services live here
//   192.0.0.0/24                      refuse    IETF protocol assignments (DS-Lite, NAT64
//   discovery) 192.0.2.0/24, 198.51.100.0/24,    refuse    documentation TEST-NET-1/2/3 (RFC 5737)
//     203.0.113.0/24
//   192.88.99.0/24                    refuse    deprecated 6to4 relay anycast (RFC 7526)
//   198.18.0.0/15                     refuse    benchmarking (RFC 2544)
//   224.0.0.0/4                       refuse    multicast
//   240.0.0.0/4                       refuse    reserved (RFC 1112), with 255.255.255.255 broadcast
// IPv6 (first match wins)
//   ::/128, ::1/128                   refuse    unspecified, loopback
//   ::ffff:0:0/96                     embedded  IPv4-mapped (RFC 4291)
//   ::ffff:0:0:0/96                   embedded  IPv4-translated (RFC 2765, SIIT)
//   ::/96                             embedded  IPv4-compatible (deprecated, RFC 4291)
//   64:ff9b::/96                      embedded  NAT64 well-known prefix (RFC 6052): global only as
//                                               far as the IPv4 address it carries is
//   64:ff9b:1::/48                    refuse    local-use IPv4/IPv6 translation (RFC 8215)
//   100::/63                          refuse    discard-only (RFC 6666) and dummy (RFC 9780) /64s
//   2001:1::1-3/128, 2001:3::/32,     allow     PCP/TURN/DNS-SD anycast, AMT, AS112, ORCHIDv2,
//     2001:4:112::/48, 2001:20::/28,            drone DETs: global
//     2001:30::/28
//   2001::/32                         embedded  Teredo (RFC 4380): the client's IPv4, inverted,
//                                               in the last 32 bits
//   2001::/23                         refuse    the rest of the IETF protocol assignments
//                                               (benchmarking 2001:2::/48, deprecated ORCHID)
//   2001:db8::/32, 3fff::/20          refuse    documentation (RFC 3849, RFC 9637)
//   2002::/16                         embedded  6to4 (RFC 3056): the IPv4 in bits 16-47
//   5f00::/16                         refuse    segment routing SIDs (RFC 9602)
//   fc00::/7                          refuse    unique local (RFC 4193)
//   fe80::/10, fec0::/10              refuse    link-local; site-local (deprecated, RFC 3879)
//   ff00::/8                          refuse    multicast

#include "relay/ip_policy.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "relay/log.h"

namespace ss {
namespace {

enum class Verdict : uint8_t { Allow, Refuse, Embedded };

struct Range {
  uint8_t prefix[16];
  uint8_t bits;
  Verdict verdict;
  uint8_t v4_offset = 0;  // Embedded: where the IPv4 address starts
  uint8_t v4_xor = 0;     // Embedded: Teredo stores it inverted
};

constexpr Range kV4[] = {
    {{192, 0, 0, 9}, 32, Verdict::Allow},
    {{192, 0, 0, 10}, 32, Verdict::Allow},
    {{0}, 8, Verdict::Refuse},
    {{10}, 8, Verdict::Refuse},
    {{100, 64}, 10, Verdict::Refuse},
    {{127}, 8, Verdict::Refuse},
    {{169, 254}, 16, Verdict::Refuse},
    {{172, 16}, 12, Verdict::Refuse},
    {{192, 0, 0}, 24, Verdict::Refuse},
    {{192, 0, 2}, 24, Verdict::Refuse},
    {{192, 88, 99}, 24, Verdict::Refuse},
    {{192, 168}, 16, Verdict::Refuse},
    {{198, 18}, 15, Verdict::Refuse},
    {{198, 51, 100}, 24, Verdict::Refuse},
    {{203, 0, 113}, 24, Verdict::Refuse},
    {{224}, 4, Verdict::Refuse},
    {{240}, 4, Verdict::Refuse},
};

constexpr Range kV6[] = {
    {{}, 128, Verdict::Refuse},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, Verdict::Refuse},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, 96, Verdict::Embedded, 12},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0}, 96, Verdict::Embedded, 12},
    {{}, 96, Verdict::Embedded, 12},
    {{0, 0x64, 0xFF, 0x9B}, 96, Verdict::Embedded, 12},
    {{0, 0x64, 0xFF, 0x9B, 0, 1}, 48, Verdict::Refuse},
    {{0x01, 0x00}, 63, Verdict::Refuse},
    {{0x20, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, Verdict::Allow},
    {{0x20, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 128, Verdict::Allow},
    {{0x20, 0x01, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}, 128, Verdict::Allow},
    {{0x20, 0x01, 0, 3}, 32, Verdict::Allow},
    {{0x20, 0x01, 0, 4, 0x01, 0x12}, 48, Verdict::Allow},
    {{0x20, 0x01, 0, 0x20}, 28, Verdict::Allow},
    {{0x20, 0x01, 0, 0x30}, 28, Verdict::Allow},
    {{0x20, 0x01, 0, 0}, 32, Verdict::Embedded, 12, 0xFF},
    {{0x20, 0x01}, 23, Verdict::Refuse},
    {{0x20, 0x01, 0x0D, 0xB8}, 32, Verdict::Refuse},
    {{0x3F, 0xFF}, 20, Verdict::Refuse},
    {{0x20, 0x02}, 16, Verdict::Embedded, 2},
    {{0x5F, 0x00}, 16, Verdict::Refuse},
    {{0xFC}, 7, Verdict::Refuse},
    {{0xFE, 0x80}, 10, Verdict::Refuse},
    {{0xFE, 0xC0}, 10, Verdict::Refuse},
    {{0xFF}, 8, Verdict::Refuse},
};

bool in_prefix(const uint8_t* a, const Range& r) {
  const unsigned whole = r.bits / 8, rest = r.bits % 8;
  if (std::memcmp(a, r.prefix, whole) != 0) return false;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF00u >> rest);
  return (a[whole] & mask) == (r.prefix[whole] & mask);
}

template <size_t N>
const Range* match(const Range (&table)[N], const uint8_t* a) {
  for (const Range& r : table) {
    if (in_prefix(a, r)) return &r;
  }
  return nullptr;
}

bool refused_v4(const uint8_t a[4]) {
  const Range* r = match(kV4, a);
  return r != nullptr && r->verdict == Verdict::Refuse;
}

// The IPv4 address an IPv6 form carries, if the table says it is judged by it.
bool embedded_v4(const uint8_t a[16], uint8_t out[4]) {
  const Range* r = match(kV6, a);
  if (r == nullptr || r->verdict != Verdict::Embedded) return false;
  for (int i = 0; i < 4; ++i) out[i] = a[r->v4_offset + i] ^ r->v4_xor;
  return true;
}

bool refused_v6(const uint8_t a[16]) {
  const Range* r = match(kV6, a);
  if (r == nullptr) return false;
  if (r->verdict == Verdict::Embedded) {
    uint8_t v4[4];
    embedded_v4(a, v4);
    return refused_v4(v4);
  }
  return r->verdict == Verdict::Refuse;
}

HostAddresses::Key mapped_key(const uint8_t v4[4]) {
  HostAddresses::Key k{};
  k[10] = k[11] = 0xFF;
  std::memcpy(k.data() + 12, v4, 4);
  return k;
}

}  // namespace

bool is_private_address(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    uint8_t a[4];
    std::memcpy(a, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return refused_v4(a);
  }
  if (sa->sa_family == AF_INET6) {
    uint8_t a[16];
    std::memcpy(a, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return refused_v6(a);
  }
  return true;  // anything else is not a destination we relay to
}

HostAddresses::HostAddresses(Source source, uint64_t period_ms)
    : source_(source ? std::move(source) : Source(&HostAddresses::read_interfaces)),
      period_ms_(period_ms) {
  refresh(monotonic_ms());
}

std::vector<HostAddresses::Key> HostAddresses::read_interfaces() {
  std::vector<Key> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      uint8_t a[4];
      std::memcpy(a, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
      out.push_back(mapped_key(a));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      Key k;
      std::memcpy(k.data(), &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
      out.push_back(k);
    }
  }
  freeifaddrs(list);
  return out;
}

void HostAddresses::refresh(uint64_t now_ms) {
  next_refresh_ms_.store(now_ms + period_ms_, std::memory_order_relaxed);
  std::vector<Key> keys = source_();
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::lock_guard<std::mutex> lock(refresh_mutex_);
  const std::vector<Key>* now = current_.load(std::memory_order_relaxed);
  if (now != nullptr && *now == keys) return;
  snapshots_.push_back(std::make_unique<const std::vector<Key>>(std::move(keys)));
  current_.store(snapshots_.back().get(), std::memory_order_release);
}

size_t HostAddresses::size() const {
  const std::vector<Key>* snap = current_.load(std::memory_order_acquire);
  return snap ? snap->size() : 0;
}

bool HostAddresses::contains(const sockaddr* sa) {
  return contains(sa, monotonic_ms());
}

bool HostAddresses::contains(const sockaddr* sa, uint64_t now_ms) {
  uint64_t next = next_refresh_ms_.load(std::memory_order_relaxed);
  // One thread re-reads a stale set; the others go on with the one they have.
  if (now_ms >= next && next_refresh_ms_.compare_exchange_strong(next, now_ms + period_ms_,
                                                                 std::memory_order_relaxed)) {
    refresh(now_ms);
  }
  Key k{};
  Key embedded{};
  bool has_embedded = false;
  if (sa->sa_family == AF_INET) {
    uint8_t a[4];
    std::memcpy(a, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    k = mapped_key(a);
  } else if (sa->sa_family == AF_INET6) {
    std::memcpy(k.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    uint8_t v4[4];
    if (embedded_v4(k.data(), v4)) {
      embedded = mapped_key(v4);
      has_embedded = true;
    }
  } else {
    return false;
  }
  const std::vector<Key>* snap = current_.load(std::memory_order_acquire);
  if (snap == nullptr) return false;
  return std::binary_search(snap->begin(), snap->end(), k) ||
         (has_embedded && std::binary_search(snap->begin(), snap->end(), embedded));
}

HostAddresses& host_addresses() {
  static HostAddresses set;
  return set;
}

bool is_refused_target(const sockaddr* sa) {
  return is_private_address(sa) || host_addresses().contains(sa);
}

bool is_own_address(const sockaddr* sa) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (sa->sa_family == AF_INET) {
    len = sizeof(sockaddr_in);
  } else if (sa->sa_family == AF_INET6) {
    len = sizeof(sockaddr_in6);
  } else {
    return false;
  }
  std::memcpy(&ss, sa, len);
  // Port 0: only the address is in question (and no port is taken).
  if (ss.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = 0;
  } else {
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = 0;
  }
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  // Without IP_TRANSPARENT (and with ip_nonlocal_bind off, the default) binding a foreign address
  // fails with EADDRNOTAVAIL.
  const bool own = bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0;
  close(fd);
  return own;
}

}  // namespace ss
