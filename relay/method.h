#pragma once
// The one place that turns a configuration's method into the cipher machinery.

#include <memory>
#include <string>

#include "crypto/tcp_cipher.h"
#include "crypto/udp_cipher.h"
#include "relay/config.h"
#include "relay/outbound.h"

namespace ss {

// The TCP cipher suite for the configured method. ss-server with a classic cipher gets a replay
// filter (unless replay_capacity is 0); one suite is shared by every worker.
// nullptr, with a one-line reason in *error, if the keys do not suit the method.
std::shared_ptr<const TcpCipherSuite> make_tcp_suite(const Config& cfg,
                                                     std::string* error = nullptr);

// A client's suite for one upstream server (its own method and keys).
std::shared_ptr<const TcpCipherSuite> make_client_suite(const ServerSpec& spec,
                                                        int64_t clock_offset,
                                                        std::string* error = nullptr);

// The UDP packet suite for the configured method (ss-server's side, or a client's with the
// flat keys), and a client's for one upstream server. nullptr, with the reason in *error, if the
// keys do not suit the method.
std::shared_ptr<const UdpCipherSuite> make_udp_suite(const Config& cfg,
                                                     std::string* error = nullptr);
std::shared_ptr<const UdpCipherSuite> make_client_udp_suite(const ServerSpec& spec,
                                                            int64_t clock_offset,
                                                            std::string* error = nullptr);

// The router: ss-server relays directly (binding to local_address, with the SSRF guard unless
// allow_private_targets); ss-local and ss-tunnel go round robin over cfg.servers, each with its
// own suite. Shared by every worker. nullptr, with the reason in *error, if a server's keys do
// not suit its method.
std::shared_ptr<Router> make_router(const Config& cfg, std::string* error = nullptr);

}  // namespace ss
