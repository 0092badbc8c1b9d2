#pragma once
// The metrics endpoint: a small HTTP/1.1 origin server on the main loop (never a worker's) that
// answers GET /metrics with metrics::render_text(). See metrics_server.cpp.

#include <uv.h>

#include <cstdint>
#include <string>

#include "relay/address.h"

namespace ss {

class MetricsServer {
 public:
  // Seconds a client may take to send its request, and to close after our answer.
  static constexpr uint64_t kIdleTimeoutMs = 10'000;

  explicit MetricsServer(uv_loop_t* loop) : loop_(loop) {}
  ~MetricsServer() = default;  // close() and a loop run must have come first
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `at` (an IP address, or a name resolved now) and listens. 0 or a libuv error.
  int listen(const Address& at);
  // The port bound (after listen), 0 if none.
  uint16_t port() const;
  // Closes the listening socket and every client connection (idempotent). The memory is freed
  // in libuv's close callbacks: run the loop before destroying the server.
  void close();

 private:
  struct Client;
  static void on_connection(uv_stream_t* server, int status);
  void unlink(Client* c);

  uv_loop_t* loop_;
  uv_tcp_t tcp_{};
  bool open_ = false;
  Client* clients_ = nullptr;  // intrusive list of the open client connections
};

}  // namespace ss
