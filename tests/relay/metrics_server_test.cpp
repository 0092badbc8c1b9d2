// The metrics endpoint on a loop of its own: answers over real sockets (200 with the exposition,
// 404, 405, 431), and close() with clients still connected leaves no handle open (the loop ends
// and closes cleanly).

#include "relay/metrics_server.h"

#include <uv.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "relay/metrics.h"
#include "tests/support/net.h"

namespace ss {
namespace {

using test::Millis;

// A MetricsServer on 127.0.0.1 (a free port) whose loop runs in a thread until stop().
struct Endpoint {
  uv_loop_t loop;
  uv_async_t stop_async;
  MetricsServer server{&loop};
  uint16_t port = 0;
  std::thread thread;

  Endpoint() {
    uv_loop_init(&loop);
    uv_async_init(&loop, &stop_async, [](uv_async_t* a) {
      static_cast<Endpoint*>(a->data)->server.close();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    stop_async.data = this;
    Address at = *parse_host_port("127.0.0.1:1");
    at.port = 0;
    REQUIRE(server.listen(at) == 0);
    port = server.port();
    REQUIRE(port != 0);
    thread = std::thread([this] { uv_run(&loop, UV_RUN_DEFAULT); });
  }
  // Closes the server and every client, and checks nothing was left open.
  void stop() {
    uv_async_send(&stop_async);
    thread.join();
    CHECK(uv_loop_close(&loop) == 0);
  }
};

std::string text(const test::Bytes& b) {
  return {b.begin(), b.end()};
}

std::string ask(uint16_t port, const std::string& request) {
  test::Socket s = test::connect_tcp("127.0.0.1", port);
  test::send_all(s, request);
  return text(test::recv_until_eof(s, Millis(10000)));
}

TEST_CASE("metrics_server: answers and closes", "[relay]") {
  metrics::add_port(40100, {});
  Endpoint e;
  const std::string ok = ask(e.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ok.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(ok.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") !=
        std::string::npos);
  CHECK(ok.find("shadowsocks_tcp_connections_accepted_total{port=\"40100\"} 0\n") !=
        std::string::npos);
  const std::string head = ask(e.port, "HEAD /metrics HTTP/1.0\r\n\r\n");
  CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(head.find("shadowsocks_") == std::string::npos);  // no body
  CHECK(ask(e.port, "GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
  const std::string post = ask(e.port, "POST /metrics HTTP/1.1\r\n\r\n");
  CHECK(post.rfind("HTTP/1.1 405 ", 0) == 0);
  CHECK(post.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
  const std::string big = ask(e.port, "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a'));
  CHECK(big.rfind("HTTP/1.1 431 ", 0) == 0);
  CHECK(ask(e.port, "GET /metrics HTTP/1.1\n\n").rfind("HTTP/1.1 400 ", 0) == 0);
  e.stop();
}

TEST_CASE("metrics_server: close() with clients still connected", "[relay]") {
  Endpoint e;
  test::Socket idle = test::connect_tcp("127.0.0.1", e.port);
  test::Socket partial = test::connect_tcp("127.0.0.1", e.port);
  test::send_all(partial, std::string("GET /metr"));
  // Both are accepted (the server answers a third client after them, on the same loop).
  CHECK(ask(e.port, "GET /x HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
  e.stop();
  CHECK(test::wait_peer_closed(idle, Millis(5000)));
  CHECK(test::wait_peer_closed(partial, Millis(5000)));
}

}  // namespace
}  // namespace ss
