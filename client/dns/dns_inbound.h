#pragma once
// ss-local's DNS inbound ("protocol": "dns" in "locals"): a DNS server on UDP and TCP that sends
// each query to the local resolver directly or to the remote one through the tunnel, as the ACL
// says (client/dns/dns_split.h), with an answer cache. It runs on the main thread's loop.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "client/dns/dns_split.h"
#include "client/dns/dns_tunnel.h"
#include "relay/config.h"
#include "relay/log.h"

namespace ss {

class Acl;
struct Outbound;
struct Runtime;

class DnsInbound {
 public:
  // Queries in flight at once; more are dropped (UDP) or answered SERVFAIL (TCP).
  static constexpr size_t kMaxInFlight = 256;
  static constexpr size_t kMaxClients = 64;             // TCP connections at once
  static constexpr uint64_t kUpstreamTimeoutMs = 5000;  // per upstream attempt (rust's 5 s)
  static constexpr uint64_t kClientIdleMs = 10'000;
  // Reused connections to the remote resolver per server (each up to DnsTunnel::kMaxInFlight
  // queries), and attempts per remote query (a failed one is retried, the next server first).
  static constexpr size_t kTunnelsPerServer = 4;
  static constexpr int kMaxRemoteAttempts = 3;

  DnsInbound(uv_loop_t* loop, const ListenerSpec& spec, std::shared_ptr<const Runtime> runtime,
             std::shared_ptr<const Acl> acl, std::vector<std::string> server_hosts);
  DnsInbound(const DnsInbound&) = delete;
  DnsInbound& operator=(const DnsInbound&) = delete;
  // Only after stop() and once the loop has run the close callbacks.
  ~DnsInbound();

  // Listens on UDP (spec.udp) and TCP (spec.tcp): 0, or the libuv error; *what names which.
  int start(const char** what);
  // Idempotent: closes the sockets, the TCP clients and every query in flight.
  void stop();
  // The router the remote queries use (a refreshed server list).
  void set_runtime(std::shared_ptr<const Runtime> runtime) { runtime_ = std::move(runtime); }

 private:
  struct Query;
  struct Client;
  struct UdpLeg;
  struct TcpLeg;

  // A query from a client: answered from the cache, or sent upstream. False if it is malformed.
  bool handle(Client* client, const sockaddr* peer, const uint8_t* msg, size_t size);
  void reply(Client* client, const sockaddr* peer, size_t udp_limit, uint8_t* msg, size_t size);
  void reply_error(Client* client, const sockaddr* peer, const uint8_t* query, size_t size,
                   uint8_t rcode);
  void malformed(const char* from);
  uint16_t next_id();
  // A tunnel to `o` with room for a query: an open one, else a new one (null: kTunnelsPerServer
  // are full).
  DnsTunnel* tunnel_for(const Outbound* o);

  static void on_udp_alloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void on_udp_read(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* addr,
                          unsigned flags);
  static void on_accept(uv_stream_t* s, int status);

  uv_loop_t* loop_;
  ListenerSpec spec_;
  std::shared_ptr<const Runtime> runtime_;
  std::shared_ptr<const Acl> acl_;
  std::vector<std::string> server_hosts_;
  sockaddr_storage local_dns_{};
  DnsCache cache_;
  uv_udp_t udp_{};
  uv_tcp_t tcp_{};
  bool udp_open_ = false;
  bool tcp_open_ = false;
  bool stopped_ = false;
  std::unordered_set<Query*> queries_;
  std::unordered_set<Client*> clients_;
  std::vector<DnsTunnel*> tunnels_;
  std::vector<uint8_t> scratch_;  // one read at a time (one loop)
  std::vector<uint8_t> reply_;    // an answer or an error being built
  uint32_t id_state_;
  WarnLimiter malformed_log_;
  WarnLimiter flood_log_;
  WarnLimiter mark_log_;
};

}  // namespace ss
