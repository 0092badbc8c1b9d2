// The mixed port: the first byte picks the protocol (SOCKS5: 0x05, SOCKS4/4a: 0x04, HTTP: an
// upper-case ASCII letter, the first byte of every method). From then on every call goes to that
// protocol's inbound.

#include "client/inbound/mixed_inbound.h"

#include "client/inbound/http_inbound.h"
#include "client/inbound/socks4_inbound.h"
#include "client/inbound/socks5_inbound.h"

namespace ss {

InboundAction MixedInbound::feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) {
  if (!inner_) {
    if (n == 0) return InboundAction::NeedMore;
    const uint8_t first = in[0];
    if (first == 5) {
      inner_ = std::make_unique<Socks5Inbound>(connect_, udp_, users_);
    } else if (first == 4 && connect_) {
      inner_ = std::make_unique<Socks4Inbound>(users_ != nullptr);
    } else if (first >= 'A' && first <= 'Z' && connect_) {
      inner_ = std::make_unique<HttpInbound>(users_);
    } else {
      return InboundAction::Close;
    }
  }
  const InboundAction action = inner_->feed(in, n, reply, early);
  target_ = inner_->target();
  return action;
}

void MixedInbound::connected_reply(ReplyBytes& reply) {
  if (inner_) inner_->connected_reply(reply);
}
void MixedInbound::failed_reply(int uv_err, ReplyBytes& reply) {
  if (inner_) inner_->failed_reply(uv_err, reply);
}
void MixedInbound::refused_reply(ReplyBytes& reply) {
  if (inner_) inner_->refused_reply(reply);
}
void MixedInbound::udp_reply(const Address& relay, ReplyBytes& reply) {
  if (inner_) inner_->udp_reply(relay, reply);
}
size_t MixedInbound::forwardable(const uint8_t* in, size_t n) {
  return inner_ ? inner_->forwardable(in, n) : n;
}
std::string_view MixedInbound::user() const {
  return inner_ ? inner_->user() : std::string_view{};
}
std::string_view MixedInbound::failure() const {
  return inner_ ? inner_->failure() : std::string_view{};
}
bool MixedInbound::auth_failed() const {
  return inner_ && inner_->auth_failed();
}

}  // namespace ss
