#pragma once
// Little-endian writing and bounds-checked reading of fixed-size integers, for the replay state
// file (crypto/replay_filter, crypto/salt_pool, relay/replay_state). A reader that runs past its
// end stays failed and returns zeros, so a decoder checks ok() once at the end of a section.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace ss {

inline void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  put_le(out, v, 4);
}
inline void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  put_le(out, v, 8);
}
inline void put_bytes(std::vector<uint8_t>& out, std::span<const uint8_t> b) {
  out.insert(out.end(), b.begin(), b.end());
}

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> in) : in_(in) {}
  uint64_t le(int bytes) {
    if (!have(static_cast<size_t>(bytes))) return 0;
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{in_[pos_ + static_cast<size_t>(i)]} << (8 * i);
    pos_ += static_cast<size_t>(bytes);
    return v;
  }
  uint32_t u32() { return static_cast<uint32_t>(le(4)); }
  uint64_t u64() { return le(8); }
  // The next n bytes (empty, and failed, if fewer are left).
  std::span<const uint8_t> bytes(size_t n) {
    if (!have(n)) return {};
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  void copy(std::span<uint8_t> out) {
    auto s = bytes(out.size());
    if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  }
  size_t left() const { return failed_ ? 0 : in_.size() - pos_; }
  bool ok() const { return !failed_; }
  bool done() const { return !failed_ && pos_ == in_.size(); }

 private:
  bool have(size_t n) {
    if (failed_ || in_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    return true;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace ss
