#pragma once
// ss-redir's inbound: the firewall sent the connection here, and the socket says where the client
// was going. Nothing is read before connecting: the client's first bytes ride in the first
// encrypted flight with that address, as with the tunnel.

#include "relay/inbound.h"

namespace ss {

class RedirInbound final : public Inbound {
 public:
  // Whether an address is one of this host's (is_own_address in relay/ip_policy.h; tests pass
  // their own).
  using OwnAddress = bool (*)(const Address&);

  // tproxy: connections arrive by TPROXY (the target is the socket's own address); otherwise by
  // REDIRECT (the target is SO_ORIGINAL_DST). listen_port: the listener's port, so that a client
  // connecting to it directly (not intercepted) is told from an intercepted connection.
  explicit RedirInbound(bool tproxy, uint16_t listen_port = 0, OwnAddress own = nullptr)
      : tproxy_(tproxy), listen_port_(listen_port), own_(own) {}
  const char* name() const override { return "redir"; }
  bool wants_accept_info() const override { return true; }
  bool wants_original_dst() const override { return !tproxy_; }
  InboundAction start(const AcceptInfo& info) override;
  InboundAction feed(const uint8_t*, size_t, ReplyBytes&, EarlyData&) override {
    return InboundAction::NeedMore;
  }

 private:
  bool tproxy_;
  uint16_t listen_port_;
  OwnAddress own_;
};

}  // namespace ss
