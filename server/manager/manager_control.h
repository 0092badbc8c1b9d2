#pragma once
// ss-manager's control of its process: shadowsocks-libev's manager protocol (manager_protocol.h)
// on a UDP or Unix datagram socket on the main loop, each command applied through ServerControl
// (server/server_control.h) inside this one process.

#include <uv.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "relay/app.h"
#include "relay/config.h"
#include "server/server_control.h"

namespace ss {

class ManagerControl final : public Controller {
 public:
  ManagerControl(Engine& engine, const Config& running, int argc, char** argv)
      : engine_(engine), control_(engine, running, argc, argv) {}
  ~ManagerControl() override;

  // Binds running.manager_address and starts reading it. False with the reason in *error.
  bool open(std::string* error);
  // SIGHUP: ss-manager's ports come from its protocol, not from its config file: logged, ignored.
  void reload() override;
  void stop() override;

  // One datagram's reply; empty: no reply (libev's: unknown commands and dropped requests).
  std::string handle(std::string_view datagram);

 private:
  std::string add(std::string_view json);
  std::string remove(std::string_view json);
  std::string list() const;
  std::string ping() const;
  std::string reset(std::string_view json);
  static void on_readable(uv_poll_t* p, int status, int events);

  Engine& engine_;
  ServerControl control_;
  // "reset" (ours): each port's count at its last reset, subtracted from what ping reports.
  std::map<uint16_t, int64_t> reset_at_;
  uv_poll_t poll_{};
  int fd_ = -1;
  bool polling_ = false;
  std::string unix_path_;  // a Unix socket's path, removed at stop
};

}  // namespace ss
