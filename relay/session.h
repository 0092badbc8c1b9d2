#pragma once
// A relayed TCP connection between a client (the accepted socket) and a remote (the socket we
// open). One side carries Shadowsocks ciphertext, the other plaintext; the session owns both
// sockets, both cipher states, one timer and at most one DNS request.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "crypto/tcp_cipher.h"
#include "relay/address.h"
#include "relay/buffer_pool.h"
#include "relay/config.h"

namespace ss {

class Listener;
class UdpRelay;

class Session {
 public:
  enum Side : uint8_t { kClient = 0, kRemote = 1 };

  // Backpressure marks on a side's queued (handed to libuv, not yet written) bytes.
  static constexpr size_t kHighWater = 128 * 1024;
  static constexpr size_t kLowWater = 32 * 1024;
  // How long a client-first flight may wait for its first bytes before the address header goes
  // alone (for protocols where the server speaks first).
  static constexpr uint64_t kHeaderFlushDelayMs = 50;
  // Upper bound on a connect to ss-server or to a target.
  static constexpr uint64_t kConnectTimeoutMs = 10'000;
  // Upper bound on the handshake (SOCKS5 negotiation, or the Shadowsocks request header).
  static constexpr uint64_t kMaxHandshakeMs = 30'000;
  // How often a side we stopped reading is checked for a pending error (a reset).
  static constexpr uint64_t kThrottledCheckMs = 250;

  Session(Listener& owner, Side encrypted_side);
  virtual ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Accepts the pending connection on `server` and starts the session; on failure it closes
  // itself.
  void start(uv_stream_t* server);

  // The one close path. Idempotent. The session deletes itself (through its listener) after
  // libuv's last close callback.
  void close(const char* reason, int err = 0);
  // The same path, but the sockets end with a reset (SO_LINGER 0) rather than a FIN: for errors
  // and timeouts, so a peer that stopped reading still learns the connection is gone.
  void abort(const char* reason, int err = 0);

  // Sessions, in the whole process, that are closed but still wait for a DNS lookup that was
  // already running in libuv's thread pool (uv_cancel cannot stop it). Such a session needs
  // nothing but the resolver's answer, so shutdown does not wait for it.
  static size_t orphaned_lookups();

  // True while relaying payload (the graceful shutdown lets only these finish).
  bool relaying() const { return phase_ == Phase::Relay; }
  // True before the client's greeting or request is complete, and while a rejected client is
  // drained: the sessions the listener closes first, oldest first, when the connection cap is
  // reached (so a flood of half-finished handshakes cannot lock genuine clients out).
  bool evictable() const {
    return (phase_ == Phase::Handshake && !holding_) || phase_ == Phase::Draining;
  }

  // The SIP023 user this connection was identified as (empty if none), for logs.
  std::string_view user() const { return opener_ ? opener_->user() : std::string_view{}; }

  // Intrusive list links, owned by the Listener: every session, and the evictable ones.
  Session* prev_ = nullptr;
  Session* next_ = nullptr;
  Session* evict_prev_ = nullptr;
  Session* evict_next_ = nullptr;
  bool in_evict_list_ = false;
  bool evicted_ = false;  // closed by the listener to make room at the cap

 protected:
  enum class Phase : uint8_t { Handshake, Connecting, Relay, Draining, Closing };

  struct Peer {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    Session* session = nullptr;
    Side side = kClient;
    bool inited = false;     // uv_tcp_init succeeded: needs uv_close
    bool connected = false;  // may be read and written
    bool reading = false;    // uv_read_start is active
    bool want_read = false;  // the phase wants this side read
    bool throttled = false;  // the other side's queue is above the high mark
    bool eof = false;        // this side sent FIN
    bool shut_sent = false;  // we shut down our writing towards this side
    bool shut_done = false;
    size_t queued = 0;        // bytes handed to uv_write, not yet completed
    uint64_t bytes_read = 0;  // from this side
  };

  // Hooks for the front ends.
  virtual void on_started() = 0;
  // Client bytes while in Phase::Handshake.
  virtual void on_handshake_data(const uint8_t* data, size_t n) = 0;
  virtual void on_remote_connected() = 0;
  // Resolving or connecting the remote failed (libuv error code).
  virtual void on_remote_failed(int err) = 0;
  // The ciphertext side sent something that does not authenticate, once relaying.
  virtual void on_decrypt_error();
  // May the remote side connect to this (resolved) address? ss-server's SSRF guard says no to
  // private destinations; a refusal calls on_target_blocked() instead of connecting.
  virtual bool target_allowed(const sockaddr*) const { return true; }
  virtual void on_target_blocked(const sockaddr*) { close("target not allowed"); }
  virtual const char* kind() const = 0;
  // Called first thing in close(), once: release what outlives no connection (ss-local's UDP
  // association).
  virtual void on_closing() {}

  // Services for the front ends.
  const Config& config() const;
  uv_loop_t* loop() const;
  UdpRelay* udp_relay() const;
  static Side other(Side s) { return s == kClient ? kRemote : kClient; }

  // The address of a side's peer as text ("?" if unknown), for logs.
  std::string peer_text(Side s) const;
  // What the remote side connects to: the target (ss-server) or ss-server (ss-local, ss-tunnel).
  const Address& remote_address() const { return remote_; }
  // Resolves (if needed, without blocking the loop) and connects the remote side.
  void connect_remote(const Address& target, const char* what);
  // Queues a block for `dst` (takes ownership). False if the session is going away.
  bool send(Side dst, Block* b);
  bool send_copy(Side dst, const uint8_t* data, size_t n);
  // Sends the address header in the first encrypted flight (local and tunnel front ends).
  void set_pending_header(const Address& target);
  // Seals the pending address header with the first n payload bytes (possibly none) into `out`
  // as one request, and clears it; returns the bytes written.
  size_t seal_request(const uint8_t* pt, size_t n, uint8_t* out);
  // Both sides connected: relay in both directions.
  void start_relay();
  // The handshake is complete but this session will not relay: it only holds its client
  // connection open (ss-local's UDP ASSOCIATE control connection). It is no longer evictable.
  void hold_after_handshake();
  // Stops relaying for good: closes the remote, reads and discards client bytes until the client
  // closes or the deadline passes, sends nothing more (after an optional FIN once queued bytes
  // are written). The probe reaction of ss-server and the error path of ss-local.
  void drain(bool send_fin);
  void set_want_read(Side s, bool on);
  void set_deadline_ms(uint64_t from_now_ms);
  void clear_deadline();
  void close_peer(Side s, bool reset = false);
  // Ciphertext to plaintext for the front ends' handshakes; false on an authentication error.
  bool decrypt_into(const uint8_t* data, size_t n, Block* out);

  Phase phase_ = Phase::Handshake;
  Side encrypted_side_;
  Peer peers_[2];
  // Our sealer towards the ciphertext side, and opener from it. ss-server makes its sealer only
  // once the request has been read (the 2022 edition keys the response from the request).
  std::unique_ptr<TcpSealer> sealer_;
  std::unique_ptr<TcpOpener> opener_;

 private:
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_connect(uv_connect_t* req, int status);
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void on_timer(uv_timer_t* t);
  static void on_closed(uv_handle_t* h);

  void handle_read(Side s, const uint8_t* data, size_t n);
  void handle_eof(Side s);
  void relay(Side src, const uint8_t* data, size_t n);
  void update_reading(Side s);
  void after_write(Side dst);
  void maybe_shutdown(Side dst);
  void maybe_finish();
  void connect_to(const sockaddr* sa);
  void arm_timer();
  void release_ref();
  // Every phase change goes through here, so the listener's evictable list stays exact.
  void set_phase(Phase p);

  Listener& owner_;
  uv_timer_t timer_;
  uv_connect_t connect_req_;
  uv_getaddrinfo_t dns_req_;
  bool dns_pending_ = false;
  bool dns_orphaned_ = false;  // counted in orphaned_lookups()
  int refs_ = 0;               // handles not yet closed plus DNS requests in flight
  uint64_t started_at_ = 0;
  uint64_t last_active_ = 0;
  uint64_t deadline_ = 0;         // absolute loop time; 0 = none
  uint64_t header_flush_at_ = 0;  // absolute loop time; 0 = none
  bool close_when_flushed_ = false;
  bool holding_ = false;   // hold_after_handshake() was called
  bool abortive_ = false;  // close with resets (abort())
  std::optional<Address> pending_header_;
  Address target_;  // where the client's bytes finally go (for logs)
  Address remote_;  // what the remote socket connects to (target, or ss-server)
  const char* connect_what_ = "";
};

}  // namespace ss
