// ss-server session:
//   Handshake: ciphertext from the client is opened chunk by chunk; the plaintext starts with the
//   address header (ATYP, address, port), which may span chunks and reads. Plaintext after it is
//   early data, written to the target as soon as it is connected.
//   A client that fails authentication, or sends a bad address, gets the reject policy: no byte,
//   no FIN and no outbound connection; we keep reading and discarding until the client closes
//   (then FIN) or the handshake deadline, counted from accept, passes. The reaction is the same
//   whatever the number of bytes received. Each rejection is counted in a rate-limited warning.
//   An authenticated client whose target the policy refuses (the SSRF guard) is closed at once:
//   it holds the key, so there is nothing to hide from it, and it should not wait.

#include "server/server_session.h"

#include <atomic>
#include <cstring>
#include <span>

#include "relay/ip_policy.h"
#include "relay/log.h"
#include "relay/warnings.h"

namespace ss {

ServerSession::~ServerSession() {
  BlockPool::local().release(early_);
}

void ServerSession::reject(const char* why) {
  std::string_view detail = opener_ ? opener_->failure() : std::string_view{};
  if (detail.empty()) detail = why;
  const std::string from = peer_text(kClient);
  if (detail.find("clock") != std::string_view::npos) {
    warn::clock_skew("server: refused a client whose header", detail);
  } else if (detail.find("replay") != std::string_view::npos) {
    warn::client_replay(from);
  } else {
    warn::client_auth_failed(from, detail);
  }
  LOG_DEBUG("server: rejected a client from %s: %s (%.*s)", from.c_str(), why,
            static_cast<int>(detail.size()), detail.data());
  drain(false);
}

void ServerSession::on_target_blocked(const sockaddr* sa) {
  // The client authenticated: it holds the key, so there is nothing to hide from it. Close at
  // once rather than leave it waiting for the handshake deadline.
  const std::string target = remote_address().to_string();
  const Address resolved = Address::from_sockaddr(sa);
  const std::string why =
      "a private address (" + resolved.to_string() + "); allow_private_targets permits it";
  warn::target_refused(peer_text(kClient), target, why);
  close("target not allowed");
}

void ServerSession::on_handshake_data(const uint8_t* data, size_t n) {
  Block* out = BlockPool::local().acquire();
  if (!decrypt_into(data, n, out)) {
    BlockPool::local().release(out);
    reject("authentication failed");
    return;
  }
  if (out->len == 0) {
    BlockPool::local().release(out);
    return;
  }
  size_t take = std::min<size_t>(out->len, sizeof header_ - header_len_);
  std::memcpy(header_ + header_len_, out->data, take);
  Address target;
  size_t used = 0;
  ParseStatus st = parse_address({header_, header_len_ + take}, target, used);
  if (st == ParseStatus::NeedMore) {
    header_len_ += take;
    BlockPool::local().release(out);
    return;
  }
  if (st == ParseStatus::Error) {
    BlockPool::local().release(out);
    reject("bad address header");
    return;
  }
  size_t from_out = used - header_len_;  // header bytes that came in this read
  header_len_ = 0;
  size_t early = out->len - from_out;
  if (early > 0) {
    std::memmove(out->data, out->data + from_out, early);
    out->len = static_cast<uint32_t>(early);
    early_ = out;
  } else {
    BlockPool::local().release(out);
  }
  std::string_view who = user();
  if (who.empty()) {
    LOG_DEBUG("server: connect %s", target.to_string().c_str());
  } else {
    LOG_INFO("server: user %.*s: connect %s", static_cast<int>(who.size()), who.data(),
             target.to_string().c_str());
  }
  connect_remote(target, "target");
}

void ServerSession::on_remote_connected() {
  if (early_ != nullptr) {
    Block* b = early_;
    early_ = nullptr;
    if (!send(kRemote, b)) return;
  }
  start_relay();
}

void ServerSession::on_remote_failed(int err) {
  LOG_DEBUG("server: cannot reach the target: %s", uv_strerror(err));
  // An authenticated client: end its stream promptly (FIN) rather than leaving it hanging.
  drain(true);
}

bool ServerSession::target_allowed(const sockaddr* sa) const {
  return config().allow_private_targets || !is_private_address(sa);
}

void ServerSession::on_decrypt_error() {
  LOG_DEBUG("server: authentication failed mid-stream");
  drain(false);
}

}  // namespace ss
