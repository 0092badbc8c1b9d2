// Resource limits: the connection cap refuses (accepts and closes) connections beyond it and
// serves again once sessions end.

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <thread>

#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "relay/listener.h"
#include "server/server_session.h"
#include "tests/support/net.h"

using namespace ss;
using namespace ss::test;
using namespace std::chrono_literals;

TEST_CASE("connection cap: connections beyond it are closed at once, and capacity returns",
          "[relay]") {
  const CipherSpec& spec = *find_cipher("aes-128-gcm");
  Config cfg;
  cfg.role = Role::Server;
  cfg.method = std::string(spec.name);
  cfg.cipher = &spec;
  cfg.key = derive_master_key("cap test", spec.key_len);
  cfg.timeout = 30;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  auto live = std::make_shared<std::atomic<size_t>>(0);
  auto listener = std::make_unique<Listener>(
      &loop, cfg, [](Listener& l) -> Session* { return new ServerSession(l); });
  listener->set_connection_limit(live, 3);
  REQUIRE(listener->listen("127.0.0.1", 0) == 0);
  uint16_t port = listener->port();
  uv_async_t stop;
  stop.data = listener.get();
  uv_async_init(&loop, &stop, [](uv_async_t* a) {
    static_cast<Listener*>(a->data)->shutdown();
    uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
  });
  std::thread loop_thread([&] { uv_run(&loop, UV_RUN_DEFAULT); });

  // Three connections that never finish their handshake hold the three places.
  std::vector<Socket> held;
  for (int i = 0; i < 3; ++i) held.push_back(connect_tcp("127.0.0.1", port));
  auto wait_live = [&](size_t n) {
    for (int i = 0; i < 200 && live->load() != n; ++i) std::this_thread::sleep_for(5ms);
    return live->load();
  };
  CHECK(wait_live(3) == 3);
  // The fourth is accepted by the kernel but closed by us right away.
  Socket fourth = connect_tcp("127.0.0.1", port);
  CHECK(wait_peer_closed(fourth, 2000ms));
  CHECK(live->load() == 3);
  // One place frees up (the client leaves): a new connection is served (held open) again.
  held[0].shutdown_write();
  CHECK(wait_peer_closed(held[0], 2000ms));
  CHECK(wait_live(2) == 2);
  Socket fifth = connect_tcp("127.0.0.1", port);
  CHECK_FALSE(wait_peer_closed(fifth, 300ms));
  CHECK(live->load() == 3);

  uv_async_send(&stop);
  loop_thread.join();
  listener.reset();
  CHECK(uv_loop_close(&loop) == 0);
}
