// In-process relay tests: ss-server and ss-local listeners on one libuv loop (run on a thread),
// driven by blocking clients. Each test ends by closing both listeners and asserting that
// uv_loop_close() returns 0, i.e. that every handle the sessions opened was closed.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <thread>

#include "client/inbound/socks5_inbound.h"
#include "crypto/cipher_spec.h"
#include "crypto/kdf.h"
#include "relay/buffer_pool.h"
#include "relay/net/listener.h"
#include "server/inbound_ss.h"
#include "tests/support/net.h"

using namespace ss;
using namespace ss::test;
using namespace std::chrono_literals;

namespace {

Config make_config(Role role, const std::string& method) {
  Config c;
  c.role = role;
  c.method = method;
  c.cipher = find_cipher(method);
  REQUIRE(c.cipher != nullptr);
  c.key = derive_master_key("in-process test password", c.cipher->key_len);
  c.server = {"127.0.0.1"};
  c.local_address = role == Role::Server ? "" : "127.0.0.1";
  c.timeout = 30;
  c.allow_private_targets = true;  // the targets are on loopback
  return c;
}

// ss-server and ss-local on one loop in a background thread.
class InProcessProxy {
 public:
  explicit InProcessProxy(const std::string& method)
      : server_cfg_(make_config(Role::Server, method)),
        local_cfg_(make_config(Role::Local, method)) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    server_ = std::make_unique<Listener>(&loop_, make_runtime(server_cfg_), [](Listener& l) {
      return std::make_unique<ShadowsocksInbound>(l.suite());
    });
    REQUIRE(server_->listen("127.0.0.1", 0) == 0);
    local_cfg_.server_port = server_->port();
    const bool tcp = local_cfg_.mode != Mode::UdpOnly, udp = local_cfg_.mode != Mode::TcpOnly;
    local_ = std::make_unique<Listener>(&loop_, make_runtime(local_cfg_), [tcp, udp](Listener&) {
      return std::make_unique<Socks5Inbound>(tcp, udp);
    });
    REQUIRE(local_->listen("127.0.0.1", 0) == 0);
    stop_.data = this;
    REQUIRE(uv_async_init(&loop_, &stop_, on_stop) == 0);
    sampler_.data = this;
    REQUIRE(uv_timer_init(&loop_, &sampler_) == 0);
    REQUIRE(uv_timer_start(&sampler_, on_sample, 1, 1) == 0);
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }

  ~InProcessProxy() {
    if (thread_.joinable()) finish();
  }

  uint16_t local_port() const { return local_->port(); }
  uint16_t server_port() const { return server_->port(); }
  size_t max_live_blocks() const { return max_live_blocks_.load(); }

  // Shuts everything down and returns uv_loop_close()'s result (0 = no handle leaked).
  int finish() {
    uv_async_send(&stop_);
    thread_.join();
    server_.reset();
    local_.reset();
    return uv_loop_close(&loop_);
  }

 private:
  static void on_stop(uv_async_t* a) {
    auto* self = static_cast<InProcessProxy*>(a->data);
    self->server_->shutdown();
    self->local_->shutdown();
    uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->sampler_), nullptr);
  }
  static void on_sample(uv_timer_t* t) {
    auto* self = static_cast<InProcessProxy*>(t->data);
    size_t live = BlockPool::local().live_blocks();
    if (live > self->max_live_blocks_.load()) self->max_live_blocks_.store(live);
  }

  uv_loop_t loop_;
  Config server_cfg_;
  Config local_cfg_;
  std::unique_ptr<Listener> server_;
  std::unique_ptr<Listener> local_;
  uv_async_t stop_;
  uv_timer_t sampler_;
  std::atomic<size_t> max_live_blocks_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("in-process: echo both ways through ss-local and ss-server, every cipher", "[relay]") {
  for (const CipherSpec& spec : classic_ciphers()) {
    DYNAMIC_SECTION(spec.name) {
      TargetServer target(TargetBehavior::echo());
      InProcessProxy proxy(std::string(spec.name));
      {
        auto conn = socks5_connect(proxy.local_port(), AddrType::IPv4, "127.0.0.1", target.port());
        REQUIRE(conn.reply);
        REQUIRE(conn.reply->rep == 0);
        Bytes data = random_bytes(3 << 20);
        auto got = duplex_transfer(conn.socket, data, data.size(), 20000ms, true);
        CHECK(got.received == data.size());
        CHECK(got.received_sha256 == sha256(data));
        CHECK(recv_until_eof(conn.socket, 5000ms).empty());
      }
      target.wait_reports(1);
      CHECK(proxy.finish() == 0);
    }
  }
}

TEST_CASE("in-process: many concurrent sessions close cleanly", "[relay]") {
  TargetServer target(TargetBehavior::echo());
  InProcessProxy proxy("aes-128-gcm");
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    clients.emplace_back([&, i] {
      try {
        auto conn =
            socks5_connect(proxy.local_port(), AddrType::Domain, "localhost", target.port());
        if (!conn.reply || conn.reply->rep != 0) return;
        Bytes data = RandomBytes(static_cast<uint64_t>(i) + 1).take(20000 + i * 100);
        auto got = duplex_transfer(conn.socket, data, data.size(), 20000ms, true);
        if (got.received_sha256 == sha256(data)) ++ok;
      } catch (const NetError&) {
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(ok.load() == 50);
  CHECK(proxy.finish() == 0);
}

TEST_CASE("in-process: a target that never reads holds memory at the high mark", "[relay]") {
  // A raw listener that accepts and never reads.
  Socket listener(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener.fd(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(listener.fd(), 4) == 0);
  socklen_t len = sizeof sa;
  REQUIRE(::getsockname(listener.fd(), reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  uint16_t target_port = ntohs(sa.sin_port);

  InProcessProxy proxy("chacha20-ietf-poly1305");
  auto conn = socks5_connect(proxy.local_port(), AddrType::IPv4, "127.0.0.1", target_port);
  REQUIRE(conn.reply);
  REQUIRE(conn.reply->rep == 0);
  Socket accepted(::accept(listener.fd(), nullptr, nullptr));
  REQUIRE(accepted.valid());

  // Push until nothing more is taken for half a second: every buffer on the path is full.
  int fl = fcntl(conn.socket.fd(), F_GETFL);
  fcntl(conn.socket.fd(), F_SETFL, fl | O_NONBLOCK);
  Bytes chunk = random_bytes(64 * 1024);
  uint64_t pushed = 0;
  auto last_progress = std::chrono::steady_clock::now();
  auto give_up = last_progress + 20s;
  while (std::chrono::steady_clock::now() - last_progress < 500ms &&
         std::chrono::steady_clock::now() < give_up) {
    ssize_t n = ::send(conn.socket.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pushed += static_cast<uint64_t>(n);
      last_progress = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  INFO("bytes taken before the path filled up: " << pushed);
  CHECK(std::chrono::steady_clock::now() < give_up);  // it did stop taking data
  // The proxy's own buffering is bounded: a few blocks per direction, not one per read.
  CHECK(proxy.max_live_blocks() <= 8);
  CHECK(proxy.finish() == 0);
}

TEST_CASE("in-process: ss-server gives a prober no byte and closes after its FIN", "[relay]") {
  InProcessProxy proxy("aes-256-gcm");
  for (size_t n : {0, 1, 49, 50, 51, 221, 1000}) {
    Socket s = connect_tcp("127.0.0.1", proxy.server_port());
    Bytes junk = random_bytes(n);
    if (n > 0) send_all(s, junk);
    // Nothing comes back while the prober keeps the connection open.
    CHECK_FALSE(wait_peer_closed(s, 300ms));
    s.shutdown_write();
    Bytes back = recv_until_eof(s, 5000ms);
    CHECK(back.empty());
  }
  CHECK(proxy.finish() == 0);
}

TEST_CASE(
    "in-process: the same reaction to random bytes of every length 0..221 and around each "
    "cipher's authentication point",
    "[relay]") {
  for (const CipherSpec& spec : classic_ciphers()) {
    DYNAMIC_SECTION(spec.name) {
      InProcessProxy proxy(std::string(spec.name));
      std::vector<size_t> lengths;
      for (size_t n = 0; n <= 221; ++n) lengths.push_back(n);
      const size_t auth_point = spec.salt_len + 2 + spec.tag_len;  // hostile-inputs A1
      for (size_t n : {auth_point - 1, auth_point, auth_point + 1, auth_point + 2 + spec.tag_len}) {
        lengths.push_back(n);
      }
      // All at once, so the whole sweep costs one wait.
      std::vector<Socket> probes;
      for (size_t n : lengths) {
        probes.push_back(connect_tcp("127.0.0.1", proxy.server_port()));
        Bytes junk = random_bytes(n);
        if (n > 0) send_all(probes.back(), junk);
      }
      // No close and no byte while the prober waits, whatever it sent...
      std::this_thread::sleep_for(300ms);
      for (size_t i = 0; i < probes.size(); ++i) {
        INFO("length " << lengths[i]);
        CHECK_FALSE(wait_peer_closed(probes[i], 0ms));
      }
      // ...and a plain FIN, no data, once it closes its side.
      for (Socket& s : probes) s.shutdown_write();
      for (size_t i = 0; i < probes.size(); ++i) {
        INFO("length " << lengths[i]);
        CHECK(recv_until_eof(probes[i], 5000ms).empty());
      }
      probes.clear();
      CHECK(proxy.finish() == 0);
    }
  }
}
