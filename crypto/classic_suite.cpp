// The classic AEAD suite: the same framing both ways (StreamEncryptor/StreamDecryptor). The
// client's request is the address header sealed as one chunk and the first payload as the next,
// written together in one flight.

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
  ClassicOpener(const CipherSpec& spec, std::span<const uint8_t> key, ReplayFilter* replay)
      : dec_(spec, key), replay_(replay) {}
  size_t max_output(size_t n) const override { return dec_.max_output(n); }
  Result feed(const uint8_t* in, size_t n, uint8_t* out) override {
    if (replayed_) return {DecryptStatus::Error, 0};
    bool was_authenticated = dec_.authenticated();
    auto r = dec_.feed(in, n, out);
    // The salt counts only once a whole chunk proved the sender has the key: an unauthenticated
    // salt must never be recorded, or anyone could block a genuine client by sending its salt.
    if (replay_ != nullptr && !was_authenticated && dec_.authenticated() &&
        replay_->check_and_insert(dec_.salt())) {
      replayed_ = true;
      return {DecryptStatus::Error, 0};
    }
    return {r.status, r.produced};
  }
  size_t buffered() const override { return dec_.buffered(); }
  bool authenticated() const override { return dec_.authenticated(); }
  std::string_view failure() const override {
    if (replayed_) return "replayed salt";
    return dec_.authenticated() ? "bad tag" : "bad tag on the first chunk";
  }

 private:
  StreamDecryptor dec_;
  ReplayFilter* replay_;
  bool replayed_ = false;
};

class ClassicSuite final : public TcpCipherSuite {
 public:
  ClassicSuite(const CipherSpec& spec, std::span<const uint8_t> key,
               std::shared_ptr<ReplayFilter> replay)
      : spec_(spec), key_(key.begin(), key.end()), replay_(std::move(replay)) {}
  ~ClassicSuite() override { secure_zero(key_); }
  std::unique_ptr<TcpSealer> client_sealer() const override {
    return std::make_unique<ClassicSealer>(spec_, key_, nullptr);
  }
  std::unique_ptr<TcpOpener> client_opener(const TcpSealer&) const override {
    return std::make_unique<ClassicOpener>(spec_, key_, nullptr);
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
