// HTTP proxy inbound (RFC 9110, RFC 9112):
//   Head:     the request head is read whole (at most 16 KiB: 431 beyond), then parsed; a bad
//             head gets 400 and the connection ends.
//   Auth:     with a user table, the connection's first request must carry Proxy-Authorization:
//             Basic user:password that matches (constant time), else 407 with Proxy-Authenticate
//             and the connection ends; later requests on the connection are not asked again.
//   CONNECT:  the target is host:port; "200 Connection established" once the outbound is
//             connected, 502/504 if it fails, 403 if a policy refuses it; then a tunnel.
//   Forward:  GET http://host[:port]/path ...: the head is rewritten to origin form without
//             hop-by-hop fields (with "Connection: close" if the client does not keep its
//             connection), and sent with the body (framed by Content-Length or chunked coding).
//             The response is relayed as it comes and tracked to its end (ResponseFramer). Then
//             the next request is read (requests are not pipelined upstream: bytes after a
//             request's end are held until its response has ended); the connection reuses the
//             upstream if it names the same host:port. The client connection ends after a
//             response if the client or the origin does not keep the connection alive, if the
//             response is close-delimited, or if its framing is bad.

#include "client/inbound/http_inbound.h"

#include <uv.h>

#include <algorithm>
#include <cstring>

#include "client/inbound/users_file.h"

namespace ss {

InboundAction HttpInbound::answer(http1::Status status, ReplyBytes& reply, const char* why) {
  reply.append(http1::error_response(status, /*close=*/true));
  failure_ = why;
  return InboundAction::Reply;
}

void HttpInbound::hold(const uint8_t* p, size_t k) {
  if (k != 0) held_.insert(held_.end(), p, p + k);
}

InboundAction HttpInbound::feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) {
  if (connect_ || awaiting_response_) return InboundAction::NeedMore;
  if (held_.empty()) return parse(in, n, reply, early);
  // Bytes held after the last request come first (the connection did not read the client
  // meanwhile, so `in` is normally empty).
  hold(in, n);
  reading_.swap(held_);
  held_.clear();
  const InboundAction a = parse(reading_.data(), reading_.size(), reply, early);
  reading_.clear();
  return a;
}

InboundAction HttpInbound::parse(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) {
  if (!head_) head_ = std::make_unique<uint8_t[]>(http1::kMaxHeadLen);
  const size_t take = std::min(n, http1::kMaxHeadLen - len_);
  if (take != 0) std::memcpy(head_.get() + len_, in, take);
  len_ += take;
  http1::RequestHead head;
  http1::HeadError err = http1::HeadError::None;
  const ParseStatus st = http1::parse_request_head({head_.get(), len_}, head, err);
  if (st == ParseStatus::NeedMore) {
    if (len_ < http1::kMaxHeadLen) return InboundAction::NeedMore;
    return answer(http1::Status::RequestHeaderFieldsTooLarge, reply, "request head too large");
  }
  if (st == ParseStatus::Error) {
    return answer(static_cast<http1::Status>(http1::status_for(err)), reply, "bad request head");
  }
  if (users_ != nullptr && !authenticated_) {
    std::optional<http1::BasicCredentials> cred;
    if (head.proxy_authorization) cred = http1::decode_basic_credentials(*head.proxy_authorization);
    if (!cred || !users_->check(cred->user, cred->password)) {
      auth_failed_ = true;
      return answer(
          http1::Status::ProxyAuthenticationRequired, reply,
          head.proxy_authorization ? "wrong user name or password" : "no Proxy-Authorization");
    }
    user_ = cred->user;
  }
  authenticated_ = true;
  target_ = head.target;
  // What followed the head: in our buffer after head_len, then the input we did not copy.
  const uint8_t* after = head_.get() + head.head_len;
  const size_t after_len = len_ - head.head_len;
  const uint8_t* more = in + take;
  const size_t more_len = n - take;
  auto append = [&early](const uint8_t* p, size_t k) {
    if (k > early.cap - early.len) return false;
    if (k != 0) std::memcpy(early.data + early.len, p, k);
    early.len += k;
    return true;
  };
  bool ok = true;
  if (head.kind == http1::RequestKind::Connect) {
    connect_ = true;
    ok = append(after, after_len) && append(more, more_len);
  } else {
    const size_t bound = http1::rewritten_head_bound(head.head_len);
    if (bound > early.cap - early.len) return InboundAction::Close;
    const size_t w = http1::rewrite_request_head({head_.get(), len_}, head,
                                                 /*close_upstream=*/!head.keep_alive,
                                                 {early.data + early.len, bound});
    if (w == 0) return answer(http1::Status::BadRequest, reply, "bad request head");
    early.len += w;
    framer_.emplace(head.body);
    request_done_ = false;
    client_keep_alive_ = head.keep_alive;
    awaiting_response_ = true;
    response_.start(head.method == "HEAD");
    // The body's start goes on with the head; what follows the request is held.
    const size_t first = forwardable(after, after_len);
    ok = append(after, first);
    if (ok && first == after_len) {
      const size_t second = forwardable(more, more_len);
      ok = append(more, second);
    } else {
      hold(more, more_len);
    }
  }
  len_ = 0;
  return ok ? InboundAction::Connect : InboundAction::Close;
}

size_t HttpInbound::forwardable(const uint8_t* in, size_t n) {
  if (connect_) return n;
  size_t consumed = 0;
  if (!request_done_ && framer_) {
    const ParseStatus st = framer_->feed({in, n}, consumed);
    if (st == ParseStatus::Error) {
      // Bad chunked framing from the client: nothing more is forwarded, and nothing after it
      // can be read as a request.
      request_done_ = true;
      client_keep_alive_ = false;
      return consumed;
    }
    if (st == ParseStatus::Ok) request_done_ = true;
  }
  if (request_done_ && client_keep_alive_) hold(in + consumed, n - consumed);
  return consumed;
}

ResponseEnd HttpInbound::response(const uint8_t* in, size_t n, size_t& take) {
  take = n;
  if (connect_) return ResponseEnd::No;
  if (!awaiting_response_) {
    take = 0;  // nothing was asked: the upstream is out of step
    return ResponseEnd::Bad;
  }
  const ParseStatus st = response_.feed({in, n}, take);
  if (st == ParseStatus::NeedMore) return ResponseEnd::No;
  awaiting_response_ = false;
  if (st == ParseStatus::Error) {
    failure_ = "bad response from the origin";
    return ResponseEnd::Bad;
  }
  return response_.keep_alive() && client_keep_alive_ ? ResponseEnd::Reuse : ResponseEnd::Last;
}

void HttpInbound::no_response_reply(ReplyBytes& reply) {
  if (!connect_ && awaiting_response_) {
    reply.append(http1::error_response(http1::Status::BadGateway, true));
  }
}

void HttpInbound::connected_reply(ReplyBytes& reply) {
  if (connect_) reply.append(http1::connect_established_response());
}

void HttpInbound::failed_reply(int uv_err, ReplyBytes& reply) {
  reply.append(http1::error_response(
      uv_err == UV_ETIMEDOUT ? http1::Status::GatewayTimeout : http1::Status::BadGateway, true));
}

void HttpInbound::refused_reply(ReplyBytes& reply) {
  reply.append(http1::error_response(http1::Status::Forbidden, true));
}

}  // namespace ss
