// The mixed port: the first byte picks the protocol (SOCKS5: 0x05, SOCKS4/4a: 0x04, HTTP: an
// upper-case ASCII letter, the first byte of every method), and that protocol's inbound takes the
// connection over with the same bytes.

#include "client/inbound/mixed_inbound.h"

#include "client/inbound/http_inbound.h"
#include "client/inbound/socks4_inbound.h"
#include "client/inbound/socks5_inbound.h"

namespace ss {

InboundAction MixedInbound::feed(const uint8_t* in, size_t n, ReplyBytes&, EarlyData&) {
  if (n == 0) return InboundAction::NeedMore;
  const uint8_t first = in[0];
  if (first == 5) {
    next_ = std::make_unique<Socks5Inbound>(connect_, udp_, users_);
  } else if (first == 4 && connect_) {
    next_ = std::make_unique<Socks4Inbound>(users_ != nullptr);
  } else if (first >= 'A' && first <= 'Z' && connect_) {
    next_ = std::make_unique<HttpInbound>(users_);
  } else {
    return InboundAction::Close;
  }
  return InboundAction::Handover;
}

}  // namespace ss
