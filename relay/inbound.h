#pragma once
// An inbound: how a request arrives on an accepted connection. A state machine over the client's
// bytes, with no I/O and no callbacks into the connection: each feed says what the connection
// should do next (read more, connect, hold a UDP association, answer and close, or refuse), and
// the bytes to send the client now. One inbound per protocol: SOCKS5, tunnel, Shadowsocks (server
// side), and the mixed local front ends.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "crypto/tcp_cipher.h"
#include "relay/address.h"

namespace ss {

// What the connection does after a feed.
enum class InboundAction : uint8_t {
  NeedMore,      // keep reading the client
  Connect,       // target() is known: route it and connect; early data was handed over
  UdpAssociate,  // SOCKS5 UDP ASSOCIATE: hold the connection, open an association
  Reply,         // send the reply bytes, then end the connection (FIN after them)
  Close,         // close at once, sending nothing more
  Reject,        // the reject policy: no byte, no FIN; read and discard until the client closes
                 // or the handshake deadline (probe resistance; see failure())
  Handover,      // another inbound takes over (take_next()) and gets the same bytes (the mixed
                 // port, once the first byte has told the protocol)
};

// Where the remote's bytes stand in the current response (see Inbound::response()).
enum class ResponseEnd : uint8_t {
  No,     // all of them belong to the response, which goes on
  Reuse,  // the response ended: the next request may follow on this client connection, and an
          // upstream to the same target may carry it
  Last,   // the response ended and the client connection ends after it
  Bad,    // the response is malformed (bad framing from the origin): close the client connection
};

// Why an inbound rejected a client, for the operator's warnings.
enum class RejectKind : uint8_t { Auth, Replay, Clock, BadRequest };

// What the connection knows about the accepted socket, for inbounds that take their target from
// it (ss-redir: the original destination of a REDIRECT'ed connection, or with TPROXY the socket's
// own address).
struct AcceptInfo {
  Address local;                        // the accepted socket's own address
  Address peer;                         // the client's address
  std::optional<Address> original_dst;  // SO_ORIGINAL_DST, if the inbound asked and it was set
};

// Small fixed buffers the inbound writes into: replies are at most a few hundred bytes.
struct ReplyBytes {
  static constexpr size_t kCapacity = 512;
  uint8_t data[kCapacity];
  size_t len = 0;
  bool append(const uint8_t* p, size_t n);
  bool append(std::string_view s) {
    return append(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
};

// Where early data goes: plaintext that followed the request in the client's bytes. `cap` bytes
// at most (a pooled block); `len` grows.
struct EarlyData {
  uint8_t* data = nullptr;
  size_t cap = 0;
  size_t len = 0;
};

class Inbound {
 public:
  virtual ~Inbound() = default;

  // The inbound's name for logs ("local", "tunnel", "server").
  virtual const char* name() const = 0;
  // Called once at accept: an inbound that needs no bytes (tunnel, redir) answers Connect here.
  virtual InboundAction start(const AcceptInfo&) { return InboundAction::NeedMore; }
  // True if start() reads the AcceptInfo (two or three system calls per connection, so only the
  // inbounds that take their target from the socket ask: redir); otherwise it is left empty.
  virtual bool wants_accept_info() const { return false; }
  // True if start() needs AcceptInfo::original_dst (one more getsockopt per connection).
  virtual bool wants_original_dst() const { return false; }
  // Consumes all of `in` (client bytes). Appends bytes for the client to `reply`. On Connect,
  // appends the payload that followed the request to `early` (bounded by early.cap; more is an
  // error the inbound reports as Close).
  virtual InboundAction feed(const uint8_t* in, size_t n, ReplyBytes& reply, EarlyData& early) = 0;

  // After Handover: the inbound that serves this connection from now on.
  virtual std::unique_ptr<Inbound> take_next() { return nullptr; }

  // The destination, once feed() or start() said Connect (or UdpAssociate: the address the
  // client will send its datagrams from, port 0 if unknown).
  const Address& target() const { return target_; }
  // What the client is told once the outbound is connected (SOCKS5: 05 00 ...), when it fails
  // (with the libuv error), or when a policy refuses the target. Empty for protocols that say
  // nothing.
  virtual void connected_reply(ReplyBytes&) {}
  virtual void failed_reply(int /*uv_err*/, ReplyBytes&) {}
  virtual void refused_reply(ReplyBytes&) {}
  // UDP ASSOCIATE accepted: the relay's address for the client.
  virtual void udp_reply(const Address& /*relay*/, ReplyBytes&) {}

  // Shadowsocks inbound: the client side's cipher state once the request is read (the opener
  // that read it; the connection seals replies with suite().server_sealer(opener)). Null for
  // plaintext inbounds.
  virtual std::unique_ptr<TcpOpener> take_opener() { return nullptr; }
  virtual const TcpCipherSuite* suite() const { return nullptr; }
  // After Reject: why, and the detail (e.g. "bad tag", "client clock 45 s ahead of ours").
  virtual RejectKind reject_kind() const { return RejectKind::Auth; }
  virtual std::string_view failure() const { return {}; }
  // After Reply: true if the client failed the proxy's authentication (SOCKS5 RFC 1929, HTTP
  // Basic), for the operator's warning; failure() says how.
  virtual bool auth_failed() const { return false; }
  // While relaying, for inbounds that carry one request/response exchange after another (HTTP
  // forward proxying). The defaults describe one exchange that never ends, so other inbounds
  // relay both ways untouched.
  //
  // How many of these n client bytes still belong to the current request and go to the outbound
  // (all, by default). The inbound keeps the rest (the start of the next request) for a later
  // feed(nullptr, 0, ...).
  virtual size_t forwardable(const uint8_t* /*in*/, size_t n) { return n; }
  // True once the current request has been forwarded whole: the connection stops reading the
  // client until the response has ended too.
  virtual bool request_done() const { return false; }
  // The remote's bytes on their way to the client: `take` of these n belong to the current
  // response (the connection relays them); the answer says whether it ended there.
  virtual ResponseEnd response(const uint8_t* /*in*/, size_t n, size_t& take) {
    take = n;
    return ResponseEnd::No;
  }
  // The remote closed before a byte of the current response came (with a Shadowsocks outbound,
  // how a target the server could not reach shows): what the client is told before its
  // connection ends (HTTP: 502). Nothing by default.
  virtual void no_response_reply(ReplyBytes&) {}
  // After a later Connect (the next request): whether an open upstream to the same target may
  // carry it (false: always a fresh one, e.g. for a CONNECT tunnel).
  virtual bool reuses_upstream() const { return false; }
  // The user the client authenticated as (SIP023, SOCKS5 or HTTP auth); empty if none.
  virtual std::string_view user() const { return {}; }

 protected:
  Address target_;
};

}  // namespace ss
