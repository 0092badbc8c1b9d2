#pragma once
// Key trial for classic-AEAD users on one port (outline-ss-server's scheme): a classic stream or
// packet names no user, so the server tries each user's key on the first chunk until one opens
// it. The order makes the usual case one try: first the users that most recently succeeded from
// the client's IP, then every user, most recently successful first.
//
// A KeyTrialOrder belongs to one worker (one event-loop thread): it is read and updated without
// any lock, and each worker learns its own order (the kernel spreads a client's connections over
// the workers, so each learns the same popular keys soon enough).

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/cipher_spec.h"

namespace ss {

// A key-trial user: a name for logs and metrics, and the classic master key.
struct TrialUser {
  std::string name;
  std::vector<uint8_t> key;
};

class KeyTrialOrder {
 public:
  using Ip = std::array<uint8_t, 16>;  // IPv6, or IPv4-mapped IPv6
  // Users the order remembers per IP, and IPs it remembers (least recently seen forgotten).
  static constexpr size_t kPerIp = 4;
  static constexpr size_t kDefaultMaxIps = 16384;

  explicit KeyTrialOrder(size_t users, size_t max_ips = kDefaultMaxIps);

  // Calls try_user(index) for every user in trial order until it returns true. Returns the index
  // it accepted, or -1 if none. Allocates nothing.
  template <typename F>
  long find(const Ip& ip, F&& try_user) const {
    std::array<uint32_t, kPerIp> first{};
    size_t nfirst = 0;
    if (auto it = ips_.find(ip); it != ips_.end()) {
      nfirst = it->second.count;
      first = it->second.recent;
    }
    for (size_t i = 0; i < nfirst; ++i) {
      if (try_user(first[i])) return static_cast<long>(first[i]);
    }
    for (uint32_t u = head_; u != kNone; u = next_[u]) {
      bool tried = false;
      for (size_t i = 0; i < nfirst && !tried; ++i) tried = first[i] == u;
      if (!tried && try_user(u)) return static_cast<long>(u);
    }
    return -1;
  }
  // Records that `user` succeeded from `ip`: first for this IP, and first overall.
  void used(const Ip& ip, uint32_t user);

  // The whole order for `ip` (tests).
  std::vector<uint32_t> order(const Ip& ip) const;
  size_t ips() const { return ips_.size(); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  struct IpHash {
    uint64_t seed;
    size_t operator()(const Ip& ip) const;
  };
  struct Recent {
    std::array<uint32_t, kPerIp> recent{};
    size_t count = 0;
    std::list<Ip>::iterator age;  // in ages_
  };
  // The overall most-recently-used list: a doubly linked list over user indices.
  std::vector<uint32_t> next_, prev_;
  uint32_t head_ = kNone;
  // Per IP, bounded: ages_ holds the IPs, most recently seen first.
  std::unordered_map<Ip, Recent, IpHash> ips_;
  std::list<Ip> ages_;
  size_t max_ips_;
};

// The IP of a sockaddr-like address as a trial key: IPv4 as IPv4-mapped IPv6.
KeyTrialOrder::Ip trial_ip_v4(const uint8_t* v4);
KeyTrialOrder::Ip trial_ip_v6(const uint8_t* v6);

}  // namespace ss
