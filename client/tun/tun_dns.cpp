// tun mode's DNS. Fake mode follows what shadowsocks-rust's fake-dns, sing-box's fakeip and
// hev-socks5-tunnel's mapdns do: an A/AAAA query (RFC 1035, RFC 3596) is answered at once with an
// address from a private pool (RFC 2544's benchmarking block 198.18.0.0/15, and part of RFC 4193's
// fc00::/7), one per name, so no DNS leaves the machine; a flow to that address is sent through
// the tunnel with the name in its Shadowsocks address header, and the server resolves it. Other
// query types are relayed to the configured resolver through the tunnel, or, without one, get an
// empty NOERROR answer. Relay mode rewrites nothing in the query: it only sends it to the
// configured resolver (tun_udp_inbound.cpp) and the reply back from the address queried.
// Messages are read with the bounds-checked codec (relay/dns/dns_message.h); nothing here trusts
// the packet.

#include "client/tun/tun_dns.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "client/tun/tun_device.h"
#include "relay/config.h"
#include "relay/dns/dns_message.h"

namespace ss {

namespace {

uint32_t low32(const uint8_t* b, size_t len) {
  const uint8_t* p = b + len - 4;
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}

std::string canonical(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool IpNet::contains(const IpBytes& ip) const {
  if (ip.len != base.len || base.len == 0) return false;
  const int full = prefix / 8;
  if (std::memcmp(ip.b, base.b, static_cast<size_t>(full)) != 0) return false;
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.b[full] & mask) == (base.b[full] & mask);
}

std::optional<IpNet> parse_ip_net(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash + 1 >= text.size()) return std::nullopt;
  const std::optional<Address> a = make_address(text.substr(0, slash), 0);
  if (!a || a->type == Address::Type::Domain) return std::nullopt;
  int prefix = 0;
  for (char c : text.substr(slash + 1)) {
    if (c < '0' || c > '9' || prefix > 200) return std::nullopt;
    prefix = prefix * 10 + (c - '0');
  }
  IpNet net;
  net.base.len = a->type == Address::Type::IPv4 ? 4 : 16;
  if (prefix < 1 || prefix > net.base.len * 8 - 2) return std::nullopt;
  net.prefix = prefix;
  std::memcpy(net.base.b, a->ip.data(), net.base.len);
  for (int bit = prefix; bit < net.base.len * 8; ++bit) {
    net.base.b[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return net;
}

FakeIpPool::FakeIpPool(const IpNet& net, uint64_t expire_ms) : net_(net), expire_ms_(expire_ms) {
  const int host_bits = net.base.len * 8 - net.prefix;
  capacity_ = host_bits >= 17 ? kMaxEntries : (1u << host_bits) - 2;  // no network, no broadcast
  slots_.resize(1);
}

IpBytes FakeIpPool::address_of(uint32_t slot) const {
  IpBytes ip = net_.base;
  uint8_t* p = ip.b + ip.len - 4;
  const uint32_t v = low32(ip.b, ip.len) | slot;  // the host bits of base are clear
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
  return ip;
}

uint32_t FakeIpPool::slot_of(const IpBytes& ip) const {
  if (!net_.contains(ip)) return 0;
  // Slots live in the low 32 bits; anything above them must be the base's.
  if (std::memcmp(ip.b, net_.base.b, ip.len - 4u) != 0) return 0;
  const uint32_t v = low32(ip.b, ip.len) - low32(net_.base.b, ip.len);
  return v == 0 || v >= slots_.size() ? 0 : v;
}

void FakeIpPool::unlink(uint32_t slot) {
  Entry& e = slots_[slot];
  if (e.prev != 0)
    slots_[e.prev].next = e.next;
  else
    head_ = e.next;
  if (e.next != 0)
    slots_[e.next].prev = e.prev;
  else
    tail_ = e.prev;
  e.prev = e.next = 0;
}

void FakeIpPool::push_back(uint32_t slot) {
  Entry& e = slots_[slot];
  e.prev = tail_;
  e.next = 0;
  if (tail_ != 0)
    slots_[tail_].next = slot;
  else
    head_ = slot;
  tail_ = slot;
}

IpBytes FakeIpPool::assign(std::string_view name, uint64_t now_ms) {
  std::string key = canonical(name);
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t slot = 0;
  if (const auto it = by_name_.find(key); it != by_name_.end()) {
    slot = it->second;
    unlink(slot);
  } else {
    if (slots_.size() <= capacity_) {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      // The least recently used entry's address, as late as possible after its last use.
      slot = head_;
      unlink(slot);
      if (!expired(slots_[slot], now_ms)) ++evicted_live_;
      by_name_.erase(slots_[slot].name);
    }
    slots_[slot].name = key;
    by_name_.emplace(std::move(key), slot);
  }
  slots_[slot].last_ms = now_ms;
  push_back(slot);
  ++changes_;
  return address_of(slot);
}

uint32_t FakeIpPool::touch(const IpBytes& ip, uint64_t now_ms) {
  const uint32_t slot = slot_of(ip);
  if (slot == 0) return 0;
  Entry& e = slots_[slot];
  if (e.name.empty() || expired(e, now_ms)) return 0;
  e.last_ms = now_ms;
  unlink(slot);
  push_back(slot);
  ++changes_;
  return slot;
}

bool FakeIpPool::name_of(const IpBytes& ip, uint64_t now_ms, std::string& out) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint32_t slot = touch(ip, now_ms);
  if (slot == 0) return false;
  out = slots_[slot].name;
  return true;
}

bool FakeIpPool::live(const IpBytes& ip, uint64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  return touch(ip, now_ms) != 0;
}

size_t FakeIpPool::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_name_.size();
}

uint64_t FakeIpPool::evicted_live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return evicted_live_;
}

uint64_t FakeIpPool::changes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return changes_;
}

std::vector<FakeIpPool::Record> FakeIpPool::records(uint64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Record> out;
  out.reserve(by_name_.size());
  for (uint32_t slot = head_; slot != 0; slot = slots_[slot].next) {
    const Entry& e = slots_[slot];
    if (!e.name.empty() && !expired(e, now_ms))
      out.push_back({address_of(slot), e.name, e.last_ms});
  }
  return out;
}

size_t FakeIpPool::restore(std::vector<Record> records) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t skipped = 0;
  // The least recently used first, so the LRU order survives the restart.
  std::stable_sort(records.begin(), records.end(),
                   [](const Record& a, const Record& b) { return a.last_ms < b.last_ms; });
  std::vector<uint32_t> taken;
  for (Record& r : records) {
    uint32_t slot = 0;
    if (net_.contains(r.ip) && std::memcmp(r.ip.b, net_.base.b, r.ip.len - 4u) == 0) {
      slot = low32(r.ip.b, r.ip.len) - low32(net_.base.b, r.ip.len);
    }
    std::string key = canonical(r.name);
    if (slot == 0 || slot > capacity_ || key.empty() || by_name_.count(key) != 0 ||
        (slot < slots_.size() && !slots_[slot].name.empty())) {
      ++skipped;
      continue;
    }
    if (slots_.size() <= slot) slots_.resize(slot + 1);
    slots_[slot].name = key;
    slots_[slot].last_ms = r.last_ms;
    by_name_.emplace(std::move(key), slot);
    taken.push_back(slot);
  }
  // The slots between them are free: first in line once the pool is full.
  for (uint32_t slot = 1; slot < slots_.size(); ++slot) {
    if (slots_[slot].name.empty()) push_back(slot);
  }
  for (uint32_t slot : taken) push_back(slot);
  return skipped;
}

TunDns::TunDns(const TunDnsOptions& o)
    : database_(o.database),
      expire_s_(o.expire_s),
      mode_(o.mode),
      resolver_(o.resolver),
      // An answer must not outlive its entry in a client's cache: half the expiry, at most 60 s.
      ttl_(std::max<uint32_t>(1, std::min<uint32_t>(60, o.expire_s / 2))),
      pool4_(o.pool4, static_cast<uint64_t>(o.expire_s) * 1000) {
  if (o.pool6) {
    pool6_ = std::make_unique<FakeIpPool>(*o.pool6, static_cast<uint64_t>(o.expire_s) * 1000);
  }
}

uint64_t TunDns::now_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

bool TunDns::is_fake(const IpBytes& ip) const {
  return mode_ == TunDnsOptions::Mode::Fake &&
         (pool4_.contains(ip) || (pool6_ && pool6_->contains(ip)));
}

bool TunDns::refuses(const IpBytes& ip, uint64_t now_ms) {
  if (!is_fake(ip)) return false;
  FakeIpPool* pool = ip.len == 4 ? &pool4_ : pool6_.get();
  return !pool->live(ip, now_ms);
}

TunDns::Lookup TunDns::target(const IpEndpoint& dst, uint64_t now_ms, std::string* name) {
  if (!is_fake(dst.ip)) return Lookup::NotFake;
  FakeIpPool* pool = dst.ip.len == 4 ? &pool4_ : pool6_.get();
  return pool->name_of(dst.ip, now_ms, *name) ? Lookup::Name : Lookup::Unknown;
}

TunDns::Verdict TunDns::answer(const uint8_t* msg, size_t len, uint8_t* out, size_t cap,
                               size_t* out_len, uint64_t now_ms) {
  if (mode_ == TunDnsOptions::Mode::Relay) return resolver_ ? Verdict::Relay : Verdict::Drop;
  dns::Reader r;
  if (r.start(msg, len) != ParseStatus::Ok) return Verdict::Drop;
  const dns::Header& h = r.header();
  if (h.response() || h.opcode() != 0 || h.qdcount != 1) return Verdict::Drop;
  dns::Question q;
  if (!r.next_question(q)) return Verdict::Drop;
  uint8_t rcode = dns::kRcodeNoError;
  IpBytes ip;
  const bool address_query =
      q.klass == dns::kClassIn && (q.type == dns::kTypeA || q.type == dns::kTypeAaaa);
  if (!address_query && resolver_) return Verdict::Relay;
  if (address_query) {
    FakeIpPool* pool = q.type == dns::kTypeA ? &pool4_ : pool6_.get();
    if (!make_address(q.name.view(), 0) || q.name.size == 0) {
      rcode = dns::kRcodeNxDomain;  // the root, or bytes a host name never has
    } else if (pool != nullptr) {
      ip = pool->assign(q.name.view(), now_ms);
    }
  }
  const dns::AddressAnswer a{ip.b, ip.len};
  *out_len = dns::build_answer(out, cap, msg, len, rcode,
                               std::span<const dns::AddressAnswer>(&a, ip.len ? 1 : 0), ttl_);
  return *out_len == 0 ? Verdict::Drop : Verdict::Reply;
}

TunDns::Verdict TunDns::on_query(const uint8_t* p, const IpPacket& pkt, uint8_t* scratch,
                                 size_t scratch_cap, uint8_t* out, size_t cap, size_t* out_len,
                                 uint64_t now_ms) {
  size_t n = 0;
  const Verdict v =
      answer(p + pkt.payload_offset, pkt.payload_len, scratch, scratch_cap, &n, now_ms);
  if (v != Verdict::Reply) return v;
  *out_len = build_udp_packet(out, cap, pkt.dst, pkt.src, scratch, n);
  return *out_len == 0 ? Verdict::Drop : Verdict::Reply;
}

bool tun_dns_target(TunDns* dns, Address& target) {
  if (dns == nullptr) return true;
  if (dns->mode() == TunDnsOptions::Mode::Relay) {
    if (target.port == 53 && dns->resolver() != nullptr) target = *dns->resolver();
    return true;
  }
  const std::optional<IpEndpoint> dst = endpoint_of(target);
  if (!dst) return true;
  std::string name;
  switch (dns->target(*dst, TunDns::now_ms(), &name)) {
    case TunDns::Lookup::NotFake:
      return true;
    case TunDns::Lookup::Unknown:
      return false;
    case TunDns::Lookup::Name:
      break;
  }
  const std::optional<Address> by_name = make_address(name, target.port);
  if (!by_name) return false;
  target = *by_name;
  return true;
}

std::shared_ptr<TunDns> make_tun_dns(const ListenerSpec& spec) {
  TunDnsOptions o;
  o.mode = spec.tun_dns == "relay" ? TunDnsOptions::Mode::Relay : TunDnsOptions::Mode::Fake;
  o.pool4 = *parse_ip_net(spec.fake_dns_ipv4_network);  // validated with the config
  if (!spec.tun_cidr6.empty()) o.pool6 = parse_ip_net(spec.fake_dns_ipv6_network);
  o.expire_s = spec.fake_dns_expire_s;
  o.resolver = spec.tun_dns_resolver;
  if (o.mode == TunDnsOptions::Mode::Fake) o.database = spec.fake_dns_database_path;
  auto dns = std::make_shared<TunDns>(o);
  if (!dns->database().empty()) dns->load_database();
  return dns;
}

}  // namespace ss
