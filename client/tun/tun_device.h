#pragma once
// ss-local's TUN device (Linux /dev/net/tun, IFF_TUN | IFF_NO_PI): created, addressed and brought
// up at start-up (ioctl, no `ip` command), with the kernel-terminated TCP NAT whose listener
// lives on the device's own address. Shared by the worker that reads the packets (tun_engine.h)
// and the listeners' inbounds (tun_inbound.h), which only look the NAT up.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/tun/packet.h"
#include "client/tun/tcp_nat.h"
#include "client/tun/tun_dns.h"
#include "relay/address.h"

namespace ss {

// "10.255.0.1/24": the device's own address and prefix length. nullopt if malformed, not IPv4,
// or leaving no spare address in the prefix (a /31 or /32).
struct TunCidr {
  IpBytes own;
  IpBytes spare;  // the NAT's source address: own + 1, or own - 1 at the top of the prefix
  int prefix = 0;
};
std::optional<TunCidr> parse_tun_cidr(const std::string& text);
// "fd55::1/64": the same for IPv6 (a prefix of /1 to /126).
std::optional<TunCidr> parse_tun_cidr6(const std::string& text);

class TunDevice {
 public:
  // Creates (or attaches to) the device `name`, gives it cidr's address, MTU `mtu`, brings it up,
  // and picks the NAT listener's port if `port` is 0. A NAT entry idle for `idle_ms` may be
  // reclaimed (keep it above the relay's idle timeout). nullptr with the reason in *error.
  // cidr6: an IPv6 address/prefix too, or empty (the NAT listener then has the same port on
  // both addresses).
  // queues > 1: a multi-queue device (IFF_MULTI_QUEUE), one file descriptor per queue, so that
  // each worker reads its own; the kernel spreads flows over the queues by their hash.
  static std::shared_ptr<TunDevice> open(const std::string& name, const std::string& cidr,
                                         const std::string& cidr6, uint16_t port, uint64_t idle_ms,
                                         std::string* error, int queues = 1);
  ~TunDevice();
  TunDevice(const TunDevice&) = delete;
  TunDevice& operator=(const TunDevice&) = delete;

  int fd() const { return fd_; }
  // The queues' descriptors (queue 0 is fd()).
  int queues() const { return 1 + static_cast<int>(extra_fds_.size()); }
  int queue_fd(int i) const { return i == 0 ? fd_ : extra_fds_[static_cast<size_t>(i - 1)]; }
  const std::string& name() const { return name_; }
  // The TCP listener's address: the device's own address and the NAT port.
  const IpEndpoint& listener() const { return listener_; }
  std::string listener_host() const;
  // The IPv6 listener's host, or empty without an IPv6 address.
  std::string listener6_host() const;
  // The NAT of an address family (4 or 6); null for IPv6 without an IPv6 address.
  TcpNat* tcp_nat(uint8_t version) { return version == 4 ? nat_.get() : nat6_.get(); }
  // The original destination of a connection the listener accepted from `peer`; nullopt if the
  // peer is not one of the NAT's sources.
  std::optional<Address> original_dst(const Address& peer) const;

  // DNS in tun mode (fake or relay), or null: set once at start-up, before the workers run.
  void set_dns(std::shared_ptr<TunDns> dns) { dns_ = std::move(dns); }
  TunDns* dns() const { return dns_.get(); }

  static constexpr int kMtu = 65535;

 private:
  TunDevice() = default;
  int fd_ = -1;
  std::vector<int> extra_fds_;  // queues 1..n-1 of a multi-queue device
  std::string name_;
  IpEndpoint listener_;
  IpEndpoint listener6_;
  std::unique_ptr<TcpNat> nat_;
  std::unique_ptr<TcpNat> nat6_;
  std::shared_ptr<TunDns> dns_;
};

// IpEndpoint <-> Address (IPv4 and IPv6 only).
Address address_of(const IpEndpoint& e);
std::optional<IpEndpoint> endpoint_of(const Address& a);

}  // namespace ss
