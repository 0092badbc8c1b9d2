// Metrics (relay/metrics.h): (port, user) slots summed over threads, users without a slot
// counted under "", and the exposition text (labels escaped, histograms cumulative).

#include "relay/metrics.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace ss {
namespace {

TEST_CASE("metrics: a slot per (port, user), summed over threads", "[relay]") {
  const std::vector<std::string> users = {"bob", "alice"};
  const metrics::PortSlots* p = metrics::add_port(40001, users);
  REQUIRE(p->port() == 40001);
  const metrics::SlotId alice = p->find("alice");
  const metrics::SlotId none = p->find("");
  CHECK(alice != none);
  CHECK(p->find("bob") != alice);
  CHECK(p->find("mallory") == none);            // not configured: counted without a user
  CHECK(metrics::add_port(40001, users) == p);  // idempotent
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([alice] {
      metrics::SlotCounters& s = metrics::slot(alice);
      for (int i = 0; i < 1000; ++i) metrics::add_bytes(s, metrics::kTargetToProxy, 10);
      s.opened.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(metrics::bytes(alice, metrics::kTargetToProxy) == 40'000);
  CHECK(metrics::bytes(alice, metrics::kProxyToClient) == 0);
  CHECK(metrics::opened(alice) == 4);
  CHECK(metrics::bytes(none, metrics::kTargetToProxy) == 0);
}

TEST_CASE("metrics: users added to a port (a reload) get a new table with the same old slots",
          "[relay]") {
  const std::vector<std::string> before = {"alice"};
  const std::vector<std::string> after = {"alice", "carol"};
  const metrics::PortSlots* p = metrics::add_port(40003, before);
  metrics::add_bytes(metrics::slot(p->find("alice")), metrics::kClientToProxy, 7);
  const metrics::PortSlots* q = metrics::add_port(40003, after);
  REQUIRE(q != p);
  CHECK(q->find("alice") == p->find("alice"));  // the kept user's counters continue
  CHECK(q->find("") == p->find(""));
  CHECK(q->find("carol") != q->find(""));
  CHECK(p->find("carol") == p->find(""));  // the published table did not change
  CHECK(metrics::bytes(q->find("alice"), metrics::kClientToProxy) == 7);
  CHECK(metrics::add_port(40003, before) == q);  // nothing new: the latest table
}

TEST_CASE("metrics: the exposition text", "[relay]") {
  const std::vector<std::string> users = {"we\"ird\\na\nme"};
  const metrics::PortSlots* p = metrics::add_port(40002, users);
  metrics::SlotCounters& s = metrics::slot(p->find(users[0]));
  s.opened.fetch_add(2);
  s.closed.fetch_add(1);
  metrics::add_bytes(s, metrics::kClientToProxy, 123);
  metrics::key_search(3'000, true);       // 3 us
  metrics::key_search(2'000'000, false);  // 2 ms
  const std::string text = metrics::render_text();
  const std::string labels = "port=\"40002\",user=\"we\\\"ird\\\\na\\nme\"";
  CHECK(text.find("shadowsocks_tcp_connections_active{" + labels + "} 1\n") != std::string::npos);
  CHECK(text.find("shadowsocks_data_bytes_total{" + labels + ",dir=\"c>p\"} 123\n") !=
        std::string::npos);
  CHECK(text.find("shadowsocks_data_bytes_total{" + labels + ",dir=\"p>c\"} 0\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE shadowsocks_key_search_seconds histogram\n") != std::string::npos);
  // Cumulative buckets: 3 us is under 5 us; +Inf holds everything found.
  CHECK(text.find("shadowsocks_key_search_seconds_bucket{found=\"true\",le=\"2.5e-06\"} 0\n") !=
        std::string::npos);
  CHECK(text.find("shadowsocks_key_search_seconds_bucket{found=\"true\",le=\"5e-06\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("shadowsocks_key_search_seconds_bucket{found=\"false\",le=\"+Inf\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("shadowsocks_key_search_seconds_count{found=\"false\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("shadowsocks_build_info{version=\"") != std::string::npos);
  CHECK(text.back() == '\n');
}

TEST_CASE("metrics: the balancer's gauges, switches and UDP moves", "[relay]") {
  CHECK(metrics::render_text().find("shadowsocks_balancer") == std::string::npos);
  std::vector<metrics::BalancerServer> servers = {
      {"127.0.0.1:1000", false, false, true, false, 12'000, 2000},
      {"[::1]:1001", true, true, true, true, 3, 4}};
  metrics::set_balancer([&servers] { return servers; });
  // The counters are process-wide (other cases may have counted): compared by difference.
  auto value = [](const std::string& name) {
    const std::string text = metrics::render_text();
    const size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + name.size() + 2));
  };
  const long long switches = value("shadowsocks_balancer_switches_total");
  const long long moves = value("shadowsocks_udp_association_moves_total");
  REQUIRE(switches >= 0);
  REQUIRE(moves >= 0);
  std::thread([] {
    metrics::balancer_switch();
    metrics::udp_association_moved();
  }).join();
  metrics::udp_association_moved();
  std::string text = metrics::render_text();
  auto has = [&text](const std::string& line) { return text.find(line) != std::string::npos; };
  CHECK(has("# TYPE shadowsocks_balancer_server_up gauge\n"));
  CHECK(has("shadowsocks_balancer_server_up{server=\"127.0.0.1:1000\"} 0\n"));
  CHECK(has("shadowsocks_balancer_server_up{server=\"[::1]:1001\"} 1\n"));
  CHECK(has("shadowsocks_balancer_server_udp_up{server=\"127.0.0.1:1000\"} 0\n"));
  CHECK(has("shadowsocks_balancer_server_current{server=\"[::1]:1001\"} 1\n"));
  CHECK(has("shadowsocks_balancer_server_rtt_seconds{server=\"127.0.0.1:1000\"} 0.012\n"));
  CHECK(has("shadowsocks_balancer_server_score_seconds{server=\"127.0.0.1:1000\"} 2\n"));
  CHECK(value("shadowsocks_balancer_switches_total") == switches + 1);
  CHECK(value("shadowsocks_udp_association_moves_total") == moves + 2);
  // Without UDP probes: no UDP gauge; no balancer (an empty list): nothing.
  for (auto& b : servers) b.udp_probed = false;
  text = metrics::render_text();
  CHECK_FALSE(has("shadowsocks_balancer_server_udp_up"));
  CHECK(has("shadowsocks_balancer_server_up{"));
  servers.clear();
  CHECK(metrics::render_text().find("shadowsocks_balancer") == std::string::npos);
  metrics::set_balancer(nullptr);
}

}  // namespace
}  // namespace ss
