#pragma once
// tun mode's TCP inbound: the connection was made by the kernel-terminated NAT (tcp_nat.h), whose
// table says where the client was going. Like ss-redir, nothing is read before connecting. With
// DNS on the device (tun_dns.h): a fake address becomes its name (the router then decides by
// name, and the server resolves it); relay mode sends DNS over TCP (port 53) to the resolver.

#include <memory>

#include "client/tun/tun_device.h"
#include "relay/inbound.h"

namespace ss {

class TunInbound final : public Inbound {
 public:
  explicit TunInbound(std::shared_ptr<const TunDevice> dev) : dev_(std::move(dev)) {}
  const char* name() const override { return "tun"; }
  bool wants_accept_info() const override { return true; }
  InboundAction start(const AcceptInfo& info) override {
    // A connection not made by the NAT (someone connected to the port directly): no target.
    const std::optional<Address> dst = dev_->original_dst(info.peer);
    if (!dst) return InboundAction::Close;
    target_ = *dst;
    return tun_dns_target(dev_->dns(), target_) ? InboundAction::Connect : InboundAction::Close;
  }
  InboundAction feed(const uint8_t*, size_t, ReplyBytes&, EarlyData&) override {
    return InboundAction::NeedMore;
  }

 private:
  std::shared_ptr<const TunDevice> dev_;
};

}  // namespace ss
