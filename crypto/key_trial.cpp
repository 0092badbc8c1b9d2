// Key trial's order (see key_trial.h): outline-ss-server's "most recently used from this IP,
// then most recently used overall", kept per worker.

#include "crypto/key_trial.h"

#include <algorithm>
#include <cstring>

#include "crypto/kdf.h"

namespace ss {

size_t KeyTrialOrder::IpHash::operator()(const Ip& ip) const {
  // Client IPs choose the buckets: a keyed mix (random seed per order) keeps them from aiming at
  // one bucket.
  uint64_t a, b;
  std::memcpy(&a, ip.data(), 8);
  std::memcpy(&b, ip.data() + 8, 8);
  uint64_t z = a ^ seed;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z ^= b + 0x9e3779b97f4a7c15ULL + (z << 6) + (z >> 2);
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<size_t>(z ^ (z >> 31));
}

namespace {
uint64_t random_seed() {
  uint64_t s;
  random_bytes({reinterpret_cast<uint8_t*>(&s), sizeof s});
  return s;
}
}  // namespace

KeyTrialOrder::KeyTrialOrder(size_t users, size_t max_ips)
    : next_(users, kNone),
      prev_(users, kNone),
      ips_(16, IpHash{random_seed()}),
      max_ips_(std::max<size_t>(1, max_ips)) {
  // Configured order at first.
  for (size_t i = 0; i < users; ++i) {
    next_[i] = i + 1 < users ? static_cast<uint32_t>(i + 1) : kNone;
    prev_[i] = i > 0 ? static_cast<uint32_t>(i - 1) : kNone;
  }
  head_ = users > 0 ? 0 : kNone;
}

void KeyTrialOrder::used(const Ip& ip, uint32_t user) {
  if (user >= next_.size()) return;
  // Overall: move to the front.
  if (head_ != user) {
    if (prev_[user] != kNone) next_[prev_[user]] = next_[user];
    if (next_[user] != kNone) prev_[next_[user]] = prev_[user];
    prev_[user] = kNone;
    next_[user] = head_;
    if (head_ != kNone) prev_[head_] = user;
    head_ = user;
  }
  // This IP: to the front of its few, the IP to the front of the ages.
  auto it = ips_.find(ip);
  if (it == ips_.end()) {
    if (ips_.size() >= max_ips_) {
      ips_.erase(ages_.back());
      ages_.pop_back();
    }
    ages_.push_front(ip);
    it = ips_.emplace(ip, Recent{}).first;
    it->second.age = ages_.begin();
  } else {
    ages_.splice(ages_.begin(), ages_, it->second.age);
  }
  Recent& r = it->second;
  size_t at = std::find(r.recent.begin(), r.recent.begin() + r.count, user) - r.recent.begin();
  if (at == r.count) {
    if (r.count < kPerIp) ++r.count;
    at = r.count - 1;
  }
  std::move_backward(r.recent.begin(), r.recent.begin() + at, r.recent.begin() + at + 1);
  r.recent[0] = user;
}

std::vector<uint32_t> KeyTrialOrder::order(const Ip& ip) const {
  std::vector<uint32_t> out;
  find(ip, [&out](uint32_t u) {
    out.push_back(u);
    return false;
  });
  return out;
}

KeyTrialOrder::Ip trial_ip_v4(const uint8_t* v4) {
  KeyTrialOrder::Ip ip{};
  ip[10] = ip[11] = 0xff;
  std::memcpy(ip.data() + 12, v4, 4);
  return ip;
}

KeyTrialOrder::Ip trial_ip_v6(const uint8_t* v6) {
  KeyTrialOrder::Ip ip;
  std::memcpy(ip.data(), v6, 16);
  return ip;
}

}  // namespace ss
