#pragma once
// Datagrams a worker sends during one turn of its loop, queued and sent together at the turn's
// end with sendmmsg(2): one system call per socket and burst instead of one per datagram.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "relay/udp_flow.h"

namespace ss {

class UdpSendBatch {
 public:
  static constexpr size_t kMaxDatagrams = 64;
  // `max_datagram`: the largest datagram pushed. Drops and sent replies are counted in `stats`.
  UdpSendBatch(size_t max_datagram, UdpStats& stats);
  UdpSendBatch(const UdpSendBatch&) = delete;
  UdpSendBatch& operator=(const UdpSendBatch&) = delete;

  // Where the next datagram may be written (at least max_datagram bytes); flushes first if the
  // queue has no room for that much.
  std::span<uint8_t> space();
  // Queues `bytes` for `to` on socket `fd`: in place if they were written at space(), else
  // copied. A reply (to a client) is counted in packets_out once sent.
  void push(int fd, const sockaddr* to, std::span<const uint8_t> bytes, bool reply);
  // The socket `fd` is closing: what is queued for it is dropped.
  void forget(int fd);
  // Sends everything queued; a datagram the kernel refuses (send buffer full...) is dropped and
  // counted in drop_overflow.
  void flush();
  bool empty() const { return count_ == 0; }

 private:
  struct Entry {
    int fd;
    bool reply;
    socklen_t to_len;
    sockaddr_in6 to;  // or a sockaddr_in
    size_t offset;
    size_t len;
  };
  // Datagrams first..first+count-1 of a run that one message carries with UDP_SEGMENT.
  size_t gso_run(size_t first, size_t end) const;

  static constexpr size_t kMaxGsoSegments = 64;  // the kernel's UDP_MAX_SEGMENTS
  static constexpr size_t kMaxGsoBytes = 65000;  // below the largest IPv4 UDP payload
  bool gso_ = true;
  size_t max_datagram_;
  size_t capacity_;
  UdpStats& stats_;
  std::unique_ptr<uint8_t[]> arena_;
  size_t used_ = 0;
  size_t count_ = 0;
  Entry entries_[kMaxDatagrams];
  mmsghdr msgs_[kMaxDatagrams];
  iovec iov_[kMaxDatagrams];
  size_t first_[kMaxDatagrams];     // per message: its first entry
  size_t segments_[kMaxDatagrams];  // per message: how many datagrams it carries
  alignas(cmsghdr) char control_[kMaxDatagrams][CMSG_SPACE(sizeof(uint16_t))];
};

}  // namespace ss
