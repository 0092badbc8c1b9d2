#pragma once
// ss-server's session: decrypt, read the target address, connect, relay.

#include <cstddef>
#include <cstdint>

#include "relay/session.h"

namespace ss {

class ServerSession final : public Session {
 public:
  explicit ServerSession(Listener& owner) : Session(owner, kClient) {}
  ~ServerSession() override;

 private:
  void on_started() override { set_want_read(kClient, true); }
  void on_handshake_data(const uint8_t* data, size_t n) override;
  void on_remote_connected() override;
  void on_remote_failed(int err) override;
  void on_decrypt_error() override;
  bool target_allowed(const sockaddr* sa) const override;
  void on_target_blocked(const sockaddr* sa) override;
  const char* kind() const override { return "server"; }

  void reject(const char* why);

  uint8_t header_[kMaxAddressLen];
  size_t header_len_ = 0;
  Block* early_ = nullptr;
};

}  // namespace ss
