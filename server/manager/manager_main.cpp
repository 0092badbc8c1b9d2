// ss-manager: shadowsocks-libev's manager protocol, every port served inside this one process
// (server/manager/manager_control.h).

#include <cstdio>

#include "relay/app.h"
#include "relay/log.h"
#include "server/inbound_ss.h"
#include "server/manager/manager_control.h"

int main(int argc, char** argv) {
  return ss::run_app(
      ss::Role::Manager, argc, argv,
      [](const ss::ListenerSpec&) {
        return [](ss::Listener& l) {
          return std::make_unique<ss::ShadowsocksInbound>(l.suite(), l.server_state());
        };
      },
      [](ss::Engine& engine, const ss::Config& running, int argc,
         char** argv) -> std::unique_ptr<ss::Controller> {
        auto m = std::make_unique<ss::ManagerControl>(engine, running, argc, argv);
        std::string error;
        if (!m->open(&error)) {
          std::fprintf(stderr, "ss-manager: %s\n", error.c_str());
          return nullptr;
        }
        return m;
      });
}
