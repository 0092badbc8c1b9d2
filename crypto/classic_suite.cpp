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
#include <vector>

#include "crypto/kdf.h"
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

}  // namespace

std::unique_ptr<TcpCipherSuite> make_classic_suite(const CipherSpec& spec,
                                                   std::span<const uint8_t> master_key,
                                                   std::shared_ptr<ReplayFilter> replay) {
  return std::make_unique<ClassicSuite>(spec, master_key, std::move(replay));
}

}  // namespace ss
