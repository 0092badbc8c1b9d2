#pragma once
// ss-server alone on a libuv loop running in a background thread, for in-process tests that talk
// to it over loopback. finish() shuts it down and returns uv_loop_close()'s result (0 = no handle
// leaked).

#include <catch2/catch.hpp>
#include <future>
#include <memory>
#include <thread>

#include "crypto/kdf.h"
#include "crypto/tcp_cipher.h"
#include "relay/net/listener.h"
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
    std::shared_ptr<const Runtime> runtime = make_runtime(cfg_);
    REQUIRE(runtime);
    if (suite) {
      auto custom = std::make_shared<Runtime>(*runtime);
      custom->inbound_suites = {std::move(suite)};
      runtime = std::move(custom);
    }
    listener_ = std::make_unique<Listener>(&loop_, std::move(runtime), [](Listener& l) {
      return std::make_unique<ShadowsocksInbound>(l.suite());
    });
    runtime_ = listener_->runtime();
    REQUIRE(listener_->listen("127.0.0.1", 0) == 0);
    stop_.data = this;
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<LoopServer*>(a->data);
      self->listener_->shutdown();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&self->swap_), nullptr);
    });
    swap_.data = this;
    uv_async_init(&loop_, &swap_, [](uv_async_t* a) {
      auto* self = static_cast<LoopServer*>(a->data);
      self->listener_->set_runtime(std::move(self->pending_));
      self->swapped_->set_value();
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
  // The snapshot the listener was made with.
  std::weak_ptr<const Runtime> first_runtime() const { return runtime_; }
  // Gives the listener a new snapshot, on its loop thread; returns once it is in place.
  void set_runtime(std::shared_ptr<const Runtime> runtime) {
    std::promise<void> done;
    pending_ = std::move(runtime);
    swapped_ = &done;
    uv_async_send(&swap_);
    done.get_future().wait();
  }

 private:
  Config cfg_;
  uv_loop_t loop_;
  std::unique_ptr<Listener> listener_;
  uv_async_t stop_;
  uv_async_t swap_;
  std::shared_ptr<const Runtime> pending_;
  std::promise<void>* swapped_ = nullptr;
  std::weak_ptr<const Runtime> runtime_;
  std::thread thread_;
};

}  // namespace ss::test
