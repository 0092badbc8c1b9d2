// The local DNS inbound's split and cache.
//
// The split follows shadowsocks-rust's DNS local (its should_forward_by_query and
// should_forward_by_response, read as facts):
// - a query for a configured server's own host name goes to the local resolver;
// - without an ACL every query goes to the remote resolver, through the tunnel;
// - a PTR query for a whole reverse name (x.x.x.x.in-addr.arpa, 32 nibbles .ip6.arpa) goes where
//   the ACL routes that address (its IP rules, then its mode: bypassed -> local), which rust does
//   not do (it forwards PTR by the mode); a partial or malformed reverse name, and a class other
//   than IN, follow the ACL's mode ([proxy_all]: remote);
// - a name the bypass list matches goes to the local resolver, one the proxy list matches to the
//   remote one (libev's order: bypass first), as ss-local routes connections (Acl::bypass);
// - a name no name rule decides, while the ACL has IP rules that could (Acl::needs_address): the
//   local resolver is asked, and its answer is used if one of its addresses is bypassed, else
//   the remote resolver's. rust asks both at once; we ask the remote one only when needed.
// - otherwise the ACL's mode decides.
// ss-local's ACL has no block verdict (the outbound block lists are ss-server's), so no name is
// refused here, as in rust.
//
// The cache keeps whole answers (RFC 1035 4.1) keyed by the question, for the smallest TTL of the
// answer and authority records, a negative answer's SOA MINIMUM included (RFC 2308 section 5);
// TTLs are lowered by the time spent in the cache when served.

#include "client/dns/dns_split.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "relay/acl.h"

namespace ss {

namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

DnsUpstream dns_upstream(const Acl* acl, const dns::Question& q,
                         std::span<const std::string> server_hosts) {
  const std::string_view name = q.name.view();
  for (const std::string& host : server_hosts) {
    std::string_view h = host;
    if (!h.empty() && h.back() == '.') h.remove_suffix(1);
    if (!h.empty() && dns::equal_names(h, name)) return DnsUpstream::Local;
  }
  if (acl == nullptr) return DnsUpstream::Remote;
  const DnsUpstream by_mode =
      acl->mode() == Acl::Mode::BypassAll ? DnsUpstream::Local : DnsUpstream::Remote;
  if (q.klass != dns::kClassIn || name.empty()) return by_mode;
  Address target;
  if (q.type == dns::kTypePtr) {
    if (!reverse_name_address(name, target)) return by_mode;
    return acl->bypass(target) ? DnsUpstream::Local : DnsUpstream::Remote;
  }
  target.type = Address::Type::Domain;
  target.host.assign(name);
  if (acl->needs_address(target)) return DnsUpstream::ByLocalAnswer;
  return acl->bypass(target) ? DnsUpstream::Local : DnsUpstream::Remote;
}

namespace {

// `name` ends with `suffix` (lower case, with its leading dot), ASCII case-insensitively.
bool ends_with_nocase(std::string_view name, std::string_view suffix) {
  if (name.size() < suffix.size()) return false;
  name.remove_prefix(name.size() - suffix.size());
  for (size_t i = 0; i < suffix.size(); ++i) {
    if (lower(name[i]) != suffix[i]) return false;
  }
  return true;
}

int hex_value(char c) {
  c = lower(c);
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

bool reverse_name_address(std::string_view name, Address& out) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  constexpr std::string_view kV4 = ".in-addr.arpa";
  constexpr std::string_view kV6 = ".ip6.arpa";
  out = Address{};
  if (ends_with_nocase(name, kV4)) {
    name.remove_suffix(kV4.size());
    // d.c.b.a: four labels of 1..3 digits, each at most 255.
    int label = 0;
    unsigned value = 0;
    size_t digits = 0;
    for (size_t i = 0; i <= name.size(); ++i) {
      if (i == name.size() || name[i] == '.') {
        if (digits == 0 || value > 255 || label == 4) return false;
        out.ip[3 - label] = static_cast<uint8_t>(value);
        ++label;
        value = 0;
        digits = 0;
      } else if (name[i] >= '0' && name[i] <= '9' && digits < 3) {
        value = value * 10 + static_cast<unsigned>(name[i] - '0');
        ++digits;
      } else {
        return false;
      }
    }
    if (label != 4) return false;
    out.type = Address::Type::IPv4;
    return true;
  }
  if (ends_with_nocase(name, kV6)) {
    name.remove_suffix(kV6.size());
    // 32 one-nibble labels, the lowest nibble first: "x.x. ... .x" is 63 characters.
    if (name.size() != 63) return false;
    for (size_t k = 0; k < 32; ++k) {
      const int v = hex_value(name[2 * k]);
      if (v < 0 || (k < 31 && name[2 * k + 1] != '.')) return false;
      const size_t nibble = 31 - k;  // from the most significant
      out.ip[nibble / 2] |= static_cast<uint8_t>(nibble % 2 == 0 ? v << 4 : v);
    }
    out.type = Address::Type::IPv6;
    return true;
  }
  return false;
}

bool local_answer_usable(const Acl& acl, const uint8_t* msg, size_t size) {
  dns::Reader reader;
  if (reader.start(msg, size) != ParseStatus::Ok) return false;
  if (!reader.header().response() || reader.header().rcode() != dns::kRcodeNoError) return false;
  dns::Record r;
  while (reader.next_record(r)) {
    if (r.section != dns::Section::Answer || r.klass != dns::kClassIn) continue;
    sockaddr_storage ss{};
    if (r.type == dns::kTypeA && r.rdata_size == 4) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      std::memcpy(&sin->sin_addr, msg + r.rdata_offset, 4);
    } else if (r.type == dns::kTypeAaaa && r.rdata_size == 16) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      std::memcpy(&sin6->sin6_addr, msg + r.rdata_offset, 16);
    } else {
      continue;
    }
    if (acl.bypass_resolved(reinterpret_cast<const sockaddr*>(&ss))) return true;
  }
  return false;
}

bool age_ttls(uint8_t* msg, size_t size, uint32_t elapsed_s) {
  dns::Reader reader;
  if (reader.start(msg, size) != ParseStatus::Ok) return false;
  dns::Record r;
  while (reader.next_record(r)) {
    if (r.section == dns::Section::Additional) continue;
    // TYPE CLASS TTL RDLENGTH precede RDATA: the TTL is 6 bytes before it.
    uint8_t* p = msg + r.rdata_offset - 6;
    const uint32_t ttl = r.ttl > elapsed_s ? r.ttl - elapsed_s : 0;
    p[0] = static_cast<uint8_t>(ttl >> 24);
    p[1] = static_cast<uint8_t>(ttl >> 16);
    p[2] = static_cast<uint8_t>(ttl >> 8);
    p[3] = static_cast<uint8_t>(ttl);
  }
  return !reader.error();
}

std::string DnsCache::key_of(const dns::Question& q) {
  std::string key;
  const std::string_view name = q.name.view();
  key.reserve(name.size() + 4);
  for (char c : name) key.push_back(lower(c));
  key.push_back(static_cast<char>(q.type >> 8));
  key.push_back(static_cast<char>(q.type));
  key.push_back(static_cast<char>(q.klass >> 8));
  key.push_back(static_cast<char>(q.klass));
  return key;
}

bool DnsCache::lookup(const dns::Question& q, uint16_t id, uint64_t now_ms,
                      std::vector<uint8_t>& out) {
  if (capacity_ == 0) return false;
  auto it = map_.find(key_of(q));
  if (it == map_.end()) return false;
  Entry& e = *it->second;
  if (now_ms >= e.expires_ms) {
    lru_.erase(it->second);
    map_.erase(it);
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  out.assign(e.answer.begin(), e.answer.end());
  age_ttls(out.data(), out.size(), static_cast<uint32_t>((now_ms - e.stored_ms) / 1000));
  dns::set_message_id(out.data(), id);
  return true;
}

bool DnsCache::store(const dns::Question& q, const uint8_t* msg, size_t size, uint64_t now_ms) {
  if (capacity_ == 0 || size > kMaxEntrySize) return false;
  dns::Summary s;
  if (dns::summarize(msg, size, s) != ParseStatus::Ok) return false;
  if (!s.header.response() || s.header.truncated()) return false;
  if (s.header.rcode() != dns::kRcodeNoError && s.header.rcode() != dns::kRcodeNxDomain) {
    return false;
  }
  if (s.min_ttl == UINT32_MAX || s.min_ttl == 0) return false;
  std::string key = key_of(q);
  if (auto it = map_.find(key); it != map_.end()) {
    lru_.erase(it->second);
    map_.erase(it);
  }
  while (map_.size() >= capacity_) {
    map_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Entry{key, std::vector<uint8_t>(msg, msg + size), now_ms,
                        now_ms + static_cast<uint64_t>(s.min_ttl) * 1000});
  map_.emplace(std::move(key), lru_.begin());
  return true;
}

}  // namespace ss
