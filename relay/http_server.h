#pragma once
// A small HTTP/1.1 origin server on one loop (the main loop): one request per connection, the
// answer made by a handler, then "Connection: close". The metrics endpoint
// (relay/metrics_server.h) and ss-server's management API (server/api) are built on it. See
// http_server.cpp for each connection's states.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "relay/address.h"

namespace ss {

// A complete request: the views point into the connection's buffer and live during the handler.
struct HttpResponse;
// Sends a deferred answer (HttpRequest::defer): call it once; nothing happens if the client has
// gone meanwhile.
using HttpReply = std::function<void(const HttpResponse&)>;

struct HttpRequest {
  std::string_view method;
  std::string_view path;
  std::string_view query;          // after '?', empty if none
  std::string_view authorization;  // the Authorization field's value, empty if none
  std::string_view body;           // Content-Length bytes (at most the server's max_body)
  bool http10 = false;
  Address peer;  // the client's address
  // For a handler that answers later (once another service has replied): returns the function
  // that sends the answer; the handler's own HttpResponse is then not sent. The connection's
  // timer still bounds the wait (kIdleTimeoutMs).
  std::function<HttpReply()> defer;
};

struct HttpResponse {
  int status = 200;
  std::string_view reason = "OK";
  std::string content_type = "text/plain; charset=utf-8";
  std::string extra_headers;  // whole lines, each ending with CRLF
  std::string body;
  bool head_only = false;  // HEAD: the fields of `body`, not the body
};

// The standard reason phrase of the statuses the servers use (RFC 9110 §15), else "Unknown".
std::string_view http_reason(int status);

class HttpServer {
 public:
  // Seconds a client may take to send its request, and to close after our answer.
  static constexpr uint64_t kIdleTimeoutMs = 10'000;
  using Handler = std::function<void(const HttpRequest&, HttpResponse&)>;

  // `max_body`: the largest request body read (a larger one gets 413, a chunked one 411 when
  // bodies are taken at all, else 413); 0: bodies are refused.
  HttpServer(uv_loop_t* loop, Handler handler, size_t max_body = 0)
      : loop_(loop), handler_(std::move(handler)), max_body_(max_body) {}
  ~HttpServer() = default;  // close() and a loop run must have come first
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

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
  Handler handler_;
  size_t max_body_;
  uv_tcp_t tcp_{};
  bool open_ = false;
  Client* clients_ = nullptr;  // intrusive list of the open client connections
};

}  // namespace ss
