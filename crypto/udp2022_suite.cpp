// The Shadowsocks 2022 UDP packet suite (SIP022 §3.2, SIP023 identity headers) over the codec in
// crypto/udp2022.h. A client association is one client session: its own session ID, packet IDs
// counting up, and per server session it has heard from a body key and a sliding window (a few,
// newest first, so a restarted server is followed). Server side a worker's opener decrypts the
// header (and the identity header), the relay finds the session by (session ID, user), and the
// body is opened with that session's key; the packet ID is checked against the session's window
// before the body is opened and recorded only after it fully validated (hostile-inputs U3/U4).
// The windows are process-wide (one per client session, guarded), so a packet replayed to another
// worker's socket, from another address, is refused as well. They are keyed by the session ID and
// the key its packets are opened with (the user's uPSK, or the PSK), not by the suite nor the
// user's index: a reload makes new suites and may renumber users, and a session recorded before
// it must meet the same window after it, on every worker.

#include <ctime>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "crypto/kdf.h"
#include "crypto/sliding_window.h"
#include "crypto/thread_shared.h"
#include "crypto/udp2022.h"
#include "crypto/udp_cipher.h"

namespace ss {
namespace {

constexpr size_t kServerSessionsKept = 4;

UdpStatus status_of(const Udp2022Status& st) {
  switch (st.error) {
    case Udp2022Error::None:
      return {};
    case Udp2022Error::Timestamp:
      return {UdpDrop::Clock, st.skew};
    case Udp2022Error::UnknownUser:
      return {UdpDrop::UnknownUser};
    case Udp2022Error::TooShort:
    case Udp2022Error::BadTag:
    case Udp2022Error::Crypto:
      return {UdpDrop::Auth};
    default:
      return {UdpDrop::Malformed};
  }
}

// What names a session's key in the process-wide window registry: a hash of the key its packets
// are opened with (a user's uPSK, or the PSK with no users), kept apart by kind. Two sessions
// share a window only with the same random 64-bit session ID as well.
uint64_t key_identity(char kind, std::span<const uint8_t> key) {
  std::string s(1, kind);
  s.append(reinterpret_cast<const char*>(key.data()), key.size());
  return std::hash<std::string>()(s);
}

struct Shared {
  Udp2022Options options;
  std::vector<Udp2022User> users;
  std::vector<uint64_t> user_identities;  // key_identity() of each user's key
  uint64_t psk_identity = 0;              // ... of the PSK (no users)
  uint64_t identity(size_t user) const {
    return user < user_identities.size() ? user_identities[user] : psk_identity;
  }
  int64_t now() const {
    return options.clock ? options.clock() : static_cast<int64_t>(time(nullptr));
  }
};

// ---- client side --------------------------------------------------------------------------------

// What a thread's client sessions of one suite share: the codec (keyed by the pre-shared keys
// only; it keeps nothing between packets) and the key a reply from a server session not seen yet
// is opened with (used within one open(); moved into the session's peer when it is accepted).
struct ClientShared {
  explicit ClientShared(const Udp2022Options& o)
      : codec(*o.method, o.client_keys), scratch_key(*o.method) {}
  Udp2022Client codec;
  Udp2022SessionKey scratch_key;
};

class ClientSession final : public UdpClientSession {
 public:
  ClientSession(std::shared_ptr<const Shared> shared, std::shared_ptr<ClientShared> per_thread)
      : shared_(std::move(shared)),
        thread_(std::move(per_thread)),
        codec_(thread_->codec),
        scratch_key_(thread_->scratch_key),
        send_key_(*shared_->options.method) {
    random_bytes({reinterpret_cast<uint8_t*>(&session_id_), sizeof session_id_});
  }

  size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
              std::span<uint8_t> out) override {
    const size_t pad = udp2022_padding(Udp2022Padding::Dns, address, payload.size());
    return codec_.seal_request(send_key_, session_id_, next_packet_id_++, address, pad, payload,
                               shared_->now(), out);
  }

  UdpStatus open(std::span<const uint8_t> packet, std::span<uint8_t> out,
                 UdpPacket& result) override {
    Udp2022Header hdr;
    Udp2022Status st = codec_.open_response_header(packet, out, hdr);
    if (!st.ok()) return status_of(st);
    Peer* peer = nullptr;
    for (auto& p : servers_) {
      if (p->id == hdr.session_id) peer = p.get();
    }
    if (peer != nullptr && !peer->window.check(hdr.packet_id)) return {UdpDrop::Replay};
    Udp2022Response resp;
    st = codec_.open_response_body(hdr, peer != nullptr ? peer->key : scratch_key_, shared_->now(),
                                   resp);
    if (!st.ok()) return status_of(st);
    if (resp.client_session_id != session_id_) return {UdpDrop::Malformed};
    if (peer == nullptr) {
      // A new server session (e.g. the server restarted): remember a few, newest first.
      auto p = std::make_unique<Peer>(*shared_->options.method);
      p->id = hdr.session_id;
      std::swap(p->key, scratch_key_);
      servers_.insert(servers_.begin(), std::move(p));
      if (servers_.size() > kServerSessionsKept) servers_.pop_back();
      peer = servers_.front().get();
    }
    peer->window.accept(hdr.packet_id);
    result.address = resp.address;
    result.payload = resp.payload;
    return {};
  }

 private:
  struct Peer {
    explicit Peer(const Method2022& m) : key(m) {}
    uint64_t id = 0;
    SlidingWindow window;
    Udp2022SessionKey key;
  };

  std::shared_ptr<const Shared> shared_;
  std::shared_ptr<ClientShared> thread_;
  Udp2022Client& codec_;
  Udp2022SessionKey& scratch_key_;  // for a server session not seen yet
  uint64_t session_id_ = 0;
  uint64_t next_packet_id_ = 0;
  Udp2022SessionKey send_key_;
  std::vector<std::unique_ptr<Peer>> servers_;
};

// ---- server side --------------------------------------------------------------------------------

// The replay window of one client session, shared by every worker that has the session.
struct SharedWindow {
  std::mutex mu;
  SlidingWindow window;
};

class WindowRegistry : public std::enable_shared_from_this<WindowRegistry> {
 public:
  // The process's: every suite (those a reload makes too) shares it.
  static const std::shared_ptr<WindowRegistry>& process() {
    static auto* r = new std::shared_ptr<WindowRegistry>(std::make_shared<WindowRegistry>());
    return *r;  // never destroyed: sessions may end during exit
  }

  // `identity`: key_identity() of the key the session's packets are opened with.
  std::shared_ptr<SharedWindow> find(uint64_t session_id, uint64_t identity) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find({session_id, identity});
    return it == map_.end() ? nullptr : it->second.lock();
  }
  std::shared_ptr<SharedWindow> get_or_make(uint64_t session_id, uint64_t identity) {
    std::lock_guard<std::mutex> lock(mu_);
    std::weak_ptr<SharedWindow>& slot = map_[{session_id, identity}];
    std::shared_ptr<SharedWindow> w = slot.lock();
    if (!w) {
      // The window's entry goes with it (at its last session's end, from any worker), so that
      // after a burst of sessions nothing small and long-lived is left among their freed memory.
      w = std::shared_ptr<SharedWindow>(
          new SharedWindow, [self = shared_from_this(), session_id, identity](SharedWindow* p) {
            delete p;
            self->forget(session_id, identity);
          });
      slot = w;
    }
    if (map_.size() >= prune_at_) {
      std::erase_if(map_, [](const auto& e) { return e.second.expired(); });
      prune_at_ = std::max<size_t>(1024, map_.size() * 2);
    }
    return w;
  }

 private:
  void forget(uint64_t session_id, uint64_t identity) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find({session_id, identity});
    if (it != map_.end() && it->second.expired()) map_.erase(it);
  }
  struct KeyHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& k) const {
      return std::hash<uint64_t>()(k.first * 0x9E3779B97F4A7C15ull ^ k.second);
    }
  };
  std::mutex mu_;
  std::unordered_map<std::pair<uint64_t, uint64_t>, std::weak_ptr<SharedWindow>, KeyHash> map_;
  size_t prune_at_ = 1024;
};

class ServerSession final : public UdpServerSession {
 public:
  ServerSession(const Shared& shared, Udp2022Server& codec, std::shared_ptr<SharedWindow> window,
                size_t user, uint64_t client_session_id)
      : shared_(shared),
        codec_(codec),
        window_(std::move(window)),
        user_(user),
        client_session_id_(client_session_id),
        send_key_(*shared.options.method),
        recv_key_(*shared.options.method) {
    random_bytes({reinterpret_cast<uint8_t*>(&server_session_id_), sizeof server_session_id_});
  }

  size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
              std::span<uint8_t> out) override {
    const size_t pad = udp2022_padding(Udp2022Padding::Dns, address, payload.size());
    return codec_.seal_response(send_key_, user_, server_session_id_, next_packet_id_++,
                                client_session_id_, address, pad, payload, shared_.now(), out);
  }
  std::string_view user() const override {
    return user_ == kUdp2022NoUser ? std::string_view{} : codec_.user_name(user_);
  }

  SharedWindow& window() { return *window_; }
  Udp2022SessionKey& recv_key() { return recv_key_; }

 private:
  const Shared& shared_;
  Udp2022Server& codec_;
  std::shared_ptr<SharedWindow> window_;
  size_t user_;
  uint64_t client_session_id_;
  uint64_t server_session_id_ = 0;
  uint64_t next_packet_id_ = 0;
  Udp2022SessionKey send_key_;
  Udp2022SessionKey recv_key_;
};

class ServerOpener final : public UdpServerOpener {
 public:
  ServerOpener(std::shared_ptr<const Shared> shared, std::shared_ptr<WindowRegistry> windows)
      : shared_(std::move(shared)),
        windows_(std::move(windows)),
        codec_(*shared_->options.method, shared_->options.server_psk, shared_->users,
               shared_->options.users_only),
        scratch_key_(*shared_->options.method) {}

  UdpStatus open_header(std::span<const uint8_t> packet, std::span<uint8_t> out,
                        UdpSessionId& id) override {
    header_ok_ = false;
    Udp2022Status st = codec_.open_request_header(packet, out, hdr_);
    if (!st.ok()) return status_of(st);
    header_ok_ = true;
    id.by_address = false;
    id.session_id = hdr_.session_id;
    id.user = hdr_.user;
    return {};
  }

  UdpStatus open_body(UdpServerSession* session, UdpPacket& result,
                      std::unique_ptr<UdpServerSession>& created) override {
    if (!header_ok_) return {UdpDrop::Auth};
    header_ok_ = false;
    auto* s = static_cast<ServerSession*>(session);
    // The session's window; for a session new to this worker, another worker's if it has one.
    std::shared_ptr<SharedWindow> found;
    SharedWindow* w = s != nullptr ? &s->window() : nullptr;
    if (w == nullptr) {
      found = windows_->find(hdr_.session_id, shared_->identity(hdr_.user));
      w = found.get();
    }
    if (w != nullptr) {
      std::lock_guard<std::mutex> lock(w->mu);
      if (!w->window.check(hdr_.packet_id)) return {UdpDrop::Replay};
    }
    Udp2022Request req;
    Udp2022Status st = codec_.open_request_body(hdr_, s != nullptr ? s->recv_key() : scratch_key_,
                                                shared_->now(), req);
    if (!st.ok()) return status_of(st);
    if (w == nullptr) {
      found = windows_->get_or_make(hdr_.session_id, shared_->identity(hdr_.user));
      w = found.get();
    }
    {
      std::lock_guard<std::mutex> lock(w->mu);
      if (!w->window.check(hdr_.packet_id)) return {UdpDrop::Replay};
      w->window.accept(hdr_.packet_id);
    }
    if (s == nullptr) {
      auto fresh = std::make_unique<ServerSession>(*shared_, codec_, std::move(found), hdr_.user,
                                                   hdr_.session_id);
      std::swap(fresh->recv_key(), scratch_key_);
      created = std::move(fresh);
    }
    result.address = req.address;
    result.payload = req.payload;
    return {};
  }

 private:
  std::shared_ptr<const Shared> shared_;
  std::shared_ptr<WindowRegistry> windows_;
  Udp2022Server codec_;  // the sessions of this worker seal with it too
  Udp2022SessionKey scratch_key_;
  Udp2022Header hdr_;
  bool header_ok_ = false;
};

class Suite final : public UdpCipherSuite {
 public:
  explicit Suite(std::shared_ptr<const Shared> shared)
      : shared_(std::move(shared)), windows_(WindowRegistry::process()) {}
  size_t max_overhead() const override {
    // Separate header or nonce, identity headers, fixed fields, padding, tag.
    return kUdp2022NonceLen + kUdp2022EihLen * shared_->options.client_keys.size() +
           kUdp2022ResponseFixedLen + kMaxPadding2022 + kUdp2022TagLen;
  }
  std::unique_ptr<UdpClientSession> client_session() const override {
    return std::make_unique<ClientSession>(
        shared_, thread_shared<ClientShared>(
                     id_, [this] { return std::make_shared<ClientShared>(shared_->options); }));
  }
  std::unique_ptr<UdpServerOpener> server_opener() const override {
    return std::make_unique<ServerOpener>(shared_, windows_);
  }

 private:
  std::shared_ptr<const Shared> shared_;
  std::shared_ptr<WindowRegistry> windows_;
  const uint64_t id_ = next_thread_shared_owner();
};

}  // namespace

std::shared_ptr<const UdpCipherSuite> make_2022_udp_suite(Udp2022Options options,
                                                          std::string* error) {
  auto shared = std::make_shared<Shared>();
  shared->options = std::move(options);
  for (const auto& u : shared->options.users) {
    shared->users.push_back({u.name, u.key});
    shared->user_identities.push_back(key_identity('u', u.key));
  }
  shared->psk_identity = key_identity('p', shared->options.server_psk);
  const Method2022& m = *shared->options.method;
  // Both ends' codecs are made now once, so keys that do not suit the method fail at start-up.
  if (!shared->options.client_keys.empty()) {
    Udp2022Client probe(m, shared->options.client_keys);
    if (!probe.valid()) {
      if (error != nullptr) *error = "2022 keys unusable for " + std::string(m.name);
      return nullptr;
    }
  }
  if (!shared->options.server_psk.empty()) {
    Udp2022Server probe(m, shared->options.server_psk, shared->users, shared->options.users_only);
    if (!probe.valid()) {
      if (error != nullptr) *error = probe.error();
      return nullptr;
    }
  }
  return std::make_shared<Suite>(std::move(shared));
}

}  // namespace ss
