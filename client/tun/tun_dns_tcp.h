#pragma once
// DNS over TCP in tun mode's fake mode (see tun_dns_tcp.cpp): a TCP connection to port 53 that
// entered the TUN is answered here, from the same fake pools and rules as UDP, instead of going
// through the router. Pure and resumable: bytes in, framed answers out.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "client/tun/tun_dns.h"

namespace ss {

class TunDnsTcp {
 public:
  // A query longer than this closes the connection (a real one is a few dozen bytes).
  static constexpr size_t kMaxQuery = 4096;

  explicit TunDnsTcp(TunDns* dns) : dns_(dns) {}

  enum class Result : uint8_t {
    NeedMore,  // every whole query so far is answered in out; wait for more
    Full,      // out had no room for the next answer: send what is there, then end the
               // connection (the client asks the rest again, RFC 7766 6.2.1)
    Relay,     // a query for the resolver (tun_dns_resolver): relayed() holds it and everything
               // after it, framed, for the connection to the resolver
    Close,     // malformed, or a query longer than kMaxQuery
  };
  // Consumes all of in[0, n); appends the framed answers (RFC 1035 4.2.2: a two-byte length
  // before each message) to out[*out_len, cap).
  Result feed(const uint8_t* in, size_t n, uint8_t* out, size_t cap, size_t* out_len,
              uint64_t now_ms);
  const std::vector<uint8_t>& relayed() const { return held_; }

 private:
  // One whole query: its answer appended, or why not.
  Result one(const uint8_t* msg, size_t len, uint8_t* out, size_t cap, size_t* out_len,
             uint64_t now_ms);

  TunDns* dns_;
  std::vector<uint8_t> held_;  // a query cut by the read (at most 2 + kMaxQuery), or relayed()
};

}  // namespace ss
