// HTTPS GET driven by libcurl's multi socket interface on a libuv loop (see https_fetch.h).
//
// curl -> us:  CURLMOPT_SOCKETFUNCTION  watch fd for IN/OUT (a uv_poll_t per fd), or stop
//              CURLMOPT_TIMERFUNCTION   call back in N ms (one uv_timer_t), or never (-1)
// us -> curl:  curl_multi_socket_action(fd, IN|OUT|ERR) when a poll fires, (TIMEOUT) when the
//              timer fires; then curl_multi_info_read() for the finished transfer.
// A transfer never reuses a connection (CURLOPT_FORBID_REUSE): once it ends curl has closed its
// socket, so between fetches only the timer handle is open.

#include "relay/https_fetch.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "relay/version.h"

namespace ss {

struct HttpsFetcher::Socket {
  uv_poll_t poll;
  HttpsFetcher* owner = nullptr;
  curl_socket_t fd = CURL_SOCKET_BAD;
};

struct HttpsFetcher::Transfer {
  CURL* easy = nullptr;
  std::string body;
  size_t max_body = 0;
  bool too_big = false;
  char error[CURL_ERROR_SIZE] = {};
  Done done;
  std::vector<Socket*> sockets;
};

namespace {

CURLM* multi_of(void* p) {
  return static_cast<CURLM*>(p);
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<HttpsFetcher::Transfer*>(user);
  const size_t n = size * count;
  if (t->body.size() + n > t->max_body) {
    t->too_big = true;
    return 0;  // CURLE_WRITE_ERROR: the transfer ends
  }
  t->body.append(data, n);
  return n;
}

void close_socket_handle(HttpsFetcher::Socket* s, uv_close_cb cb) {
  uv_poll_stop(&s->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), cb);
}

}  // namespace

HttpsFetcher::HttpsFetcher(uv_loop_t* loop) : loop_(loop) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURLM* m = curl_multi_init();
  multi_ = m;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &HttpsFetcher::on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &HttpsFetcher::on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, this);
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  ++open_handles_;
}

HttpsFetcher::~HttpsFetcher() {
  // close() ran and its handles are gone (the caller turned the loop); the multi handle is freed
  // by close() already.
}

bool HttpsFetcher::get(const FetchRequest& request, Done done) {
  if (closing_ || transfer_ != nullptr) return false;
  auto* t = new Transfer;
  t->max_body = request.max_body;
  t->done = std::move(done);
  CURL* e = curl_easy_init();
  if (e == nullptr) {
    delete t;
    return false;
  }
  t->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");  // not the environment's proxies
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!request.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, request.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout_ms));
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // what this libcurl decodes; the limit is on
                                                     // the decoded body
  curl_easy_setopt(e, CURLOPT_USERAGENT, "shadowsocks-uv/" SS_VERSION);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  transfer_ = t;
  if (curl_multi_add_handle(multi_of(multi_), e) != CURLM_OK) {
    transfer_ = nullptr;
    curl_easy_cleanup(e);
    delete t;
    return false;
  }
  return true;
}

int HttpsFetcher::on_socket(void*, int fd, int what, void* self, void* socketp) {
  auto* f = static_cast<HttpsFetcher*>(self);
  auto* s = static_cast<Socket*>(socketp);
  if (what == CURL_POLL_REMOVE) {
    if (s != nullptr) {
      curl_multi_assign(multi_of(f->multi_), fd, nullptr);
      if (f->transfer_ != nullptr) {
        auto& v = f->transfer_->sockets;
        v.erase(std::remove(v.begin(), v.end(), s), v.end());
      }
      close_socket_handle(s, on_handle_closed);
    }
    return 0;
  }
  if (f->closing_ || f->transfer_ == nullptr) return -1;
  if (s == nullptr) {
    s = new Socket;
    s->owner = f;
    s->fd = fd;
    if (uv_poll_init_socket(f->loop_, &s->poll, fd) != 0) {
      delete s;
      return -1;
    }
    s->poll.data = s;
    ++f->open_handles_;
    curl_multi_assign(multi_of(f->multi_), fd, s);
    f->transfer_->sockets.push_back(s);
  }
  int events = 0;
  if ((what & CURL_POLL_IN) != 0) events |= UV_READABLE;
  if ((what & CURL_POLL_OUT) != 0) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

int HttpsFetcher::on_timer(void*, long timeout_ms, void* self) {
  auto* f = static_cast<HttpsFetcher*>(self);
  if (f->closing_) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&f->timer_);
  } else {
    uv_timer_start(&f->timer_, on_timeout, static_cast<uint64_t>(timeout_ms), 0);
  }
  return 0;
}

void HttpsFetcher::on_poll(uv_poll_t* poll, int status, int events) {
  auto* s = static_cast<Socket*>(poll->data);
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if ((events & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
    if ((events & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
  }
  s->owner->act(s->fd, flags);
}

void HttpsFetcher::on_timeout(uv_timer_t* timer) {
  static_cast<HttpsFetcher*>(timer->data)->act(CURL_SOCKET_TIMEOUT, 0);
}

void HttpsFetcher::on_handle_closed(uv_handle_t* h) {
  if (h->type == UV_POLL) {
    auto* s = static_cast<Socket*>(h->data);
    --s->owner->open_handles_;
    delete s;
  } else {
    --static_cast<HttpsFetcher*>(h->data)->open_handles_;
  }
}

void HttpsFetcher::act(int fd, int flags) {
  if (closing_) return;
  int running = 0;
  curl_multi_socket_action(multi_of(multi_), fd, flags, &running);
  finish_done();
}

// The finished transfer, if any: its result to its callback.
void HttpsFetcher::finish_done() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_of(multi_), &left)) {
    if (msg->msg != CURLMSG_DONE || transfer_ == nullptr || msg->easy_handle != transfer_->easy) {
      continue;
    }
    const CURLcode rc = msg->data.result;
    Transfer* t = transfer_;
    FetchResult r;
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    r.status = status;
    char* type = nullptr;
    if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) {
      r.content_type = type;
    }
    // The limit is enforced by on_body on the decoded bytes as they arrive, whatever the
    // Content-Length or the compression says.
    if (t->too_big) {
      r.error = "the body is larger than " + std::to_string(t->max_body) + " bytes";
    } else if (rc != CURLE_OK) {
      r.error = t->error[0] != '\0' ? std::string(t->error) : curl_easy_strerror(rc);
    } else if (status != 200) {
      r.error = "HTTP status " + std::to_string(status);
    } else {
      r.ok = true;
      r.body = std::move(t->body);
    }
    end_transfer(std::move(r), true);
    return;
  }
}

void HttpsFetcher::end_transfer(FetchResult result, bool report) {
  Transfer* t = transfer_;
  if (t == nullptr) return;
  curl_multi_remove_handle(multi_of(multi_), t->easy);
  // Sockets curl did not remove itself (on close()): our handles go, curl closes the fds.
  for (Socket* s : t->sockets) {
    curl_multi_assign(multi_of(multi_), s->fd, nullptr);
    close_socket_handle(s, on_handle_closed);
  }
  t->sockets.clear();
  curl_easy_cleanup(t->easy);
  transfer_ = nullptr;
  Done done = std::move(t->done);
  delete t;
  if (report && done) done(std::move(result));
}

void HttpsFetcher::close() {
  if (closing_) return;
  closing_ = true;
  end_transfer({}, false);
  curl_multi_cleanup(multi_of(multi_));
  multi_ = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_handle_closed);
}

}  // namespace ss
