// Per-thread metric shards and their exposition in the Prometheus text format 0.0.4 (see
// metrics.h; the format: Prometheus' "Exposition formats" page). A thread's shard is registered
// in the process-wide registry at its first count; the registry's lock is taken then, at
// configuration time (add_port) and once per scrape, never on a count.

#include "relay/metrics.h"
#include "relay/metrics_dns.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "relay/version.h"

namespace ss::metrics {
namespace {

constexpr size_t kChunk = 256;      // slots per chunk
constexpr size_t kMaxChunks = 256;  // so at most 65,536 (port, user) slots

// Upper bounds of the histograms' buckets, in nanoseconds (+Inf follows).
constexpr std::array<uint64_t, 13> kDnsBounds = {
    1'000'000,     2'500'000,     5'000'000,     10'000'000,  25'000'000,
    50'000'000,    100'000'000,   250'000'000,   500'000'000, 1'000'000'000,
    2'500'000'000, 5'000'000'000, 10'000'000'000};
constexpr std::array<uint64_t, 12> kKeyBounds = {1'000,   2'500,     5'000,      10'000,
                                                 25'000,  50'000,    100'000,    250'000,
                                                 500'000, 1'000'000, 10'000'000, 100'000'000};
constexpr size_t kMaxBounds = 13;

struct Histogram {
  std::array<std::atomic<int64_t>, kMaxBounds + 1> buckets{};  // not cumulative; last: +Inf
  std::atomic<int64_t> count{0};
  std::atomic<int64_t> sum_ns{0};

  template <size_t N>
  void observe(const std::array<uint64_t, N>& bounds, uint64_t ns) {
    size_t i = 0;
    while (i < N && ns > bounds[i]) ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
    sum_ns.fetch_add(static_cast<int64_t>(ns), std::memory_order_relaxed);
  }
};

struct alignas(64) Shard {
  std::array<std::atomic<SlotCounters*>, kMaxChunks> chunks{};
  std::array<std::atomic<int64_t>, static_cast<size_t>(Reject::kCount)> rejects{};
  std::atomic<int64_t> targets_refused{0};
  std::array<std::atomic<int64_t>, static_cast<size_t>(UdpEvent::kCount)> udp{};
  std::atomic<int64_t> dns_failures{0};
  std::atomic<int64_t> balancer_switches{0};
  std::atomic<int64_t> udp_moves{0};
  Histogram dns;
  Histogram key_found;
  Histogram key_missed;
  // ss-local's DNS inbound (relay/metrics_dns.h), by DnsSource.
  std::array<std::atomic<int64_t>, static_cast<size_t>(DnsSource::kCount)> dns_in_answers{};
  std::array<std::atomic<int64_t>, static_cast<size_t>(DnsSource::kCount)> dns_in_failures{};
  Histogram dns_in;
};

struct SlotInfo {
  uint16_t port;
  std::string user;
};

struct Registry {
  std::mutex mutex;
  std::deque<Shard> shards;     // a deque: registering a shard never moves the others
  std::deque<PortSlots> ports;  // likewise for the PortSlots handed out
  std::vector<SlotInfo> slots;  // by slot id
  double start_time = 0;
  std::function<std::vector<UserQuota>()> quotas;         // null: no user has a quota
  std::function<std::vector<BalancerServer>()> balancer;  // null: no balancer
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: threads may count during exit
  return *r;
}

Shard& local_shard() {
  thread_local Shard* shard = [] {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    return &r.shards.emplace_back();
  }();
  return *shard;
}

SlotId new_slot(Registry& r, uint16_t port, std::string user) {
  if (r.slots.size() >= kChunk * kMaxChunks) return kNoSlot;
  r.slots.push_back({port, std::move(user)});
  return static_cast<SlotId>(r.slots.size() - 1);
}

// A slot's counters in one shard, or null if that shard never used it. Under the registry lock.
const SlotCounters* find_in(const Shard& s, SlotId id) {
  const SlotCounters* chunk = s.chunks[id / kChunk].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[id % kChunk];
}

template <typename F>
int64_t sum_slot(Registry& r, SlotId id, F field) {
  int64_t sum = 0;
  if (id == kNoSlot || id >= r.slots.size()) return 0;
  for (const Shard& s : r.shards) {
    if (const SlotCounters* c = find_in(s, id)) sum += field(*c).load(std::memory_order_relaxed);
  }
  return sum;
}

template <typename F>
int64_t sum_locked(F field) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  int64_t sum = 0;
  for (const Shard& s : r.shards) sum += field(s).load(std::memory_order_relaxed);
  return sum;
}

// ---- text format -------------------------------------------------------------------------------

// A label value escaped as the text format wants: backslash, double quote and line feed.
void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void value_line(std::string& out, std::string_view name_and_labels, int64_t v) {
  out += name_and_labels;
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

std::string port_user_labels(const SlotInfo& s) {
  std::string l = "port=\"" + std::to_string(s.port) + "\",user=\"";
  append_escaped(l, s.user);
  l += '"';
  return l;
}

std::string seconds_text(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(ns) / 1e9);
  return buf;
}

template <size_t N, typename F>
void histogram(std::string& out, Registry& r, const char* name, const std::string& labels,
               const std::array<uint64_t, N>& bounds, F field) {
  std::array<int64_t, N + 1> buckets{};
  int64_t count = 0;
  int64_t sum_ns = 0;
  for (const Shard& s : r.shards) {
    const Histogram& h = field(s);
    for (size_t i = 0; i <= N; ++i) buckets[i] += h.buckets[i].load(std::memory_order_relaxed);
    count += h.count.load(std::memory_order_relaxed);
    sum_ns += h.sum_ns.load(std::memory_order_relaxed);
  }
  const std::string sep = labels.empty() ? "" : ",";
  int64_t cumulative = 0;
  for (size_t i = 0; i <= N; ++i) {
    cumulative += buckets[i];
    const std::string le = i < N ? seconds_text(bounds[i]) : "+Inf";
    value_line(out, std::string(name) + "_bucket{" + labels + sep + "le=\"" + le + "\"}",
               cumulative);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += std::string(name) + "_sum" + braces + " " + seconds_text(static_cast<uint64_t>(sum_ns)) +
         "\n";
  value_line(out, std::string(name) + "_count" + braces, count);
}

}  // namespace

SlotId PortSlots::find(std::string_view user) const {
  if (user.empty() || users_.empty()) return none_;
  auto it = std::lower_bound(users_.begin(), users_.end(), user,
                             [](const auto& p, std::string_view u) { return p.first < u; });
  return it != users_.end() && it->first == user ? it->second : none_;
}

const PortSlots* add_port(uint16_t port, std::span<const std::string> users) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  PortSlots* p = nullptr;
  for (PortSlots& q : r.ports) {
    if (q.port_ == port) p = &q;
  }
  bool fresh = p == nullptr;  // not handed out yet: filled in place
  if (fresh) {
    p = &r.ports.emplace_back();
    p->port_ = port;
    p->none_ = new_slot(r, port, "");
  }
  // Users to add to a port the workers may be reading: a new table (the same slots, plus the new
  // users'), so a published one never changes under a reader; the old stays valid for those
  // that hold it.
  for (const std::string& u : users) {
    if (u.empty() || p->find(u) != p->none_) continue;
    if (!fresh) {
      PortSlots next = *p;
      p = &r.ports.emplace_back(std::move(next));
      fresh = true;
    }
    const SlotId id = new_slot(r, port, u);
    if (id == kNoSlot) break;
    p->users_.emplace_back(u, id);
    std::sort(p->users_.begin(), p->users_.end());
  }
  return p;
}

SlotCounters& slot(SlotId id) {
  Shard& s = local_shard();
  std::atomic<SlotCounters*>& c = s.chunks[id / kChunk];
  SlotCounters* chunk = c.load(std::memory_order_relaxed);  // only this thread stores it
  if (chunk == nullptr) {
    chunk = new SlotCounters[kChunk];  // once per thread and chunk; lives as long as the process
    c.store(chunk, std::memory_order_release);
  }
  return chunk[id % kChunk];
}

int64_t bytes(SlotId id, Dir d) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return sum_slot(
      r, id, [d](const SlotCounters& c) -> const auto& { return c.bytes[d]; });
}
int64_t opened(SlotId id) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return sum_slot(
      r, id, [](const SlotCounters& c) -> const auto& { return c.opened; });
}
int64_t closed(SlotId id) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return sum_slot(
      r, id, [](const SlotCounters& c) -> const auto& { return c.closed; });
}

int64_t udp_bytes(SlotId id, Dir d) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return sum_slot(
      r, id, [d](const SlotCounters& c) -> const auto& { return c.udp_bytes[d]; });
}
int64_t udp_packets(SlotId id, bool to_client) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const size_t k = to_client ? 1 : 0;
  return sum_slot(
      r, id, [k](const SlotCounters& c) -> const auto& { return c.udp_packets[k]; });
}
int64_t udp_sessions(SlotId id) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return sum_slot(
      r, id, [](const SlotCounters& c) -> const auto& { return c.udp_sessions; });
}

int64_t port_bytes(uint16_t port) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  int64_t sum = 0;
  for (SlotId id = 0; id < r.slots.size(); ++id) {
    if (r.slots[id].port != port) continue;
    for (const Dir d : {kClientToProxy, kProxyToClient}) {
      sum += sum_slot(
          r, id, [d](const SlotCounters& c) -> const auto& { return c.bytes[d]; });
      sum += sum_slot(
          r, id, [d](const SlotCounters& c) -> const auto& { return c.udp_bytes[d]; });
    }
  }
  return sum;
}

void reject(Reject why) {
  local_shard().rejects[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
}
int64_t rejects(Reject why) {
  return sum_locked([why](const Shard& s) -> const auto& {
    return s.rejects[static_cast<size_t>(why)];
  });
}

void target_refused() {
  local_shard().targets_refused.fetch_add(1, std::memory_order_relaxed);
}

void accepted(const PortSlots* port) {
  if (port != nullptr) slot(port->find({})).accepted.fetch_add(1, std::memory_order_relaxed);
}

void udp_association(UdpEvent e) {
  local_shard().udp[static_cast<size_t>(e)].fetch_add(1, std::memory_order_relaxed);
}

void dns_lookup(uint64_t ns, bool ok) {
  Shard& s = local_shard();
  s.dns.observe(kDnsBounds, ns);
  if (!ok) s.dns_failures.fetch_add(1, std::memory_order_relaxed);
}

void dns_inbound_answer(DnsSource src, uint64_t ns, bool ok) {
  Shard& s = local_shard();
  const auto i = static_cast<size_t>(src);
  if (ok) {
    s.dns_in_answers[i].fetch_add(1, std::memory_order_relaxed);
    s.dns_in.observe(kDnsBounds, ns);
  } else {
    s.dns_in_failures[i].fetch_add(1, std::memory_order_relaxed);
  }
}

void key_search(uint64_t ns, bool found) {
  Shard& s = local_shard();
  (found ? s.key_found : s.key_missed).observe(kKeyBounds, ns);
}

void set_start_time(double seconds) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.start_time = seconds;
}

void set_user_quotas(std::function<std::vector<UserQuota>()> source) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.quotas = std::move(source);
}

void set_balancer(std::function<std::vector<BalancerServer>()> source) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.balancer = std::move(source);
}

void balancer_switch() {
  local_shard().balancer_switches.fetch_add(1, std::memory_order_relaxed);
}

void udp_association_moved() {
  local_shard().udp_moves.fetch_add(1, std::memory_order_relaxed);
}

// The balancer's view of its servers (relay/balancer.h), and its switches and UDP moves summed
// over the shards.
void render_balancer(std::string& out, const Registry& r) {
  if (!r.balancer) return;
  const std::vector<BalancerServer> servers = r.balancer();
  if (servers.empty()) return;
  auto labelled = [](const char* name, const BalancerServer& b) {
    std::string l = std::string(name) + "{server=\"";
    append_escaped(l, b.server);
    return l + "\"}";
  };
  auto ms = [](uint32_t v) { return seconds_text(static_cast<uint64_t>(v) * 1'000'000); };
  family(out, "shadowsocks_balancer_server_up", "gauge",
         "1 if the balancer sends new connections to this server (its probes pass), 0 if it is "
         "down.");
  for (const BalancerServer& b : servers) {
    value_line(out, labelled("shadowsocks_balancer_server_up", b), b.up ? 1 : 0);
  }
  if (servers.front().udp_probed) {
    family(out, "shadowsocks_balancer_server_udp_up", "gauge",
           "1 if this server's UDP probes pass (new and live UDP associations use it), 0 if not.");
    for (const BalancerServer& b : servers) {
      value_line(out, labelled("shadowsocks_balancer_server_udp_up", b), b.udp_up ? 1 : 0);
    }
  }
  family(out, "shadowsocks_balancer_server_current", "gauge",
         "1 for the server \"best\" sends new connections to, 0 for the others.");
  for (const BalancerServer& b : servers) {
    value_line(out, labelled("shadowsocks_balancer_server_current", b), b.current ? 1 : 0);
  }
  family(out, "shadowsocks_balancer_server_rtt_seconds", "gauge",
         "The round trip of this server's last probe that passed (0: none yet).");
  for (const BalancerServer& b : servers) {
    out += labelled("shadowsocks_balancer_server_rtt_seconds", b) + " " +
           seconds_text(static_cast<uint64_t>(b.rtt_us) * 1000) + "\n";
  }
  family(out, "shadowsocks_balancer_server_score_seconds", "gauge",
         "This server's score: the mean of its last probes, a failed one counting twice "
         "max_server_rtt (lower is better; 0: not probed yet).");
  for (const BalancerServer& b : servers) {
    out += labelled("shadowsocks_balancer_server_score_seconds", b) + " " + ms(b.score_ms) + "\n";
  }
  int64_t switches = 0;
  int64_t moves = 0;
  for (const Shard& s : r.shards) {
    switches += s.balancer_switches.load(std::memory_order_relaxed);
    moves += s.udp_moves.load(std::memory_order_relaxed);
  }
  family(out, "shadowsocks_balancer_switches_total", "counter",
         "Changes of the server \"best\" sends new connections to.");
  value_line(out, "shadowsocks_balancer_switches_total", switches);
  family(out, "shadowsocks_udp_association_moves_total", "counter",
         "Live UDP associations moved to another server because theirs went down.");
  value_line(out, "shadowsocks_udp_association_moves_total", moves);
}

// The users' quotas (relay/user_limits.h): what each may use per period, and has used in this one.
void render_quotas(std::string& out, const Registry& r) {
  if (!r.quotas) return;
  const std::vector<UserQuota> users = r.quotas();
  const std::pair<const char*, const char*> families[] = {
      {"shadowsocks_user_quota_bytes",
       "Bytes a user may relay per quota period (both directions)."},
      {"shadowsocks_user_quota_used_bytes",
       "Bytes a user has relayed in its current quota period (both directions, as read)."}};
  for (size_t k = 0; k < 2; ++k) {
    family(out, families[k].first, "gauge", families[k].second);
    for (const UserQuota& u : users) {
      std::string name = std::string(families[k].first) + "{user=\"";
      append_escaped(name, u.user);
      name += "\"}";
      value_line(out, name, k == 0 ? u.quota : u.used);
    }
  }
}

std::string render_text() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string out;
  out.reserve(4096 + r.slots.size() * 600);

  family(out, "shadowsocks_build_info", "gauge", "The version of this build (always 1).");
  out += "shadowsocks_build_info{version=\"";
  append_escaped(out, SS_VERSION);
  out += "\"} 1\n";
  if (r.start_time > 0) {
    family(out, "shadowsocks_start_time_seconds", "gauge",
           "When the process started, in seconds since the Unix epoch.");
    char buf[48];
    std::snprintf(buf, sizeof buf, "shadowsocks_start_time_seconds %.3f\n", r.start_time);
    out += buf;
  }

  // Per (port, user).
  // [0..2] accepted, opened, closed; then TCP bytes by direction, UDP bytes by direction, UDP
  // datagrams from and to the client, UDP associations.
  constexpr size_t kUdpAt = 3 + kDirs;
  std::vector<std::array<int64_t, kUdpAt + kDirs + 3>> sums(r.slots.size());
  for (const Shard& s : r.shards) {
    for (SlotId id = 0; id < r.slots.size(); ++id) {
      const SlotCounters* c = find_in(s, id);
      if (c == nullptr) {
        id = static_cast<SlotId>((id / kChunk + 1) * kChunk - 1);  // the whole chunk is unused
        continue;
      }
      auto& v = sums[id];
      v[0] += c->accepted.load(std::memory_order_relaxed);
      v[1] += c->opened.load(std::memory_order_relaxed);
      v[2] += c->closed.load(std::memory_order_relaxed);
      for (size_t d = 0; d < kDirs; ++d) v[3 + d] += c->bytes[d].load(std::memory_order_relaxed);
      for (size_t d = 0; d < kDirs; ++d) {
        v[kUdpAt + d] += c->udp_bytes[d].load(std::memory_order_relaxed);
      }
      v[kUdpAt + kDirs] += c->udp_packets[0].load(std::memory_order_relaxed);
      v[kUdpAt + kDirs + 1] += c->udp_packets[1].load(std::memory_order_relaxed);
      v[kUdpAt + kDirs + 2] += c->udp_sessions.load(std::memory_order_relaxed);
    }
  }
  family(out, "shadowsocks_tcp_connections_accepted_total", "counter",
         "TCP connections accepted, before any byte (probes included).");
  for (SlotId id = 0; id < r.slots.size(); ++id) {
    if (!r.slots[id].user.empty()) continue;
    value_line(out,
               "shadowsocks_tcp_connections_accepted_total{port=\"" +
                   std::to_string(r.slots[id].port) + "\"}",
               sums[id][0]);
  }
  struct Column {
    const char* name;
    const char* type;
    const char* help;
  };
  const Column columns[] = {
      {"shadowsocks_tcp_connections_opened_total", "counter",
       "TCP connections whose request was read (authenticated), by port and user."},
      {"shadowsocks_tcp_connections_closed_total", "counter",
       "TCP connections closed after their request was read, by port and user."},
      {"shadowsocks_tcp_connections_active", "gauge",
       "TCP connections open now whose request was read, by port and user."},
  };
  for (size_t k = 0; k < 3; ++k) {
    family(out, columns[k].name, columns[k].type, columns[k].help);
    for (SlotId id = 0; id < r.slots.size(); ++id) {
      const auto& v = sums[id];
      const int64_t value = k == 0 ? v[1] : k == 1 ? v[2] : v[1] - v[2];
      value_line(out, std::string(columns[k].name) + "{" + port_user_labels(r.slots[id]) + "}",
                 value);
    }
  }
  family(out, "shadowsocks_data_bytes_total", "counter",
         "Bytes relayed over TCP, by port, user and direction: c>p client to proxy, p>t proxy to "
         "target, t>p target to proxy, p>c proxy to client (as sent: ciphertext on the "
         "encrypted side).");
  static constexpr const char* kDirText[kDirs] = {"c>p", "p>t", "t>p", "p>c"};
  for (SlotId id = 0; id < r.slots.size(); ++id) {
    for (size_t d = 0; d < kDirs; ++d) {
      value_line(out,
                 "shadowsocks_data_bytes_total{" + port_user_labels(r.slots[id]) + ",dir=\"" +
                     kDirText[d] + "\"}",
                 sums[id][3 + d]);
    }
  }
  family(out, "shadowsocks_udp_data_bytes_total", "counter",
         "Bytes relayed over UDP, by port, user and direction (as shadowsocks_data_bytes_total: "
         "c>p and p>c as sent, ciphertext; p>t and t>p payload).");
  for (SlotId id = 0; id < r.slots.size(); ++id) {
    for (size_t d = 0; d < kDirs; ++d) {
      value_line(out,
                 "shadowsocks_udp_data_bytes_total{" + port_user_labels(r.slots[id]) + ",dir=\"" +
                     kDirText[d] + "\"}",
                 sums[id][kUdpAt + d]);
    }
  }
  family(out, "shadowsocks_udp_packets_total", "counter",
         "UDP datagrams relayed, by port, user and direction: c>p from the client, p>c to it.");
  for (SlotId id = 0; id < r.slots.size(); ++id) {
    for (size_t k = 0; k < 2; ++k) {
      value_line(out,
                 "shadowsocks_udp_packets_total{" + port_user_labels(r.slots[id]) + ",dir=\"" +
                     (k == 0 ? "c>p" : "p>c") + "\"}",
                 sums[id][kUdpAt + kDirs + k]);
    }
  }
  family(out, "shadowsocks_udp_sessions_total", "counter",
         "UDP associations made, by port and user.");
  for (SlotId id = 0; id < r.slots.size(); ++id) {
    value_line(out, "shadowsocks_udp_sessions_total{" + port_user_labels(r.slots[id]) + "}",
               sums[id][kUdpAt + kDirs + 2]);
  }

  // Unlabelled.
  auto total = [&r](auto field) {
    int64_t sum = 0;
    for (const Shard& s : r.shards) sum += field(s).load(std::memory_order_relaxed);
    return sum;
  };
  family(out, "shadowsocks_tcp_probe_rejects_total", "counter",
         "Clients refused before their request (no byte sent back), by reason: auth (no key "
         "opens it), replay (a salt seen before), timestamp (a 2022 header outside +-30 s), "
         "header (a bad address header).");
  static constexpr const char* kRejectText[] = {"auth", "replay", "timestamp", "header"};
  for (size_t i = 0; i < static_cast<size_t>(Reject::kCount); ++i) {
    value_line(
        out, std::string("shadowsocks_tcp_probe_rejects_total{reason=\"") + kRejectText[i] + "\"}",
        total([i](const Shard& s) -> const auto& { return s.rejects[i]; }));
  }
  family(out, "shadowsocks_targets_refused_total", "counter",
         "Requests for a target the policy refuses (private addresses, the ACL, no route).");
  value_line(out, "shadowsocks_targets_refused_total",
             total([](const Shard& s) -> const auto& { return s.targets_refused; }));
  static constexpr const char* kUdpText[][2] = {
      {"shadowsocks_udp_associations_created_total", "UDP associations created."},
      {"shadowsocks_udp_associations_expired_total", "UDP associations ended by udp_timeout."},
      {"shadowsocks_udp_associations_evicted_total",
       "UDP associations evicted at udp_max_associations (least recently used first)."},
  };
  for (size_t i = 0; i < static_cast<size_t>(UdpEvent::kCount); ++i) {
    family(out, kUdpText[i][0], "counter", kUdpText[i][1]);
    value_line(out, kUdpText[i][0], total([i](const Shard& s) -> const auto& { return s.udp[i]; }));
  }
  family(out, "shadowsocks_dns_failures_total", "counter",
         "DNS lookups of TCP targets and servers that failed.");
  value_line(out, "shadowsocks_dns_failures_total",
             total([](const Shard& s) -> const auto& { return s.dns_failures; }));
  family(out, "shadowsocks_dns_resolve_seconds", "histogram",
         "Time to resolve a TCP target's or server's name.");
  histogram(out, r, "shadowsocks_dns_resolve_seconds", "", kDnsBounds,
            [](const Shard& s) -> const Histogram& { return s.dns; });
  family(out, "shadowsocks_key_search_seconds", "histogram",
         "Time to open a client's first chunk with the keys of its port; found=\"false\": no key "
         "opened it.");
  histogram(out, r, "shadowsocks_key_search_seconds", "found=\"true\"", kKeyBounds,
            [](const Shard& s) -> const Histogram& { return s.key_found; });
  histogram(out, r, "shadowsocks_key_search_seconds", "found=\"false\"", kKeyBounds,
            [](const Shard& s) -> const Histogram& { return s.key_missed; });
  static constexpr const char* kDnsSources[] = {"upstream=\"local\"", "upstream=\"remote\"",
                                                "upstream=\"cache\""};
  family(out, "shadowsocks_dns_inbound_answers_total", "counter",
         "ss-local's DNS inbound: queries answered, by the local resolver, the remote one (through "
         "the tunnel) or the cache.");
  for (size_t i = 0; i < std::size(kDnsSources); ++i) {
    value_line(out, "shadowsocks_dns_inbound_answers_total{" + std::string(kDnsSources[i]) + "}",
               total([i](const Shard& s) -> const auto& { return s.dns_in_answers[i]; }));
  }
  family(out, "shadowsocks_dns_inbound_failures_total", "counter",
         "ss-local's DNS inbound: queries answered SERVFAIL because that upstream failed or timed "
         "out.");
  for (size_t i = 0; i < 2; ++i) {
    value_line(out, "shadowsocks_dns_inbound_failures_total{" + std::string(kDnsSources[i]) + "}",
               total([i](const Shard& s) -> const auto& { return s.dns_in_failures[i]; }));
  }
  family(out, "shadowsocks_dns_inbound_answer_seconds", "histogram",
         "ss-local's DNS inbound: time from a query's arrival to its answer.");
  histogram(out, r, "shadowsocks_dns_inbound_answer_seconds", "", kDnsBounds,
            [](const Shard& s) -> const Histogram& { return s.dns_in; });
  render_quotas(out, r);
  render_balancer(out, r);
  return out;
}

}  // namespace ss::metrics
