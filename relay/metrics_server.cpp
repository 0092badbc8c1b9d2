// The metrics endpoint's HTTP/1.1 server (RFC 9112), on the main loop. Each client connection
// is a small state machine:
//   Reading:  bytes accumulate (at most kMaxRequestHead) and go to parse_origin_request()
//             (relay/http_request.h) until the head is complete or wrong.
//   Writing:  one response, always with "Connection: close": 200 with the exposition for
//             GET/HEAD /metrics, 404 for another path, 405 (Allow: GET, HEAD) for another method,
//             400 for a malformed head, 431 for one too large, 413 for a request with a body.
//   Closing:  after the write, a FIN (uv_shutdown), and the client's bytes discarded until it
//             closes too, so no reset destroys the answer; then both handles close.
// A timer bounds each state (kIdleTimeoutMs). Every client owns a uv_tcp_t and a uv_timer_t and
// is freed after the second close callback; close() ends every client and the listener.

#include "relay/metrics_server.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <span>
#include <string_view>

#include "relay/address.h"
#include "relay/http_request.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "relay/net/resolve.h"

namespace ss {

struct MetricsServer::Client {
  MetricsServer* owner = nullptr;
  Client* prev = nullptr;
  Client* next = nullptr;
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  uv_write_t write_req{};
  uv_shutdown_t shutdown_req{};
  int refs = 0;  // handles not yet closed
  bool answered = false;
  bool closing = false;
  size_t len = 0;
  char buf[kMaxRequestHead];
  char discard[512];
  std::string response;

  void close() {
    if (closing) return;
    closing = true;
    owner->unlink(this);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
  }

  static void on_closed(uv_handle_t* h) {
    auto* c = static_cast<Client*>(h->data);
    if (--c->refs == 0) delete c;
  }

  static void on_timer(uv_timer_t* t) { static_cast<Client*>(t->data)->close(); }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* b) {
    auto* c = static_cast<Client*>(h->data);
    if (c->answered) {
      *b = uv_buf_init(c->discard, sizeof c->discard);
    } else {
      *b = uv_buf_init(c->buf + c->len, static_cast<unsigned>(sizeof c->buf - c->len));
    }
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* c = static_cast<Client*>(s->data);
    if (n < 0) {
      c->close();  // EOF or an error: after our answer, or before the request was complete
      return;
    }
    if (n == 0 || c->answered) return;
    c->len += static_cast<size_t>(n);
    OriginRequest req;
    RequestHeadError error;
    const ParseStatus st =
        parse_origin_request({reinterpret_cast<const uint8_t*>(c->buf), c->len}, req, error);
    if (st == ParseStatus::NeedMore) {
      if (c->len == sizeof c->buf) c->answer(431, "Request Header Fields Too Large", "", false);
      return;
    }
    if (st == ParseStatus::Error) {
      if (error == RequestHeadError::TooLarge) {
        c->answer(431, "Request Header Fields Too Large", "", false);
      } else {
        c->answer(400, "Bad Request", "", false);
      }
      return;
    }
    const bool get = req.method == "GET";
    const bool head = req.method == "HEAD";
    if (!get && !head) {
      c->answer(405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
    } else if (req.has_body) {
      c->answer(413, "Content Too Large", "", head);
    } else if (req.path != "/metrics") {
      c->answer(404, "Not Found", "", head);
    } else {
      c->answer_metrics(head);
    }
  }

  void answer_metrics(bool head_only) {
    const std::string body = metrics::render_text();
    response = "HTTP/1.1 200 OK\r\nContent-Type: ";
    response += metrics::kContentType;
    response += "\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
    if (!head_only) response += body;
    send();
  }

  void answer(int status, std::string_view reason, std::string_view extra, bool head_only) {
    std::string body = std::to_string(status) + " " + std::string(reason) + "\n";
    response = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
               "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n" + std::string(extra) +
               "Connection: close\r\n\r\n";
    if (!head_only) response += body;
    send();
  }

  void send() {
    answered = true;
    uv_timer_start(&timer, on_timer, kIdleTimeoutMs, 0);
    uv_buf_t b = uv_buf_init(response.data(), static_cast<unsigned>(response.size()));
    write_req.data = this;
    if (uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&tcp), &b, 1, on_written) != 0) {
      close();
    }
  }

  static void on_written(uv_write_t* w, int status) {
    auto* c = static_cast<Client*>(w->data);
    if (status != 0 || c->closing) {
      c->close();
      return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, reinterpret_cast<uv_stream_t*>(&c->tcp), on_shutdown) != 0) {
      c->close();
    }
  }

  static void on_shutdown(uv_shutdown_t* r, int status) {
    auto* c = static_cast<Client*>(r->data);
    if (status != 0) c->close();  // otherwise wait for the client's FIN (or the timer)
  }
};

int MetricsServer::listen(const Address& at) {
  sockaddr_storage ss{};
  if (!at.to_sockaddr(ss) && !literal_to_sockaddr(at.host, at.port, ss)) {
    const LookupArgs args(SOCK_STREAM, AI_PASSIVE, at.port);
    addrinfo* res = nullptr;
    if (getaddrinfo(at.host.c_str(), args.port, &args.hints, &res) != 0 || res == nullptr) {
      return UV_EAI_NONAME;
    }
    std::memcpy(&ss, res->ai_addr, std::min<size_t>(res->ai_addrlen, sizeof ss));
    freeaddrinfo(res);
  }
  int r = uv_tcp_init(loop_, &tcp_);
  if (r != 0) return r;
  open_ = true;
  tcp_.data = this;
  r = uv_tcp_bind(&tcp_, reinterpret_cast<const sockaddr*>(&ss), 0);
  if (r == 0) r = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_), 64, on_connection);
  return r;
}

uint16_t MetricsServer::port() const {
  if (!open_) return 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).port;
}

void MetricsServer::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<MetricsServer*>(server->data);
  if (status != 0) return;
  auto* c = new Client;
  c->owner = self;
  c->tcp.data = c->timer.data = c;
  uv_tcp_init(self->loop_, &c->tcp);
  uv_timer_init(self->loop_, &c->timer);
  c->refs = 2;
  c->next = self->clients_;
  if (self->clients_ != nullptr) self->clients_->prev = c;
  self->clients_ = c;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0 ||
      uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), Client::on_alloc, Client::on_read) !=
          0) {
    c->close();
    return;
  }
  uv_timer_start(&c->timer, Client::on_timer, kIdleTimeoutMs, 0);
}

void MetricsServer::unlink(Client* c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (clients_ == c) clients_ = c->next;
  c->prev = c->next = nullptr;
}

void MetricsServer::close() {
  while (clients_ != nullptr) clients_->close();
  if (open_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
  }
}

}  // namespace ss
