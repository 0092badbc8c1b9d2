// Creating a TUN device on Linux (Documentation/networking/tuntap.rst): open /dev/net/tun,
// TUNSETIFF with IFF_TUN | IFF_NO_PI (bare IP packets), then the classic interface ioctls on an
// AF_INET socket: SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFMTU, SIOCSIFFLAGS (IFF_UP). Setting the
// address installs the prefix's route through the device, which the NAT needs for its spare
// address.

#include "client/tun/tun_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ss {

namespace {

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

uint32_t load32(const uint8_t* b) {
  return (static_cast<uint32_t>(b[0]) << 24) | (static_cast<uint32_t>(b[1]) << 16) |
         (static_cast<uint32_t>(b[2]) << 8) | b[3];
}

IpBytes ip4(uint32_t v) {
  IpBytes r;
  r.len = 4;
  r.b[0] = static_cast<uint8_t>(v >> 24);
  r.b[1] = static_cast<uint8_t>(v >> 16);
  r.b[2] = static_cast<uint8_t>(v >> 8);
  r.b[3] = static_cast<uint8_t>(v);
  return r;
}

bool set_addr(int sock, const char* ifname, unsigned long req, uint32_t v, std::string* error,
              const char* what) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(v);
  std::memcpy(&ifr.ifr_addr, &sin, sizeof sin);
  if (ioctl(sock, req, &ifr) != 0) {
    *error = errno_text(what);
    return false;
  }
  return true;
}

}  // namespace

std::optional<TunCidr> parse_tun_cidr(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const std::string host = text.substr(0, slash);
  const std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int prefix = std::stoi(len);
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1 || prefix < 1 || prefix > 30) return std::nullopt;
  const uint32_t own = ntohl(a.s_addr);
  const uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
  const uint32_t net = own & mask;
  const uint32_t bcast = net | ~mask;
  if (own == net || own == bcast) return std::nullopt;
  const uint32_t spare = own + 1 < bcast ? own + 1 : own - 1;
  if (spare == net) return std::nullopt;
  return TunCidr{ip4(own), ip4(spare), prefix};
}

std::optional<TunCidr> parse_tun_cidr6(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const int prefix = std::stoi(len);
  in6_addr a{};
  if (inet_pton(AF_INET6, text.substr(0, slash).c_str(), &a) != 1 || prefix < 1 || prefix > 126) {
    return std::nullopt;
  }
  TunCidr c;
  c.prefix = prefix;
  c.own.len = c.spare.len = 16;
  std::memcpy(c.own.b, &a, 16);
  // Whether two addresses share the prefix; whether the host part is all zeros.
  auto same_prefix = [prefix](const uint8_t* x, const uint8_t* y) {
    for (int bit = 0; bit < prefix; ++bit) {
      const int m = 0x80 >> (bit % 8);
      if ((x[bit / 8] & m) != (y[bit / 8] & m)) return false;
    }
    return true;
  };
  auto host_zero = [prefix](const uint8_t* x) {
    for (int bit = prefix; bit < 128; ++bit) {
      if ((x[bit / 8] & (0x80 >> (bit % 8))) != 0) return false;
    }
    return true;
  };
  if (host_zero(c.own.b)) return std::nullopt;
  std::memcpy(c.spare.b, c.own.b, 16);
  for (int i = 15; i >= 0 && ++c.spare.b[i] == 0; --i) {
  }
  if (!same_prefix(c.own.b, c.spare.b)) {
    std::memcpy(c.spare.b, c.own.b, 16);
    for (int i = 15; i >= 0 && c.spare.b[i]-- == 0; --i) {
    }
    if (host_zero(c.spare.b)) return std::nullopt;
  }
  return c;
}

Address address_of(const IpEndpoint& e) {
  Address a;
  a.type = e.ip.len == 4 ? Address::Type::IPv4 : Address::Type::IPv6;
  std::memcpy(a.ip.data(), e.ip.b, e.ip.len);
  a.port = e.port;
  return a;
}

std::optional<IpEndpoint> endpoint_of(const Address& a) {
  IpEndpoint e;
  if (a.type == Address::Type::IPv4) {
    e.ip.len = 4;
  } else if (a.type == Address::Type::IPv6) {
    e.ip.len = 16;
  } else {
    return std::nullopt;
  }
  std::memcpy(e.ip.b, a.ip.data(), e.ip.len);
  e.port = a.port;
  return e;
}

std::shared_ptr<TunDevice> TunDevice::open(const std::string& name, const std::string& cidr_text,
                                           const std::string& cidr6_text, uint16_t port,
                                           uint64_t idle_ms, std::string* error, int queues) {
  const std::optional<TunCidr> cidr = parse_tun_cidr(cidr_text);
  if (!cidr) {
    *error = "tun_interface_address: must be an IPv4 address with a prefix of /1 to /30, got \"" +
             cidr_text + "\"";
    return nullptr;
  }
  std::optional<TunCidr> cidr6;
  if (!cidr6_text.empty()) {
    cidr6 = parse_tun_cidr6(cidr6_text);
    if (!cidr6) {
      *error =
          "tun_interface_address: the IPv6 part must be an address with a prefix of /1 to "
          "/126, not the prefix's first address, got \"" +
          cidr6_text + "\"";
      return nullptr;
    }
  }
  if (name.empty() || name.size() >= IFNAMSIZ) {
    *error = "tun_interface_name: must be 1 to 15 characters, got \"" + name + "\"";
    return nullptr;
  }
  std::shared_ptr<TunDevice> dev(new TunDevice());
  dev->name_ = name;
  dev->fd_ = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (dev->fd_ < 0) {
    *error = errno_text("tun: /dev/net/tun");
    return nullptr;
  }
  ifreq ifr{};
  const short flags = static_cast<short>(IFF_TUN | IFF_NO_PI | (queues > 1 ? IFF_MULTI_QUEUE : 0));
  ifr.ifr_flags = flags;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(dev->fd_, TUNSETIFF, &ifr) != 0) {
    *error = errno_text("tun: TUNSETIFF (needs CAP_NET_ADMIN)");
    return nullptr;
  }
  for (int q = 1; q < queues; ++q) {  // the same device and flags: one more queue each
    const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      *error = errno_text("tun: /dev/net/tun");
      return nullptr;
    }
    dev->extra_fds_.push_back(fd);
    ifreq more{};
    more.ifr_flags = flags;
    std::strncpy(more.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &more) != 0) {
      *error = errno_text("tun: TUNSETIFF (another queue)");
      return nullptr;
    }
  }
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    *error = errno_text("tun: socket");
    return nullptr;
  }
  const uint32_t own = load32(cidr->own.b);
  const uint32_t mask = ~0u << (32 - cidr->prefix);
  bool ok = set_addr(sock, name.c_str(), SIOCSIFADDR, own, error, "tun: SIOCSIFADDR") &&
            set_addr(sock, name.c_str(), SIOCSIFNETMASK, mask, error, "tun: SIOCSIFNETMASK");
  if (ok) {
    ifreq m{};
    std::strncpy(m.ifr_name, name.c_str(), IFNAMSIZ - 1);
    m.ifr_mtu = kMtu;
    if (ioctl(sock, SIOCSIFMTU, &m) != 0) {
      *error = errno_text("tun: SIOCSIFMTU");
      ok = false;
    }
  }
  if (ok) {
    ifreq f{};
    std::strncpy(f.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock, SIOCGIFFLAGS, &f) != 0) {
      *error = errno_text("tun: SIOCGIFFLAGS");
      ok = false;
    } else {
      f.ifr_flags = static_cast<short>(f.ifr_flags | IFF_UP | IFF_RUNNING);
      if (ioctl(sock, SIOCSIFFLAGS, &f) != 0) {
        *error = errno_text("tun: SIOCSIFFLAGS");
        ok = false;
      }
    }
  }
  if (ok && cidr6) {
    // IPv6: SIOCSIFADDR on an AF_INET6 socket takes the kernel's struct in6_ifreq (linux/ipv6.h,
    // not includable beside netinet/in.h). A TUN device is IFF_NOARP: no duplicate detection.
    struct {
      in6_addr addr;
      uint32_t prefixlen;
      int ifindex;
    } req{};
    std::memcpy(&req.addr, cidr6->own.b, 16);
    req.prefixlen = static_cast<uint32_t>(cidr6->prefix);
    ifreq ix{};
    std::strncpy(ix.ifr_name, name.c_str(), IFNAMSIZ - 1);
    const int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s6 < 0 || ioctl(sock, SIOCGIFINDEX, &ix) != 0) {
      *error = errno_text("tun: SIOCGIFINDEX");
      ok = false;
    } else {
      req.ifindex = ix.ifr_ifindex;
      if (ioctl(s6, SIOCSIFADDR, &req) != 0) {
        *error = errno_text("tun: SIOCSIFADDR (IPv6)");
        ok = false;
      }
    }
    if (s6 >= 0) ::close(s6);
  }
  ::close(sock);
  if (!ok) return nullptr;
  if (port == 0) {
    // The listener's port: one the kernel picks on the device's address (every worker's
    // listener then binds it with SO_REUSEPORT).
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(own);
    socklen_t len = sizeof sin;
    if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        getsockname(s, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
      *error = errno_text("tun: picking the NAT listener's port");
      if (s >= 0) ::close(s);
      return nullptr;
    }
    port = ntohs(sin.sin_port);
    ::close(s);
  }
  dev->listener_ = IpEndpoint{cidr->own, port};
  dev->nat_ = std::make_unique<TcpNat>(dev->listener_, cidr->spare, idle_ms);
  if (cidr6) {
    dev->listener6_ = IpEndpoint{cidr6->own, port};
    dev->nat6_ = std::make_unique<TcpNat>(dev->listener6_, cidr6->spare, idle_ms);
  }
  return dev;
}

TunDevice::~TunDevice() {
  for (int fd : extra_fds_) ::close(fd);
  if (fd_ >= 0) ::close(fd_);
}

std::string TunDevice::listener_host() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(listener_.ip.len == 4 ? AF_INET : AF_INET6, listener_.ip.b, buf, sizeof buf);
  return buf;
}

std::string TunDevice::listener6_host() const {
  if (!nat6_) return {};
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, listener6_.ip.b, buf, sizeof buf);
  return buf;
}

std::optional<Address> TunDevice::original_dst(const Address& peer) const {
  const std::optional<IpEndpoint> e = endpoint_of(peer.unmapped());
  if (!e) return std::nullopt;
  const TcpNat* nat = e->ip.len == 4 ? nat_.get() : nat6_.get();
  if (nat == nullptr) return std::nullopt;
  const std::optional<IpEndpoint> d = nat->original_dst(*e);
  if (!d) return std::nullopt;
  return address_of(*d);
}

}  // namespace ss
