// tun mode's packet loop: read(2) on the TUN device (non-blocking, one packet per read, IFF_NO_PI),
// parse with checksums verified (packet.h; bad ones dropped), then TCP: translate in place and
// write back (tcp_nat.h); UDP: hand the payload, source and destination to the UDP NAT, as
// ss-redir's TPROXY socket does; everything else (ICMP, fragments): dropped.
// Nothing is allocated per packet: one buffer per engine.

#include "client/tun/tun_engine.h"

#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "relay/log.h"

namespace ss {

namespace {

constexpr size_t kBufSize = 65536;
constexpr int kMaxReadsPerWakeup = 256;

void to_sockaddr(const IpEndpoint& e, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (e.ip.len == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(e.port);
    std::memcpy(&sin->sin_addr, e.ip.b, 4);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(e.port);
    std::memcpy(&sin6->sin6_addr, e.ip.b, 16);
  }
}

}  // namespace

TunEngine::TunEngine(uv_loop_t* loop, std::shared_ptr<TunDevice> dev, int queue, UdpNat* udp,
                     std::unique_ptr<UdpInbound> inbound, std::unique_ptr<UdpOutbound> outbound)
    : loop_(loop),
      dev_(std::move(dev)),
      fd_(dev_->queue_fd(queue)),
      udp_(udp),
      queue_(queue),
      buf_(new uint8_t[kBufSize]) {
  if (dev_->dns() != nullptr) dns_buf_.reset(new uint8_t[kBufSize]);
  if (udp_ != nullptr) udp_index_ = udp_->attach(std::move(inbound), std::move(outbound), this);
}

TunEngine::~TunEngine() = default;

int TunEngine::start() {
  int r = uv_poll_init(loop_, &poll_, fd_);
  if (r != 0) return r;
  polling_ = true;
  poll_.data = this;
  TunDns* dns = dev_->dns();
  if (queue_ == 0 && dns != nullptr && !dns->database().empty()) {
    uv_timer_init(loop_, &save_timer_);
    save_timer_.data = this;
    saving_ = true;
    uv_timer_start(&save_timer_, on_save, kSaveIntervalMs, kSaveIntervalMs);
  }
  return uv_poll_start(&poll_, UV_READABLE, on_readable);
}

void TunEngine::on_save(uv_timer_t* t) {
  static_cast<TunEngine*>(t->data)->dev_->dns()->save_database();
}

void TunEngine::shutdown() {
  if (closed_) return;
  closed_ = true;
  if (polling_) uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  if (saving_) {
    dev_->dns()->save_database();  // the last write, at a graceful exit
    uv_close(reinterpret_cast<uv_handle_t*>(&save_timer_), nullptr);
  }
  LOG_DEBUG(
      "tun %s: %llu packets in, %llu TCP, %llu UDP, %llu dropped, %llu write failures, %llu DNS "
      "answers, %llu refused",
      dev_->name().c_str(), static_cast<unsigned long long>(stats_.packets_in),
      static_cast<unsigned long long>(stats_.tcp), static_cast<unsigned long long>(stats_.udp),
      static_cast<unsigned long long>(stats_.dropped),
      static_cast<unsigned long long>(stats_.write_fail),
      static_cast<unsigned long long>(stats_.dns), static_cast<unsigned long long>(stats_.refused));
}

void TunEngine::on_readable(uv_poll_t* p, int status, int events) {
  auto* self = static_cast<TunEngine*>(p->data);
  if (status < 0 || (events & UV_READABLE) == 0 || self->closed_) return;
  const uint64_t now = uv_now(self->loop_);
  for (int i = 0; i < kMaxReadsPerWakeup && !self->closed_; ++i) {
    const ssize_t n = read(self->fd_, self->buf_.get(), kBufSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    if (n == 0) return;
    self->handle(self->buf_.get(), static_cast<size_t>(n), now);
  }
}

void TunEngine::handle(uint8_t* p, size_t n, uint64_t now_ms) {
  ++stats_.packets_in;
  IpPacket pkt;
  if (parse_ip_packet(p, n, pkt, true) != ParseStatus::Ok) {
    ++stats_.dropped;
    return;
  }
  TunDns* dns = dev_->dns();
  if (pkt.protocol == kIpProtoTcp) {
    // A connection to a fake address nobody was given (or given long ago) is refused at once.
    if (dns != nullptr && (pkt.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn &&
        dns->refuses(pkt.dst.ip, TunDns::now_ms())) {
      ++stats_.refused;
      const size_t len = build_tcp_reset(dns_buf_.get(), kBufSize, p, pkt);
      if (len != 0) write_packet({dns_buf_.get(), len});
      return;
    }
    TcpNat* nat = dev_->tcp_nat(pkt.version);
    if (nat == nullptr || !nat->translate(p, pkt, now_ms)) {
      ++stats_.dropped;
      return;
    }
    ++stats_.tcp;
    write_packet({p, pkt.length});
    return;
  }
  if (dns != nullptr && pkt.dst.port == 53) {
    size_t len = 0;
    switch (dns->on_query(p, pkt, dns_buf_.get(), kBufSize, p, kBufSize, &len, TunDns::now_ms())) {
      case TunDns::Verdict::Reply:
        ++stats_.dns;
        write_packet({p, len});
        return;
      case TunDns::Verdict::Drop:
        ++stats_.dropped;
        return;
      case TunDns::Verdict::Relay:
        break;  // through the NAT, which sends it to the resolver (tun_udp_inbound.cpp)
    }
  }
  if (udp_ == nullptr) {
    ++stats_.dropped;
    return;
  }
  ++stats_.udp;
  sockaddr_storage from;
  sockaddr_storage to;
  to_sockaddr(pkt.src, from);
  to_sockaddr(pkt.dst, to);
  udp_->inject(udp_index_, {p + pkt.payload_offset, pkt.payload_len},
               reinterpret_cast<sockaddr*>(&from), reinterpret_cast<sockaddr*>(&to));
}

void TunEngine::write_packet(std::span<const uint8_t> packet) {
  ssize_t w;
  do {
    w = write(fd_, packet.data(), packet.size());
  } while (w < 0 && errno == EINTR);
  if (w != static_cast<ssize_t>(packet.size())) ++stats_.write_fail;  // TCP will retransmit
}

}  // namespace ss
