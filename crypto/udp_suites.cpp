// The UDP packet suites without sessions: classic AEAD (SIP004: every packet is
// [salt][AEAD(address header + payload)][tag] under HKDF-SHA1(master key, salt, "ss-subkey") and
// stands alone) and "none" (the plaintext as it is). Either way a request's session is its
// sender's address, so the server opener has nothing to look up between its two steps.
//
// Reflection (client side): a classic request packet authenticates under the same key as a
// response, so a path attacker without the key could send our own request back and the
// application would receive its own datagram as the target's reply. A client session therefore
// remembers the salts of its last kOwnSalts requests (their first 4 bytes: salts are random, and
// a reply is only compared after it authenticated, so a false match, which only drops that reply,
// takes a 2^-26 coincidence) and drops a reply that carries one of them (UdpDrop::Replay). A server
// reply replayed within an association is not caught: SIP004 packets carry no sequence number, a
// duplicate datagram is ordinary UDP, and a filter checked per packet would put a shared lock on
// the data path (the 2022 edition's packet IDs cover it).

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/key_trial.h"
#include "crypto/thread_shared.h"
#include "crypto/udp_cipher.h"
#include "crypto/udp_packet.h"

namespace ss {
namespace {

// address + payload as one run: in place when they already are one (the usual case: both point
// into the datagram received), else copied to `out` at `offset`.
const uint8_t* contiguous(std::span<const uint8_t> address, std::span<const uint8_t> payload,
                          uint8_t* out, size_t offset) {
  if (address.empty() || address.data() + address.size() == payload.data()) {
    return address.empty() ? payload.data() : address.data();
  }
  std::memmove(out + offset + address.size(), payload.data(), payload.size());
  std::memcpy(out + offset, address.data(), address.size());
  return out + offset;
}

// A plaintext request or response: the address header, then the payload.
UdpStatus split(const uint8_t* pt, size_t n, UdpPacket& result) {
  const size_t alen = udp_address_header_len(pt, n);
  if (alen == 0) return {UdpDrop::Malformed};
  result.address = {pt, alen};
  result.payload = {pt + alen, n - alen};
  return {};
}

// Transform of one packet: classic AEAD with the master key, or none.
struct PacketCodec {
  std::optional<Aead> aead;
  std::span<const uint8_t> key;

  size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
              std::span<uint8_t> out) {
    const size_t n = address.size() + payload.size();
    if (!aead) {
      if (out.size() < n) return 0;
      const uint8_t* pt = contiguous(address, payload, out.data(), 0);
      if (pt != out.data()) std::memmove(out.data(), pt, n);
      return n;
    }
    const CipherSpec& spec = aead->spec();
    if (out.size() < udp_sealed_size(spec, n)) return 0;
    const uint8_t* pt = contiguous(address, payload, out.data(), spec.salt_len);
    return udp_seal(*aead, key, pt, n, out.data());
  }

  UdpStatus open(std::span<const uint8_t> packet, std::span<uint8_t> out, UdpPacket& result) {
    if (out.size() < packet.size()) return {UdpDrop::Auth};
    size_t n = packet.size();
    if (!aead) {
      std::memmove(out.data(), packet.data(), n);
    } else {
      std::optional<size_t> m = udp_open(*aead, key, packet.data(), packet.size(), out.data());
      if (!m) return {UdpDrop::Auth};
      n = *m;
    }
    return split(out.data(), n, result);
  }
};

class Suite;

class ClientSession final : public UdpClientSession {
 public:
  explicit ClientSession(const Suite& suite);
  size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
              std::span<uint8_t> out) override {
    const size_t n = codec_->seal(address, payload, out);
    if (n != 0 && codec_->aead) {
      own_[next_++ % kOwnSalts] = fingerprint(out.data());
      if (used_ < kOwnSalts) ++used_;
    }
    return n;
  }
  UdpStatus open(std::span<const uint8_t> packet, std::span<uint8_t> out,
                 UdpPacket& result) override {
    UdpStatus st = codec_->open(packet, out, result);
    if (st.ok() && codec_->aead) {
      const uint32_t f = fingerprint(packet.data());
      for (size_t i = 0; i < used_; ++i) {
        if (own_[i] == f) return {UdpDrop::Replay};  // our own request sent back
      }
    }
    return st;
  }

 private:
  static constexpr uint32_t kOwnSalts = 64;
  // The salt's first 4 bytes (every classic salt has at least 16).
  static uint32_t fingerprint(const uint8_t* salt) {
    uint32_t f;
    std::memcpy(&f, salt, sizeof f);
    return f;
  }
  // Shared with the thread's other sessions of the suite: a codec keeps nothing between packets
  // (each is keyed by its own salt), and one per association would cost ~1 KiB of cipher context.
  std::shared_ptr<PacketCodec> codec_;
  std::array<uint32_t, kOwnSalts> own_{};
  uint32_t next_ = 0;
  uint32_t used_ = 0;
};

// A session of the server opener: seals with the opener's codec (same worker, outlives it).
class ServerSession final : public UdpServerSession {
 public:
  explicit ServerSession(PacketCodec& codec) : codec_(codec) {}
  size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
              std::span<uint8_t> out) override {
    return codec_.seal(address, payload, out);
  }

 private:
  PacketCodec& codec_;
};

class ServerOpener final : public UdpServerOpener {
 public:
  explicit ServerOpener(const Suite& suite);
  UdpStatus open_header(std::span<const uint8_t> packet, std::span<uint8_t> out,
                        UdpSessionId& id) override {
    id = UdpSessionId{};
    last_ = codec_.open(packet, out, opened_);
    return last_;
  }
  UdpStatus open_body(UdpServerSession* session, UdpPacket& result,
                      std::unique_ptr<UdpServerSession>& created) override {
    if (!last_.ok()) return last_;
    result = opened_;
    if (session == nullptr) created = std::make_unique<ServerSession>(codec_);
    return {};
  }

 private:
  // The per-association sessions seal with this codec too; it lives as long as the worker.
  PacketCodec codec_;
  UdpStatus last_;
  UdpPacket opened_;
};

class Suite final : public UdpCipherSuite {
 public:
  Suite(const CipherSpec* spec, std::span<const uint8_t> key)
      : spec_(spec), key_(key.begin(), key.end()) {}
  size_t max_overhead() const override {
    return spec_ == nullptr ? 0 : spec_->salt_len + spec_->tag_len;
  }
  std::unique_ptr<UdpClientSession> client_session() const override {
    return std::make_unique<ClientSession>(*this);
  }
  std::unique_ptr<UdpServerOpener> server_opener() const override {
    return std::make_unique<ServerOpener>(*this);
  }
  PacketCodec codec() const {
    PacketCodec c;
    if (spec_ != nullptr) c.aead.emplace(*spec_);
    c.key = key_;
    return c;
  }
  // This thread's codec for the suite's client sessions.
  std::shared_ptr<PacketCodec> thread_codec() const {
    return thread_shared<PacketCodec>(id_,
                                      [this] { return std::make_shared<PacketCodec>(codec()); });
  }

 private:
  const CipherSpec* spec_;
  std::vector<uint8_t> key_;
  const uint64_t id_ = next_thread_shared_owner();
};

ClientSession::ClientSession(const Suite& suite) : codec_(suite.thread_codec()) {}
ServerOpener::ServerOpener(const Suite& suite) : codec_(suite.codec()) {}

// ---- several users by key trial ------------------------------------------------------------

struct TrialUsers {
  const CipherSpec* spec;
  std::vector<TrialUser> users;
  ~TrialUsers() {
    for (TrialUser& u : users) secure_zero(u.key);
  }
};

// An association of one user: seals its responses with that user's key.
class UserSession final : public UdpServerSession {
 public:
  UserSession(Aead& aead, const TrialUser& user, uint32_t index)
      : aead_(aead), user_(user), index_(index) {}
  size_t seal(std::span<const uint8_t> address, std::span<const uint8_t> payload,
              std::span<uint8_t> out) override {
    const size_t n = address.size() + payload.size();
    if (out.size() < udp_sealed_size(aead_.spec(), n)) return 0;
    const uint8_t* pt = contiguous(address, payload, out.data(), aead_.spec().salt_len);
    return udp_seal(aead_, user_.key, pt, n, out.data());
  }
  std::string_view user() const override { return user_.name; }
  uint32_t index() const { return index_; }

 private:
  Aead& aead_;  // the opener's: same worker, outlives the session
  const TrialUser& user_;
  uint32_t index_;
};

class TrialServerOpener final : public UdpServerOpener {
 public:
  explicit TrialServerOpener(std::shared_ptr<const TrialUsers> users)
      : users_(std::move(users)), aead_(*users_->spec), order_(users_->users.size()) {}
  void set_sender(std::span<const uint8_t, 16> ip) override {
    std::copy(ip.begin(), ip.end(), ip_.begin());
  }
  UdpStatus open_header(std::span<const uint8_t> packet, std::span<uint8_t> out,
                        UdpSessionId& id) override {
    // Nothing to authenticate before the association is known: its key, or trial.
    id = UdpSessionId{};
    packet_ = packet;
    out_ = out;
    return out.size() < packet.size() ? UdpStatus{UdpDrop::Auth} : UdpStatus{};
  }
  UdpStatus open_body(UdpServerSession* session, UdpPacket& result,
                      std::unique_ptr<UdpServerSession>& created) override {
    const std::vector<TrialUser>& users = users_->users;
    std::optional<size_t> n;
    auto open = [&](uint32_t u) {
      n = udp_open(aead_, users[u].key, packet_.data(), packet_.size(), out_.data());
      return n.has_value();
    };
    if (session != nullptr) {
      // A known association keeps its key: no trial.
      if (!open(static_cast<UserSession*>(session)->index())) return {UdpDrop::Auth};
      return split(out_.data(), *n, result);
    }
    const long u = order_.find(ip_, open);
    if (u < 0) return {UdpDrop::Auth};
    UdpStatus st = split(out_.data(), *n, result);
    if (!st.ok()) return st;
    order_.used(ip_, static_cast<uint32_t>(u));
    created = std::make_unique<UserSession>(aead_, users[static_cast<size_t>(u)],
                                            static_cast<uint32_t>(u));
    return {};
  }

 private:
  std::shared_ptr<const TrialUsers> users_;
  Aead aead_;            // scratch, re-keyed per packet; the sessions seal with it too
  KeyTrialOrder order_;  // this worker's
  KeyTrialOrder::Ip ip_{};
  std::span<const uint8_t> packet_;
  std::span<uint8_t> out_;
};

class TrialSuite final : public UdpCipherSuite {
 public:
  explicit TrialSuite(std::shared_ptr<const TrialUsers> users) : users_(std::move(users)) {}
  size_t max_overhead() const override { return users_->spec->salt_len + users_->spec->tag_len; }
  // Server side only.
  std::unique_ptr<UdpClientSession> client_session() const override { return nullptr; }
  std::unique_ptr<UdpServerOpener> server_opener() const override {
    return std::make_unique<TrialServerOpener>(users_);
  }

 private:
  std::shared_ptr<const TrialUsers> users_;
};

}  // namespace

std::shared_ptr<const UdpCipherSuite> make_classic_users_udp_suite(const CipherSpec& spec,
                                                                   std::vector<TrialUser> users) {
  auto u = std::make_shared<TrialUsers>();
  u->spec = &spec;
  u->users = std::move(users);
  return std::make_shared<TrialSuite>(std::move(u));
}

std::shared_ptr<const UdpCipherSuite> make_classic_udp_suite(const CipherSpec& spec,
                                                             std::span<const uint8_t> master_key) {
  return std::make_shared<Suite>(&spec, master_key);
}

std::shared_ptr<const UdpCipherSuite> make_none_udp_suite() {
  return std::make_shared<Suite>(nullptr, std::span<const uint8_t>{});
}

}  // namespace ss
