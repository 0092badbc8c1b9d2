#pragma once
// SOCKS4 and SOCKS4a CONNECT on ss-local's mixed port. SOCKS4 carries no password, so with
// authentication configured it is refused (reply 5B), as shadowsocks-rust does.

#include <cstddef>
#include <cstdint>

#include "client/inbound/socks4.h"
#include "relay/inbound.h"

namespace ss {

class Socks4Inbound final : public Inbound {
 public:
  // `refuse_all`: authentication is configured, so every SOCKS4 request is refused.
  explicit Socks4Inbound(bool refuse_all) : refuse_all_(refuse_all) {}

  const char* name() const override { return "local"; }
  InboundAction feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) override;
  void connected_reply(ReplyBytes& reply) override { put(socks4::Reply::Granted, reply); }
  void failed_reply(int, ReplyBytes& reply) override { put(socks4::Reply::Rejected, reply); }
  void refused_reply(ReplyBytes& reply) override { put(socks4::Reply::Rejected, reply); }
  std::string_view failure() const override { return failure_; }
  bool auth_failed() const override { return auth_failed_; }

 private:
  static void put(socks4::Reply r, ReplyBytes& reply);

  bool refuse_all_;
  bool done_ = false;
  bool auth_failed_ = false;
  const char* failure_ = "";
  uint8_t buf_[socks4::kMaxRequestLen];
  size_t len_ = 0;
};

}  // namespace ss
