#pragma once
// ss-local's listening port: SOCKS5, SOCKS4/4a and HTTP proxying on one port, told apart by the
// client's first byte (5, 4, or an upper-case letter starting an HTTP method). It hands the
// connection over to that protocol's inbound; anything else is closed without a reply.

#include <memory>

#include "relay/inbound.h"

namespace ss {

class UserTable;

class MixedInbound final : public Inbound {
 public:
  // `connect`/`udp`: as for Socks5Inbound. `users`: authentication for SOCKS5 and HTTP (SOCKS4 is
  // then refused); may be null; must outlive the inbound.
  MixedInbound(bool connect, bool udp, const UserTable* users)
      : connect_(connect), udp_(udp), users_(users) {}

  const char* name() const override { return "local"; }
  InboundAction feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) override;
  std::unique_ptr<Inbound> take_next() override { return std::move(next_); }

 private:
  bool connect_;
  bool udp_;
  const UserTable* users_;
  std::unique_ptr<Inbound> next_;  // chosen by the first byte
};

}  // namespace ss
