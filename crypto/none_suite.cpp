// The "none" method: the TCP stream is [address header][payload...] in the clear, both ways
// carrying bytes unchanged. It exists to measure the relay's own cost (the benchmark's ceiling).

#include "crypto/none_suite.h"

#include <cstring>

namespace ss {
namespace {

class PlainSealer final : public TcpSealer {
 public:
  size_t max_sealed_size(size_t n) const override { return n + 259; }
  size_t seal(const uint8_t* pt, size_t n, uint8_t* out) override {
    if (out != pt) std::memcpy(out, pt, n);
    return n;
  }
  size_t seal_request(const uint8_t* addr, size_t addr_len, const uint8_t* pt, size_t n,
                      uint8_t* out) override {
    std::memcpy(out, addr, addr_len);
    if (n > 0) std::memcpy(out + addr_len, pt, n);
    return addr_len + n;
  }
};

class PlainOpener final : public TcpOpener {
 public:
  size_t max_output(size_t n) const override { return n; }
  Result feed(const uint8_t* in, size_t n, uint8_t* out) override {
    if (out != in) std::memcpy(out, in, n);
    return {n > 0 ? DecryptStatus::Ok : DecryptStatus::NeedMore, n};
  }
  size_t buffered() const override { return 0; }
  bool authenticated() const override { return true; }
};

class NoneSuite final : public TcpCipherSuite {
 public:
  std::unique_ptr<TcpSealer> client_sealer() const override {
    return std::make_unique<PlainSealer>();
  }
  std::unique_ptr<TcpOpener> client_opener(const TcpSealer&) const override {
    return std::make_unique<PlainOpener>();
  }
  std::unique_ptr<TcpOpener> server_opener() const override {
    return std::make_unique<PlainOpener>();
  }
  std::unique_ptr<TcpSealer> server_sealer(const TcpOpener&) const override {
    return std::make_unique<PlainSealer>();
  }
};

}  // namespace

std::unique_ptr<TcpCipherSuite> make_none_suite() {
  return std::make_unique<NoneSuite>();
}

}  // namespace ss
