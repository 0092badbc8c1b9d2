// The small HTTP/1.1 origin server (RFC 9112) of the metrics endpoint and the management API, on
// one loop. Each client connection is a small state machine:
//   Reading:  bytes accumulate (a head of at most kMaxRequestHead, then Content-Length bytes of
//             body, at most max_body) and go to parse_origin_request() (relay/http_request.h)
//             until the head and its body are complete, or the head is wrong: 400 for a
//             malformed head, 431 for one too large, 413 for a body too large (or any body when
//             the server takes none), 411 for a chunked one.
//   Writing:  the handler's one response, always with "Connection: close"; a handler that defers
//             (HttpRequest::defer) leaves the connection Waiting, reading nothing, until its
//             reply is called (or the timer or the client ends it).
//   Closing:  after the write, a FIN (uv_shutdown), and the client's bytes discarded until it
//             closes too, so no reset destroys the answer; then both handles close.
// A timer bounds each state (kIdleTimeoutMs). Every client owns a uv_tcp_t and a uv_timer_t and
// is freed after the second close callback; close() ends every client and the listener.

#include "relay/http_server.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "relay/http_request.h"
#include "relay/net/resolve.h"

namespace ss {

std::string_view http_reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 303:
      return "See Other";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

struct HttpServer::Client {
  HttpServer* owner = nullptr;
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
  std::unique_ptr<char[]> buf;  // kMaxRequestHead + max_body
  size_t cap = 0;
  char discard[512];
  std::string response;
  // Set when the handler defers its answer: the pending reply's way back, null once closed.
  std::shared_ptr<Client*> self;

  void close() {
    if (closing) return;
    closing = true;
    if (self) *self = nullptr;
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
    if (c->answered || c->len == c->cap) {
      *b = uv_buf_init(c->discard, sizeof c->discard);
    } else {
      *b = uv_buf_init(c->buf.get() + c->len, static_cast<unsigned>(c->cap - c->len));
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
    c->parse();
  }

  void parse() {
    OriginRequest req;
    RequestHeadError error;
    const std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(buf.get()), len);
    const ParseStatus st =
        parse_origin_request(in.first(std::min(len, kMaxRequestHead)), req, error);
    if (st == ParseStatus::NeedMore) {
      if (len >= kMaxRequestHead) fail(431);
      return;
    }
    if (st == ParseStatus::Error) {
      fail(error == RequestHeadError::TooLarge ? 431 : 400);
      return;
    }
    if (req.chunked) {
      fail(owner->max_body_ == 0 ? 413 : 411);
      return;
    }
    if (req.content_length > owner->max_body_) {
      fail(413);
      return;
    }
    if (len < req.head_len + req.content_length) return;  // the rest of the body
    HttpRequest r;
    r.method = req.method;
    r.path = req.path;
    r.query = req.query;
    r.authorization = req.authorization;
    r.body = std::string_view(buf.get() + req.head_len, req.content_length);
    r.http10 = req.http10;
    sockaddr_storage peer{};
    int plen = sizeof peer;
    if (uv_tcp_getpeername(&tcp, reinterpret_cast<sockaddr*>(&peer), &plen) == 0) {
      r.peer = Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer));
    }
    bool deferred = false;
    r.defer = [this, &deferred]() -> HttpReply {
      deferred = true;
      answered = true;  // no more reading: the bytes that follow are discarded
      self = std::make_shared<Client*>(this);
      return [token = self](const HttpResponse& out) {
        Client* c = *token;
        if (c == nullptr) return;
        *token = nullptr;  // one answer
        c->respond(out);
      };
    };
    HttpResponse out;
    owner->handler_(r, out);
    if (!deferred) respond(out);
  }

  void fail(int status) {
    HttpResponse out;
    out.status = status;
    out.reason = http_reason(status);
    out.body = std::to_string(status) + " " + std::string(out.reason) + "\n";
    respond(out);
  }

  void respond(const HttpResponse& r) {
    response = "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(r.reason) +
               "\r\nContent-Type: " + r.content_type +
               "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n" + r.extra_headers +
               "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    if (!r.head_only) response += r.body;
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

int HttpServer::listen(const Address& at) {
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

uint16_t HttpServer::port() const {
  if (!open_) return 0;
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss)).port;
}

void HttpServer::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<HttpServer*>(server->data);
  if (status != 0) return;
  auto* c = new Client;
  c->owner = self;
  c->cap = kMaxRequestHead + self->max_body_;
  c->buf = std::make_unique<char[]>(c->cap);
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

void HttpServer::unlink(Client* c) {
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (clients_ == c) clients_ = c->next;
  c->prev = c->next = nullptr;
}

void HttpServer::close() {
  while (clients_ != nullptr) clients_->close();
  if (open_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
  }
}

}  // namespace ss
