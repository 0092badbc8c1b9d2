#pragma once
// The shared main() of ss-local, ss-tunnel, ss-redir and ss-server.

#include <functional>

#include "relay/config.h"
#include "relay/net/listener.h"

namespace ss {

// Which inbound serves a listener: the binary's registry of protocols.
using InboundRegistry = std::function<Listener::Factory(const ListenerSpec&)>;

// Loads the configuration (exit 1 with one line on an error), listens on every listener spec,
// runs the loop until SIGINT/SIGTERM, and returns the process exit status.
int run_app(Role role, int argc, char** argv, const InboundRegistry& inbounds);

}  // namespace ss
