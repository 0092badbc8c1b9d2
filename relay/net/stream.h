#pragma once
// A byte stream a connection relays over: read start/stop delivering pooled blocks, writes of
// pooled blocks with a completion, shutdown (FIN), close with a completion, and the few queries a
// connection needs (bytes queued, a pending error, the addresses). A TCP socket implements it
// today (relay/net/tcp_stream.h); nothing here names a libuv handle, so a TUN flow can too.
//
// Every event goes to one StreamHandler with the small context number the owner gave the stream
// (a connection's side), so no callback object is made per stream or per chunk.

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "relay/buffer_pool.h"

namespace ss {

class StreamHandler {
 public:
  // How many bytes the next read may take (1 to kReadSize): a relay sizes each read to the room
  // its sink has left under the high mark, so no read lands above it. By default a whole read.
  virtual size_t read_size(uint8_t /*ctx*/) { return kReadSize; }
  // `n` (> 0) bytes were read into `block->data`. Return true to keep the block (the handler then
  // releases or forwards it); false and the stream gives it back to the pool.
  virtual bool on_stream_read(uint8_t ctx, Block* block, size_t n) = 0;
  // Reading ended: `err` is UV_EOF for the peer's FIN, another negative libuv code for an error.
  virtual void on_stream_end(uint8_t ctx, int err) = 0;
  // A write that was queued (Stream::write returned 0 and did not finish at once) completed;
  // `status` is 0, an error, or UV_ECANCELED when the stream is closing.
  virtual void on_stream_written(uint8_t ctx, int status) = 0;
  // Stream::shutdown() completed (UV_ECANCELED when the stream is closing).
  virtual void on_stream_shutdown(uint8_t ctx, int status) = 0;
  // A connect (TcpStream::connect) completed (UV_ECANCELED when the stream is closing).
  virtual void on_stream_connected(uint8_t ctx, int status) = 0;
  // The stream is closed for good: the last event it delivers. Its memory may go after this.
  virtual void on_stream_closed(uint8_t ctx) = 0;

 protected:
  ~StreamHandler() = default;
};

class Stream {
 public:
  virtual ~Stream() = default;

  // Starts delivering reads (on_stream_read / on_stream_end); 0 or a negative libuv code.
  virtual int read_start() = 0;
  virtual void read_stop() = 0;
  // Takes `b` (b->len bytes) in every case. Returns 0 if written at once or queued (a queued
  // write completes with on_stream_written), or a negative libuv code (the block is released).
  virtual int write(Block* b) = 0;
  // Bytes handed to write() and not yet written.
  virtual size_t queued() const = 0;
  // The queue has waited a while (its sink is slow): gives the pages of queued blocks that are
  // already written back to the OS. Cheap to call again (pages already given back are skipped).
  virtual void trim() {}
  // Sends a FIN once the queued writes are written; completes with on_stream_shutdown. 0 or a
  // negative libuv code (then no completion comes).
  virtual int shutdown() = 0;
  // True once the stream is open (it must be closed) and until close() is called.
  virtual bool is_open() const = 0;
  // Closes the stream if it is open; on_stream_closed follows. With `reset` the peer gets a reset
  // (SO_LINGER 0) instead of a FIN where the stream allows it.
  virtual void close(bool reset) = 0;
  // A pending error on a stream that is not being read (its reader stopped for backpressure), or
  // 0: how a reset is noticed on a side nobody reads.
  virtual int pending_error() const = 0;
  // The two ends' addresses; false if unknown.
  virtual bool peer_address(sockaddr_storage& out) const = 0;
  virtual bool local_address(sockaddr_storage& out) const = 0;

  // The peer's address as text ("?" if unknown), for logs.
  std::string peer_text() const;
};

}  // namespace ss
