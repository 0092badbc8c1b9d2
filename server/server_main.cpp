#include "relay/app.h"
#include "relay/net/listener.h"
#include "relay/redis_url.h"
#include "server/fleet/fleet.h"
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
      [](ss::Engine& engine, const ss::Config& running, int argc,
         char** argv) -> std::unique_ptr<ss::Controller> {
        std::string why;
        if (std::optional<ss::RedisUrl> url = ss::parse_redis_url(running.users_url, &why)) {
          return std::make_unique<ss::FleetControl>(engine, running, std::move(*url), argc, argv);
        }
        return std::make_unique<ss::ServerControl>(engine, running, argc, argv);
      });
}
