#pragma once
// shadowsocks-rust's "online_config" (SIP008): the client's server list fetched over HTTPS, at
// start and every update_interval, on the main loop (relay/https_fetch.h).
//
// - A fetch that fails (network, TLS, HTTP status, size) or whose document does not validate
//   (relay/sip008.h) keeps the servers in use, and logs one warning. Until a fetch has succeeded
//   (the first one failed at start) the next comes within a minute, then every update_interval.
// - A valid document whose servers differ from those in use is handed to the caller (who builds
//   and publishes a new snapshot); what was added and removed is logged. One that lists the same
//   servers changes nothing.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "relay/config.h"
#include "relay/https_fetch.h"
#include "relay/sip008.h"

namespace ss {

// The URL for logs: scheme and host only (SIP008 URLs carry a secret in their path or query).
std::string url_for_log(const std::string& url);

class OnlineConfig {
 public:
  // Called with the new list of fetched servers (not the configured ones). False: not applied
  // (the caller logged why); the list in use stays the one compared against.
  using Changed = std::function<bool(const std::vector<ServerSpec>& servers)>;

  OnlineConfig(uv_loop_t* loop, OnlineConfigSpec spec, Role role);
  ~OnlineConfig();

  // The first fetch, before the workers run: turns `loop` until it ends (at most the fetch's
  // timeout) and returns its servers, or nullopt with the reason in *error.
  std::optional<std::vector<ServerSpec>> fetch_now(std::string* error);
  // From now on a fetch every update_interval; `current` are the fetched servers in use (from
  // fetch_now, or none).
  void start(std::vector<ServerSpec> current, Changed changed);
  // Stops refreshing and closes every handle (the loop then ends them). Idempotent.
  void stop();

  const std::vector<ServerSpec>& current() const { return current_; }

 private:
  static constexpr uint64_t kFirstRetryMs = 60'000;
  // When the next fetch comes: update_interval, or sooner while no fetch has succeeded.
  uint64_t next_fetch_ms() const;
  static void on_timer(uv_timer_t* t);
  void fetch();
  void fetched(FetchResult r);

  uv_loop_t* loop_;
  OnlineConfigSpec spec_;
  Role role_;
  HttpsFetcher fetcher_;
  uv_timer_t* timer_ = nullptr;  // owned; freed by its close callback
  std::vector<ServerSpec> current_;
  Changed changed_;
  bool stopped_ = false;
};

}  // namespace ss
