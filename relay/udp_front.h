#pragma once
// What each worker's NAT serves on a listener spec: the datagram inbound of the spec's protocol
// and the outbound (direct for a Shadowsocks listener, else the configured servers). Made once
// per process, with the suites every worker shares.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "relay/config.h"
#include "relay/outbound.h"
#include "relay/udp_flow.h"

namespace ss {

class UdpRelay;
class UdpServerSource;
class UserLimits;
namespace metrics {
class PortSlots;
}

// A client's packet suite towards `spec`'s server and the address its datagrams go to (the server
// itself, also behind a plugin). Null, with the reason in *error, if the keys do not suit.
std::shared_ptr<const UdpCipherSuite> client_udp_suite(const ServerSpec& spec, int64_t clock_offset,
                                                       std::string* error);
Address udp_server_address(const ServerSpec& spec);

class UdpFronts {
 public:
  // nullptr, with the reason in *error, if a method's keys are unusable.
  static std::unique_ptr<UdpFronts> make(const Specs& specs, UdpRelay& relay, std::string* error);
  // The clients' associations pick their server with the TCP side's router (the balancer).
  void set_router(std::shared_ptr<Router> router);
  // A new server list (a refresh of online_config) and its router: associations started from now
  // on use them, live ones keep theirs. False, with the reason in *error, if a method's keys are
  // unusable (nothing changes then).
  bool set_servers(const Specs& specs, std::shared_ptr<Router> router, std::string* error);
  // ss-server: the users' quotas (relay/user_limits.h), given to the Shadowsocks inbounds.
  void set_user_limits(std::shared_ptr<UserLimits> limits) { user_limits_ = std::move(limits); }

  // `slots`: the listener's metrics slots (ss-server counts its users' datagrams), or null.
  std::unique_ptr<UdpInbound> inbound(const ListenerSpec& spec,
                                      const metrics::PortSlots* slots = nullptr) const;
  std::unique_ptr<UdpOutbound> outbound(const ListenerSpec& spec) const;
  // Whether `spec`'s socket takes its datagrams by TPROXY (ss-redir).
  bool transparent(const ListenerSpec& spec) const {
    return spec.protocol == ListenerSpec::Protocol::Redir;
  }

 private:
  UdpFronts(UdpRelay& relay) : relay_(relay) {}
  UdpRelay& relay_;
  bool block_private_ = true;
  std::shared_ptr<const Acl> acl_;
  std::shared_ptr<const Acl> local_acl_;   // ss-local's, ss-redir's --acl (AclUdpOutbound)
  std::shared_ptr<const Acl> client_acl_;  // ... with client rules (the Shadowsocks inbound)  //
                                           // ss-server's --acl with outbound rules, or null
  // The Shadowsocks inbounds' packet suites (ListenerSpec::inbound).
  std::vector<std::shared_ptr<const UdpCipherSuite>> server_suites_;
  std::shared_ptr<UdpServerSource> servers_;
  std::shared_ptr<std::atomic<size_t>> next_ = std::make_shared<std::atomic<size_t>>(0);
  std::shared_ptr<UserLimits> user_limits_;
};

}  // namespace ss
