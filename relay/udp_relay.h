#pragma once
// The UDP side of ss-local, ss-tunnel and ss-server: one inbound socket per listen address, and a
// NAT of associations keyed by the client's address, each with its own outbound socket(s).

#include <uv.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/aead.h"
#include "crypto/sliding_window.h"
#include "crypto/udp2022.h"
#include "relay/address.h"
#include "relay/config.h"

namespace ss {

// Largest UDP payload over IPv4 or IPv6 (65535 - 8-byte UDP header - 20-byte IPv4 header).
inline constexpr size_t kMaxDatagram = 65507;

struct UdpStats {
  uint64_t packets_in = 0;         // datagrams received from clients
  uint64_t packets_out = 0;        // datagrams relayed back to clients
  uint64_t drop_auth = 0;          // did not decrypt / authenticate
  uint64_t drop_malformed = 0;     // bad address header, SOCKS5 header or FRAG != 0
  uint64_t drop_unassociated = 0;  // ss-local: sender has no UDP ASSOCIATE
  uint64_t drop_overflow = 0;      // a socket's send buffer was full
  uint64_t drop_resolve = 0;       // the target name did not resolve
  uint64_t drop_replay = 0;        // 2022: packet ID already seen or behind the window
  uint64_t drop_clock = 0;         // 2022: timestamp more than 30 s off
  uint64_t drop_blocked = 0;       // ss-server: a private destination (SSRF guard)
  uint64_t associations_created = 0;
  uint64_t associations_evicted = 0;  // by udp_max_associations
  uint64_t associations_expired = 0;  // by udp_timeout
};

class UdpRelay {
 public:
  UdpRelay(uv_loop_t* loop, const Config& cfg);
  ~UdpRelay();
  UdpRelay(const UdpRelay&) = delete;
  UdpRelay& operator=(const UdpRelay&) = delete;

  // Binds an inbound socket. For ss-local and ss-tunnel also resolves ss-server (at start-up).
  // Returns 0 or a libuv error.
  int listen(const std::string& host, uint16_t port);
  // Port of the first inbound socket (after listening on port 0).
  uint16_t port() const;
  // Closes every socket and timer; the loop can then finish.
  void shutdown();

  // ss-local: a UDP ASSOCIATE from `client` (the TCP peer). Datagrams are accepted only from that
  // IP, and from `expected_port` if it is not 0. Returns an id for close_control(). Both may be
  // called from any worker thread (the registry is guarded; the association itself is closed on
  // this relay's loop).
  uint64_t open_control(const sockaddr* client, uint16_t expected_port);
  // The control connection ended: its association goes too.
  void close_control(uint64_t id);

  size_t association_count() const { return by_client_.size(); }
  const UdpStats& stats() const { return stats_; }

 private:
  struct Key {
    std::array<uint8_t, 16> ip{};
    uint16_t port = 0;
    uint8_t family = 0;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Assoc;
  // Client side of a 2022 association: one server session it has heard from.
  struct ServerPeer {
    explicit ServerPeer(const Method2022& m) : key(m) {}
    uint64_t id = 0;
    SlidingWindow window;
    Udp2022SessionKey key;
    uint64_t last_seen = 0;
  };
  // The 2022 state of an association. Server: the client's session (window, body key) and our
  // own session for replies. Client: our session and the server sessions seen.
  struct State2022 {
    explicit State2022(const Method2022& m) : send_key(m), recv_key(m) {}
    uint64_t session_id = 0;  // the client's session ID
    size_t user = kUdp2022NoUser;
    uint64_t server_session_id = 0;  // server: ours
    uint64_t next_packet_id = 0;     // for what we send
    Udp2022SessionKey send_key;
    SlidingWindow window;  // server: the client session's packet IDs
    Udp2022SessionKey recv_key;
    std::vector<std::unique_ptr<ServerPeer>> servers;  // client: newest first, at most 4
  };
  struct Outbound {
    uv_udp_t udp;
    Assoc* assoc = nullptr;
    bool inited = false;
  };
  struct Assoc {
    UdpRelay* owner = nullptr;
    Key key;
    sockaddr_storage client{};    // where replies go
    uv_udp_t* inbound = nullptr;  // the socket replies leave from
    Outbound out[2];              // [0] IPv4, [1] IPv6
    uint64_t last_active = 0;
    uint64_t control_id = 0;
    // ss-local: cleared (from any thread) the moment the UDP ASSOCIATE's TCP connection closes,
    // so no datagram passes after that, even before the association itself is closed here.
    std::shared_ptr<std::atomic<bool>> control_alive;
    std::unique_ptr<State2022> s22;  // 2022 methods only
    int refs = 0;                    // open handles
    bool closing = false;
    std::list<Assoc*>::iterator lru;
  };
  struct Control {
    Key client;  // port 0 = any port from that IP
    bool bound = false;
    Key bound_key;
    std::shared_ptr<std::atomic<bool>> alive;
  };
  struct PendingResolve;

  static void on_alloc_in(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_alloc_out(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_inbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                         unsigned flags);
  static void on_outbound(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                          unsigned flags);
  static void on_sweep(uv_timer_t* t);
  static void on_closer(uv_async_t* a);
  static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static Key key_of(const sockaddr* sa);

  void handle_inbound(uv_udp_t* h, const uint8_t* data, size_t n, const sockaddr* from);
  void handle_outbound(Assoc* a, const uint8_t* data, size_t n, const sockaddr* from);
  Assoc* find_or_create(const sockaddr* from, uv_udp_t* inbound, uint64_t control_id);
  Assoc* create(const Key& key, const sockaddr* client, uv_udp_t* inbound, uint64_t control_id);
  // The 2022 edition's packet paths.
  void server_inbound_2022(uv_udp_t* h, const uint8_t* data, size_t n, const sockaddr* from);
  void server_outbound_2022(Assoc* a, const uint8_t* data, size_t n, const sockaddr* from);
  void client_send_2022(Assoc* a, std::span<const uint8_t> address,
                        std::span<const uint8_t> payload);
  void client_outbound_2022(Assoc* a, const uint8_t* data, size_t n);
  // Counts a dropped 2022 packet; `from` is the sender on the server side (for the warning), null
  // on the client side.
  void note_2022_failure(const Udp2022Status& st, const sockaddr* from);
  int64_t now_seconds() const;
  void touch(Assoc* a);
  void close_assoc(Assoc* a);
  // Sends to a resolved address through the association's socket of that family.
  void send_out(Assoc* a, const sockaddr* to, const uint8_t* data, size_t n);
  // Sends to an address that may need resolving (ss-server's targets).
  void send_to_target(Assoc* a, const Address& target, const uint8_t* data, size_t n);
  void reply_to_client(Assoc* a, const uint8_t* data, size_t n);
  // The method's packet transform (classic AEAD, or a copy for "none").
  size_t seal_packet(const uint8_t* pt, size_t n, uint8_t* out);
  std::optional<size_t> open_packet(const uint8_t* in, size_t n, uint8_t* out);
  uint64_t control_for(const sockaddr* from);

  uv_loop_t* loop_;
  const Config& cfg_;
  std::optional<Aead> aead_;                        // classic ciphers; none for "none"
  std::unique_ptr<Udp2022Server> server22_;         // 2022 ss-server
  std::unique_ptr<Udp2022Client> client22_;         // 2022 ss-local / ss-tunnel
  std::unique_ptr<Udp2022SessionKey> scratch_key_;  // for a packet of a session not yet known
  SlidingWindow scratch_window_;
  std::vector<uv_udp_t*> inbound_;
  uv_timer_t sweep_;
  bool sweep_inited_ = false;
  bool shut_down_ = false;
  sockaddr_storage server_addr_{};  // ss-local/ss-tunnel: where ss-server listens
  std::unordered_map<Key, Assoc*, KeyHash> by_client_;
  std::list<Assoc*> lru_;  // front = most recently used
  // The UDP ASSOCIATE registry, shared with other workers' TCP sessions.
  std::mutex controls_mu_;
  std::unordered_map<uint64_t, Control> controls_;
  uint64_t next_control_ = 1;
  std::vector<std::pair<uint64_t, Key>> to_close_;  // associations whose control ended
  bool closer_open_ = false;
  uv_async_t closer_;
  std::atomic<uint16_t> port_{0};
  std::list<PendingResolve*> resolving_;
  struct DnsEntry {
    sockaddr_storage addr;
    uint64_t expires;
  };
  std::unordered_map<std::string, DnsEntry> dns_cache_;  // ss-server: name -> address, 60 s
  UdpStats stats_;
  // One receive buffer and one work buffer per relay: datagrams are handled synchronously.
  std::unique_ptr<uint8_t[]> rbuf_;
  std::unique_ptr<uint8_t[]> wbuf_;
  std::unique_ptr<uint8_t[]> pbuf_;
};

}  // namespace ss
