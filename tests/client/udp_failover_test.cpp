// A live UDP association's failover in the Shadowsocks datagram outbound, with the real balancer
// and 2022 packet suites: it keeps its server and session while the server is usable, moves to
// the balancer's choice when the server goes down (TCP or UDP), with a new 2022 session that the
// new server opens as a new one, and asks the NAT for new sockets once; without a balancer it
// never moves. The ACL outbound passes the request for new sockets on.

#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <vector>

#include "client/udp/acl_udp_outbound.h"
#include "client/udp/ss_udp_outbound.h"
#include "crypto/aead2022.h"
#include "crypto/kdf.h"
#include "crypto/none_suite.h"
#include "crypto/udp_cipher.h"
#include "relay/acl.h"
#include "relay/balancer.h"

namespace ss {
namespace {

using Bytes = std::vector<uint8_t>;

struct Fleet {
  std::vector<std::shared_ptr<const UdpCipherSuite>> server_suites;
  std::shared_ptr<Balancer> balancer;
  std::shared_ptr<UdpServerSource> source = std::make_shared<UdpServerSource>();
  std::shared_ptr<std::atomic<size_t>> next = std::make_shared<std::atomic<size_t>>(0);
};

// `n` servers on 127.0.0.1:2000+i, each with its own 2022 key, behind a balancer ("best").
Fleet fleet(int n) {
  const Method2022& m = *find_2022_method("2022-blake3-aes-128-gcm");
  Fleet f;
  std::vector<Outbound> outbounds;
  auto set = std::make_shared<UdpServerSet>();
  for (int i = 0; i < n; ++i) {
    Bytes psk(m.key_len);
    random_bytes(psk);
    Udp2022Options c;
    c.method = &m;
    c.client_keys = {psk};
    Udp2022Options s;
    s.method = &m;
    s.server_psk = psk;
    f.server_suites.push_back(make_2022_udp_suite(std::move(s)));
    UdpServer server;
    server.address = *make_address("127.0.0.1", static_cast<uint16_t>(2000 + i));
    server.suite = make_2022_udp_suite(std::move(c));
    set->servers.push_back(std::move(server));
    Outbound o;
    o.kind = Outbound::Kind::Shadowsocks;
    o.server = *make_address("127.0.0.1", static_cast<uint16_t>(2000 + i));
    o.suite = make_none_suite();
    outbounds.push_back(std::move(o));
  }
  f.balancer =
      std::make_shared<Balancer>(std::move(outbounds), std::vector<double>{}, BalancerSpec{});
  set->router = f.balancer;
  f.source->set(set);
  return f;
}

const Bytes kTarget = {0x01, 192, 0, 2, 1, 0x00, 0x35};  // 192.0.2.1:53

// The balancer knows a server by its index.
Outbound server(uint32_t i) {
  Outbound o;
  o.index = i;
  return o;
}

struct Sent {
  Address to;
  Bytes bytes;
};

Sent send_one(UdpOutbound& out, UdpFlowState* state) {
  static uint8_t scratch[2048];
  const Bytes payload(40, 0x5a);
  Sent s;
  std::span<const uint8_t> bytes;
  UdpStats stats;
  REQUIRE(out.send(state, kTarget, payload, scratch, s.to, bytes, stats));
  s.bytes.assign(bytes.begin(), bytes.end());
  return s;
}

// The 2022 session ID the server `suite` reads in a request (0: it did not open).
uint64_t session_of(const UdpCipherSuite& suite, const Bytes& packet) {
  auto opener = suite.server_opener();
  Bytes out(packet.size());
  UdpSessionId id;
  if (!opener->open_header(packet, out, id).ok()) return 0;
  UdpPacket p;
  std::unique_ptr<UdpServerSession> created;
  if (!opener->open_body(nullptr, p, created).ok()) return 0;
  return id.session_id;
}

TEST_CASE("UDP failover: an association moves off a down server with a new 2022 session",
          "[client]") {
  Fleet f = fleet(3);
  ShadowsocksUdpOutbound out(f.source, f.next);
  std::unique_ptr<UdpFlowState> flow = out.open_flow();
  const Sent first = send_one(out, flow.get());
  CHECK(first.to.port == 2000);
  const uint64_t old_session = session_of(*f.server_suites[0], first.bytes);
  REQUIRE(old_session != 0);
  // Another server's state changes: the association stays, with its session.
  f.balancer->server_failed(server(2), UV_ECONNREFUSED);
  CHECK_FALSE(f.balancer->up(2));
  const Sent same = send_one(out, flow.get());
  CHECK(same.to.port == 2000);
  CHECK_FALSE(flow->renew_sockets);
  CHECK(session_of(*f.server_suites[0], same.bytes) == old_session);

  // Its own server goes down: the next datagram goes to the balancer's choice, a new session.
  f.balancer->server_failed(server(0), UV_ECONNREFUSED);
  const Sent moved = send_one(out, flow.get());
  CHECK(moved.to.port == 2001);
  CHECK(flow->renew_sockets);
  CHECK(session_of(*f.server_suites[0], moved.bytes) == 0);  // not the old server's key
  const uint64_t new_session = session_of(*f.server_suites[1], moved.bytes);
  CHECK(new_session != 0);
  CHECK(new_session != old_session);
  CHECK(ShadowsocksUdpOutbound::server_of(flow.get())->port == 2001);
  flow->renew_sockets = false;  // as the NAT does
  const Sent after = send_one(out, flow.get());
  CHECK(after.to.port == 2001);
  CHECK_FALSE(flow->renew_sockets);
  CHECK(session_of(*f.server_suites[1], after.bytes) == new_session);
}

TEST_CASE("UDP failover: every server down leaves the association where it is", "[client]") {
  Fleet f = fleet(2);
  ShadowsocksUdpOutbound out(f.source, f.next);
  std::unique_ptr<UdpFlowState> flow = out.open_flow();
  CHECK(send_one(out, flow.get()).to.port == 2000);
  f.balancer->server_failed(server(1), UV_ETIMEDOUT);  // the other first
  f.balancer->server_failed(server(0), UV_ETIMEDOUT);
  // route_datagram() still offers the current one: nowhere better to go.
  CHECK(send_one(out, flow.get()).to.port == 2000);
  CHECK_FALSE(flow->renew_sockets);
}

TEST_CASE("UDP failover: without a balancer an association keeps its server", "[client]") {
  Fleet f = fleet(2);
  auto set = std::make_shared<UdpServerSet>(*f.source->get());
  set->router = nullptr;  // round robin, no health
  f.source->set(set);
  ShadowsocksUdpOutbound out(f.source, f.next);
  std::unique_ptr<UdpFlowState> flow = out.open_flow();
  const uint16_t port = send_one(out, flow.get()).to.port;
  f.balancer->server_failed(server(0), UV_ECONNREFUSED);
  CHECK(send_one(out, flow.get()).to.port == port);
  CHECK_FALSE(flow->renew_sockets);
}

TEST_CASE("UDP failover: under an ACL the move still renews the association's sockets",
          "[client]") {
  Fleet f = fleet(2);
  std::string error;
  std::shared_ptr<const Acl> acl = Acl::parse("[proxy_all]\n[bypass_list]\n198.51.100.1\n", &error);
  REQUIRE(acl);
  AclUdpOutbound out(acl, std::make_unique<ShadowsocksUdpOutbound>(f.source, f.next));
  std::unique_ptr<UdpFlowState> flow = out.open_flow();
  CHECK(send_one(out, flow.get()).to.port == 2000);
  f.balancer->server_failed(server(0), UV_ECONNREFUSED);
  CHECK(send_one(out, flow.get()).to.port == 2001);
  CHECK(flow->renew_sockets);
}

}  // namespace
}  // namespace ss
