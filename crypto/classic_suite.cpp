// The classic AEAD suite: the same framing both ways (StreamEncryptor/StreamDecryptor). The
// client's request is the address header sealed as one chunk and the first payload as the next,
// written together in one flight.
//
// Replay filter (optional, shared by every connection of the suite, which is one side's): each
// sealer records its own salt, and each opener checks and records the peer's salt once the first
// chunk authenticated (SIP004 says nothing about replays; this is shadowsocks-libev's and
// outline-ss-server's defence). So a server refuses a replayed request and its own responses sent
// back to it, and a client (ss-local) refuses a replayed response, a response salt used twice and
// its own request reflected back. An opener made for a request (client side) also compares the
// peer's salt with that request's exactly, so reflection is refused even with no filter.

#include <algorithm>
#include <array>
#include <optional>
#include <vector>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/key_trial.h"
#include "crypto/replay_filter.h"
#include "crypto/tcp_cipher.h"

namespace ss {
namespace {

class ClassicSealer final : public TcpSealer {
 public:
  ClassicSealer(const CipherSpec& spec, std::span<const uint8_t> key, ReplayFilter* replay)
      : enc_(spec, key) {
    if (replay != nullptr) replay->insert(enc_.salt());
  }
  size_t max_sealed_size(size_t n) const override {
    return enc_.sealed_size(kMaxChunkPayload) + enc_.sealed_size(n == 0 ? 1 : n);
  }
  size_t seal(const uint8_t* pt, size_t n, uint8_t* out) override { return enc_.seal(pt, n, out); }
  std::span<const uint8_t> salt() const { return enc_.salt(); }
  size_t seal_request(const uint8_t* addr, size_t addr_len, const uint8_t* pt, size_t n,
                      uint8_t* out) override {
    size_t len = enc_.seal(addr, addr_len, out);
    if (len == 0) return 0;
    if (n > 0) {
      size_t more = enc_.seal(pt, n, out + len);
      if (more == 0) return 0;
      len += more;
    }
    return len;
  }

 private:
  StreamEncryptor enc_;
};

class ClassicOpener final : public TcpOpener {
 public:
  // `own` is the salt of the request this opener answers (client side); empty otherwise.
  ClassicOpener(const CipherSpec& spec, std::span<const uint8_t> key, ReplayFilter* replay,
                std::span<const uint8_t> own = {})
      : dec_(spec, key), replay_(replay), own_len_(std::min(own.size(), own_.size())) {
    std::copy_n(own.begin(), own_len_, own_.begin());
  }
  size_t max_output(size_t n) const override { return dec_.max_output(n); }
  Result feed(const uint8_t* in, size_t n, uint8_t* out) override {
    if (replayed_) return {DecryptStatus::Error, 0};
    bool was_authenticated = dec_.authenticated();
    auto r = dec_.feed(in, n, out);
    // The salt counts only once a whole chunk proved the sender has the key: an unauthenticated
    // salt must never be recorded, or anyone could block a genuine client by sending its salt.
    if (!was_authenticated && dec_.authenticated()) {
      const std::span<const uint8_t> salt = dec_.salt();
      if (own_len_ != 0 && salt.size() == own_len_ &&
          std::equal(salt.begin(), salt.end(), own_.begin())) {
        replayed_ = reflected_ = true;
        return {DecryptStatus::Error, 0};
      }
      if (replay_ != nullptr && replay_->check_and_insert(salt)) {
        replayed_ = true;
        return {DecryptStatus::Error, 0};
      }
    }
    return {r.status, r.produced};
  }
  size_t buffered() const override { return dec_.buffered(); }
  bool authenticated() const override { return dec_.authenticated(); }
  std::string_view failure() const override {
    if (reflected_) return "our own request's salt sent back (a reflection)";
    if (replayed_) return "replayed salt";
    return dec_.authenticated() ? "bad tag" : "bad tag on the first chunk";
  }

 private:
  StreamDecryptor dec_;
  ReplayFilter* replay_;
  std::array<uint8_t, kMaxSaltLen> own_{};
  size_t own_len_;
  bool replayed_ = false;
  bool reflected_ = false;
};

class ClassicSuite final : public TcpCipherSuite {
 public:
  ClassicSuite(const CipherSpec& spec, std::span<const uint8_t> key,
               std::shared_ptr<ReplayFilter> replay)
      : spec_(spec), key_(key.begin(), key.end()), replay_(std::move(replay)) {}
  ~ClassicSuite() override { secure_zero(key_); }
  std::unique_ptr<TcpSealer> client_sealer() const override {
    return std::make_unique<ClassicSealer>(spec_, key_, replay_.get());
  }
  std::unique_ptr<TcpOpener> client_opener(const TcpSealer& request) const override {
    const auto* sealer = dynamic_cast<const ClassicSealer*>(&request);
    return std::make_unique<ClassicOpener>(spec_, key_, replay_.get(),
                                           sealer ? sealer->salt() : std::span<const uint8_t>{});
  }
  std::unique_ptr<TcpOpener> server_opener() const override {
    return std::make_unique<ClassicOpener>(spec_, key_, replay_.get());
  }
  std::unique_ptr<TcpSealer> server_sealer(const TcpOpener&) const override {
    return std::make_unique<ClassicSealer>(spec_, key_, replay_.get());
  }

 private:
  const CipherSpec& spec_;
  std::vector<uint8_t> key_;
  std::shared_ptr<ReplayFilter> replay_;
};

// ---- several users by key trial ------------------------------------------------------------
//
// The first flight opens with [salt][sealed length (2) + tag]: enough to tell whether a key is
// the client's. Each candidate costs one HKDF-SHA1 subkey and one AEAD open of 2 + tag bytes at
// nonce 0; the matched user's ordinary ClassicOpener then takes the stream from its first byte
// (re-opening those 2 bytes once), so the replay filter sees the salt only after that key
// authenticated a whole chunk, exactly as with one key.

struct TrialState final : TcpServerState {
  TrialState(const CipherSpec& spec, size_t users) : order(users), aead(spec) {}
  KeyTrialOrder order;
  Aead aead;  // the trials' scratch context, re-keyed per candidate
};

class TrialOpener final : public TcpOpener {
 public:
  TrialOpener(const CipherSpec& spec, const std::vector<TrialUser>& users,
              std::shared_ptr<TrialState> state, std::span<const uint8_t, 16> ip,
              ReplayFilter* replay)
      : spec_(spec), users_(users), state_(std::move(state)), replay_(replay) {
    std::copy(ip.begin(), ip.end(), ip_.begin());
  }
  size_t max_output(size_t n) const override {
    return opener_ ? opener_->max_output(n) : n + head_len_;
  }
  Result feed(const uint8_t* in, size_t n, uint8_t* out) override {
    if (opener_) return noted(opener_->feed(in, n, out));
    if (failed_) return {DecryptStatus::Error, 0};
    const size_t need = spec_.salt_len + 2 + spec_.tag_len;
    const size_t take = std::min(n, need - head_len_);
    std::copy_n(in, take, head_.begin() + static_cast<std::ptrdiff_t>(head_len_));
    head_len_ += take;
    if (head_len_ < need) return {DecryptStatus::NeedMore, 0};
    const long user = find_user();
    if (user < 0) {
      failed_ = true;
      return {DecryptStatus::Error, 0};
    }
    user_ = static_cast<size_t>(user);
    opener_.emplace(spec_, users_[user_].key, replay_);
    Result r = opener_->feed(head_.data(), head_len_, out);
    if (r.status == DecryptStatus::Error || take == n) return r;
    Result more = opener_->feed(in + take, n - take, out + r.produced);
    if (more.status == DecryptStatus::Error) return more;
    return noted({more.produced + r.produced > 0 ? DecryptStatus::Ok : DecryptStatus::NeedMore,
                  r.produced + more.produced});
  }
  size_t buffered() const override { return opener_ ? opener_->buffered() : head_len_; }
  bool authenticated() const override { return opener_ && opener_->authenticated(); }
  std::string_view failure() const override {
    if (opener_) return opener_->failure();
    return "no user's key opens the first chunk";
  }
  std::string_view user() const override {
    return opener_ ? std::string_view(users_[user_].name) : std::string_view{};
  }
  const std::vector<uint8_t>& key() const { return users_[user_].key; }

 private:
  // Per candidate: its subkey for this salt (the salt's HMAC pads hashed once for all), then the
  // sealed length opened under it.
  long find_user() {
    const SubkeyDeriver derive(std::span<const uint8_t>(head_.data(), spec_.salt_len));
    const uint8_t* sealed = head_.data() + spec_.salt_len;
    const std::array<uint8_t, kMaxNonceLen> zero{};
    std::array<uint8_t, kMaxKeyLen> subkey{};
    const std::span<uint8_t> sub(subkey.data(), spec_.key_len);
    uint8_t len[2 + 32];
    const long found = state_->order.find(ip_, [&](uint32_t u) {
      derive.derive(users_[u].key, sub);
      return aead_open_once(state_->aead, sub, zero.data(), sealed, 2 + spec_.tag_len, len);
    });
    secure_zero(sub);
    return found;
  }
  // The order learns a key once its whole first chunk authenticated (not when a probe copied a
  // genuine head and then failed).
  Result noted(Result r) {
    if (!noted_ && r.status != DecryptStatus::Error && opener_->authenticated()) {
      state_->order.used(ip_, static_cast<uint32_t>(user_));
      noted_ = true;
    }
    return r;
  }

  const CipherSpec& spec_;
  const std::vector<TrialUser>& users_;
  std::shared_ptr<TrialState> state_;
  ReplayFilter* replay_;
  KeyTrialOrder::Ip ip_{};
  std::array<uint8_t, kMaxSaltLen + 2 + 16> head_{};
  size_t head_len_ = 0;
  std::optional<ClassicOpener> opener_;
  size_t user_ = 0;
  bool failed_ = false;
  bool noted_ = false;
};

class TrialSuite final : public TcpCipherSuite {
 public:
  TrialSuite(const CipherSpec& spec, std::vector<TrialUser> users,
             std::shared_ptr<ReplayFilter> replay)
      : spec_(spec), users_(std::move(users)), replay_(std::move(replay)) {}
  ~TrialSuite() override {
    for (TrialUser& u : users_) secure_zero(u.key);
  }
  // Server side only: a client has one key (make_classic_suite).
  std::unique_ptr<TcpSealer> client_sealer() const override { return nullptr; }
  std::unique_ptr<TcpOpener> client_opener(const TcpSealer&) const override { return nullptr; }
  std::unique_ptr<TcpOpener> server_opener() const override {
    return server_opener_for(server_state(), std::array<uint8_t, 16>{});
  }
  std::shared_ptr<TcpServerState> server_state() const override {
    return std::make_shared<TrialState>(spec_, users_.size());
  }
  std::unique_ptr<TcpOpener> server_opener_for(const std::shared_ptr<TcpServerState>& state,
                                               std::span<const uint8_t, 16> ip) const override {
    auto trial = std::static_pointer_cast<TrialState>(state);
    return std::make_unique<TrialOpener>(spec_, users_, std::move(trial), ip, replay_.get());
  }
  std::unique_ptr<TcpSealer> server_sealer(const TcpOpener& request) const override {
    const auto* opener = dynamic_cast<const TrialOpener*>(&request);
    if (opener == nullptr || !opener->authenticated()) return nullptr;
    return std::make_unique<ClassicSealer>(spec_, opener->key(), replay_.get());
  }

 private:
  const CipherSpec& spec_;
  std::vector<TrialUser> users_;
  std::shared_ptr<ReplayFilter> replay_;
};

}  // namespace

std::unique_ptr<TcpCipherSuite> make_classic_users_suite(const CipherSpec& spec,
                                                         std::vector<TrialUser> users,
                                                         std::shared_ptr<ReplayFilter> replay) {
  return std::make_unique<TrialSuite>(spec, std::move(users), std::move(replay));
}

std::unique_ptr<TcpCipherSuite> make_classic_suite(const CipherSpec& spec,
                                                   std::span<const uint8_t> master_key,
                                                   std::shared_ptr<ReplayFilter> replay) {
  return std::make_unique<ClassicSuite>(spec, master_key, std::move(replay));
}

}  // namespace ss
