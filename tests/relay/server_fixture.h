#pragma once
// ss-server alone on a libuv loop running in a background thread, for in-process tests that talk
// to it over loopback. finish() shuts it down and returns uv_loop_close()'s result (0 = no handle
// leaked).

#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "crypto/kdf.h"
#include "crypto/tcp_cipher.h"
#include "relay/listener.h"
#include "server/inbound_ss.h"

namespace ss::test {

// A classic-cipher ss-server config for loopback tests (password-derived key, 5 s timeout).
inline Config server_config(const CipherSpec& spec, const char* password,
                            bool allow_private_targets) {
  Config cfg;
  cfg.role = Role::Server;
  cfg.method = std::string(spec.name);
  cfg.cipher = &spec;
  cfg.key = derive_master_key(password, spec.key_len);
  cfg.server = {"127.0.0.1"};
  cfg.timeout = 5;
  cfg.allow_private_targets = allow_private_targets;
  return cfg;
}

class LoopServer {
 public:
  // `suite`: the sessions' cipher states; by default made from the config.
  explicit LoopServer(Config cfg, std::shared_ptr<const TcpCipherSuite> suite = nullptr)
      : cfg_(std::move(cfg)) {
    REQUIRE(uv_loop_init(&loop_) == 0);
    listener_ = std::make_unique<Listener>(
        &loop_, cfg_, [](Listener& l) { return std::make_unique<ShadowsocksInbound>(l.suite()); },
        std::move(suite));
    REQUIRE(listener_->listen("127.0.0.1", 0) == 0);
    stop_.data = this;
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      static_cast<LoopServer*>(a->data)->listener_->shutdown();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~LoopServer() {
    if (thread_.joinable()) finish();
  }
  LoopServer(const LoopServer&) = delete;
  LoopServer& operator=(const LoopServer&) = delete;

  int finish() {
    uv_async_send(&stop_);
    thread_.join();
    listener_.reset();
    return uv_loop_close(&loop_);
  }
  uint16_t port() const { return listener_->port(); }
  const Config& config() const { return cfg_; }

 private:
  Config cfg_;
  uv_loop_t loop_;
  std::unique_ptr<Listener> listener_;
  uv_async_t stop_;
  std::thread thread_;
};

}  // namespace ss::test
