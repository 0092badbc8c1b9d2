// DNS over TCP for tun mode's fake mode: a state machine over the client's bytes (RFC 1035 4.2.2:
// each message preceded by its length in two bytes; RFC 7766: several queries pipelined on one
// connection, a message split over reads). Each whole query is answered by TunDns::answer, the
// same code and pools as UDP: A/AAAA from the fake pools, other types empty without a resolver.
// A query for the resolver (another type, with tun_dns_resolver set) turns the connection into a
// relay to it: that query and everything after it go there through the tunnel. A cut query is
// held (at most 2 + kMaxQuery bytes); a length outside 12..kMaxQuery or a message the codec
// cannot read closes the connection. Nothing here trusts the bytes.

#include "client/tun/tun_dns_tcp.h"

#include <algorithm>

#include "relay/dns/dns_message.h"

namespace ss {

namespace {

size_t frame_length(const uint8_t* p) {
  return static_cast<size_t>(p[0]) << 8 | p[1];
}

}  // namespace

TunDnsTcp::Result TunDnsTcp::one(const uint8_t* msg, size_t len, uint8_t* out, size_t cap,
                                 size_t* out_len, uint64_t now_ms) {
  // An answer is the query's header and question plus one address record (12 + 16 bytes at most).
  if (cap - *out_len < 2 + len + 28) return Result::Full;
  size_t n = 0;
  switch (dns_->answer(msg, len, out + *out_len + 2, cap - *out_len - 2, &n, now_ms)) {
    case TunDns::Verdict::Reply:
      out[*out_len] = static_cast<uint8_t>(n >> 8);
      out[*out_len + 1] = static_cast<uint8_t>(n);
      *out_len += 2 + n;
      return Result::NeedMore;
    case TunDns::Verdict::Relay:
      return Result::Relay;
    case TunDns::Verdict::Drop:
      break;
  }
  return Result::Close;
}

TunDnsTcp::Result TunDnsTcp::feed(const uint8_t* in, size_t n, uint8_t* out, size_t cap,
                                  size_t* out_len, uint64_t now_ms) {
  size_t at = 0;
  for (;;) {
    if (!held_.empty()) {
      // Complete the query the last read cut.
      size_t take = std::min<size_t>(n - at, held_.size() < 2 ? 2 - held_.size() : 0);
      held_.insert(held_.end(), in + at, in + at + take);
      at += take;
      if (held_.size() < 2) return Result::NeedMore;
      const size_t len = frame_length(held_.data());
      if (len < dns::kHeaderSize || len > kMaxQuery) return Result::Close;
      take = std::min(n - at, 2 + len - held_.size());
      held_.insert(held_.end(), in + at, in + at + take);
      at += take;
      if (held_.size() < 2 + len) return Result::NeedMore;
      const Result r = one(held_.data() + 2, len, out, cap, out_len, now_ms);
      if (r == Result::Relay) {
        held_.insert(held_.end(), in + at, in + n);
        return r;
      }
      held_.clear();
      if (r != Result::NeedMore) return r;
      continue;
    }
    if (at == n) return Result::NeedMore;
    if (n - at < 2) {
      held_.assign(in + at, in + n);
      return Result::NeedMore;
    }
    const size_t len = frame_length(in + at);
    if (len < dns::kHeaderSize || len > kMaxQuery) return Result::Close;
    if (n - at - 2 < len) {
      held_.assign(in + at, in + n);
      return Result::NeedMore;
    }
    const Result r = one(in + at + 2, len, out, cap, out_len, now_ms);
    if (r == Result::Relay) held_.assign(in + at, in + n);
    if (r != Result::NeedMore) return r;
    at += 2 + len;
  }
}

}  // namespace ss
