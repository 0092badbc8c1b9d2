#pragma once
// The process-wide part of UDP: the SOCKS5 UDP ASSOCIATE registry that TCP connections on any
// worker open and close, the UDP port they announce, and the sum of the workers' counters. Each
// worker's datagrams go through its own NAT (relay/udp_nat.h).

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "relay/udp_flow.h"

namespace ss {

class UdpNat;

class UdpRelay {
 public:
  UdpRelay() = default;
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  // The UDP port to announce in a UDP ASSOCIATE reply to a connection accepted on TCP port
  // `tcp_port`: the same port when a UDP socket is bound to it (the usual case: a listener's
  // TCP and UDP sockets share the port number), else the first UDP port bound.
  uint16_t port_for(uint16_t tcp_port);
  // A UDP socket is bound to `port`.
  void add_port(uint16_t port);

  // ss-local: a UDP ASSOCIATE from `client` (the TCP peer). Datagrams are accepted only from that
  // IP, and from `expected_port` if it is not 0. Returns an id for close_control(). Any thread.
  uint64_t open_control(const sockaddr* client, uint16_t expected_port);
  // The control connection ended: its association goes too (on the worker that has it).
  void close_control(uint64_t id);

  // The open UDP ASSOCIATE a datagram from `from` (flow `key`) belongs to: its id and the flag
  // cleared when it closes; nullopt if none admits it.
  struct Control {
    uint64_t id = 0;
    std::shared_ptr<std::atomic<bool>> alive;
  };
  std::optional<Control> control_for(const sockaddr* from, const UdpFlowKey& key);
  // The association for `key` on `nat` now carries control `id`'s datagrams. Called on `nat`'s
  // worker, which need not be the one whose TCP connection opened the control: the kernel picks
  // each socket of a SO_REUSEPORT group by its own hash (logged at -vv).
  void bind(uint64_t id, const UdpFlowKey& key, UdpNat* nat);
  // A NAT stops taking close requests (it is shutting down).
  void detach(UdpNat* nat);

  // Adds a worker's counters (after its loop ended) and logs the sum once all are in.
  void add_stats(const UdpStats& s);
  void log_summary() const;

 private:
  struct Entry {
    UdpFlowKey client;  // port 0 = any port from that IP
    bool bound = false;
    UdpFlowKey bound_key;
    UdpNat* nat = nullptr;
    std::shared_ptr<std::atomic<bool>> alive;
    std::thread::id opener;  // the thread of the TCP connection that opened it
  };
  std::mutex mu_;
  std::unordered_map<uint64_t, Entry> controls_;
  uint64_t next_ = 1;
  std::vector<uint16_t> ports_;
  UdpStats total_;
};

}  // namespace ss
