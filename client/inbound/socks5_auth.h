#pragma once
// Pure, resumable parsing of the SOCKS5 username/password subnegotiation (RFC 1929) and its
// reply. No I/O and no copies: the parsed user name and password are views into the caller's
// buffer. Stateless, so the caller resumes by calling again with the grown buffer.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "relay/parse_status.h"

namespace ss::socks5 {

inline constexpr uint8_t kAuthVersion = 1;
// Largest request: VER ULEN UNAME[255] PLEN PASSWD[255].
inline constexpr size_t kMaxAuthRequestLen = 1 + 1 + 255 + 1 + 255;
inline constexpr size_t kAuthReplyLen = 2;

struct UserPass {
  std::string_view user;      // 1..255 bytes, any values; valid while the parsed buffer is
  std::string_view password;  // 1..255 bytes, any values; valid while the parsed buffer is
};

// VER(1) ULEN UNAME PLEN PASSWD. Error as soon as VER != 1, ULEN = 0 or PLEN = 0 is seen: the
// caller then answers make_auth_reply(false) and closes (RFC 1929: on failure the server must
// close). Ok with `consumed` = the request size once complete; bytes after it belong to the
// SOCKS5 request that follows. NeedMore while incomplete (a stall is the caller's deadline).
ParseStatus parse_auth_request(std::span<const uint8_t> in, UserPass& out, size_t& consumed);

// Writes VER(1) STATUS: 01 00 on success, 01 01 on failure. `out` must hold kAuthReplyLen
// bytes. Returns kAuthReplyLen.
size_t make_auth_reply(bool success, uint8_t* out);

}  // namespace ss::socks5
