#pragma once
// The metrics endpoint: a small HTTP/1.1 origin server (relay/http_server.h) on the main loop
// (never a worker's) that answers GET /metrics with metrics::render_text(). See
// metrics_server.cpp.

#include <uv.h>

#include <cstdint>

#include "relay/address.h"
#include "relay/http_server.h"

namespace ss {

class MetricsServer {
 public:
  // Seconds a client may take to send its request, and to close after our answer.
  static constexpr uint64_t kIdleTimeoutMs = HttpServer::kIdleTimeoutMs;

  explicit MetricsServer(uv_loop_t* loop);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds `at` (an IP address, or a name resolved now) and listens. 0 or a libuv error.
  int listen(const Address& at) { return http_.listen(at); }
  // The port bound (after listen), 0 if none.
  uint16_t port() const { return http_.port(); }
  // Closes the listening socket and every client connection (idempotent). The memory is freed
  // in libuv's close callbacks: run the loop before destroying the server.
  void close() { http_.close(); }

 private:
  HttpServer http_;
};

}  // namespace ss
