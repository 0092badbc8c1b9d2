#pragma once
// Metrics for the Prometheus endpoint (relay/metrics_server), the future ss-manager `stat` and
// quotas: counters kept per worker thread and summed when read, with no lock on the data path.
//
// Two kinds:
//   * Labelled traffic counters, by (port, user): connections opened and closed, and bytes in
//     each of the four directions. Each (port, user) pair gets a slot id at configuration time
//     (add_port(): one slot for the port with no user, one per configured user), before any
//     worker runs. Each thread keeps its own array of SlotCounters, indexed by slot id and grown
//     in fixed chunks by that thread alone; a reader sums the slot over every thread. A
//     connection resolves its slot once (PortSlots::find(user), a binary search) and then adds
//     to it with relaxed atomics: one add per read from a socket and one per block queued for
//     writing, never per byte.
//     What quotas and ss-manager need is there already: bytes(slot) is one user's (or one
//     port's) total, read without stopping anyone.
//   * Unlabelled counters and histograms (rejects, refused targets, UDP associations, DNS, the
//     time to find a key), in the same per-thread shard.
//
// A user that is not in the slot table (none configured for that port) counts under the port's
// "" user. A published table never changes: a reload that adds users to a port gets a new table
// with the same slots plus the new users' (chunks make growth safe) before it publishes the new
// snapshot, so the kept users' counters continue.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ss::metrics {

// The four directions of relayed bytes (outline-ss-server's names): client to proxy, proxy to
// target, target to proxy, proxy to client. "Target" is whatever the remote side is (the target
// on ss-server, ss-server on ss-local).
enum Dir : uint8_t { kClientToProxy, kProxyToTarget, kTargetToProxy, kProxyToClient, kDirs };

using SlotId = uint32_t;
inline constexpr SlotId kNoSlot = ~SlotId{0};

// One worker's counters for one (port, user).
struct SlotCounters {
  std::atomic<int64_t> accepted{0};  // the port's "" slot only: see accepted()
  std::atomic<int64_t> opened{0};
  std::atomic<int64_t> closed{0};
  std::atomic<int64_t> bytes[kDirs] = {};
  // UDP (ss-server's Shadowsocks inbound): bytes in the four directions (c>p and p>c as sent,
  // ciphertext; p>t and t>p payload), datagrams from the client [0] and to it [1], and
  // associations made.
  std::atomic<int64_t> udp_bytes[kDirs] = {};
  std::atomic<int64_t> udp_packets[2] = {};
  std::atomic<int64_t> udp_sessions{0};
};

// The slots of one listening port: "" and each configured user (sorted by name).
class PortSlots {
 public:
  uint16_t port() const { return port_; }
  // The user's slot, or the port's "" slot when the user has none.
  SlotId find(std::string_view user) const;

 private:
  friend const PortSlots* add_port(uint16_t, std::span<const std::string>);
  uint16_t port_ = 0;
  SlotId none_ = kNoSlot;
  std::vector<std::pair<std::string, SlotId>> users_;
};

// Registers a port and its users. For a port already added, the same slots: its table if no user
// is new, else a new table with the new users' slots added (the old one is left as it was, for
// the threads reading it). The result lives as long as the process. Any thread.
const PortSlots* add_port(uint16_t port, std::span<const std::string> users);

// The calling thread's counters of a slot (created at the first use on this thread).
SlotCounters& slot(SlotId id);

inline void add_bytes(SlotCounters& s, Dir d, int64_t n) {
  s.bytes[d].fetch_add(n, std::memory_order_relaxed);
}
// One datagram relayed for a slot: from the client (`wire` bytes received, `payload` sent on to
// the target) or to it (`payload` from the target, `wire` bytes sent).
inline void udp_datagram(SlotCounters& s, bool to_client, int64_t wire, int64_t payload) {
  s.udp_packets[to_client ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
  s.udp_bytes[to_client ? kProxyToClient : kClientToProxy].fetch_add(wire,
                                                                     std::memory_order_relaxed);
  s.udp_bytes[to_client ? kTargetToProxy : kProxyToTarget].fetch_add(payload,
                                                                     std::memory_order_relaxed);
}

// Sums over every thread.
int64_t bytes(SlotId id, Dir d);
int64_t opened(SlotId id);
int64_t closed(SlotId id);
int64_t udp_bytes(SlotId id, Dir d);
int64_t udp_packets(SlotId id, bool to_client);
int64_t udp_sessions(SlotId id);

// Every slot of `port` (its "" slot and its users') summed over every thread: the bytes from
// clients plus the bytes to clients, TCP and UDP (ss-manager's "stat", as libev counts both).
// 0 for a port never added.
int64_t port_bytes(uint16_t port);

// Why ss-server rejected a client before its request (the probe-resistance reject policy).
enum class Reject : uint8_t { Auth, Replay, Timestamp, Header, kCount };
void reject(Reject why);
int64_t rejects(Reject why);

// An authenticated client asked for a target the policy refuses (SSRF guard, ACL, no route).
void target_refused();

// A TCP connection accepted on `port` (before any byte: probes too).
void accepted(const PortSlots* port);

enum class UdpEvent : uint8_t { Created, Expired, Evicted, kCount };
void udp_association(UdpEvent e);

// A DNS lookup that took `ns` nanoseconds; `ok` false if it failed.
void dns_lookup(uint64_t ns, bool ok);

// The time the Shadowsocks inbound spent opening a client's first chunk (what key trial extends
// to several keys), and whether it found the key.
void key_search(uint64_t ns, bool found);

// One user's quota for the exposition (relay/user_limits.h): bytes per period, and used in this
// one.
struct UserQuota {
  std::string user;
  int64_t quota = 0;
  int64_t used = 0;
};
// What render_text shows as shadowsocks_user_quota_bytes and shadowsocks_user_quota_used_bytes:
// `source` is called at each scrape, on the scraping thread (null: none).
void set_user_quotas(std::function<std::vector<UserQuota>()> source);

// The client's balancer (relay/balancer.h): one server as the metrics show it.
struct BalancerServer {
  std::string server;  // host:port
  bool up = true;
  bool udp_up = true;
  bool udp_probed = false;  // UDP probes run (else no UDP gauge)
  bool current = false;
  uint32_t rtt_us = 0;  // the last probe that passed (0: none yet)
  uint32_t score_ms = 0;
};
// What render_text shows as the shadowsocks_balancer_* gauges: `source` is called at each scrape,
// on the scraping thread, which must be the balancer's (the main loop); an empty list (no
// balancer) shows none. Null: none.
void set_balancer(std::function<std::vector<BalancerServer>()> source);
// The balancer changed its current server ("best"), on any thread.
void balancer_switch();
// A live UDP association moved to another server because its own was down (per worker).
void udp_association_moved();

// The whole exposition in the Prometheus text format 0.0.4.
std::string render_text();

// The Content-Type of render_text()'s body.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// The process start time (seconds since the epoch) shown as process_start_time_seconds; set by
// the main at start-up.
void set_start_time(double seconds);

}  // namespace ss::metrics
