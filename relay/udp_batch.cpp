// A worker's queue of outgoing datagrams, sent with sendmmsg(2) (Linux): consecutive datagrams for
// the same socket go in one call; the call returns how many it sent, and the first one it did not
// send failed (its error is that of sendmsg(2)), so that one is dropped and the rest sent on.
// Datagrams are written into one arena per worker; nothing is allocated per datagram.

#include "relay/udp_batch.h"

#include <cerrno>
#include <cstring>

namespace ss {
namespace {

// Room for a burst of typical datagrams (1,500 bytes or less) besides one of the largest size.
constexpr size_t kTypicalBytes = UdpSendBatch::kMaxDatagrams * 1536;

}  // namespace

UdpSendBatch::UdpSendBatch(size_t max_datagram, UdpStats& stats)
    : max_datagram_(max_datagram),
      capacity_(max_datagram + kTypicalBytes),
      stats_(stats),
      arena_(new uint8_t[capacity_]) {}

std::span<uint8_t> UdpSendBatch::space() {
  if (count_ == kMaxDatagrams || capacity_ - used_ < max_datagram_) flush();
  return {arena_.get() + used_, capacity_ - used_};
}

void UdpSendBatch::push(int fd, const sockaddr* to, std::span<const uint8_t> bytes, bool reply) {
  if (bytes.size() > max_datagram_) {
    ++stats_.drop_overflow;
    return;
  }
  uint8_t* at = arena_.get() + used_;
  if (bytes.data() != at) {
    // Not written in place: copy it (space() flushes if it must).
    at = space().data();
    if (!bytes.empty()) std::memmove(at, bytes.data(), bytes.size());
  } else if (count_ == kMaxDatagrams) {
    ++stats_.drop_overflow;  // written at space(), which left room for one more: not reached
    return;
  }
  Entry& e = entries_[count_++];
  e.fd = fd;
  e.reply = reply;
  e.to_len = to->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  std::memcpy(&e.to, to, e.to_len);
  e.offset = static_cast<size_t>(at - arena_.get());
  e.len = bytes.size();
  used_ = e.offset + e.len;
}

void UdpSendBatch::forget(int fd) {
  for (size_t i = 0; i < count_; ++i) {
    if (entries_[i].fd == fd) entries_[i].fd = -1;
  }
}

void UdpSendBatch::flush() {
  size_t i = 0;
  while (i < count_) {
    const int fd = entries_[i].fd;
    size_t end = i;
    while (end < count_ && entries_[end].fd == fd) ++end;
    if (fd < 0) {
      i = end;  // its socket closed
      continue;
    }
    const size_t n = end - i;
    for (size_t k = 0; k < n; ++k) {
      Entry& e = entries_[i + k];
      iov_[k].iov_base = arena_.get() + e.offset;
      iov_[k].iov_len = e.len;
      msghdr& h = msgs_[k].msg_hdr;
      h = msghdr{};
      h.msg_name = &e.to;
      h.msg_namelen = e.to_len;
      h.msg_iov = &iov_[k];
      h.msg_iovlen = 1;
    }
    size_t done = 0;
    while (done < n) {
      const int r = sendmmsg(fd, msgs_ + done, static_cast<unsigned>(n - done), MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
        stats_.drop_overflow += n - done;  // the send buffer is full: the rest would fail too
        break;
      }
      const size_t sent = r < 0 ? 0 : static_cast<size_t>(r);
      for (size_t k = done; k < done + sent; ++k) {
        if (entries_[i + k].reply) ++stats_.packets_out;
      }
      done += sent;
      if (done < n) {
        ++stats_.drop_overflow;  // the first one not sent failed
        ++done;
      }
    }
    i = end;
  }
  count_ = 0;
  used_ = 0;
}

}  // namespace ss
