// The SIP008 refresh loop (see online_config.h):
//
//   start --(update_interval)--> fetch --(HTTP 200, document valid, servers differ)--> changed()
//                                  |--(same servers)--> nothing
//                                  '--(error, bad document)--> one warning, old list kept
//   and the timer fires again update_interval after each fetch ends.

#include "relay/online_config.h"

#include <algorithm>
#include <utility>

#include "relay/log.h"

namespace ss {

std::string url_for_log(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "(URL)";
  size_t end = url.find_first_of("/?#", scheme + 3);
  std::string host = url.substr(0, end);
  const size_t at = host.find('@', scheme + 3);  // never credentials
  if (at != std::string::npos) host = host.substr(0, scheme + 3) + host.substr(at + 1);
  return host + (end == std::string::npos ? "" : "/...");
}

OnlineConfig::OnlineConfig(uv_loop_t* loop, OnlineConfigSpec spec, Role role)
    : loop_(loop), spec_(std::move(spec)), role_(role), fetcher_(loop) {}

OnlineConfig::~OnlineConfig() = default;

namespace {

FetchRequest request_of(const OnlineConfigSpec& spec) {
  FetchRequest r;
  r.url = spec.url;
  r.ca_file = spec.ca_file;
  r.max_body = kMaxSip008Size;
  return r;
}

// The servers of a fetch's answer, or nullopt with the reason.
std::optional<std::vector<ServerSpec>> servers_of(const FetchResult& r, Role role,
                                                  std::string* error) {
  if (!r.ok) {
    *error = r.error;
    return std::nullopt;
  }
  std::optional<Sip008Document> doc = parse_sip008(r.body, role, error);
  if (!doc) {
    *error = "invalid SIP008 document: " + *error;
    return std::nullopt;
  }
  if (r.content_type.rfind("application/json", 0) != 0) {
    LOG_INFO("online_config: Content-Type is \"%s\", not application/json (SIP008); used anyway",
             r.content_type.substr(0, 80).c_str());
  }
  return std::move(doc->servers);
}

}  // namespace

std::optional<std::vector<ServerSpec>> OnlineConfig::fetch_now(std::string* error) {
  bool done = false;
  FetchResult result;
  if (!fetcher_.get(request_of(spec_), [&](FetchResult r) {
        result = std::move(r);
        done = true;
      })) {
    *error = "cannot start the fetch";
    return std::nullopt;
  }
  while (!done && uv_run(loop_, UV_RUN_ONCE) != 0) {
  }
  if (!done) {
    *error = "the fetch did not finish";
    return std::nullopt;
  }
  return servers_of(result, role_, error);
}

void OnlineConfig::start(std::vector<ServerSpec> current, Changed changed) {
  current_ = std::move(current);
  changed_ = std::move(changed);
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  uv_timer_start(timer_, on_timer, next_fetch_ms(), 0);
}

void OnlineConfig::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
  fetcher_.close();
}

uint64_t OnlineConfig::next_fetch_ms() const {
  const uint64_t ms = spec_.update_interval_s * 1000;
  // No fetch has succeeded yet (the first one failed at start): try again within a minute.
  return current_.empty() ? std::min<uint64_t>(ms, kFirstRetryMs) : ms;
}

void OnlineConfig::on_timer(uv_timer_t* t) {
  static_cast<OnlineConfig*>(t->data)->fetch();
}

void OnlineConfig::fetch() {
  if (stopped_) return;
  if (!fetcher_.get(request_of(spec_), [this](FetchResult r) { fetched(std::move(r)); })) {
    LOG_WARN("online_config: cannot start a fetch of %s; keeping the servers in use (%zu from it)",
             url_for_log(spec_.url).c_str(), current_.size());
    uv_timer_start(timer_, on_timer, next_fetch_ms(), 0);
  }
}

void OnlineConfig::fetched(FetchResult r) {
  if (stopped_) return;
  std::string error;
  std::optional<std::vector<ServerSpec>> servers = servers_of(r, role_, &error);
  uv_timer_start(timer_, on_timer, servers ? spec_.update_interval_s * 1000 : next_fetch_ms(), 0);
  if (!servers) {
    LOG_WARN("online_config: fetch of %s failed: %s; keeping the servers in use (%zu from it)",
             url_for_log(spec_.url).c_str(), error.c_str(), current_.size());
    return;
  }
  auto contains = [](const std::vector<ServerSpec>& list, const ServerSpec& s) {
    return std::any_of(list.begin(), list.end(),
                       [&](const ServerSpec& x) { return same_server(x, s); });
  };
  std::string added;
  std::string removed;
  for (const ServerSpec& s : *servers) {
    if (!contains(current_, s)) added += (added.empty() ? "" : ", ") + describe_server(s);
  }
  for (const ServerSpec& s : current_) {
    if (!contains(*servers, s)) removed += (removed.empty() ? "" : ", ") + describe_server(s);
  }
  if (added.empty() && removed.empty() && servers->size() == current_.size()) {
    LOG_DEBUG("online_config: %s lists the same %zu servers", url_for_log(spec_.url).c_str(),
              current_.size());
    return;
  }
  if (changed_ && !changed_(*servers)) return;
  LOG_NOTICE("online_config: %zu server%s from %s (added: %s; removed: %s)", servers->size(),
             servers->size() == 1 ? "" : "s", url_for_log(spec_.url).c_str(),
             added.empty() ? "none" : added.c_str(), removed.empty() ? "none" : removed.c_str());
  current_ = std::move(*servers);
}

}  // namespace ss
