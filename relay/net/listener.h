#pragma once
// A TCP listener that owns every session it accepted (intrusive list) until that session's last
// close callback.

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "crypto/tcp_cipher.h"
#include "relay/config.h"
#include "relay/inbound.h"
#include "relay/net/connection_cap.h"
#include "relay/outbound.h"
#include "relay/pump.h"
#include "relay/runtime.h"

namespace ss {
namespace metrics {
class PortSlots;
}

class Connection;
class UdpRelay;

// The session cap a listener uses when none is shared: `configured` (max_connections), or half
// the descriptor limit less a reserve for `workers` event loops (0: one per CPU).
size_t default_max_connections(size_t configured, int workers);

// Which CPU each worker is pinned to, in worker order, when there is one worker per CPU the
// process may use (its affinity mask) and `enabled`; empty otherwise (no pinning, no steering).
std::vector<int> worker_cpus(int workers, bool enabled);

// Attaches to a listening SO_REUSEPORT socket (after listen(): the group exists from then on) a
// classic BPF program that hands a new connection to the group's socket number i when CPU
// `cpus[i]` received it, and to the kernel's hash for any other CPU. Sockets join a group in the
// order they listen, so with workers listening in worker order, socket i is worker i's. Returns 0
// or errno.
int attach_cpu_steering(int fd, const std::vector<int>& cpus);

class Listener {
 public:
  // Makes the inbound (the protocol state machine) for each accepted connection.
  using Factory = std::function<std::unique_ptr<Inbound>(Listener&)>;

  // `runtime` is the snapshot new connections take: the Shadowsocks inbound's suite, the router,
  // the limits and socket options.
  Listener(uv_loop_t* loop, std::shared_ptr<const Runtime> runtime, Factory factory);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds host:port (an IP literal, or a name resolved now, at start-up) and listens. Returns 0
  // or a libuv error code.
  int listen(const std::string& host, uint16_t port);
  // The connection cap, shared with the process's other listeners (the config's max_connections,
  // or about half the descriptor limit; relay/net/connection_cap.h). Call on the loop's thread, or
  // before it runs. By default a listener has a cap of its own.
  void set_connection_cap(std::shared_ptr<ConnectionCap> cap);
  const std::shared_ptr<ConnectionCap>& connection_cap() const { return cap_; }
  // SO_REUSEPORT on sockets bound from now on (several workers share a port); default: off.
  void set_reuse_port(bool on) { reuse_port_ = on; }
  // With SO_REUSEPORT: steer new connections by receiving CPU to the worker pinned to it
  // (attach_cpu_steering) on sockets bound from now on; empty: the kernel's hash (the default).
  void set_cpu_steering(std::vector<int> cpus) { steer_cpus_ = std::move(cpus); }
  // IP_TRANSPARENT / IPV6_TRANSPARENT on sockets bound from now on (TPROXY: accept connections
  // addressed to any address; needs CAP_NET_ADMIN).
  void set_transparent(bool on) { transparent_ = on; }
  // The limiters of the connections accepted from now on (shared by all of them); none by
  // default.
  void set_limiters(PumpLimiters limiters) { limiters_ = std::move(limiters); }
  const PumpLimiters& limiters() const { return limiters_; }
  // The metrics slots of this listener's port (relay/metrics.h); null: not counted.
  void set_metrics(const metrics::PortSlots* slots) { metrics_ = slots; }
  const metrics::PortSlots* metrics() const { return metrics_; }
  // Closes the listening sockets; live sessions go on.
  void stop_accepting();
  // stop_accepting() has run and the close callbacks of the handles inside this object too: once
  // its sessions have ended as well, the listener may be freed while the loop goes on (a reload).
  bool closed() const { return stopped_ && closing_ == 0; }
  // Stops accepting and closes every session that is not relaying payload (handshakes, probes
  // being drained, connects); relaying sessions go on until they end.
  void drain();
  // Stops accepting and closes every session.
  void shutdown();
  // Closes the sessions of these users (sorted names; what Connection::user() reports), with
  // `reason` for the log; the others go on.
  void close_users(const std::vector<std::string>& users, const char* reason);

  // The snapshot connections accepted from now on take; those already accepted keep theirs.
  void set_runtime(std::shared_ptr<const Runtime> runtime) { runtime_ = std::move(runtime); }
  const std::shared_ptr<const Runtime>& runtime() const { return runtime_; }
  // Which of the snapshot's Shadowsocks inbounds this listener serves (ListenerSpec::inbound).
  void set_inbound(size_t index) { inbound_ = index; }
  // The current snapshot's suite of this listener's Shadowsocks inbound (for the inbound
  // factory).
  const TcpCipherSuite& suite() const { return *runtime_->inbound_suites.at(inbound_); }
  // This worker's state for that suite (key trial's order), made on first use and again when the
  // snapshot's suite changes; null for suites without any.
  const std::shared_ptr<TcpServerState>& server_state();
  uv_loop_t* loop() const { return loop_; }
  size_t session_count() const { return count_; }
  // The port the first listening socket is bound to (useful after listening on port 0); 0 if none.
  uint16_t port() const;

  // The UDP relay running beside this listener (ss-local's UDP ASSOCIATE needs it), or null.
  void set_udp(UdpRelay* udp) { udp_ = udp; }
  UdpRelay* udp() const { return udp_; }

  // Called by Connection only.
  void destroy(Connection* s);
  // Adds a session to the tail of the evictable list, or takes it off.
  void set_evictable(Connection* s, bool on);

 private:
  static void on_connection(uv_stream_t* server, int status);
  static void on_relisten(uv_timer_t* t);
  // The last session ended: once the block pool's peak window has passed, its spare blocks are
  // unmapped even if this worker stays idle (no release would do it).
  void schedule_trim();
  int bind_and_listen(const std::string& host, uint16_t port);
  // Out of descriptors: close the listening sockets (which also ends libuv's accept loop, that
  // would otherwise spin if its EMFILE fallback fails) and listen again a second later.
  void pause_accepting();
  void refuse(uv_stream_t* server);
  // At the cap: closes this worker's oldest evictable session; false if it has none.
  bool evict_oldest();
  // Pays the evictions other workers asked for, while this one has sessions to evict.
  void pay_owed_evictions();
  void log_cap(const char* what);

  uv_loop_t* loop_;
  std::shared_ptr<const Runtime> runtime_;
  Factory factory_;
  std::vector<uv_tcp_t*> listeners_;
  Connection* head_ = nullptr;
  size_t count_ = 0;
  // Sessions still in their handshake or being drained, oldest first: at the cap the head is
  // closed to make room.
  Connection* evict_head_ = nullptr;
  Connection* evict_tail_ = nullptr;
  static constexpr size_t kMaxEvictedPending = 64;
  size_t evicted_pending_ = 0;  // evicted sessions not yet freed
  uint64_t last_accept_error_log_ = 0;
  UdpRelay* udp_ = nullptr;
  size_t inbound_ = 0;
  std::shared_ptr<const Runtime> state_runtime_;  // the snapshot server_state_ was made for
  std::shared_ptr<TcpServerState> server_state_;
  PumpLimiters limiters_;
  const metrics::PortSlots* metrics_ = nullptr;
  std::vector<std::pair<std::string, uint16_t>> addresses_;  // what listen() bound, to re-listen
  uv_timer_t relisten_;
  bool relisten_inited_ = false;
  uv_timer_t trim_timer_;
  bool trim_inited_ = false;
  bool paused_ = false;
  bool stopped_ = false;
  int closing_ = 0;  // member handles stop_accepting() closed whose callbacks have not run yet
  bool reuse_port_ = false;
  bool transparent_ = false;
  std::vector<int> steer_cpus_;
  std::shared_ptr<ConnectionCap> cap_;
  uv_async_t cap_wake_;  // another worker at the cap asks this one to evict (when cap_ is shared)
  bool cap_wake_inited_ = false;
  uint64_t last_cap_log_ = 0;
};

}  // namespace ss
