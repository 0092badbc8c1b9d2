#pragma once
// What the UDP relay needs from a method's packet framing, whatever its edition, beside the TCP
// suite (crypto/tcp_cipher.h): per-association client sessions (seal requests, open responses)
// and, server side, a per-worker opener that finds a packet's session and a per-session state
// that seals the responses.
//
// A packet's plaintext is always the address header (ATYP, address, port: the target in a
// request, the source in a response) followed by the payload, whatever the edition wraps
// around it. Nothing here allocates per packet: outputs go into caller buffers and the spans
// returned point into them. Sessions and openers are used by one thread; a suite is shared.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/cipher_spec.h"

namespace ss {

struct Method2022;

enum class UdpDrop : uint8_t {
  None,
  Auth,         // does not authenticate (or too short to)
  UnknownUser,  // SIP023: the identity header names nobody
  Malformed,    // authenticated, but the layout or address header is wrong
  Replay,       // packet ID already seen or behind the window
  Clock,        // timestamp outside +-30 s (skew says how far)
};

struct UdpStatus {
  UdpDrop drop = UdpDrop::None;
  int64_t skew = 0;  // Clock: packet time minus now, in seconds
  bool ok() const { return drop == UdpDrop::None; }
};

// An opened packet: spans into the caller's buffer.
struct UdpPacket {
  std::span<const uint8_t> address;
  std::span<const uint8_t> payload;
};

// Client side of one association (ss-local, ss-tunnel, ss-redir towards one server).
class UdpClientSession {
 public:
  virtual ~UdpClientSession() = default;
  // Seals one request (address header + payload) into out. Returns its size, 0 on failure.
  virtual size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
                      std::span<uint8_t> out) = 0;
  // Opens a response into out (capacity >= packet size).
  virtual UdpStatus open(std::span<const uint8_t> packet, std::span<uint8_t> out,
                         UdpPacket& result) = 0;
};

// Server side of one client session: seals the responses.
class UdpServerSession {
 public:
  virtual ~UdpServerSession() = default;
  virtual size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
                      std::span<uint8_t> out) = 0;
  // The SIP023 user the session belongs to; empty without users.
  virtual std::string_view user() const { return {}; }
};

// What identifies a request's session: the sender's address for methods without sessions
// (classic, none), or the client's session ID and user (2022).
struct UdpSessionId {
  bool by_address = true;
  uint64_t session_id = 0;
  uint64_t user = 0;
};

// Server side, one per worker: opens requests in two steps around the NAT lookup.
class UdpServerOpener {
 public:
  virtual ~UdpServerOpener() = default;
  // Step 1: authenticates what can be without the session (2022: the header) and says which
  // session the packet claims. `out` (capacity >= packet size) must stay untouched until step 2.
  virtual UdpStatus open_header(std::span<const uint8_t> packet, std::span<uint8_t> out,
                                UdpSessionId& id) = 0;
  // The sender's IP (IPv6 or IPv4-mapped) of the packet about to be opened, for openers that
  // order key trial by it; the others ignore it.
  virtual void set_sender(std::span<const uint8_t, 16>) {}
  // Step 2: opens the rest with the session found for `id` (null: none yet), checks replay and
  // clock. On success a new session is made into `created` when `session` was null; nothing
  // changes on failure.
  virtual UdpStatus open_body(UdpServerSession* session, UdpPacket& result,
                              std::unique_ptr<UdpServerSession>& created) = 0;
};

// Makes the packet states of a method. One suite serves every worker of a process.
class UdpCipherSuite {
 public:
  virtual ~UdpCipherSuite() = default;
  // Bytes a sealed packet adds to address header + payload, at most.
  virtual size_t max_overhead() const = 0;
  virtual std::unique_ptr<UdpClientSession> client_session() const = 0;
  virtual std::unique_ptr<UdpServerOpener> server_opener() const = 0;
};

// Size of the address header (ATYP 1, 3 or 4, address, port) at p, n bytes available; 0 if it is
// malformed or cut short.
size_t udp_address_header_len(const uint8_t* p, size_t n);

// SIP004 AEAD packets: [salt][sealed address header + payload][tag], a salt each.
std::shared_ptr<const UdpCipherSuite> make_classic_udp_suite(const CipherSpec& spec,
                                                             std::span<const uint8_t> master_key);
struct TrialUser;
// SIP004 AEAD packets with several users on one port: an association's first packet finds its
// user by key trial (crypto/key_trial.h, in the worker's order for the sender's IP); the
// association then keeps that user's key for its later packets and its responses.
std::shared_ptr<const UdpCipherSuite> make_classic_users_udp_suite(const CipherSpec& spec,
                                                                   std::vector<TrialUser> users);
// "none": the plaintext as it is.
std::shared_ptr<const UdpCipherSuite> make_none_udp_suite();

// SIP022/SIP023 packets. Client: `client_keys` is the parsed password ([iPSKs...,] uPSK).
// Server: `server_psk` and the SIP023 users. `clock` gives Unix seconds.
struct Udp2022Options {
  const Method2022* method = nullptr;
  std::vector<std::vector<uint8_t>> client_keys;
  std::vector<uint8_t> server_psk;
  struct User {
    std::string name;
    std::vector<uint8_t> key;
  };
  std::vector<User> users;
  bool users_only = false;  // server: identity headers even with no users (Udp2022Server)
  std::function<int64_t()> clock;
};
// nullptr, with the reason in *error, if the keys do not suit the method.
std::shared_ptr<const UdpCipherSuite> make_2022_udp_suite(Udp2022Options options,
                                                          std::string* error = nullptr);

}  // namespace ss
