#pragma once
// ss-server's inbound: the Shadowsocks request (SIP004/SIP007 AEAD, or SIP022), opened with the
// method's suite; see inbound_ss.cpp.

#include <cstddef>
#include <cstdint>
#include <memory>

#include "relay/inbound.h"

namespace ss {

class ShadowsocksInbound final : public Inbound {
 public:
  // `state`: the worker's state for the suite (key trial), or null; with one, the opener is made
  // at start() for the client's IP.
  explicit ShadowsocksInbound(const TcpCipherSuite& suite,
                              std::shared_ptr<TcpServerState> state = nullptr)
      : suite_(suite), state_(std::move(state)) {
    if (!state_) opener_ = suite.server_opener();
  }

  const char* name() const override { return "server"; }
  bool wants_accept_info() const override { return state_ != nullptr; }
  InboundAction start(const AcceptInfo& info) override;
  InboundAction feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) override;
  std::unique_ptr<TcpOpener> take_opener() override { return std::move(opener_); }
  const TcpCipherSuite* suite() const override { return &suite_; }
  RejectKind reject_kind() const override { return reject_kind_; }
  std::string_view failure() const override { return failure_; }
  std::string_view user() const override { return opener_ ? opener_->user() : std::string_view{}; }

 private:
  InboundAction reject(RejectKind kind, std::string_view why);

  const TcpCipherSuite& suite_;
  std::shared_ptr<TcpServerState> state_;
  std::unique_ptr<TcpOpener> opener_;
  uint8_t header_[kMaxAddressLen];
  size_t header_len_ = 0;
  RejectKind reject_kind_ = RejectKind::Auth;
  std::string_view failure_;
};

}  // namespace ss
