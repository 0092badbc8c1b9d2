#pragma once
// ss-tunnel's inbound: every connection goes to one fixed target, and the client's first bytes
// ride in the first encrypted flight with its address. Nothing is read before connecting.

#include "relay/inbound.h"

namespace ss {

class TunnelInbound final : public Inbound {
 public:
  explicit TunnelInbound(const Address& target) { target_ = target; }
  const char* name() const override { return "tunnel"; }
  InboundAction start(const AcceptInfo&) override { return InboundAction::Connect; }
  InboundAction feed(const uint8_t*, size_t, ReplyBytes&, EarlyData&) override {
    return InboundAction::NeedMore;
  }
};

}  // namespace ss
