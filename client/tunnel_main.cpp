#include "client/inbound/tunnel_inbound.h"
#include "relay/app.h"
#include "relay/listener.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Tunnel, argc, argv, [](ss::Listener& l) {
    return std::make_unique<ss::TunnelInbound>(*l.config().tunnel_target);
  });
}
