// A worker's queue of outgoing datagrams, sent with sendmmsg(2) (Linux): consecutive datagrams for
// the same socket go in one call; the call returns how many it sent, and the first one it did not
// send failed (its error is that of sendmsg(2)), so that one is dropped and the rest sent on.
// Datagrams are written into one arena per worker; nothing is allocated per datagram.

#include "relay/udp_batch.h"

#include <netinet/udp.h>

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
    // One message per datagram, or per run of datagrams that UDP GSO can send as one.
    size_t nmsg = 0;
    for (size_t k = i; k < end;) {
      const size_t run = gso_ ? gso_run(k, end) : 1;
      const Entry& e = entries_[k];
      size_t bytes = 0;
      for (size_t j = k; j < k + run; ++j) bytes += entries_[j].len;
      iov_[nmsg].iov_base = arena_.get() + e.offset;
      iov_[nmsg].iov_len = bytes;
      msghdr& h = msgs_[nmsg].msg_hdr;
      h = msghdr{};
      h.msg_name = const_cast<sockaddr_in6*>(&e.to);
      h.msg_namelen = e.to_len;
      h.msg_iov = &iov_[nmsg];
      h.msg_iovlen = 1;
      if (run > 1) {
        h.msg_control = control_[nmsg];
        h.msg_controllen = sizeof control_[nmsg];
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const auto seg = static_cast<uint16_t>(e.len);
        std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
      }
      first_[nmsg] = k;
      segments_[nmsg] = run;
      ++nmsg;
      k += run;
    }
    size_t done = 0;
    while (done < nmsg) {
      const int r = sendmmsg(fd, msgs_ + done, static_cast<unsigned>(nmsg - done), MSG_DONTWAIT);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
        for (size_t m = done; m < nmsg; ++m) stats_.drop_overflow += segments_[m];
        break;  // the send buffer is full: the rest would fail too
      }
      const size_t sent = r < 0 ? 0 : static_cast<size_t>(r);
      for (size_t m = done; m < done + sent; ++m) {
        for (size_t j = first_[m]; j < first_[m] + segments_[m]; ++j) {
          if (entries_[j].reply) ++stats_.packets_out;
        }
      }
      done += sent;
      if (done < nmsg) {
        // The first one not sent failed. A kernel or device without UDP GSO (EIO, EINVAL):
        // sent one by one from now on.
        if (segments_[done] > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
          gso_ = false;
        }
        stats_.drop_overflow += segments_[done];
        ++done;
      }
    }
    i = end;
  }
  count_ = 0;
  used_ = 0;
}

size_t UdpSendBatch::gso_run(size_t k, size_t end) const {
  const Entry& e = entries_[k];
  if (e.len == 0) return 1;
  size_t run = 1;
  size_t bytes = e.len;
  while (k + run < end && run < kMaxGsoSegments) {
    const Entry& n = entries_[k + run];
    const Entry& prev = entries_[k + run - 1];
    // Same size as the first (the last may be shorter), contiguous, to the same address.
    if (prev.len != e.len || n.len == 0 || n.len > e.len || n.offset != prev.offset + prev.len ||
        bytes + n.len > kMaxGsoBytes || n.to_len != e.to_len ||
        std::memcmp(&n.to, &e.to, e.to_len) != 0) {
      break;
    }
    bytes += n.len;
    ++run;
  }
  return run;
}

}  // namespace ss
