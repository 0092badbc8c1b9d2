#include "client/inbound/socks5_inbound.h"
#include "relay/app.h"
#include "relay/listener.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Local, argc, argv, [](ss::Listener& l) {
    const ss::Mode mode = l.config().mode;
    return std::make_unique<ss::Socks5Inbound>(mode != ss::Mode::UdpOnly,
                                               mode != ss::Mode::TcpOnly);
  });
}
