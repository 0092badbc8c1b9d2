#include "relay/app.h"
#include "relay/net/listener.h"
#include "server/inbound_ss.h"
#include "server/server_control.h"

int main(int argc, char** argv) {
  return ss::run_app(
      ss::Role::Server, argc, argv,
      [](const ss::ListenerSpec&) {
        return [](ss::Listener& l) {
          return std::make_unique<ss::ShadowsocksInbound>(l.suite(), l.server_state());
        };
      },
      [](ss::Engine& engine, const ss::Config& running, int argc, char** argv) {
        return std::make_unique<ss::ServerControl>(engine, running, argc, argv);
      });
}
