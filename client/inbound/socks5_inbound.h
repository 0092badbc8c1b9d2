#pragma once
// ss-local's SOCKS5 front end (RFC 1928): CONNECT, and UDP ASSOCIATE when UDP is relayed; with a
// user table, username/password authentication (RFC 1929) is required.

#include <cstddef>
#include <cstdint>

#include <string>

#include "relay/inbound.h"

namespace ss {

class UserTable;

class Socks5Inbound final : public Inbound {
 public:
  // `connect`: CONNECT is served (not in udp_only mode). `udp`: UDP ASSOCIATE is (tcp_and_udp,
  // udp_only). An unserved command gets reply 07. `users` (may be null: no authentication) must
  // outlive the inbound.
  Socks5Inbound(bool connect, bool udp, const UserTable* users = nullptr)
      : connect_(connect), udp_(udp), users_(users) {}

  const char* name() const override { return "local"; }
  InboundAction feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) override;
  void connected_reply(ReplyBytes& reply) override;
  void failed_reply(int uv_err, ReplyBytes& reply) override;
  void refused_reply(ReplyBytes& reply) override;
  void udp_reply(const Address& relay, ReplyBytes& reply) override;
  std::string_view user() const override { return user_; }
  std::string_view failure() const override { return failure_; }
  bool auth_failed() const override { return auth_failed_; }

 private:
  enum class Step : uint8_t { Greeting, Auth, Request, Done, UdpHold };

  bool connect_;
  bool udp_;
  const UserTable* users_;
  Step step_ = Step::Greeting;
  std::string user_;
  const char* failure_ = "";
  bool auth_failed_ = false;
  // Greeting, authentication and request are at most 257 + 513 + 262 bytes; whatever follows
  // them is early data.
  uint8_t hs_[1100];
  size_t hs_len_ = 0;
};

// The SOCKS5 reply for a failed connect (libuv error): refused 05, network unreachable 03, host
// unreachable, DNS failure or timeout 04, anything else 01.
uint8_t socks5_reply_for_error(int uv_err);

}  // namespace ss
