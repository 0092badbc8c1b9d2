// The classic AEAD suite: the same framing both ways (StreamEncryptor/StreamDecryptor). The
// client's request is the address header sealed as one chunk and the first payload as the next,
// written together in one flight.

#include <vector>

#include "crypto/kdf.h"
#include "crypto/tcp_cipher.h"

namespace ss {
namespace {

class ClassicSealer final : public TcpSealer {
 public:
  ClassicSealer(const CipherSpec& spec, std::span<const uint8_t> key) : enc_(spec, key) {}
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
  ClassicOpener(const CipherSpec& spec, std::span<const uint8_t> key) : dec_(spec, key) {}
  size_t max_output(size_t n) const override { return dec_.max_output(n); }
  Result feed(const uint8_t* in, size_t n, uint8_t* out) override {
    auto r = dec_.feed(in, n, out);
    return {r.status, r.produced};
  }
  size_t buffered() const override { return dec_.buffered(); }
  bool authenticated() const override { return dec_.authenticated(); }

 private:
  StreamDecryptor dec_;
};

class ClassicSuite final : public TcpCipherSuite {
 public:
  ClassicSuite(const CipherSpec& spec, std::span<const uint8_t> key)
      : spec_(spec), key_(key.begin(), key.end()) {}
  ~ClassicSuite() override { secure_zero(key_); }
  std::unique_ptr<TcpSealer> client_sealer() const override {
    return std::make_unique<ClassicSealer>(spec_, key_);
  }
  std::unique_ptr<TcpOpener> client_opener(const TcpSealer&) const override {
    return std::make_unique<ClassicOpener>(spec_, key_);
  }
  std::unique_ptr<TcpOpener> server_opener() const override {
    return std::make_unique<ClassicOpener>(spec_, key_);
  }
  std::unique_ptr<TcpSealer> server_sealer(const TcpOpener&) const override {
    return std::make_unique<ClassicSealer>(spec_, key_);
  }

 private:
  const CipherSpec& spec_;
  std::vector<uint8_t> key_;
};

}  // namespace

std::unique_ptr<TcpCipherSuite> make_classic_suite(const CipherSpec& spec,
                                                   std::span<const uint8_t> master_key) {
  return std::make_unique<ClassicSuite>(spec, master_key);
}

}  // namespace ss
