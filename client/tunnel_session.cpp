// ss-tunnel session: accept, connect to ss-server at once, then relay. The fixed target's address
// header rides in the first encrypted flight with the client's first bytes.

#include "client/tunnel_session.h"

#include "client/local_session.h"
#include "relay/warnings.h"

namespace ss {

void TunnelSession::on_started() {
  set_pending_header(*config().tunnel_target);
  connect_remote(pick_server(config()), "server");
}

void TunnelSession::on_remote_failed(int err) {
  warn::server_unreachable(remote_address().to_string(), err);
  close("cannot reach the server", err);
}

}  // namespace ss
