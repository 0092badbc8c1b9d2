#include "client/inbound/redir_inbound.h"
#include "relay/app.h"
#include "relay/listener.h"

int main(int argc, char** argv) {
  return ss::run_app(ss::Role::Redir, argc, argv, [](ss::Listener& l) {
    return std::make_unique<ss::RedirInbound>(l.config().tcp_tproxy);
  });
}
