#pragma once
// One worker's UDP: its listening sockets (one per listen address, each with its datagram
// inbound and outbound) and the NAT of associations, one per flow, each with its own outbound
// socket per address family.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "relay/net/resolver.h"
#include "relay/udp_batch.h"
#include "relay/udp_flow.h"

namespace ss {

class UdpRelay;

// Where replies go for datagrams that came from no socket (tun mode: the inbound frames each reply
// as a whole IP packet, and the sink writes it to the device).
class PacketSink {
 public:
  virtual ~PacketSink() = default;
  virtual void write_packet(std::span<const uint8_t> packet) = 0;
};

struct UdpNatOptions {
  int udp_timeout = 60;            // idle seconds before an association expires
  size_t max_associations = 1024;  // least recently used evicted beyond
  bool ipv6_first = false;         // resolver answers: prefer IPv6
  bool reuse_port = false;         // SO_REUSEPORT on the listening sockets (several workers)
  uint32_t fwmark = 0;             // SO_MARK on the outbound sockets (outbound_fwmark)
};

// A NAT's socket: its slot (low 16 bits) and the slot's generation (high 16 bits). A slot is
// reused once its socket is freed, under the next generation, so an id kept from before (a
// reload's, a resolve's) finds nothing rather than the new socket (until the slot has been reused
// 65,536 times while that id was kept).
using UdpSocketId = uint32_t;
inline constexpr UdpSocketId kNoUdpSocket = UINT32_MAX;

class UdpNat final : public UdpFlows {
 public:
  UdpNat(uv_loop_t* loop, UdpRelay& relay, UdpNatOptions options);
  ~UdpNat() override;
  UdpNat(const UdpNat&) = delete;
  UdpNat& operator=(const UdpNat&) = delete;

  // Binds a UDP socket to host:port whose datagrams `inbound` reads and `outbound` carries on.
  // Returns 0 or a libuv error; *index (if given) is the socket's id for unlisten() and
  // set_inbound(), also on an error (unlisten() it then). The port bound is made known to the
  // relay (UDP ASSOCIATE). With `transparent` the socket takes datagrams by TPROXY
  // (relay/net/udp_tproxy.h).
  int listen(const std::string& host, uint16_t port, std::unique_ptr<UdpInbound> inbound,
             std::unique_ptr<UdpOutbound> outbound, bool transparent = false,
             UdpSocketId* index = nullptr);
  // A reload removed the socket `index` (from listen()): it closes with its associations; it is
  // freed once its handle's close callback has run and its last association is freed.
  void unlisten(UdpSocketId index);
  // A reload changed the keys or users of socket `index`: its datagrams go to `inbound` and
  // `outbound` from now on. Live associations keep their flow states, which must keep what they
  // need alive (ss-server's: the opener that made them; its direct outbound has none).
  void set_inbound(UdpSocketId index, std::unique_ptr<UdpInbound> inbound,
                   std::unique_ptr<UdpOutbound> outbound);
  // A reload's udp_timeout and this NAT's share of udp_max_associations: new associations are
  // made under them, and from the next sweep (once a second) live ones expire by the new timeout
  // and the least recently used beyond the new cap are evicted.
  void set_limits(int udp_timeout, size_t max_associations);
  // A datagram source that is not a socket (tun mode): returns its index for inject(). Replies
  // go to `sink` (which must outlive the NAT's shutdown). kNoUdpSocket if 65,535 are in use.
  UdpSocketId attach(std::unique_ptr<UdpInbound> inbound, std::unique_ptr<UdpOutbound> outbound,
                     PacketSink* sink);
  // A datagram from `from` to `dest` on the attached source `index`.
  void inject(UdpSocketId index, std::span<const uint8_t> payload, const sockaddr* from,
              const sockaddr* dest);
  // Closes every socket and timer; the loop can then finish.
  void shutdown();
  // Any thread: the association for `key` ends if it still belongs to control `id`.
  void post_close(uint64_t id, const UdpFlowKey& key);

  UdpFlowState* inbound_state(const UdpFlowKey& key) override;
  size_t association_count() const { return by_key_.size(); }
  const UdpStats& stats() const { return stats_; }
  // Slots of sockets (and attached sources) in use or closing, and slots ever made.
  size_t sockets_in_use() const { return listening_.size() - free_slots_.size(); }
  size_t socket_slots() const { return listening_.size(); }

 private:
  struct Assoc;
  struct Listening {
    UdpNat* nat = nullptr;
    uint16_t index = 0;  // its slot in listening_
    UdpSocketId id = 0;
    uv_udp_t udp;
    // Transparent (TPROXY): a socket of our own, polled, instead of `udp`.
    bool transparent = false;
    int fd = -1;
    uv_poll_t poll;
    std::unique_ptr<UdpInbound> inbound;
    std::unique_ptr<UdpOutbound> outbound;
    PacketSink* sink = nullptr;  // attach(): no socket; replies go here
    bool closing = false;        // unlisten(): its handle is closing
    bool closed = false;         // ... and its close callback has run
    size_t assocs = 0;           // associations not yet freed that point to it
  };
  // One outbound socket of an association, allocated when its address family is first used.
  struct Socket {
    uv_udp_t udp;
    Assoc* assoc = nullptr;
  };
  // Kept small: one per flow, up to udp_max_associations of them (docs/BENCHMARKS.md, RSS per
  // UDP association).
  struct Assoc {
    UdpNat* owner = nullptr;
    Listening* listening = nullptr;
    std::unique_ptr<UdpFlowState> in_state;
    std::unique_ptr<UdpFlowState> out_state;
    Socket* out[2] = {nullptr, nullptr};  // [0] IPv4, [1] IPv6
    Assoc* newer = nullptr;               // the LRU list, most recently used first
    Assoc* older = nullptr;
    uint64_t last_active = 0;
    uint64_t control = 0;
    UdpFlowKey key;
    sockaddr_in6 client{};  // where replies go (or a sockaddr_in)
    int refs = 0;           // open handles
    bool closing = false;
  };
  // A transparent socket bound to a reply's source address (TPROXY), kept while it is used.
  struct Sender {
    uv_udp_t udp;
    UdpFlowKey key;
    uint64_t last_used = 0;
    std::list<Sender*>::iterator lru;
  };
  struct PendingResolve;
  struct DnsEntry {
    sockaddr_storage addr;
    uint64_t expires;
  };

  static void on_alloc_in(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_alloc_out(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_inbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                         unsigned flags);
  static void on_outbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                          unsigned flags);
  static void on_transparent(uv_poll_t* p, int status, int events);
  static void on_sweep(uv_timer_t* t);
  static void on_flush(uv_check_t* c);
  static void on_closer(uv_async_t* a);
  static void on_resolved(ResolveRequest* req, int status, const sockaddr* address);

  void handle_inbound(Listening& l, const uint8_t* data, size_t n, const sockaddr* from,
                      const sockaddr* dest);
  // Sends a reply to `client` from `source` (an address header) through a transparent socket.
  bool send_from(std::span<const uint8_t> source, const sockaddr* client,
                 std::span<const uint8_t> bytes);
  void close_sender(Sender* s);
  void handle_outbound(Assoc* a, const uint8_t* data, size_t n, const sockaddr* from);
  Assoc* create(Listening& l, std::unique_ptr<UdpFlowState> in_state, const UdpRequest& req,
                const sockaddr* from);
  void touch(Assoc* a);
  // Evicts the least recently used associations until at most `keep` are left.
  void evict_beyond(size_t keep);
  void close_assoc(Assoc* a);
  // Closes the association's outbound sockets (new ones are made at its next send).
  void close_sockets(Assoc* a);
  // Frees an association whose handles are closed, and its removed socket once it was the last.
  static void free_assoc(Assoc* a);
  void free_listening_if_done(Listening* l);
  // A free slot for a new socket (kNoUdpSocket: all 65,535 in use), and its release (the slot's
  // next user gets the next generation).
  UdpSocketId take_slot();
  void release_slot(uint16_t slot);
  // The socket `id` names, or null if its slot is free or reused since.
  Listening* socket(UdpSocketId id) const;
  // Sends to `to` (resolving a name, bounded) through the association's socket of its family.
  void deliver(Assoc* a, const Address& to, std::span<const uint8_t> bytes);
  void send_out(Assoc* a, const sockaddr* to, std::span<const uint8_t> bytes);

  uv_loop_t* loop_;
  UdpRelay& relay_;
  UdpNatOptions options_;
  std::vector<std::unique_ptr<Listening>> listening_;  // by slot; null: free
  std::vector<uint16_t> generation_;                   // each slot's current generation
  std::vector<uint16_t> free_slots_;
  uv_timer_t sweep_;
  uv_check_t flush_;  // sends what the turn's callbacks queued in batch_
  uv_async_t closer_;
  bool shut_down_ = false;
  UdpSocketId current_listener_ = 0;  // the listening socket whose datagram is being handled
  std::unordered_map<UdpFlowKey, Assoc*, UdpFlowKeyHash> by_key_;
  // Associations by last use: newest_ first; linked through Assoc::newer/older.
  Assoc* newest_ = nullptr;
  Assoc* oldest_ = nullptr;
  void lru_unlink(Assoc* a);
  void lru_push_front(Assoc* a);
  size_t closed_since_trim_ = 0;  // associations closed since malloc_trim() was last due
  bool trim_due_ = false;
  std::mutex close_mu_;
  std::vector<std::pair<uint64_t, UdpFlowKey>> to_close_;  // associations whose control ended
  std::unordered_map<UdpFlowKey, Sender*, UdpFlowKeyHash> senders_;
  std::list<Sender*> senders_lru_;  // front = most recently used
  std::list<PendingResolve*> resolving_;
  std::unordered_map<std::string, DnsEntry> dns_cache_;  // name -> address, 60 s
  UdpStats stats_;
  // Datagrams are handled synchronously: one receive buffer (room for a recvmmsg batch) and one
  // work buffer per worker; what is sent is sealed into the send batch's arena.
  std::unique_ptr<uint8_t[]> rbuf_;
  std::unique_ptr<uint8_t[]> abuf_;
  UdpSendBatch batch_;
};

}  // namespace ss
