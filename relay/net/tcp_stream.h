#pragma once
// Stream over a libuv TCP handle (uv_tcp_t): accepted from a listening socket, or connected to a
// socket address, with TCP_NODELAY, TCP Fast Open on connect and a bound source address as the
// connection asks.

#include <uv.h>

#include <cstddef>
#include <cstdint>

#include "relay/address.h"
#include "relay/net/stream.h"

namespace ss {

class TcpStream final : public Stream {
 public:
  TcpStream() = default;
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  // Where the events go; call before anything else.
  void set_handler(StreamHandler* handler, uint8_t ctx) {
    handler_ = handler;
    ctx_ = ctx;
  }

  // Initialises the handle (for `family`, or AF_UNSPEC). On success the stream is open: it must
  // be closed, and on_stream_closed comes once it is.
  int init(uv_loop_t* loop, int family = AF_UNSPEC);
  // Accepts the pending connection of `server` into this (initialised) stream.
  int accept(uv_stream_t* server);
  // The SYN carries the first write (TCP_FASTOPEN_CONNECT, Linux >= 4.11); before connect().
  void set_fast_open_connect();
  // SO_MARK (outbound_fwmark); 0 leaves the socket as it is.
  void set_mark(uint32_t mark);
  // Binds the source address before connect(); a failure is ignored (the kernel picks one).
  void bind(const sockaddr* local);
  // Connects this (initialised) stream; completes with on_stream_connected unless it fails here.
  int connect(const sockaddr* sa);
  void set_nodelay(bool on);
  // netfilter's original destination of an accepted connection (REDIRECT/DNAT), for a
  // connection of the given family (the unmapped local address's); false if there is none.
  bool original_dst(bool ipv6, sockaddr_storage& out) const;

  int read_start() override;
  void read_stop() override;
  int write(Block* b) override;
  size_t queued() const override { return queued_; }
  void trim() override;
  int shutdown() override;
  bool is_open() const override;
  void close(bool reset) override;
  int pending_error() const override;
  bool peer_address(sockaddr_storage& out) const override;
  bool local_address(sockaddr_storage& out) const override;

 private:
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_connect(uv_connect_t* req, int status);
  static void on_closed(uv_handle_t* h);
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&tcp_); }
  const uv_handle_t* handle() const { return reinterpret_cast<const uv_handle_t*>(&tcp_); }

  uv_tcp_t tcp_;
  uv_shutdown_t shutdown_req_;
  uv_connect_t connect_req_;
  StreamHandler* handler_ = nullptr;
  uint8_t ctx_ = 0;
  bool inited_ = false;  // uv_tcp_init succeeded: needs uv_close
  size_t queued_ = 0;    // bytes handed to uv_write, not yet completed
  // The blocks handed to uv_write, oldest first (libuv completes them in order), through
  // Block::next: trim() gives their written pages back.
  Block* queue_head_ = nullptr;
  Block* queue_tail_ = nullptr;
  bool uv_reading_ = false;    // libuv's reading is on (uv_read_start and no stop since)
  bool stop_pending_ = false;  // read_stop() was called: the next arrival stops libuv's reading
};

}  // namespace ss
