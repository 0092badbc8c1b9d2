#pragma once
// The HTTP proxy on ss-local's mixed port: CONNECT host:port (RFC 9110 §9.3.6), and plain
// requests in absolute form (GET http://host/path), one after another on a kept-alive client
// connection, each forwarded to its origin with the hop-by-hop fields removed and its response
// tracked to its end; with a user table, Basic credentials in Proxy-Authorization are required
// (407 otherwise).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
  bool request_done() const override { return !connect_ && request_done_; }
  ResponseEnd response(const uint8_t* in, size_t n, size_t& take) override;
  bool reuses_upstream() const override { return !connect_; }
  void no_response_reply(ReplyBytes& reply) override;
  std::string_view user() const override { return user_; }
  std::string_view failure() const override { return failure_; }
  bool auth_failed() const override { return auth_failed_; }

 private:
  InboundAction answer(http1::Status status, ReplyBytes& reply, const char* why);
  InboundAction parse(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early);
  // Keeps client bytes that follow the current request, for the next feed().
  void hold(const uint8_t* p, size_t k);

  const UserTable* users_;
  std::unique_ptr<uint8_t[]> head_;  // the request head being read (kept for the next ones)
  size_t len_ = 0;
  bool connect_ = false;        // CONNECT: a tunnel from now on
  bool authenticated_ = false;  // the connection's first request passed the user check
  // The current request: its body's framing, whether it has been forwarded whole, whether the
  // client wants the connection kept after it, and its response.
  std::optional<http1::BodyFramer> framer_;
  bool request_done_ = false;
  bool client_keep_alive_ = false;
  bool awaiting_response_ = false;
  http1::ResponseFramer response_;
  // Client bytes after the current request (pipelined), and the buffer they are read from.
  std::vector<uint8_t> held_;
  std::vector<uint8_t> reading_;
  std::string user_;
  const char* failure_ = "";
  bool auth_failed_ = false;
};

}  // namespace ss
