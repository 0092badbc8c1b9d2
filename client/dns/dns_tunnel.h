#pragma once
// One Shadowsocks TCP connection from ss-local's DNS inbound to the remote resolver, carrying
// DNS over TCP with several queries outstanding (RFC 7766 6.2.1.1: pipelined, answers matched by
// id, in any order). The inbound keeps a few per server and reuses them (dns_inbound.cpp).

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "crypto/tcp_cipher.h"
#include "relay/address.h"
#include "relay/log.h"

namespace ss {

struct Outbound;
struct Runtime;

// A query riding a tunnel.
class DnsTunnelUser {
 public:
  virtual ~DnsTunnelUser() = default;
  // The answer with this user's id (the message, plaintext, without its length).
  virtual void tunnel_answer(const uint8_t* msg, size_t size) = 0;
  // The tunnel failed with this query outstanding; it has let go of the query.
  virtual void tunnel_failed() = 0;
};

class DnsTunnel {
 public:
  static constexpr size_t kMaxInFlight = 64;         // queries outstanding on one connection
  static constexpr uint64_t kIdleMs = 30'000;        // closed after this long with none outstanding
  static constexpr size_t kMaxPending = 128 * 1024;  // plaintext waiting for the connect

  // `tunnels`: the inbound's list, which this tunnel leaves when it closes. `runtime` keeps
  // `outbound` alive (a refreshed server list makes new tunnels; old ones end when idle).
  DnsTunnel(uv_loop_t* loop, std::shared_ptr<const Runtime> runtime, const Outbound* outbound,
            const Address& resolver, std::vector<DnsTunnel*>* tunnels);
  DnsTunnel(const DnsTunnel&) = delete;
  DnsTunnel& operator=(const DnsTunnel&) = delete;

  const Outbound* outbound() const { return outbound_; }
  bool full() const { return users_.size() >= kMaxInFlight; }
  // Sends `query` (a DNS message; its id is changed to one unique on this connection, also
  // written to *id). False if it cannot be sent (then the caller fails over at once).
  bool send(DnsTunnelUser* user, uint8_t* query, size_t size, uint16_t* id);
  // The user gave up on its query (answered elsewhere, timed out, finished). `timed_out`: the
  // query's time ran out; if nothing came back on this connection for as long, the connection
  // is taken as dead (the other queries fail over, the server is reported).
  // True if so (the caller fails over, this connection is closed).
  bool cancel(DnsTunnelUser* user, uint16_t id, bool timed_out, uint64_t waited_ms);
  // Closes it; outstanding queries fail over (tunnel_failed).
  void close();

 private:
  struct Write;
  void connect_to(const sockaddr* sa);
  void write_sealed(const uint8_t* plain, size_t n);
  // The connection failed: `err` a libuv error; the server is told to the router when no byte
  // of an answer ever came back (as a connection's failover does, relay/connection.cpp).
  void fail(int err, const char* what);
  void arm_idle();
  void release();
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);

  uv_loop_t* loop_;
  std::shared_ptr<const Runtime> runtime_;
  const Outbound* outbound_;
  Address resolver_;
  std::vector<DnsTunnel*>* tunnels_;
  std::unique_ptr<TcpSealer> sealer_;
  std::unique_ptr<TcpOpener> opener_;
  uv_tcp_t tcp_{};
  uv_timer_t idle_{};
  uv_connect_t connect_{};
  uv_getaddrinfo_t gai_{};
  std::unordered_map<uint16_t, DnsTunnelUser*> users_;
  std::vector<uint8_t> pending_;  // framed queries before the connect
  std::vector<uint8_t> in_;       // plaintext from the server, not yet a whole answer
  std::vector<uint8_t> rbuf_;     // one read's ciphertext and plaintext
  uint64_t last_rx_ms_ = 0;
  uint32_t id_state_;
  int refs_ = 1;  // this object; each handle, request and write in flight
  bool tcp_init_ = false;
  bool resolving_ = false;
  bool connected_ = false;
  bool header_sent_ = false;
  bool answered_ = false;  // a byte of an answer came back
  bool closing_ = false;
  static inline uint64_t opened_ = 0;  // tunnels this process opened (in the debug log)
};

}  // namespace ss
