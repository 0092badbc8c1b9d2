// SOCKS5 (RFC 1928), server side. The session moves through
//   greeting  : VER(5) NMETHODS METHODS[NMETHODS]      -> we answer 05 00 or 05 FF
//   request   : VER(5) CMD RSV ATYP DST.ADDR DST.PORT  -> we answer VER REP RSV ATYP BND.ADDR
//   BND.PORT streaming : everything after the request is payload (it may arrive in the same read)
// Each state's parser is stateless: it re-reads the bytes buffered so far, returns NeedMore until
// the message is complete and fails as soon as a byte makes it invalid, so a slow client can never
// make us wait for bytes that cannot fix the message. UDP ASSOCIATE datagrams carry
// RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT DATA in both directions.

#include "client/socks5.h"

#include <cstring>

namespace ss::socks5 {
namespace {

inline constexpr size_t kRequestPrefixLen = 3;  // VER CMD RSV
inline constexpr size_t kUdpPrefixLen = 3;      // RSV(2) FRAG

constexpr bool is_known_atyp(uint8_t atyp) {
  return atyp == static_cast<uint8_t>(Address::Type::IPv4) ||
         atyp == static_cast<uint8_t>(Address::Type::Domain) ||
         atyp == static_cast<uint8_t>(Address::Type::IPv6);
}

constexpr bool is_known_command(uint8_t cmd) {
  return cmd == static_cast<uint8_t>(Command::Connect) ||
         cmd == static_cast<uint8_t>(Command::Bind) ||
         cmd == static_cast<uint8_t>(Command::UdpAssociate);
}

}  // namespace

ParseStatus parse_greeting(std::span<const uint8_t> in, Greeting& out, size_t& consumed) {
  if (in.empty()) return ParseStatus::NeedMore;
  if (in[0] != kVersion) return ParseStatus::Error;
  if (in.size() < 2) return ParseStatus::NeedMore;
  const size_t n = in[1];
  if (in.size() < 2 + n) return ParseStatus::NeedMore;
  Greeting g;
  for (uint8_t method : in.subspan(2, n)) {
    if (method == kMethodNoAuth) g.offers_no_auth = true;
    if (method == kMethodUserPass) g.offers_user_pass = true;
  }
  out = g;
  consumed = 2 + n;
  return ParseStatus::Ok;
}

ParseStatus parse_request(std::span<const uint8_t> in, Request& out, size_t& consumed,
                          std::optional<Reply>& error_reply) {
  error_reply.reset();
  if (in.empty()) return ParseStatus::NeedMore;
  if (in[0] != kVersion) return ParseStatus::Error;  // not SOCKS5: close without a reply
  if (in.size() < 2) return ParseStatus::NeedMore;
  if (!is_known_command(in[1])) {
    error_reply = Reply::CommandNotSupported;
    return ParseStatus::Error;
  }
  // in[2] is RSV. RFC 1928 says it is 0x00, but nothing depends on it and no field follows from
  // it, so a non-zero value is tolerated rather than failing clients that leave garbage there
  // (hostile-inputs S9: tolerate or reply 01; we tolerate).
  if (in.size() < kRequestPrefixLen + 1) return ParseStatus::NeedMore;
  if (!is_known_atyp(in[kRequestPrefixLen])) {
    error_reply = Reply::AddressTypeNotSupported;
    return ParseStatus::Error;
  }
  size_t addr_len = 0;
  switch (parse_address(in.subspan(kRequestPrefixLen), out.target, addr_len)) {
    case ParseStatus::NeedMore:
      return ParseStatus::NeedMore;
    case ParseStatus::Error:
      error_reply = Reply::GeneralFailure;  // ATYP is known, so the domain is malformed
      return ParseStatus::Error;
    case ParseStatus::Ok:
      break;
  }
  const auto command = static_cast<Command>(in[1]);
  // Port 0 cannot be connected to or bound for a peer. UDP ASSOCIATE is the exception: RFC 1928
  // lets the client send all zeros when it does not know its own address yet.
  if (out.target.port == 0 && command != Command::UdpAssociate) {
    error_reply = Reply::GeneralFailure;
    return ParseStatus::Error;
  }
  out.command = command;
  consumed = kRequestPrefixLen + addr_len;
  return ParseStatus::Ok;
}

size_t make_reply(Reply rep, const Address* bind, uint8_t* out) {
  out[0] = kVersion;
  out[1] = static_cast<uint8_t>(rep);
  out[2] = 0x00;
  Address a;  // 0.0.0.0:0
  if (bind != nullptr) {
    if (bind->type == Address::Type::IPv4 || bind->type == Address::Type::IPv6) {
      a.type = bind->type;
      a.ip = bind->ip;
    }
    a.port = bind->port;
    a = a.unmapped();
  }
  return 3 + encode_address(a, out + 3);
}

ParseStatus parse_udp_header(std::span<const uint8_t> in, uint8_t& frag, Address& target,
                             size_t& header_len) {
  if (in.size() <= kUdpPrefixLen) return ParseStatus::Error;
  size_t addr_len = 0;
  // A whole datagram that is still a strict prefix of a header is truncated: Error.
  if (parse_address(in.subspan(kUdpPrefixLen), target, addr_len) != ParseStatus::Ok) {
    return ParseStatus::Error;
  }
  frag = in[2];
  header_len = kUdpPrefixLen + addr_len;
  return ParseStatus::Ok;
}

size_t make_udp_header(const Address& source, uint8_t* out) {
  out[0] = 0x00;
  out[1] = 0x00;
  out[2] = 0x00;
  return kUdpPrefixLen + encode_address(source, out + kUdpPrefixLen);
}

size_t make_udp_datagram(std::span<const uint8_t> address, std::span<const uint8_t> payload,
                         std::span<uint8_t> out) {
  const size_t n = kUdpPrefixLen + address.size() + payload.size();
  if (out.size() < n) return 0;
  out[0] = out[1] = out[2] = 0x00;
  std::memcpy(out.data() + kUdpPrefixLen, address.data(), address.size());
  if (!payload.empty()) {
    std::memcpy(out.data() + kUdpPrefixLen + address.size(), payload.data(), payload.size());
  }
  return n;
}

}  // namespace ss::socks5
