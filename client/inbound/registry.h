#pragma once
// The local inbounds by protocol: what ss-local and ss-tunnel serve on each listener spec. Adding
// an inbound is its own file plus one case here.

#include "relay/config.h"
#include "relay/net/listener.h"

namespace ss {

Listener::Factory local_inbound_factory(const ListenerSpec& spec);

}  // namespace ss
