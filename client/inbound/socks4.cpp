// SOCKS4 ("SOCKS: A protocol for TCP proxy across firewalls", Ying-Da Lee) and its SOCKS4A
// extension ("SOCKS 4A: A Simple Extension to SOCKS 4 Protocol"), server side, CONNECT only:
//   request : VN(4) CD DSTPORT(2) DSTIP(4) USERID NUL [host NUL if DSTIP is 0.0.0.x, x != 0]
//   reply   : VN(0) CD(5A granted | 5B rejected) DSTPORT(2) DSTIP(4)
// The parser is stateless: it re-reads the buffered bytes, returns NeedMore until the request is
// complete, and fails as soon as a byte makes it invalid (a bad version, command or port, or a
// NUL-terminated field running past its bound). Host names follow the same rules as SOCKS5
// domain names (make_address in relay/address.h), including IP literals.

#include "client/inbound/socks4.h"

#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace ss::socks4 {
namespace {

// Finds the NUL ending a field that starts at `from`: its offset, or npos. `too_long` is set
// when max_len + 1 bytes are present without one.
size_t find_terminator(std::span<const uint8_t> in, size_t from, size_t max_len, bool& too_long) {
  too_long = false;
  const size_t avail = in.size() > from ? in.size() - from : 0;
  const size_t window = avail < max_len + 1 ? avail : max_len + 1;
  const void* nul = window == 0 ? nullptr : std::memchr(in.data() + from, 0, window);
  if (nul != nullptr) return static_cast<size_t>(static_cast<const uint8_t*>(nul) - in.data());
  too_long = window == max_len + 1;
  return std::string_view::npos;
}

}  // namespace

ParseStatus parse_request(std::span<const uint8_t> in, Request& out, size_t& consumed,
                          Failure& failure) {
  failure = Failure::None;
  auto fail = [&](Failure f) {
    failure = f;
    return ParseStatus::Error;
  };
  if (in.empty()) return ParseStatus::NeedMore;
  if (in[0] != kVersion) return fail(Failure::NotSocks4);
  if (in.size() < 2) return ParseStatus::NeedMore;
  if (in[1] != static_cast<uint8_t>(Command::Connect)) return fail(Failure::UnsupportedCommand);
  if (in.size() < 4) return ParseStatus::NeedMore;
  const auto port = static_cast<uint16_t>((in[2] << 8) | in[3]);
  if (port == 0) return fail(Failure::PortZero);
  if (in.size() < kFixedLen) return ParseStatus::NeedMore;

  bool too_long = false;
  const size_t user_end = find_terminator(in, kFixedLen, kMaxUserIdLen, too_long);
  if (too_long) return fail(Failure::UserIdTooLong);
  if (user_end == std::string_view::npos) return ParseStatus::NeedMore;

  const bool socks4a = in[4] == 0 && in[5] == 0 && in[6] == 0 && in[7] != 0;
  size_t end = user_end + 1;
  Address target;
  if (socks4a) {
    const size_t host_end = find_terminator(in, end, kMaxHostLen, too_long);
    if (too_long) return fail(Failure::HostTooLong);
    if (host_end == std::string_view::npos) return ParseStatus::NeedMore;
    const std::string_view host(reinterpret_cast<const char*>(in.data() + end), host_end - end);
    std::optional<Address> a = make_address(host, port);  // empty or bad bytes: nullopt
    if (!a) return fail(Failure::BadHost);
    target = std::move(*a);
    end = host_end + 1;
  } else {
    target.type = Address::Type::IPv4;
    std::memcpy(target.ip.data(), in.data() + 4, 4);
    target.port = port;
  }
  out.target = std::move(target);
  out.user_id.assign(reinterpret_cast<const char*>(in.data() + kFixedLen), user_end - kFixedLen);
  out.socks4a = socks4a;
  consumed = end;
  return ParseStatus::Ok;
}

size_t make_reply(Reply rep, const Address* bind, uint8_t* out) {
  std::memset(out, 0, kReplyLen);
  out[1] = static_cast<uint8_t>(rep);
  if (bind != nullptr && bind->type == Address::Type::IPv4) {
    out[2] = static_cast<uint8_t>(bind->port >> 8);
    out[3] = static_cast<uint8_t>(bind->port & 0xFF);
    std::memcpy(out + 4, bind->ip.data(), 4);
  }
  return kReplyLen;
}

}  // namespace ss::socks4
