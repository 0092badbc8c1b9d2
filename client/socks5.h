#pragma once
// Pure, resumable SOCKS5 (RFC 1928) server-side parsing and reply encoding for ss-local. No I/O:
// each parser looks at the bytes received so far and says NeedMore, Ok (with `consumed`) or Error.
// Stateless, so the caller resumes by calling again with the grown buffer.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "relay/address.h"  // Address, ParseStatus

namespace ss::socks5 {

inline constexpr uint8_t kVersion = 5;

enum class Reply : uint8_t {
  Succeeded = 0,
  GeneralFailure = 1,
  NotAllowed = 2,
  NetworkUnreachable = 3,
  HostUnreachable = 4,
  ConnectionRefused = 5,
  TtlExpired = 6,
  CommandNotSupported = 7,
  AddressTypeNotSupported = 8,
};

enum class Command : uint8_t { Connect = 1, Bind = 2, UdpAssociate = 3 };

inline constexpr uint8_t kMethodNoAuth = 0x00, kMethodUserPass = 0x02, kMethodNone = 0xFF;

// Largest method-selection message: VER NMETHODS METHODS[255].
inline constexpr size_t kMaxGreetingLen = 2 + 255;
// Largest request: VER CMD RSV + address header.
inline constexpr size_t kMaxRequestLen = 3 + kMaxAddressLen;
// Largest reply make_reply() writes (IPv6 BND.ADDR).
inline constexpr size_t kMaxReplyLen = 3 + 1 + 16 + 2;
// Bytes make_udp_header() may write.
inline constexpr size_t kMaxUdpHeaderLen = 3 + kMaxAddressLen;

struct Greeting {
  bool offers_no_auth = false;
  bool offers_user_pass = false;
};

// Method-selection message VER NMETHODS METHODS. Error if VER != 5 (the caller closes silently).
// NMETHODS = 0 is Ok with nothing offered (the caller answers 05 FF). On Ok, `consumed` is the
// message size.
ParseStatus parse_greeting(std::span<const uint8_t> in, Greeting& out, size_t& consumed);

struct Request {
  Command command = Command::Connect;
  Address target;
};

// Request: VER CMD RSV ATYP DST.ADDR DST.PORT. Ok for CMD 1, 2 and 3 with a complete valid
// address (the caller decides which commands it supports); `consumed` is then exactly the request
// size, so bytes after it are the client's first payload. On Error, `error_reply` is the code to
// send before closing, or nullopt to close silently:
//   VER != 5                         -> nullopt
//   CMD not 1, 2 or 3                -> CommandNotSupported (known once 2 bytes are in)
//   ATYP not 1, 3 or 4               -> AddressTypeNotSupported (known once 4 bytes are in)
//   domain of length 0 or bad bytes  -> GeneralFailure (as soon as a bad byte is in)
//   port 0 for CONNECT or BIND       -> GeneralFailure
// RSV != 0 is tolerated. Port 0 is accepted for UDP ASSOCIATE, where DST may be all zeros.
// NeedMore while incomplete.
ParseStatus parse_request(std::span<const uint8_t> in, Request& out, size_t& consumed,
                          std::optional<Reply>& error_reply);

// Writes VER REP RSV ATYP BND.ADDR BND.PORT, always a full reply: 10 bytes for IPv4, 22 for
// IPv6. bind == nullptr means 0.0.0.0:0; an IPv4-mapped IPv6 bind address is written in IPv4
// form; a domain (never a real bound address) is written as 0.0.0.0 with its port. `out` must
// hold kMaxReplyLen (22) bytes. Returns the size.
size_t make_reply(Reply rep, const Address* bind, uint8_t* out);

// UDP request header: RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT, then DATA. Datagrams are whole, so
// anything shorter than a full header is Error (never NeedMore), as is a bad ATYP or a bad
// domain. On Ok, `frag`, `target` and `header_len` (offset of DATA) are set. RSV is not checked;
// the caller drops FRAG != 0.
ParseStatus parse_udp_header(std::span<const uint8_t> in, uint8_t& frag, Address& target,
                             size_t& header_len);

// Writes 00 00 00 + the address header for a datagram relayed back to the SOCKS client; returns
// its size. `out` must hold kMaxUdpHeaderLen (3 + kMaxAddressLen) bytes.
size_t make_udp_header(const Address& source, uint8_t* out);

// A whole datagram for the SOCKS client: 00 00 00, the source's address header as it is (ATYP,
// address, port), then the payload. Returns its size, 0 if `out` is too small.
size_t make_udp_datagram(std::span<const uint8_t> address, std::span<const uint8_t> payload,
                         std::span<uint8_t> out);

}  // namespace ss::socks5
