// SOCKS5 username/password authentication (RFC 1929), server side:
//   request : VER(1) ULEN(1..255) UNAME PLEN(1..255) PASSWD
//   reply   : VER(1) STATUS (0 = success; anything else = failure, and the server closes)
// RFC 1929 allows ULEN and PLEN from 1 to 255, so a zero length can never be valid and fails at
// once, like a wrong VER. The credentials themselves are checked by the caller (UserTable in
// client/inbound/users_file.h, in constant time).

#include "client/inbound/socks5_auth.h"

namespace ss::socks5 {

ParseStatus parse_auth_request(std::span<const uint8_t> in, UserPass& out, size_t& consumed) {
  if (in.empty()) return ParseStatus::NeedMore;
  if (in[0] != kAuthVersion) return ParseStatus::Error;
  if (in.size() < 2) return ParseStatus::NeedMore;
  const size_t ulen = in[1];
  if (ulen == 0) return ParseStatus::Error;
  const size_t plen_at = 2 + ulen;
  if (in.size() <= plen_at) return ParseStatus::NeedMore;
  const size_t plen = in[plen_at];
  if (plen == 0) return ParseStatus::Error;
  const size_t total = plen_at + 1 + plen;
  if (in.size() < total) return ParseStatus::NeedMore;
  const auto* base = reinterpret_cast<const char*>(in.data());
  out.user = std::string_view(base + 2, ulen);
  out.password = std::string_view(base + plen_at + 1, plen);
  consumed = total;
  return ParseStatus::Ok;
}

size_t make_auth_reply(bool success, uint8_t* out) {
  out[0] = kAuthVersion;
  out[1] = success ? 0x00 : 0x01;
  return kAuthReplyLen;
}

}  // namespace ss::socks5
