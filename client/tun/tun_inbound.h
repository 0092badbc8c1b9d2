#pragma once
// tun mode's TCP inbound: the connection was made by the kernel-terminated NAT (tcp_nat.h), whose
// table says where the client was going. Like ss-redir, nothing is read before connecting. With
// DNS on the device (tun_dns.h): a fake address becomes its name (the router then decides by
// name, and the server resolves it); relay mode sends DNS over TCP (port 53) to the resolver;
// fake mode answers DNS over TCP (port 53, any address) itself (tun_dns_tcp.h), through no router.

#include <cstring>
#include <memory>
#include <optional>

#include "client/tun/tun_device.h"
#include "client/tun/tun_dns_tcp.h"
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
    TunDns* dns = dev_->dns();
    if (dns != nullptr && dns->mode() == TunDnsOptions::Mode::Fake && dst->port == 53) {
      dns_tcp_.emplace(dns);  // answered here (feed)
      return InboundAction::NeedMore;
    }
    return tun_dns_target(dns, target_) ? InboundAction::Connect : InboundAction::Close;
  }
  InboundAction feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) override {
    if (!dns_tcp_) return InboundAction::NeedMore;
    size_t len = reply.len;
    const TunDnsTcp::Result r =
        dns_tcp_->feed(in, n, reply.data, ReplyBytes::kCapacity, &len, TunDns::now_ms());
    reply.len = len;
    switch (r) {
      case TunDnsTcp::Result::NeedMore:
        return InboundAction::NeedMore;
      case TunDnsTcp::Result::Full:
        return InboundAction::Reply;  // the answers that fit, then FIN
      case TunDnsTcp::Result::Close:
        return InboundAction::Close;
      case TunDnsTcp::Result::Relay:
        break;
    }
    // From this query on, the connection is relayed to tun_dns_resolver through the tunnel.
    const std::vector<uint8_t>& held = dns_tcp_->relayed();
    if (held.size() > early.cap - early.len) return InboundAction::Close;
    std::memcpy(early.data + early.len, held.data(), held.size());
    early.len += held.size();
    target_ = *dev_->dns()->resolver();
    return InboundAction::Connect;
  }

 private:
  std::shared_ptr<const TunDevice> dev_;
  std::optional<TunDnsTcp> dns_tcp_;  // fake mode, port 53
};

}  // namespace ss
