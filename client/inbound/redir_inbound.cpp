// ss-redir (transparent proxying on Linux): the destination of a connection comes from the
// socket, not from the client. With iptables REDIRECT the kernel rewrote the destination to our
// listening address and keeps the original in its NAT table (SO_ORIGINAL_DST); with TPROXY the
// connection was delivered unchanged to a transparent listener, so the accepted socket's own
// address is the destination.

#include "client/inbound/redir_inbound.h"

namespace ss {

InboundAction RedirInbound::start(const AcceptInfo& info) {
  if (tproxy_) {
    if (info.local.port == 0) return InboundAction::Close;
    // A connection made straight to our listening port, not intercepted: its "destination" is
    // this host's own port, and connecting there would come straight back here. (Intercepted
    // connections keep their foreign destination; the address check runs only when the port
    // matches ours, which is rare.)
    if (info.local.port == listen_port_ && own_ != nullptr && own_(info.local.unmapped())) {
      return InboundAction::Close;
    }
    target_ = info.local;
    return InboundAction::Connect;
  }
  // No NAT entry: the connection was not redirected (or conntrack is not loaded).
  if (!info.original_dst || info.original_dst->port == 0) return InboundAction::Close;
  const Address dst = info.original_dst->unmapped();
  // A NAT entry that changed nothing: the client connected to our port directly. Connecting to
  // that address would come straight back here.
  if (dst == info.local) return InboundAction::Close;
  target_ = dst;
  return InboundAction::Connect;
}

}  // namespace ss
