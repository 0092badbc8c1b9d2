#pragma once
// The UDP side of the engine, as TCP's inbound → route → outbound: a datagram inbound turns what
// a client sends into (flow, target address header, payload) and frames the replies back; a
// datagram outbound carries a flow's datagrams onwards (directly, or sealed to a Shadowsocks
// server) and turns what comes back into (source address header, payload). The NAT
// (relay/udp_nat.h) joins them: one association per flow, its sockets, its expiry.
//
// Inbounds and outbounds are per worker and do no I/O; their per-association state lives in the
// association (UdpFlowState). Outputs go into the caller's scratch buffers, spans point into
// them or into the datagram.

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "crypto/udp_cipher.h"
#include "relay/address.h"

namespace ss {

// UdpInbound::reply(): nothing to send.
inline constexpr size_t kNoReply = SIZE_MAX;

// Per worker, summed when read. Nothing reads them on the data path.
struct UdpStats {
  uint64_t packets_in = 0;         // datagrams received from clients
  uint64_t packets_out = 0;        // datagrams relayed back to clients
  uint64_t drop_auth = 0;          // did not decrypt / authenticate
  uint64_t drop_malformed = 0;     // bad address header, SOCKS5 header or FRAG != 0
  uint64_t drop_unassociated = 0;  // ss-local: sender has no UDP ASSOCIATE
  uint64_t drop_overflow = 0;      // a socket's send buffer was full
  uint64_t drop_resolve = 0;       // the target or server name did not resolve (yet)
  uint64_t drop_replay = 0;        // 2022: packet ID already seen or behind the window
  uint64_t drop_clock = 0;         // 2022: timestamp more than 30 s off
  uint64_t drop_blocked = 0;       // the SSRF guard or the ACL (target or client; ss-local: target)
  uint64_t associations_created = 0;
  uint64_t associations_evicted = 0;  // by udp_max_associations
  uint64_t associations_expired = 0;  // by udp_timeout

  UdpStats& operator+=(const UdpStats& o);
};

// Which association a datagram belongs to: the sender's address, or (2022 server) the client's
// session. `listener` keeps the flows of different listening sockets apart.
struct UdpFlowKey {
  std::array<uint8_t, 16> id{};
  uint16_t port = 0;
  uint8_t kind = 0;       // 4, 6: an address; 22: a 2022 session
  uint32_t listener = 0;  // the NAT's socket (UdpSocketId: its slot and the slot's generation)
  bool operator==(const UdpFlowKey&) const = default;
};
struct UdpFlowKeyHash {
  size_t operator()(const UdpFlowKey& k) const;
};
UdpFlowKey flow_key_of(const sockaddr* sa);

// What an inbound or outbound keeps per association.
class UdpFlowState {
 public:
  virtual ~UdpFlowState() = default;
  // Set by an outbound's send() when the association moved to another server (its own went
  // down): the NAT closes the association's outbound sockets before it sends this datagram, so
  // that replies of the old server, which the new session would not know, can no longer arrive,
  // and clears it.
  bool renew_sockets = false;
};

// The NAT's lookup, for inbounds whose flow state decides how a datagram is opened.
class UdpFlows {
 public:
  virtual ~UdpFlows() = default;
  // The inbound state of the association for `key` on the listening socket whose datagram is
  // being handled (the NAT fills in `key.listener`), or null.
  virtual UdpFlowState* inbound_state(const UdpFlowKey& key) = 0;
};

struct UdpRequest {
  UdpFlowKey key;
  std::span<const uint8_t> address;  // the target's address header
  std::span<const uint8_t> payload;
  std::unique_ptr<UdpFlowState> state;  // a new association's inbound state (may stay null)
  bool follow = false;                  // replies go to this datagram's sender from now on
  uint64_t control = 0;                 // ss-local: the UDP ASSOCIATE this flow belongs to
};

class UdpInbound {
 public:
  virtual ~UdpInbound() = default;
  // A datagram from `from`, sent to `dest` (a transparent socket's original destination; null on
  // an ordinary socket). False: drop it (counted in `stats`). `scratch` holds a datagram.
  virtual bool receive(std::span<const uint8_t> datagram, const sockaddr* from,
                       const sockaddr* dest, UdpFlows& flows, std::span<uint8_t> scratch,
                       UdpRequest& req, UdpStats& stats) = 0;
  // Frames a reply from `address` (the source's address header) to the client of the
  // association with inbound state `state`. Returns its size (0: an empty datagram), or
  // kNoReply to drop it.
  virtual size_t reply(UdpFlowState* state, std::span<const uint8_t> address,
                       std::span<const uint8_t> payload, std::span<uint8_t> out) = 0;
  // Replies leave from their source's address (TPROXY), not from the listening socket.
  virtual bool reply_from_source() const { return false; }
  // Whether an association may still carry datagrams.
  virtual bool alive(const UdpFlowState* /*state*/) const { return true; }
};

class UdpOutbound {
 public:
  virtual ~UdpOutbound() = default;
  // The per-association state (the server chosen and its packet session).
  virtual std::unique_ptr<UdpFlowState> open_flow() = 0;
  // A datagram for the target `address`: where it goes (`to`, resolved by the NAT) and its
  // bytes. False: drop it.
  virtual bool send(UdpFlowState* state, std::span<const uint8_t> address,
                    std::span<const uint8_t> payload, std::span<uint8_t> scratch, Address& to,
                    std::span<const uint8_t>& bytes, UdpStats& stats) = 0;
  // A datagram from `from` on the association's socket: the reply's source address header and
  // payload. False: drop it.
  virtual bool receive(UdpFlowState* state, std::span<const uint8_t> datagram, const sockaddr* from,
                       std::span<uint8_t> scratch, UdpPacket& reply, UdpStats& stats) = 0;
  // Refuse loopback, private, link-local... destinations (ss-server's SSRF guard).
  virtual bool block_private() const { return false; }
  // Refuse `to` by an ACL's outbound lists (ss-server's --acl).
  virtual bool acl_blocks(const sockaddr* /*to*/) const { return false; }
};

// Counts a packet the suite refused and says why where an operator should hear it: the clock
// (rate limited) and, with the sender `from` (server side), failed authentication. `whose` names
// the clocks that may be off ("client's or this server's").
void note_udp_drop(const UdpStatus& st, const sockaddr* from, const char* whose, UdpStats& stats);

}  // namespace ss
