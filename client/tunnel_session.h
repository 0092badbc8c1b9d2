#pragma once
// ss-tunnel: every accepted connection is forwarded to one fixed target through ss-server.

#include "relay/session.h"

namespace ss {

class TunnelSession final : public Session {
 public:
  explicit TunnelSession(Listener& owner) : Session(owner, kRemote) {}

 private:
  void on_started() override;
  void on_handshake_data(const uint8_t*, size_t) override {}
  void on_remote_connected() override { start_relay(); }
  void on_remote_failed(int err) override;
  const char* kind() const override { return "tunnel"; }
};

}  // namespace ss
