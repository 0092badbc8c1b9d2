#pragma once
// ss-local's SOCKS5 front end (RFC 1928, no authentication, CONNECT).

#include <cstddef>
#include <cstdint>

#include "relay/session.h"

namespace ss {

class LocalSession final : public Session {
 public:
  explicit LocalSession(Listener& owner);
  ~LocalSession() override;

 private:
  enum class Step : uint8_t { Greeting, Request, Done, UdpHold };

  void on_started() override;
  void on_handshake_data(const uint8_t* data, size_t n) override;
  void on_remote_connected() override;
  void on_remote_failed(int err) override;
  const char* kind() const override { return "local"; }
  void on_closing() override;

  void fail(uint8_t reply_code);
  void udp_associate(const Address& expected_source);

  Step step_ = Step::Greeting;
  // Greeting and request are at most 257 + 262 bytes; whatever follows them is early data.
  uint8_t hs_[600];
  size_t hs_len_ = 0;
  Block* early_ = nullptr;
  uint64_t udp_control_ = 0;  // the UDP association this control connection keeps alive
};

// Chooses the ss-server address for a new connection (round robin over `server`).
Address pick_server(const Config& cfg);

}  // namespace ss
