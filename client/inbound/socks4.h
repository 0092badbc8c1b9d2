#pragma once
// Pure, resumable SOCKS4 / SOCKS4a server-side request parsing and reply encoding for ss-local's
// mixed port. No I/O: parse_request looks at the bytes received so far and says NeedMore, Ok
// (with `consumed`) or Error. Stateless, so the caller resumes by calling again with the grown
// buffer.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "relay/address.h"  // Address, ParseStatus

namespace ss::socks4 {

inline constexpr uint8_t kVersion = 4;
// Longest USERID and SOCKS4a host name we accept, without their NUL terminators.
inline constexpr size_t kMaxUserIdLen = 255;
inline constexpr size_t kMaxHostLen = 255;
// VN CD DSTPORT(2) DSTIP(4)
inline constexpr size_t kFixedLen = 8;
// Largest request: the fixed part, USERID + NUL, host + NUL.
inline constexpr size_t kMaxRequestLen = kFixedLen + kMaxUserIdLen + 1 + kMaxHostLen + 1;
// Every reply is 8 bytes: VN(0) CD DSTPORT DSTIP.
inline constexpr size_t kReplyLen = 8;

enum class Command : uint8_t { Connect = 1, Bind = 2 };

// Reply codes (CD of the reply).
enum class Reply : uint8_t {
  Granted = 0x5A,
  Rejected = 0x5B,  // rejected or failed: the only failure code a proxy without identd sends
};

// Why parse_request failed. NotSocks4 means "close without a reply"; every other failure is
// answered with Reply::Rejected (5B) and then the connection is closed.
enum class Failure : uint8_t {
  None,
  NotSocks4,           // VN != 4
  UnsupportedCommand,  // CD is BIND (2) or unknown: known once 2 bytes are in
  PortZero,            // DSTPORT 0: known once 4 bytes are in
  UserIdTooLong,       // no NUL within kMaxUserIdLen + 1 bytes of USERID
  HostTooLong,         // SOCKS4a: no NUL within kMaxHostLen + 1 bytes of host name
  BadHost,             // SOCKS4a: empty host name, or bytes that can never be a host name
};

struct Request {
  // IPv4 for SOCKS4. For SOCKS4a, the host name as a Domain, or IPv4 / IPv6 if it is an IP
  // literal (treated like the numeric form, as SOCKS5 does).
  Address target;
  // Raw USERID bytes (no NUL inside, at most kMaxUserIdLen). Not validated: quote it before
  // logging it. With authentication configured the caller refuses SOCKS4 altogether.
  std::string user_id;
  bool socks4a = false;
};

// Request: VN(4) CD(1) DSTPORT(2) DSTIP(4) USERID NUL, and for SOCKS4a (DSTIP 0.0.0.x, x != 0)
// a host name and NUL after it. Ok only for CONNECT with a complete valid request; `consumed` is
// then exactly the request size, so bytes after it are the client's first payload. Error as
// soon as the bytes seen make the request invalid, with `failure` saying why (see Failure);
// NeedMore while incomplete. A host name is validated once its NUL has arrived (it is at most
// 256 bytes away). DSTIP 0.0.0.0 is plain SOCKS4 to 0.0.0.0; the caller's policy decides.
ParseStatus parse_request(std::span<const uint8_t> in, Request& out, size_t& consumed,
                          Failure& failure);

// Writes VN(0) CD DSTPORT DSTIP: `bind`'s port and IPv4 address, or zeros if bind is nullptr or
// not IPv4 (clients ignore both fields for CONNECT). `out` must hold kReplyLen bytes. Returns
// kReplyLen.
size_t make_reply(Reply rep, const Address* bind, uint8_t* out);

}  // namespace ss::socks4
