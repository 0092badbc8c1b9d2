#pragma once
// The shared main() of ss-local, ss-tunnel, ss-redir and ss-server.

#include "relay/config.h"
#include "relay/listener.h"

namespace ss {

// Loads the configuration (exit 1 with one line on an error), listens, runs the loop until
// SIGINT/SIGTERM, and returns the process exit status.
int run_app(Role role, int argc, char** argv, Listener::Factory factory);

}  // namespace ss
