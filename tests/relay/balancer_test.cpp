// The balancer's choices without probes: the current server, a server that failed is passed
// over (and the switch happens), failover offers each untried server once, up ones first, the
// weighted mode spreads by weight over the up servers only.

#include "relay/balancer.h"

#include <catch2/catch.hpp>
#include <map>

#include "crypto/none_suite.h"

namespace ss {
namespace {

std::vector<Outbound> servers(int n) {
  std::vector<Outbound> v;
  for (int i = 0; i < n; ++i) {
    Outbound o;
    o.kind = Outbound::Kind::Shadowsocks;
    o.server = *make_address("127.0.0.1", static_cast<uint16_t>(1000 + i));
    o.suite = make_none_suite();
    o.index = static_cast<uint32_t>(i);
    v.push_back(std::move(o));
  }
  return v;
}

const Address kTarget = *make_address("192.0.2.1", 80);

TEST_CASE("balancer best: the current server until it fails, then the next up one", "[relay]") {
  Balancer b(servers(3), {}, BalancerSpec{});
  for (int i = 0; i < 5; ++i) CHECK(b.route(kTarget)->index == 0);
  b.server_failed(*b.route(kTarget), UV_ECONNREFUSED);
  CHECK_FALSE(b.up(0));
  CHECK(b.route(kTarget)->index == 1);
  CHECK(b.current() == 1);
  // Not re-admitted by anything but a probe.
  for (int i = 0; i < 5; ++i) CHECK(b.route(kTarget)->index == 1);
  // Every server down: the current one is still offered (a connection may still get through).
  b.server_failed(*b.route(kTarget), UV_ETIMEDOUT);
  b.server_failed(*b.route(kTarget), UV_ETIMEDOUT);
  CHECK_FALSE(b.up(1));
  CHECK_FALSE(b.up(2));
  CHECK(b.route(kTarget) != nullptr);
}

TEST_CASE("balancer retry: each untried server once, up ones first", "[relay]") {
  Balancer b(servers(4), {}, BalancerSpec{});
  b.server_failed(*b.route(kTarget), UV_ECONNREFUSED);  // 0 down
  std::vector<Outbound> probe = servers(4);
  b.server_failed(probe[2], UV_ECONNREFUSED);  // the index is what counts: 2 down
  uint64_t tried = 1;                          // 0 was tried
  std::vector<uint32_t> order;
  while (const Outbound* o = b.retry(kTarget, tried)) {
    order.push_back(o->index);
    tried |= uint64_t{1} << o->index;
  }
  REQUIRE(order == std::vector<uint32_t>{1, 3, 2});
  CHECK(b.retry(kTarget, 0b1111) == nullptr);
}

TEST_CASE("balancer weighted: by weight over the up servers", "[relay]") {
  BalancerSpec spec;
  spec.mode = BalancerSpec::Pick::Weighted;
  Balancer b(servers(3), {1, 3, 6}, spec);
  std::map<uint32_t, int> count;
  for (int i = 0; i < 10000; ++i) ++count[b.route(kTarget)->index];
  CHECK(count[0] > 700);
  CHECK(count[0] < 1300);
  CHECK(count[1] > 2600);
  CHECK(count[1] < 3400);
  CHECK(count[2] > 5500);
  b.server_failed(servers(3)[2], UV_EPIPE);
  count.clear();
  for (int i = 0; i < 1000; ++i) ++count[b.route(kTarget)->index];
  CHECK(count[2] == 0);
  CHECK(count[0] + count[1] == 1000);
}

TEST_CASE("balancer weighted: the weight scaled by the best score over the server's", "[relay]") {
  CHECK(weighted_share(2, 0, 10) == 2);   // not probed yet
  CHECK(weighted_share(2, 10, 0) == 2);   // none probed
  CHECK(weighted_share(2, 10, 10) == 2);  // the fastest
  CHECK(weighted_share(2, 40, 10) == Approx(0.5));
  BalancerSpec spec;
  spec.mode = BalancerSpec::Pick::Weighted;
  std::vector<Outbound> list = servers(2);
  Balancer b(list, {1, 1}, spec);
  // Equal weights, server 1 twice as slow: about 2:1.
  b.restore_health({{list[0].server.to_string(), true, false, 0, {10}},
                    {list[1].server.to_string(), true, false, 0, {20}}});
  std::map<uint32_t, int> count;
  for (int i = 0; i < 9000; ++i) ++count[b.route(kTarget)->index];
  CHECK(count[0] > 5600);
  CHECK(count[0] < 6400);
  CHECK(count[0] + count[1] == 9000);
}

TEST_CASE("balancer round_robin: the up servers in turn", "[relay]") {
  BalancerSpec spec;
  spec.mode = BalancerSpec::Pick::RoundRobin;
  Balancer b(servers(3), {}, spec);
  std::vector<uint32_t> got;
  for (int i = 0; i < 6; ++i) got.push_back(b.route(kTarget)->index);
  CHECK(got == std::vector<uint32_t>{0, 1, 2, 0, 1, 2});
  b.server_failed(servers(3)[1], UV_ECONNREFUSED);
  for (int i = 0; i < 6; ++i) CHECK(b.route(kTarget)->index != 1);
}

TEST_CASE("balancer restore_health: a new list keeps what was learnt of the servers that stay",
          "[relay]") {
  Balancer old(servers(3), {}, BalancerSpec{});
  old.server_failed(*old.route(kTarget), UV_ECONNREFUSED);  // 1000 down
  old.route(kTarget);                                       // 1001 is current
  REQUIRE(old.current() == 1);
  // The new list: 1001 and 1002 stay (in another order), 1003 is new, 1000 is gone.
  std::vector<Outbound> next;
  for (uint16_t port : {1002, 1003, 1001}) {
    Outbound o;
    o.kind = Outbound::Kind::Shadowsocks;
    o.server = *make_address("127.0.0.1", port);
    o.suite = make_none_suite();
    next.push_back(std::move(o));
  }
  Balancer b(std::move(next), {}, BalancerSpec{});
  b.restore_health(old.health());
  CHECK(b.current() == 2);  // 1001, still the one in use: no switch
  CHECK(b.route(kTarget)->server.port == 1001);
  CHECK(b.up(0));
  CHECK(b.up(1));
  // A server that was down stays down in the new list.
  Balancer again(servers(3), {}, BalancerSpec{});
  again.restore_health(old.health());
  CHECK_FALSE(again.up(0));
  CHECK(again.current() == 1);
}

}  // namespace
}  // namespace ss
