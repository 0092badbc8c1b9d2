// ss-local's SOCKS5 inbound (RFC 1928):
//   Greeting: VER NMETHODS METHODS; answer 05 00 (no auth), or with a user table 05 02
//             (username/password), or 05 FF and end when the needed method is not offered.
//   Auth:     RFC 1929 VER ULEN UNAME PLEN PASSWD, checked in constant time; 01 00, or 01 01 and
//             end.
//   Request:  VER CMD RSV ATYP ADDR PORT; CONNECT is served, and UDP ASSOCIATE when UDP is
//             relayed; anything else gets the matching error reply. Bytes pipelined after the
//             request are early data, sealed with the address header in the first flight.
//   The reply to CONNECT comes once the outbound is connected: 05 00, or the code for the error
//   (refused 05, network 03, host/DNS/timeout 04), or 02 when a policy refuses the target.

#include "client/inbound/socks5_inbound.h"

#include <uv.h>

#include <algorithm>
#include <cstring>
#include <span>

#include "client/inbound/socks5_auth.h"
#include "client/inbound/users_file.h"
#include "client/socks5.h"

namespace ss {
namespace {

void put_reply(socks5::Reply code, const Address* bind, ReplyBytes& reply) {
  uint8_t buf[socks5::kMaxReplyLen];
  const size_t n = socks5::make_reply(code, bind, buf);
  reply.append(buf, n);
}

}  // namespace

uint8_t socks5_reply_for_error(int uv_err) {
  switch (uv_err) {
    case UV_ECONNREFUSED:
      return static_cast<uint8_t>(socks5::Reply::ConnectionRefused);
    case UV_ENETUNREACH:
      return static_cast<uint8_t>(socks5::Reply::NetworkUnreachable);
    case UV_EHOSTUNREACH:
    case UV_ETIMEDOUT:
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
    case UV_EAI_NODATA:
      return static_cast<uint8_t>(socks5::Reply::HostUnreachable);
    default:
      return static_cast<uint8_t>(socks5::Reply::GeneralFailure);
  }
}

InboundAction Socks5Inbound::feed(const uint8_t* data, size_t n, ReplyBytes& reply,
                                  EarlyData& early) {
  if (step_ == Step::UdpHold || step_ == Step::Done) return InboundAction::NeedMore;
  const size_t take = std::min(n, sizeof hs_ - hs_len_);
  std::memcpy(hs_ + hs_len_, data, take);
  hs_len_ += take;
  const uint8_t* rest = data + take;
  const size_t rest_len = n - take;

  auto consume = [this](size_t used) {
    std::memmove(hs_, hs_ + used, hs_len_ - used);
    hs_len_ -= used;
  };

  if (step_ == Step::Greeting) {
    socks5::Greeting g;
    size_t used = 0;
    const ParseStatus st = socks5::parse_greeting({hs_, hs_len_}, g, used);
    if (st == ParseStatus::NeedMore) return InboundAction::NeedMore;
    if (st == ParseStatus::Error) return InboundAction::Close;  // not a SOCKS5 client
    consume(used);
    const bool auth = users_ != nullptr;
    if (auth ? !g.offers_user_pass : !g.offers_no_auth) {
      const uint8_t no_method[] = {socks5::kVersion, socks5::kMethodNone};
      reply.append(no_method, sizeof no_method);
      failure_ = auth ? "no username/password method offered" : "no acceptable method";
      auth_failed_ = auth;
      return InboundAction::Reply;
    }
    const uint8_t chosen[] = {socks5::kVersion,
                              auth ? socks5::kMethodUserPass : socks5::kMethodNoAuth};
    reply.append(chosen, sizeof chosen);
    step_ = auth ? Step::Auth : Step::Request;
    // Pipelined bytes beyond our buffer can only be there if the request is complete in hs_.
  }

  if (step_ == Step::Auth) {
    socks5::UserPass up;
    size_t used = 0;
    const ParseStatus st = socks5::parse_auth_request({hs_, hs_len_}, up, used);
    if (st == ParseStatus::NeedMore) return InboundAction::NeedMore;
    uint8_t status[socks5::kAuthReplyLen];
    const bool ok = st == ParseStatus::Ok && users_->check(up.user, up.password);
    reply.append(status, socks5::make_auth_reply(ok, status));
    if (!ok) {
      failure_ = st == ParseStatus::Ok ? "wrong user name or password" : "bad RFC 1929 request";
      auth_failed_ = true;
      return InboundAction::Reply;  // RFC 1929: on failure the server closes
    }
    user_.assign(up.user);
    consume(used);
    step_ = Step::Request;
  }

  socks5::Request req;
  size_t used = 0;
  std::optional<socks5::Reply> err;
  const ParseStatus st = socks5::parse_request({hs_, hs_len_}, req, used, err);
  if (st == ParseStatus::NeedMore) return InboundAction::NeedMore;
  if (st == ParseStatus::Error) {
    if (!err) return InboundAction::Close;
    put_reply(*err, nullptr, reply);
    return InboundAction::Reply;
  }
  consume(used);
  target_ = req.target;
  if (req.command == socks5::Command::UdpAssociate && udp_) {
    step_ = Step::UdpHold;  // whatever else comes on this connection is ignored
    return InboundAction::UdpAssociate;
  }
  if (req.command != socks5::Command::Connect || !connect_) {
    put_reply(socks5::Reply::CommandNotSupported, nullptr, reply);
    return InboundAction::Reply;
  }
  step_ = Step::Done;
  const size_t total = hs_len_ + rest_len;
  if (total > early.cap - early.len) return InboundAction::Close;
  std::memcpy(early.data + early.len, hs_, hs_len_);
  std::memcpy(early.data + early.len + hs_len_, rest, rest_len);
  early.len += total;
  hs_len_ = 0;
  return InboundAction::Connect;
}

void Socks5Inbound::connected_reply(ReplyBytes& reply) {
  put_reply(socks5::Reply::Succeeded, nullptr, reply);
}

void Socks5Inbound::failed_reply(int uv_err, ReplyBytes& reply) {
  put_reply(static_cast<socks5::Reply>(socks5_reply_for_error(uv_err)), nullptr, reply);
}

void Socks5Inbound::refused_reply(ReplyBytes& reply) {
  put_reply(socks5::Reply::NotAllowed, nullptr, reply);
}

void Socks5Inbound::udp_reply(const Address& relay, ReplyBytes& reply) {
  put_reply(socks5::Reply::Succeeded, &relay, reply);
}

}  // namespace ss
