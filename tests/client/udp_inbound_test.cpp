// The local datagram inbounds as bytes in, actions out: which flow a datagram belongs to, the
// target's address header and the payload handed on, what is dropped and counted, and how a
// reply is framed for the client.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "client/udp/local_udp_inbounds.h"
#include "relay/udp_relay.h"

namespace ss {
namespace {

using Bytes = std::vector<uint8_t>;

sockaddr_in v4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

const sockaddr* sa(const sockaddr_in& a) {
  return reinterpret_cast<const sockaddr*>(&a);
}

// The NAT's lookup, with at most one association.
struct OneFlow final : UdpFlows {
  UdpFlowKey key;
  UdpFlowState* state = nullptr;
  UdpFlowState* inbound_state(const UdpFlowKey& k) override {
    return state != nullptr && k == key ? state : nullptr;
  }
};

Bytes span_bytes(std::span<const uint8_t> s) {
  return Bytes(s.begin(), s.end());
}

const Bytes kTarget = {1, 192, 0, 2, 7, 0x1F, 0x90};  // 192.0.2.7:8080

}  // namespace

TEST_CASE("SOCKS5 UDP inbound: only an associated client passes, FRAG != 0 is dropped",
          "[client]") {
  UdpRelay relay;
  Socks5UdpInbound in(relay);
  OneFlow flows;
  Bytes scratch(2048);
  UdpStats stats;
  const sockaddr_in client = v4("127.0.0.1", 40000);
  Bytes dgram = {0, 0, 0};
  dgram.insert(dgram.end(), kTarget.begin(), kTarget.end());
  dgram.insert(dgram.end(), {'h', 'i'});

  UdpRequest req;
  CHECK_FALSE(in.receive(dgram, sa(client), nullptr, flows, scratch, req, stats));
  CHECK(stats.drop_unassociated == 1);

  const sockaddr_in control_peer = v4("127.0.0.1", 50000);
  const uint64_t id = relay.open_control(sa(control_peer), 40000);
  UdpRequest ok;
  REQUIRE(in.receive(dgram, sa(client), nullptr, flows, scratch, ok, stats));
  CHECK(ok.control == id);
  CHECK(span_bytes(ok.address) == kTarget);
  CHECK(span_bytes(ok.payload) == Bytes{'h', 'i'});
  REQUIRE(ok.state);
  CHECK(in.alive(ok.state.get()));

  // Another port than the one announced: not admitted.
  UdpRequest other;
  CHECK_FALSE(in.receive(dgram, sa(v4("127.0.0.1", 40001)), nullptr, flows, scratch, other, stats));

  Bytes frag = dgram;
  frag[2] = 1;
  UdpRequest f;
  CHECK_FALSE(in.receive(frag, sa(client), nullptr, flows, scratch, f, stats));
  CHECK(stats.drop_malformed == 1);

  // The association's state dies with its control connection.
  flows.key = ok.key;
  flows.state = ok.state.get();
  relay.close_control(id);
  CHECK_FALSE(in.alive(ok.state.get()));
  UdpRequest after;
  CHECK_FALSE(in.receive(dgram, sa(client), nullptr, flows, scratch, after, stats));

  // Replies: 00 00 00, the source's address header, the payload.
  Bytes out(64);
  const size_t n = in.reply(ok.state.get(), kTarget, Bytes{'x'}, out);
  REQUIRE(n == 3 + kTarget.size() + 1);
  CHECK(out[0] == 0);
  CHECK(out[2] == 0);
  CHECK(Bytes(out.begin() + 3, out.begin() + 3 + kTarget.size()) == kTarget);
  CHECK(in.reply(ok.state.get(), kTarget, Bytes(100), {out.data(), 8}) == kNoReply);
}

TEST_CASE("tunnel and redir UDP inbounds: the fixed or original destination", "[client]") {
  OneFlow flows;
  Bytes scratch(2048);
  UdpStats stats;
  const sockaddr_in client = v4("10.0.0.2", 5000);
  const Bytes payload = {1, 2, 3};

  TunnelUdpInbound tunnel(*make_address("192.0.2.7", 8080));
  UdpRequest t;
  REQUIRE(tunnel.receive(payload, sa(client), nullptr, flows, scratch, t, stats));
  CHECK(span_bytes(t.address) == kTarget);
  CHECK(span_bytes(t.payload) == payload);
  CHECK(t.key == flow_key_of(sa(client)));
  Bytes out(16);
  CHECK(tunnel.reply(nullptr, kTarget, payload, out) == payload.size());
  CHECK(tunnel.reply(nullptr, kTarget, Bytes{}, out) == 0);  // an empty datagram is sent

  RedirUdpInbound redir;
  CHECK(redir.reply_from_source());
  UdpRequest none;
  CHECK_FALSE(redir.receive(payload, sa(client), nullptr, flows, scratch, none, stats));
  CHECK(stats.drop_malformed == 1);
  const sockaddr_in dest = v4("192.0.2.7", 8080);
  UdpRequest r;
  REQUIRE(redir.receive(payload, sa(client), sa(dest), flows, scratch, r, stats));
  CHECK(span_bytes(r.address) == kTarget);
  CHECK(span_bytes(r.payload) == payload);
}

}  // namespace ss
