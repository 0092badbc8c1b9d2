// SOCKS4 / SOCKS4a inbound: VN=4 CD=1 DSTPORT DSTIP USERID NUL [host NUL]. CONNECT only; a bad or
// unsupported request gets 5B and the connection ends; the reply to CONNECT (5A or 5B) comes
// once the outbound is connected or has failed. Bytes after the request are early data.

#include "client/inbound/socks4_inbound.h"

#include <algorithm>
#include <cstring>

namespace ss {

void Socks4Inbound::put(socks4::Reply r, ReplyBytes& reply) {
  uint8_t out[socks4::kReplyLen];
  reply.append(out, socks4::make_reply(r, nullptr, out));
}

InboundAction Socks4Inbound::feed(const uint8_t* in, size_t n, ReplyBytes& reply,
                                  EarlyData& early) {
  if (done_) return InboundAction::NeedMore;
  const size_t take = std::min(n, sizeof buf_ - len_);
  std::memcpy(buf_ + len_, in, take);
  len_ += take;
  socks4::Request req;
  size_t used = 0;
  socks4::Failure why = socks4::Failure::None;
  const ParseStatus st = socks4::parse_request({buf_, len_}, req, used, why);
  if (st == ParseStatus::NeedMore) return InboundAction::NeedMore;
  if (st == ParseStatus::Error) {
    if (why == socks4::Failure::NotSocks4) return InboundAction::Close;
    put(socks4::Reply::Rejected, reply);
    failure_ = "bad SOCKS4 request";
    return InboundAction::Reply;
  }
  if (refuse_all_) {
    put(socks4::Reply::Rejected, reply);
    failure_ = "SOCKS4 has no password; authentication is required";
    auth_failed_ = true;
    return InboundAction::Reply;
  }
  done_ = true;
  target_ = req.target;
  const size_t rest_in_buf = len_ - used;
  const size_t rest = rest_in_buf + (n - take);
  if (rest > early.cap - early.len) return InboundAction::Close;
  std::memcpy(early.data + early.len, buf_ + used, rest_in_buf);
  std::memcpy(early.data + early.len + rest_in_buf, in + take, n - take);
  early.len += rest;
  return InboundAction::Connect;
}

}  // namespace ss
