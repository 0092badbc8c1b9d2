#pragma once
// HTTPS GET on a libuv loop through libcurl's multi socket interface: curl says which sockets to
// watch (CURLMOPT_SOCKETFUNCTION, one uv_poll_t each) and when to call it back
// (CURLMOPT_TIMERFUNCTION, one uv_timer_t); no thread of ours blocks. Certificates are verified
// (the system store, or a CA file); only https:// is spoken, redirects are not followed, proxies
// from the environment are not used, and the body is cut off at a size limit.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace ss {

struct FetchRequest {
  std::string url;
  std::string ca_file;  // PEM file of CA certificates to trust; empty: the system store
  size_t max_body = 1 << 20;
  uint64_t timeout_ms = 30'000;  // the whole transfer (shadowsocks-rust's 30 s)
  uint64_t connect_timeout_ms = 10'000;
};

struct FetchResult {
  bool ok = false;    // a 200 answer with its whole body, within the limits
  long status = 0;    // HTTP status, 0 if none came
  std::string body;   // ok: the body
  std::string error;  // !ok: one line ("HTTP status 404", "SSL peer certificate ...")
  std::string content_type;
};

class HttpsFetcher {
 public:
  using Done = std::function<void(FetchResult)>;

  explicit HttpsFetcher(uv_loop_t* loop);
  // close() must have run and the loop turned until every handle closed (closed() is true).
  ~HttpsFetcher();
  HttpsFetcher(const HttpsFetcher&) = delete;
  HttpsFetcher& operator=(const HttpsFetcher&) = delete;

  // Starts a GET; `done` runs later on the loop, once (not after close()). One transfer at a
  // time: false if one is running, or curl cannot start it.
  bool get(const FetchRequest& request, Done done);
  bool busy() const { return transfer_ != nullptr; }
  // Cancels the transfer (its callback never runs) and closes every handle. Idempotent.
  void close();
  bool closed() const { return closing_ && open_handles_ == 0; }

  struct Socket;
  struct Transfer;

 private:
  static int on_socket(void* easy, int fd, int what, void* self, void* socketp);
  static int on_timer(void* multi, long timeout_ms, void* self);
  static void on_poll(uv_poll_t* poll, int status, int events);
  static void on_timeout(uv_timer_t* timer);
  static void on_handle_closed(uv_handle_t* h);
  void act(int fd, int flags);
  void finish_done();
  void end_transfer(FetchResult result, bool report);

  uv_loop_t* loop_;
  void* multi_ = nullptr;  // CURLM*
  uv_timer_t timer_;
  Transfer* transfer_ = nullptr;
  int open_handles_ = 0;
  bool closing_ = false;
};

}  // namespace ss
