// ss-local's SOCKS5 session:
//   Greeting: read VER NMETHODS METHODS; answer 05 00 (no auth) or 05 FF and close.
//   Request:  read VER CMD RSV ATYP ADDR PORT; only CONNECT is served, anything else gets the
//             matching error reply. Bytes pipelined after the request are kept as early data.
//   Then connect to ss-server. On success reply 05 00 and relay; the address header is sealed
//   together with the first client bytes (the early data, or the first read) in one flight. On
//   failure reply with the code for the error (refused 05, network 03, host/DNS/timeout 04).

#include "client/local_session.h"

#include <atomic>
#include <cstring>
#include <span>

#include "client/socks5.h"
#include "relay/listener.h"
#include "relay/log.h"
#include "relay/udp_relay.h"
#include "relay/warnings.h"

namespace ss {

Address pick_server(const Config& cfg) {
  static std::atomic<size_t> next{0};
  const std::string& host =
      cfg.server[next.fetch_add(1, std::memory_order_relaxed) % cfg.server.size()];
  if (auto a = make_address(host, cfg.server_port)) return *a;
  Address a;
  a.type = Address::Type::Domain;
  a.host = host;
  a.port = cfg.server_port;
  return a;
}

LocalSession::LocalSession(Listener& owner) : Session(owner, kRemote) {}

LocalSession::~LocalSession() {
  BlockPool::local().release(early_);
}

void LocalSession::on_closing() {
  // The association ends with its TCP connection, at once: no datagram passes after this.
  if (udp_control_ != 0 && udp_relay() != nullptr) udp_relay()->close_control(udp_control_);
  udp_control_ = 0;
}

void LocalSession::on_started() {
  set_want_read(kClient, true);
}

void LocalSession::fail(uint8_t reply_code) {
  uint8_t reply[32];
  size_t n = socks5::make_reply(static_cast<socks5::Reply>(reply_code), nullptr, reply);
  send_copy(kClient, reply, n);
  drain(true);
}

void LocalSession::on_handshake_data(const uint8_t* data, size_t n) {
  if (step_ == Step::UdpHold) return;  // a UDP control connection carries nothing more
  size_t take = std::min(n, sizeof hs_ - hs_len_);
  std::memcpy(hs_ + hs_len_, data, take);
  hs_len_ += take;
  const uint8_t* rest = data + take;
  size_t rest_len = n - take;

  auto consume = [this](size_t used) {
    std::memmove(hs_, hs_ + used, hs_len_ - used);
    hs_len_ -= used;
  };

  if (step_ == Step::Greeting) {
    socks5::Greeting g;
    size_t used = 0;
    ParseStatus st = socks5::parse_greeting({hs_, hs_len_}, g, used);
    if (st == ParseStatus::NeedMore) return;
    if (st == ParseStatus::Error) {
      close("not a SOCKS5 client");
      return;
    }
    consume(used);
    if (!g.offers_no_auth) {
      static const uint8_t kNoMethod[] = {socks5::kVersion, socks5::kMethodNone};
      send_copy(kClient, kNoMethod, sizeof kNoMethod);
      drain(true);
      return;
    }
    static const uint8_t kNoAuth[] = {socks5::kVersion, socks5::kMethodNoAuth};
    if (!send_copy(kClient, kNoAuth, sizeof kNoAuth)) return;
    step_ = Step::Request;
    // Pipelined bytes beyond our buffer can only be there if the request is complete in hs_.
  }

  socks5::Request req;
  size_t used = 0;
  std::optional<socks5::Reply> err;
  ParseStatus st = socks5::parse_request({hs_, hs_len_}, req, used, err);
  if (st == ParseStatus::NeedMore) return;
  if (st == ParseStatus::Error) {
    if (err) {
      fail(static_cast<uint8_t>(*err));
    } else {
      close("bad SOCKS5 request");
    }
    return;
  }
  consume(used);
  if (req.command == socks5::Command::UdpAssociate && udp_relay() != nullptr) {
    udp_associate(req.target);
    return;
  }
  if (req.command != socks5::Command::Connect || config().mode == Mode::UdpOnly) {
    fail(static_cast<uint8_t>(socks5::Reply::CommandNotSupported));
    return;
  }
  step_ = Step::Done;
  size_t early = hs_len_ + rest_len;
  if (early > 0) {
    early_ = BlockPool::local().acquire();
    std::memcpy(early_->data, hs_, hs_len_);
    std::memcpy(early_->data + hs_len_, rest, rest_len);
    early_->len = static_cast<uint32_t>(early);
    hs_len_ = 0;
  }
  LOG_DEBUG("local: CONNECT %s", req.target.to_string().c_str());
  set_pending_header(req.target);
  connect_remote(pick_server(config()), "server");
}

void LocalSession::udp_associate(const Address& expected_source) {
  sockaddr_storage peer{}, local{};
  int len = sizeof peer;
  int len2 = sizeof local;
  if (uv_tcp_getpeername(&peers_[kClient].tcp, reinterpret_cast<sockaddr*>(&peer), &len) != 0 ||
      uv_tcp_getsockname(&peers_[kClient].tcp, reinterpret_cast<sockaddr*>(&local), &len2) != 0) {
    fail(static_cast<uint8_t>(socks5::Reply::GeneralFailure));
    return;
  }
  // DST.ADDR/DST.PORT is where the client will send from; a zero port means "not known yet".
  udp_control_ =
      udp_relay()->open_control(reinterpret_cast<sockaddr*>(&peer), expected_source.port);
  Address bind = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local));
  bind.port = udp_relay()->port();
  uint8_t reply[32];
  size_t n = socks5::make_reply(socks5::Reply::Succeeded, &bind, reply);
  if (!send_copy(kClient, reply, n)) return;
  LOG_DEBUG("local: UDP ASSOCIATE from %s, relay at %s",
            Address::from_sockaddr(reinterpret_cast<sockaddr*>(&peer)).to_string().c_str(),
            bind.to_string().c_str());
  // The association lives exactly as long as this connection: no handshake deadline, and the
  // client's FIN or reset closes the session (and the association with it).
  step_ = Step::UdpHold;
  clear_deadline();
  hold_after_handshake();
}

void LocalSession::on_remote_connected() {
  uint8_t reply[32];
  size_t n = socks5::make_reply(socks5::Reply::Succeeded, nullptr, reply);
  if (!send_copy(kClient, reply, n)) return;
  if (early_ != nullptr) {
    // Address header and the pipelined bytes in one encrypted flight.
    Block* out = BlockPool::local().acquire();
    out->len = static_cast<uint32_t>(seal_request(early_->data, early_->len, out->data));
    BlockPool::local().release(early_);
    early_ = nullptr;
    if (!send(kRemote, out)) return;
  }
  start_relay();
}

void LocalSession::on_remote_failed(int err) {
  socks5::Reply rep = socks5::Reply::GeneralFailure;
  switch (err) {
    case UV_ECONNREFUSED:
      rep = socks5::Reply::ConnectionRefused;
      break;
    case UV_ENETUNREACH:
      rep = socks5::Reply::NetworkUnreachable;
      break;
    case UV_EHOSTUNREACH:
    case UV_ETIMEDOUT:
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
    case UV_EAI_NODATA:
      rep = socks5::Reply::HostUnreachable;
      break;
    default:
      break;
  }
  warn::server_unreachable(remote_address().to_string(), err);
  fail(static_cast<uint8_t>(rep));
}

}  // namespace ss
