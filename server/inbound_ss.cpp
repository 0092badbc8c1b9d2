// ss-server's Shadowsocks inbound:
//   The client's ciphertext is opened chunk by chunk; the plaintext starts with the address
//   header (ATYP, address, port), which may span chunks and reads. Plaintext after it is early
//   data, written to the target as soon as it is connected. Then the opener moves to the
//   connection, which goes on opening the client's stream and seals the replies.
//   A client that fails authentication, replays a salt, is stamped outside the 2022 clock window
//   or sends a bad address gets the reject policy (see InboundAction::Reject): no byte, no FIN,
//   no outbound connection, the same whatever the number of bytes received.

#include "server/inbound_ss.h"

#include "crypto/key_trial.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <span>

#include "relay/metrics.h"

namespace ss {

InboundAction ShadowsocksInbound::reject(RejectKind kind, std::string_view why) {
  reject_kind_ = kind;
  failure_ = why;
  return InboundAction::Reject;
}

InboundAction ShadowsocksInbound::start(const AcceptInfo& info) {
  if (state_) {
    // Key trial orders the users by what last worked from this IP.
    const KeyTrialOrder::Ip ip = info.peer.type == Address::Type::IPv6
                                     ? trial_ip_v6(info.peer.ip.data())
                                     : trial_ip_v4(info.peer.ip.data());
    opener_ = suite_.server_opener_for(state_, ip);
  }
  return InboundAction::NeedMore;
}

InboundAction ShadowsocksInbound::feed(const uint8_t* in, size_t n, ReplyBytes&, EarlyData& early) {
  if (!opener_) return InboundAction::NeedMore;
  if (opener_->max_output(n) > early.cap - early.len) return InboundAction::Close;
  uint8_t* out = early.data + early.len;
  // The time to find the key: the feed that authenticates the first chunk, or fails to (with
  // key trial, the one that tries the keys).
  const bool searching = !opener_->authenticated();
  const auto t0 =
      searching ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  const TcpOpener::Result r = opener_->feed(in, n, out);
  if (searching && (r.status == DecryptStatus::Error || opener_->authenticated())) {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
    metrics::key_search(static_cast<uint64_t>(ns.count()), r.status != DecryptStatus::Error);
  }
  if (r.status == DecryptStatus::Error) {
    std::string_view detail = opener_->failure();
    if (detail.empty()) detail = "authentication failed";
    if (detail.find("clock") != std::string_view::npos) return reject(RejectKind::Clock, detail);
    if (detail.find("replay") != std::string_view::npos) return reject(RejectKind::Replay, detail);
    return reject(RejectKind::Auth, detail);
  }
  if (r.produced == 0) return InboundAction::NeedMore;
  const size_t take = std::min<size_t>(r.produced, sizeof header_ - header_len_);
  std::memcpy(header_ + header_len_, out, take);
  size_t used = 0;
  const ParseStatus st = parse_address({header_, header_len_ + take}, target_, used);
  if (st == ParseStatus::NeedMore) {
    header_len_ += take;
    return InboundAction::NeedMore;
  }
  if (st == ParseStatus::Error) return reject(RejectKind::BadRequest, "bad address header");
  const size_t from_out = used - header_len_;  // header bytes that came in this feed
  header_len_ = 0;
  const size_t payload = r.produced - from_out;
  std::memmove(out, out + from_out, payload);
  early.len += payload;
  return InboundAction::Connect;
}

}  // namespace ss
