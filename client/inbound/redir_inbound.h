#pragma once
// ss-redir's inbound: the firewall sent the connection here, and the socket says where the client
// was going. Nothing is read before connecting: the client's first bytes ride in the first
// encrypted flight with that address, as with the tunnel.

#include "relay/inbound.h"

namespace ss {

class RedirInbound final : public Inbound {
 public:
  // tproxy: connections arrive by TPROXY (the target is the socket's own address); otherwise by
  // REDIRECT (the target is SO_ORIGINAL_DST).
  explicit RedirInbound(bool tproxy) : tproxy_(tproxy) {}
  const char* name() const override { return "redir"; }
  bool wants_accept_info() const override { return true; }
  bool wants_original_dst() const override { return !tproxy_; }
  InboundAction start(const AcceptInfo& info) override;
  InboundAction feed(const uint8_t*, size_t, ReplyBytes&, EarlyData&) override {
    return InboundAction::NeedMore;
  }

 private:
  bool tproxy_;
};

}  // namespace ss
