// Stream over uv_tcp_t (see tcp_stream.h). Each read lands in a pooled block (no allocation per
// chunk once the pool is warm), sized by the handler (the room its pump allows); a write is tried
// at once with uv_try_write when nothing is queued, and what is left goes to uv_write with the
// block's own request; the blocks queued are listed (oldest first) so that trim(), called when
// the sink stays throttled, can give the pages already written back to the OS (not on every
// partial write: that was an madvise per write to a socket whose buffer was full). A reset-on-close
// is uv_tcp_close_reset (SO_LINGER 0), which libuv refuses while a shutdown is in progress: that
// stream then ends with a FIN.
//
// Reading stops lazily. libuv forgets an epoll registration when reading stops (uv_read_stop
// makes no system call but marks the descriptor unwatched), so a stop followed by a start costs a
// failing EPOLL_CTL_ADD (EEXIST) and an EPOLL_CTL_MOD. So read_stop() only marks the stream
// stopped while libuv keeps watching it: a read_start() before anything arrives just clears the
// mark (no system call at all), and if bytes or an end arrive first, the allocation callback
// hands libuv no buffer, and the UV_ENOBUFS read that libuv reports for it stops libuv's reading
// for real (the bytes stay in the kernel). A connecting stream is read this way from the
// start (marked stopped), so the descriptor's one registration covers the connect's EPOLLOUT and
// the reading that follows it.

#include "relay/net/tcp_stream.h"

#include "relay/net/socket_mark.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>

namespace ss {

int TcpStream::init(uv_loop_t* loop, int family) {
  const int r = uv_tcp_init_ex(loop, &tcp_, static_cast<unsigned>(family));
  if (r != 0) return r;
  tcp_.data = this;
  inited_ = true;
  uv_reading_ = stop_pending_ = false;
  queue_head_ = queue_tail_ = nullptr;
  return 0;
}

int TcpStream::accept(uv_stream_t* server) {
  return uv_accept(server, stream());
}

void TcpStream::set_fast_open_connect() {
  uv_os_fd_t fd;
  int one = 1;
  if (uv_fileno(handle(), &fd) == 0) {
    setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof one);
  }
}

void TcpStream::set_mark(uint32_t mark) {
  uv_os_fd_t fd;
  if (mark != 0 && uv_fileno(handle(), &fd) == 0) set_socket_mark(fd, mark);
}

void TcpStream::bind(const sockaddr* local) {
  uv_tcp_bind(&tcp_, local, 0);
}

int TcpStream::connect(const sockaddr* sa) {
  connect_req_.data = this;
  const int r = uv_tcp_connect(&connect_req_, &tcp_, sa, on_connect);
  // libuv completes the connect before it reads (it handles a pending connect first on any event),
  // so nothing is read before on_stream_connected, which starts reading or leaves it stopped.
  if (r == 0 && uv_read_start(stream(), on_alloc, on_read) == 0) {
    uv_reading_ = true;
    stop_pending_ = true;
  }
  return r;
}

void TcpStream::set_nodelay(bool on) {
  uv_tcp_nodelay(&tcp_, on ? 1 : 0);
}

bool TcpStream::original_dst(bool ipv6, sockaddr_storage& out) const {
  // Linux's SO_ORIGINAL_DST at SOL_IP for an IPv4 connection, IP6T_SO_ORIGINAL_DST (the same
  // number) at SOL_IPV6 for an IPv6 one. The family is the connection's, not the socket's: an
  // IPv4 connection on a dual-stack IPv6 socket has an IPv4 conntrack entry, which SOL_IP finds
  // (the kernel passes SOL_IP on an IPv6 socket to IPv4's handler), while SOL_IPV6 would look for
  // an IPv6 one and fail.
  constexpr int kSoOriginalDst = 80;
  uv_os_fd_t fd;
  if (!inited_ || uv_fileno(handle(), &fd) != 0) return false;
  socklen_t len = sizeof out;
  return getsockopt(fd, ipv6 ? SOL_IPV6 : SOL_IP, kSoOriginalDst, &out, &len) == 0;
}

// ---- reading ----------------------------------------------------------------------------------

int TcpStream::read_start() {
  if (uv_reading_) {
    stop_pending_ = false;
    return 0;
  }
  const int r = uv_read_start(stream(), on_alloc, on_read);
  uv_reading_ = r == 0;
  return r;
}

void TcpStream::read_stop() {
  if (uv_reading_) stop_pending_ = true;
}

void TcpStream::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<TcpStream*>(h->data);
  if (self->stop_pending_) {
    // Something arrived while stopped: no buffer (on_read stops for real); the bytes wait in
    // the kernel.
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  const size_t n = std::clamp<size_t>(self->handler_->read_size(self->ctx_), 1, kReadSize);
  Block* b = BlockPool::local().acquire();
  *buf = uv_buf_init(reinterpret_cast<char*>(b->data), static_cast<unsigned>(n));
}

void TcpStream::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpStream*>(s->data);
  if (nread == UV_ENOBUFS) {
    // on_alloc gave no buffer (libuv clears its callbacks on a stop: never stop inside on_alloc).
    uv_read_stop(s);
    self->uv_reading_ = self->stop_pending_ = false;
    return;
  }
  Block* block = buf->base != nullptr ? block_from_base(buf->base) : nullptr;
  if (nread < 0) self->uv_reading_ = self->stop_pending_ = false;  // libuv stopped reading
  if (nread > 0) {
    if (self->handler_->on_stream_read(self->ctx_, block, static_cast<size_t>(nread))) return;
  } else if (nread < 0) {
    self->handler_->on_stream_end(self->ctx_, static_cast<int>(nread));
  }
  BlockPool::local().release(block);
}

// ---- writing ----------------------------------------------------------------------------------

int TcpStream::write(Block* b) {
  b->off = 0;
  if (queued_ == 0) {
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(b->data), b->len);
    const int r = uv_try_write(stream(), &buf, 1);
    if (r == static_cast<int>(b->len)) {
      BlockPool::local().release(b);
      return 0;
    }
    if (r >= 0) {
      b->off = static_cast<uint32_t>(r);
    } else if (r != UV_EAGAIN) {
      BlockPool::local().release(b);
      return r;
    }
  }
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(b->data + b->off), b->len - b->off);
  b->req.data = this;
  const int r = uv_write(&b->req, stream(), &buf, 1, on_write);
  if (r != 0) {
    BlockPool::local().release(b);
    return r;
  }
  queued_ += b->len - b->off;
  b->next = nullptr;
  if (queue_tail_ != nullptr) {
    queue_tail_->next = b;
  } else {
    queue_head_ = b;
  }
  queue_tail_ = b;
  return 0;
}

void TcpStream::on_write(uv_write_t* req, int status) {
  Block* b = reinterpret_cast<Block*>(req);  // req is the first member
  auto* self = static_cast<TcpStream*>(req->data);
  self->queued_ -= b->len - b->off;
  // Completions come in the order of the writes: this is the head.
  self->queue_head_ = b->next;
  if (self->queue_head_ == nullptr) self->queue_tail_ = nullptr;
  BlockPool::local().release(b);
  self->handler_->on_stream_written(self->ctx_, status);
}

void TcpStream::trim() {
  BlockPool& pool = BlockPool::local();
  for (Block* b = queue_head_; b != nullptr; b = b->next) {
    size_t written = b->off;
    // libuv advances the oldest request's buffer as the socket takes its bytes.
    if (b == queue_head_ && b->req.write_index == 0 && b->req.bufs != nullptr) {
      written = static_cast<size_t>(reinterpret_cast<uint8_t*>(b->req.bufs[0].base) - b->data);
    }
    pool.drop_written(b, written);
  }
}

int TcpStream::shutdown() {
  shutdown_req_.data = this;
  return uv_shutdown(&shutdown_req_, stream(), on_shutdown);
}

void TcpStream::on_shutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<TcpStream*>(req->data);
  self->handler_->on_stream_shutdown(self->ctx_, status);
}

void TcpStream::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<TcpStream*>(req->data);
  self->handler_->on_stream_connected(self->ctx_, status);
}

// ---- closing ----------------------------------------------------------------------------------

bool TcpStream::is_open() const {
  return inited_ && !uv_is_closing(handle());
}

void TcpStream::close(bool reset) {
  if (!is_open()) return;
  if (reset && uv_tcp_close_reset(&tcp_, on_closed) == 0) return;
  uv_close(handle(), on_closed);
}

void TcpStream::on_closed(uv_handle_t* h) {
  auto* self = static_cast<TcpStream*>(h->data);
  self->handler_->on_stream_closed(self->ctx_);
}

// ---- queries ----------------------------------------------------------------------------------

int TcpStream::pending_error() const {
  int so_error = 0;
  socklen_t len = sizeof so_error;
  uv_os_fd_t fd;
  if (!inited_ || uv_fileno(handle(), &fd) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error == 0) {
    return 0;
  }
  return uv_translate_sys_error(so_error);
}

bool TcpStream::peer_address(sockaddr_storage& out) const {
  int len = sizeof out;
  return inited_ && uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&out), &len) == 0;
}

bool TcpStream::local_address(sockaddr_storage& out) const {
  int len = sizeof out;
  return inited_ && uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&out), &len) == 0;
}

}  // namespace ss
