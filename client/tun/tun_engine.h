#pragma once
// The packet side of tun mode, on one worker's loop: reads IP packets from the TUN device, turns
// TCP around through the kernel-terminated NAT (tcp_nat.h) and hands UDP to the worker's UDP NAT
// (relay/udp_nat.h), whose replies come back here as whole packets to write.

#include <uv.h>

#include <cstdint>
#include <memory>

#include "client/tun/tun_device.h"
#include "relay/udp_nat.h"

namespace ss {

struct TunStats {
  uint64_t packets_in = 0;
  uint64_t tcp = 0;         // TCP packets translated and written back
  uint64_t udp = 0;         // UDP datagrams handed to the NAT
  uint64_t dropped = 0;     // malformed, bad checksum, fragment, other protocol, no NAT entry
  uint64_t write_fail = 0;  // the device refused a packet
  uint64_t dns = 0;         // DNS queries answered here (fake mode)
  uint64_t refused = 0;     // TCP SYNs to a fake address with no live entry, answered by RST
};

class TunEngine final : public PacketSink {
 public:
  static constexpr uint64_t kSaveIntervalMs = 60'000;  // the fake table's file, when it changed
  // Reads and writes the device's queue `queue`. udp: the worker's UDP NAT, or null (tcp_only:
  // UDP packets are dropped).
  TunEngine(uv_loop_t* loop, std::shared_ptr<TunDevice> dev, int queue, UdpNat* udp,
            std::unique_ptr<UdpInbound> inbound, std::unique_ptr<UdpOutbound> outbound);
  ~TunEngine() override;
  TunEngine(const TunEngine&) = delete;
  TunEngine& operator=(const TunEngine&) = delete;

  // Starts reading the device. 0 or a libuv error.
  int start();
  // Stops reading; the poll handle closes with the loop's next turn.
  void shutdown();
  void write_packet(std::span<const uint8_t> packet) override;
  const TunStats& stats() const { return stats_; }

 private:
  static void on_readable(uv_poll_t* p, int status, int events);
  static void on_save(uv_timer_t* t);
  void handle(uint8_t* p, size_t n, uint64_t now_ms);

  uv_loop_t* loop_;
  std::shared_ptr<TunDevice> dev_;
  int fd_;  // the queue's descriptor
  UdpNat* udp_;
  UdpSocketId udp_index_ = kNoUdpSocket;
  uv_poll_t poll_;
  bool polling_ = false;
  // Queue 0's engine, with fake_dns_database_path: writes the fake table when it changed.
  uv_timer_t save_timer_;
  bool saving_ = false;
  int queue_;
  bool closed_ = false;
  std::unique_ptr<uint8_t[]> buf_;      // one packet at a time; the device's MTU at most
  std::unique_ptr<uint8_t[]> dns_buf_;  // with DNS on the device: an answer being built
  TunStats stats_;
};

}  // namespace ss
