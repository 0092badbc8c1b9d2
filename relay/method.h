#pragma once
// The one place that turns a configuration's method into the cipher machinery.

#include <memory>
#include <string>

#include "crypto/tcp_cipher.h"
#include "relay/config.h"
#include "relay/outbound.h"

namespace ss {

// The TCP cipher suite for the configured method. ss-server with a classic cipher gets a replay
// filter (unless replay_capacity is 0); one suite is shared by every worker.
// nullptr, with a one-line reason in *error, if the keys do not suit the method.
std::shared_ptr<const TcpCipherSuite> make_tcp_suite(const Config& cfg,
                                                     std::string* error = nullptr);

// The router for libev's flat keys: ss-server relays directly (binding to local_address, with the
// SSRF guard unless allow_private_targets); ss-local and ss-tunnel go round robin over the
// "server" hosts with `suite`.
std::shared_ptr<Router> make_router(const Config& cfg, std::shared_ptr<const TcpCipherSuite> suite);

}  // namespace ss
