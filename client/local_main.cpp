#include "client/inbound/mixed_inbound.h"
#include "relay/app.h"
#include "relay/listener.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Local, argc, argv, [](ss::Listener& l) {
    const ss::Config& cfg = l.config();
    return std::make_unique<ss::MixedInbound>(cfg.mode != ss::Mode::UdpOnly,
                                              cfg.mode != ss::Mode::TcpOnly, cfg.local_users.get());
  });
}
