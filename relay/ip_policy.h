#pragma once
// Which destinations ss-server refuses by default (SSRF guard): addresses that reach the server's
// own host or networks behind it rather than the internet.

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace ss {

// True for the special-purpose ranges that are not globally reachable (the table in
// ip_policy.cpp, after IANA's IPv4 and IPv6 Special-Purpose Address Registries): loopback,
// unspecified, private, shared (100.64/10), link-local, documentation, benchmarking, reserved,
// multicast and broadcast. IPv6 forms that embed an IPv4 address (IPv4-mapped, -translated,
// -compatible, NAT64 64:ff9b::/96, 6to4, Teredo) are judged by that IPv4 address. Pure.
bool is_private_address(const sockaddr* sa);

// This host's interface addresses (getifaddrs), as a snapshot shared by every worker: read with
// one atomic load and a binary search over a sorted vector (no lock, no reference count on the
// hot path), re-read at most once per period by whichever thread first finds it stale. A
// snapshot is replaced only when the addresses changed, and replaced snapshots are kept until
// the set is destroyed (RCU without reclamation: a reader may still be searching one; they are a
// few dozen bytes per change of the host's addresses). Addresses are kept as 16 bytes, IPv4 as
// ::ffff:a.b.c.d.
class HostAddresses {
 public:
  using Key = std::array<uint8_t, 16>;
  using Source = std::function<std::vector<Key>()>;
  static constexpr uint64_t kDefaultPeriodMs = 10'000;

  // `source` lists the addresses (default: getifaddrs); read at once and then every `period_ms`.
  explicit HostAddresses(Source source = {}, uint64_t period_ms = kDefaultPeriodMs);

  // True if `sa` (or the IPv4 address an IPv6 form embeds) is one of the host's. `now_ms` is
  // monotonic_ms() unless a test drives the clock.
  bool contains(const sockaddr* sa);
  bool contains(const sockaddr* sa, uint64_t now_ms);
  // Re-reads the addresses now (on demand) and restarts the period.
  void refresh(uint64_t now_ms);
  size_t size() const;

  // getifaddrs(3): every AF_INET and AF_INET6 interface address of this network namespace.
  static std::vector<Key> read_interfaces();

 private:
  Source source_;
  const uint64_t period_ms_;
  std::atomic<uint64_t> next_refresh_ms_{0};
  std::atomic<const std::vector<Key>*> current_{nullptr};
  std::mutex refresh_mutex_;  // refresh() only: serialises writers, never taken by readers
  std::vector<std::unique_ptr<const std::vector<Key>>> snapshots_;  // every one published
};

// The process-wide set that the guard consults.
HostAddresses& host_addresses();

// The SSRF guard's whole decision: a special-purpose range or one of this host's addresses.
bool is_refused_target(const sockaddr* sa);

// True if `sa` (AF_INET or AF_INET6, port ignored) is an address of this host, in this network
// namespace: a plain (not transparent) socket can bind to it. Two system calls; for rare checks
// only, never per packet.
bool is_own_address(const sockaddr* sa);

}  // namespace ss
