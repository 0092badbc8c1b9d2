#pragma once
// The HTTP proxy on ss-local's mixed port: CONNECT host:port (RFC 9110 §9.3.6), and plain
// requests in absolute form (GET http://host/path), each forwarded to its origin with the
// hop-by-hop fields removed; with a user table, Basic credentials in Proxy-Authorization are
// required (407 otherwise).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "client/inbound/http1.h"
#include "relay/inbound.h"

namespace ss {

class UserTable;

class HttpInbound final : public Inbound {
 public:
  // `users` (may be null: no authentication) must outlive the inbound.
  explicit HttpInbound(const UserTable* users) : users_(users) {}

  const char* name() const override { return "local"; }
  InboundAction feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) override;
  void connected_reply(ReplyBytes& reply) override;
  void failed_reply(int uv_err, ReplyBytes& reply) override;
  void refused_reply(ReplyBytes& reply) override;
  size_t forwardable(const uint8_t* in, size_t n) override;
  std::string_view user() const override { return user_; }
  std::string_view failure() const override { return failure_; }
  bool auth_failed() const override { return auth_failed_; }

 private:
  InboundAction answer(http1::Status status, ReplyBytes& reply, const char* why);

  const UserTable* users_;
  std::unique_ptr<uint8_t[]> head_;  // only while the request head is read
  size_t len_ = 0;
  bool connect_ = false;
  bool started_ = false;
  // Forward: the request body's framing, and whether the request has ended.
  std::optional<http1::BodyFramer> framer_;
  bool request_done_ = false;
  std::string user_;
  const char* failure_ = "";
  bool auth_failed_ = false;
};

}  // namespace ss
