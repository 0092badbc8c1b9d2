#include "client/tunnel_session.h"
#include "relay/app.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Tunnel, argc, argv,
                     [](ss::Listener& l) -> ss::Session* { return new ss::TunnelSession(l); });
}
