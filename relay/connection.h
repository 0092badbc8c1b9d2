#pragma once
// A relayed TCP connection between a client (the accepted socket) and a remote (the socket we
// open): inbound -> route -> outbound, then a pump each way. The inbound (a pure state machine)
// reads the request from the client; the router picks an outbound (direct, or a Shadowsocks
// server with its own cipher suite); each side may carry a cipher state (the Shadowsocks inbound
// on the client side, the Shadowsocks outbound on the remote side). The connection owns both
// sockets, both sides' cipher states, one timer and at most one DNS request.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "crypto/tcp_cipher.h"
#include "relay/address.h"
#include "relay/buffer_pool.h"
#include "relay/config.h"
#include "relay/inbound.h"
#include "relay/metrics.h"
#include "relay/net/resolver.h"
#include "relay/net/tcp_stream.h"
#include "relay/outbound.h"
#include "relay/pump.h"
#include "relay/runtime.h"

namespace ss {

class Listener;
class UdpRelay;
class UserState;

class Connection final : private StreamHandler {
 public:
  enum Side : uint8_t { kClient = 0, kRemote = 1 };

  // How long a client-first flight may wait for its first bytes before the address header goes
  // alone (for protocols where the server speaks first).
  static constexpr uint64_t kHeaderFlushDelayMs = 50;
  // Upper bound on a connect to ss-server or to a target.
  static constexpr uint64_t kConnectTimeoutMs = 10'000;
  // Upper bound on the handshake (SOCKS5 negotiation, or the Shadowsocks request header).
  static constexpr uint64_t kMaxHandshakeMs = 30'000;
  // How often a side we stopped reading is checked for a pending error (a reset).
  static constexpr uint64_t kThrottledCheckMs = 250;

  Connection(Listener& owner, std::unique_ptr<Inbound> inbound);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Accepts the pending connection on `server` and starts the session; on failure it closes
  // itself.
  void start(uv_stream_t* server);

  // The one close path. Idempotent. The session deletes itself (through its listener) after
  // libuv's last close callback.
  void close(const char* reason, int err = 0);
  // The same path, but the sockets end with a reset (SO_LINGER 0) rather than a FIN: for errors
  // and timeouts, so a peer that stopped reading still learns the connection is gone.
  void abort(const char* reason, int err = 0);

  // Connections, in the whole process, that are closed but still wait for a DNS lookup that was
  // already running in libuv's thread pool (uv_cancel cannot stop it). Such a session needs
  // nothing but the resolver's answer, so shutdown does not wait for it.
  static size_t orphaned_lookups();

  // True while relaying payload (the graceful shutdown lets only these finish). An HTTP client
  // connection idle between two exchanges is not: it may be closed at any time (RFC 9112 §9.5).
  bool relaying() const { return phase_ == Phase::Relay && !between_requests_; }
  // True before the client's greeting or request is complete, and while a rejected client is
  // drained: the sessions the listener closes first, oldest first, when the connection cap is
  // reached (so a flood of half-finished handshakes cannot lock genuine clients out).
  bool evictable() const {
    return (phase_ == Phase::Handshake && !holding_) || phase_ == Phase::Draining;
  }

  // The user the client authenticated as (SIP023, SOCKS5, HTTP; empty if none), for logs.
  std::string_view user() const;

  // Intrusive list links, owned by the Listener: every session, and the evictable ones.
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  Connection* evict_prev_ = nullptr;
  Connection* evict_next_ = nullptr;
  bool in_evict_list_ = false;
  bool evicted_ = false;  // closed by the listener to make room at the cap

 private:
  enum class Phase : uint8_t { Handshake, Connecting, Relay, Draining, Closing };

  struct Peer {
    // The socket, and the Stream the relay uses (the socket itself for every side today).
    TcpStream tcp;
    Stream* stream = &tcp;
    Side side = kClient;
    bool live = false;       // the stream was opened and its close has not completed
    bool connected = false;  // may be read and written
    bool reading = false;    // uv_read_start is active
    bool want_read = false;  // the phase wants this side read
    bool eof = false;        // this side sent FIN
    bool shut_sent = false;  // we shut down our writing towards this side
    bool shut_done = false;
    uint64_t bytes_read = 0;  // from this side
    // This side's cipher state: what we read from it is opened, what we write to it sealed.
    // Both null for a plaintext side. The Shadowsocks inbound's sealer is made from `suite`
    // once the request is read (the 2022 edition keys the response from the request).
    std::unique_ptr<TcpOpener> opener;
    std::unique_ptr<TcpSealer> sealer;
    const TcpCipherSuite* server_suite = nullptr;
  };

  static Side other(Side s) { return s == kClient ? kRemote : kClient; }
  const Runtime& runtime() const { return *runtime_; }
  uv_loop_t* loop() const;
  UdpRelay* udp_relay() const;

  // The accepted socket's addresses for Inbound::start().
  AcceptInfo accept_info() const;
  // What the inbound asked for after start() or feed().
  void dispatch(InboundAction action);
  // Routes the inbound's target and connects the chosen outbound.
  void route_and_connect();
  void udp_associate();
  // A refusal: sends the inbound's answer and ends with a FIN after it (draining the client
  // meanwhile), or, for a protocol with no answer, closes at once (`why` for the log).
  void reply_and_end(const ReplyBytes& reply, const char* why);
  void on_remote_connected();
  void on_remote_failed(int err);
  // Failover (see connection.cpp): the chosen server's connection, from a fresh remote side.
  void connect_server();
  // The server failed before its first response byte: true if another one is being tried.
  bool fail_over(const char* what);
  // Plaintext on its way to the server, kept until its first response byte.
  void keep_first_flight(const uint8_t* data, size_t n);
  void drop_first_flight();
  void on_target_blocked(const sockaddr* sa);
  void on_reject();
  // A side's ciphertext failed to authenticate once relaying.
  void on_decrypt_error(Side s);
  // The address of a side's peer as text ("?" if unknown), for logs.
  std::string peer_text(Side s) const;

  // Resolves (if needed, without blocking the loop) and connects the remote side.
  // `resolved`: the target's address, already looked up (no second lookup).
  void connect_remote(const Address& target, const char* what, const sockaddr* resolved = nullptr);
  // After the route is known (outbound_; `resolved`: the target's address if it was looked up
  // for routing).
  void connect_routed(const Address& target, const sockaddr* resolved);
  // Queues a block for `dst` (takes ownership). False if the connection is going away.
  bool send(Side dst, Block* b);
  bool send_copy(Side dst, const uint8_t* data, size_t n);
  // Seals the pending address header with the first n payload bytes (possibly none) into `out`
  // as one request, and clears it; returns the bytes written.
  size_t seal_request(const uint8_t* pt, size_t n, uint8_t* out);
  // Both sides connected: relay in both directions.
  void start_relay();
  // The handshake is complete but this connection will not relay: it only holds its client
  // connection open (SOCKS5 UDP ASSOCIATE). It is no longer evictable.
  void hold_after_handshake();
  // Stops relaying for good: closes the remote, reads and discards client bytes until the client
  // closes or the deadline passes, sends nothing more (after an optional FIN once queued bytes
  // are written). The reject policy, and the end of a refused request.
  void drain(bool send_fin);
  void set_want_read(Side s, bool on);
  void set_deadline_ms(uint64_t from_now_ms);
  void clear_deadline();
  void close_peer(Side s, bool reset = false);
  // Ciphertext from side s to plaintext in `out`; false on an authentication error.
  bool open_into(Side s, const uint8_t* data, size_t n, Block* out);

  // StreamHandler: the events of both sides' streams (ctx is the Side).
  size_t read_size(uint8_t ctx) override;
  bool on_stream_read(uint8_t ctx, Block* block, size_t n) override;
  void on_stream_end(uint8_t ctx, int err) override;
  void on_stream_written(uint8_t ctx, int status) override;
  void on_stream_shutdown(uint8_t ctx, int status) override;
  void on_stream_connected(uint8_t ctx, int status) override;
  void on_stream_closed(uint8_t ctx) override;

  static void on_resolved(ResolveRequest* req, int status, const sockaddr* address);
  static void on_timer(uv_timer_t* t);
  static void on_timer_closed(uv_handle_t* h);

  // Returns true if it took ownership of `block` (relayed without a copy).
  bool handle_read(Side s, Block* block, size_t n);
  // Client bytes to the inbound (the handshake, or the next request); early data into early_.
  InboundAction feed_inbound(const uint8_t* data, size_t n, ReplyBytes& reply);
  // n plaintext bytes of `in` to dst, sealed if dst has a cipher state. True if the block itself
  // went on (ownership taken).
  bool forward(Side dst, Block* in, size_t n);
  // One exchange after another (see connection.cpp): the request or the response ended, the
  // next request is read, and goes on the same upstream or a new one.
  void end_request();
  void note_request_done();
  // `more`: the remote sent bytes after the response's end.
  void after_response(ResponseEnd end, bool more);
  void end_after_response();
  void drop_upstream();
  void next_request();
  void read_next_request(const uint8_t* data, size_t n);
  void connect_next_upstream();
  void handle_eof(Side s);
  bool relay(Side src, Block* block, size_t n);
  void update_reading(Side s);
  void after_write(Side dst);
  void maybe_shutdown(Side dst);
  void maybe_finish();
  void connect_to(const sockaddr* sa);
  void arm_timer();
  // The request is read: count the connection under its (port, user) (relay/metrics.h).
  void count_opened();
  // After authentication: the user's quota and rate limit (relay/user_limits.h), if any. False
  // if the user is over its quota (the connection is then refused and ends).
  bool attach_user_limits();
  // A read would take the user past its quota: stop reading both sides, close once what is
  // queued is written.
  void cut_at_quota();
  static metrics::Reject metrics_reject(RejectKind kind);
  // A pump waits for its limiter (the connection is then not idle).
  bool limited() const { return pumps_[kClient].limited() || pumps_[kRemote].limited(); }
  void release_ref();
  // Every phase change goes through here, so the listener's evictable list stays exact.
  void set_phase(Phase p);

  Listener& owner_;
  // The snapshot taken at accept: the suites, router and outbounds this connection uses live as
  // long as it does, whatever the listener is given later. Declared before what refers into it.
  std::shared_ptr<const Runtime> runtime_;
  std::unique_ptr<Inbound> inbound_;
  const Outbound* outbound_ = nullptr;  // chosen by the router; owned by it
  bool acl_allowed_ = false;  // the outbound's ACL allowed the target by name: no check after DNS
  Phase phase_ = Phase::Handshake;
  Peer peers_[2];
  // The two directions' flow control, indexed by their source side: pumps_[kClient] reads the
  // client and writes to the remote.
  Pump pumps_[2];
  Block* early_ = nullptr;    // plaintext that came with the request, sent once connected
  uint64_t udp_control_ = 0;  // the UDP association this connection keeps alive (0: none)
  uv_timer_t timer_;
  ResolveRequest dns_req_;
  bool dns_pending_ = false;
  bool dns_for_route_ = false;  // the pending lookup is the router's (needs_address), not a connect
  bool dns_orphaned_ = false;   // counted in orphaned_lookups()
  uint64_t dns_started_ = 0;    // uv_hrtime() when the pending lookup began
  // This worker's counters of the connection's (port, user), once its request is read; null
  // before, or when the listener is not counted.
  metrics::SlotCounters* metrics_ = nullptr;
  // The user's quota and rate limit state, once its request is read; null if it has none. Owned
  // by runtime_->user_limits.
  UserState* user_limits_ = nullptr;
  bool quota_cut_ = false;  // cut_at_quota(): closes once both queues are written
  int refs_ = 0;            // handles not yet closed plus DNS requests in flight
  uint64_t started_at_ = 0;
  uint64_t last_active_ = 0;
  uint64_t deadline_ = 0;         // absolute loop time; 0 = none
  uint64_t header_flush_at_ = 0;  // absolute loop time; 0 = none
  bool close_when_flushed_ = false;
  bool holding_ = false;              // hold_after_handshake() was called
  bool request_ended_ = false;        // the inbound said the client's request is complete
  bool response_ended_ = false;       // ... and that the response to it is (the upstream may stay)
  bool response_started_ = false;     // a byte of the current response came from the remote
  bool between_requests_ = false;     // the inbound reads the client's next request
  bool connect_after_close_ = false;  // the old upstream is closing; a new one follows
  bool abortive_ = false;             // close with resets (abort())
  std::optional<Address> pending_header_;
  Address target_;  // where the client's bytes finally go (for logs)
  Address remote_;  // what the remote socket connects to (target, or ss-server)
  const char* connect_what_ = "";
  // Failover: the outbounds tried for this request (bit i: Outbound::index i), a copy of the
  // plaintext sent to the server before its first response byte (one block at most: a longer
  // first flight cannot be replayed), and whether the client has had its connected reply.
  uint64_t tried_ = 0;
  Block* first_flight_ = nullptr;
  bool first_flight_whole_ = true;
  bool client_answered_ = false;
  bool retry_after_close_ = false;  // the failed remote is closing; the next server follows
};

}  // namespace ss
