#pragma once
// The local DNS inbound's pure parts (client/dns/dns_inbound.h runs them): which upstream a
// query goes to by the ACL (shadowsocks-rust's rule, see dns_split.cpp), whether a local answer
// may be used, and the answer cache (LRU, bounded, expiry by the answer's min TTL).

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relay/address.h"
#include "relay/dns/dns_message.h"

namespace ss {

class Acl;

enum class DnsUpstream : uint8_t {
  Local,   // local_dns_address, directly
  Remote,  // remote_dns_address, through the tunnel
  // No name rule decides and the ACL has IP rules: ask the local resolver first and keep its
  // answer if an address in it is bypassed (local_answer_usable), else ask the remote one.
  ByLocalAnswer,
};

// The upstream for question `q`. `server_hosts`: the configured servers' host names (a query for
// one goes to the local resolver: the tunnel cannot be used to find itself).
DnsUpstream dns_upstream(const Acl* acl, const dns::Question& q,
                         std::span<const std::string> server_hosts);

// The address a reverse-lookup name stands for: "d.c.b.a.in-addr.arpa" (4 decimal labels,
// RFC 1035 3.5) as IPv4 a.b.c.d, "<32 hex nibbles, lowest first>.ip6.arpa" (RFC 3596 2.5) as
// IPv6; case-insensitive, a trailing dot allowed. False for anything else (a partial zone such
// as "10.in-addr.arpa", a bad label).
bool reverse_name_address(std::string_view name, Address& out);

// ByLocalAnswer: true if the local resolver's answer `msg` is to be used: it is a valid answer
// with an A or AAAA record whose address the ACL bypasses.
bool local_answer_usable(const Acl& acl, const uint8_t* msg, size_t size);

// Lowers every answer and authority record's TTL by `elapsed_s` (not below 0) in place. False if
// the message is malformed (then it is unchanged up to where it failed).
bool age_ttls(uint8_t* msg, size_t size, uint32_t elapsed_s);

// Answers by (name, type, class), names compared case-insensitively. At most `capacity` entries
// (least recently used evicted) of at most kMaxEntrySize bytes each, so the memory is bounded by
// about capacity * (kMaxEntrySize + 300) bytes. Only NOERROR and NXDOMAIN answers with a TTL
// (an answer or an SOA: RFC 2308) are kept, until their min TTL runs out.
class DnsCache {
 public:
  static constexpr size_t kMaxEntrySize = 4096;
  explicit DnsCache(size_t capacity) : capacity_(capacity) {}

  // A live answer for `q`: copied into `out` with its TTLs aged and its id set to `id`.
  bool lookup(const dns::Question& q, uint16_t id, uint64_t now_ms, std::vector<uint8_t>& out);
  // Keeps `msg` (the answer to `q`) if it qualifies; false if it did not.
  bool store(const dns::Question& q, const uint8_t* msg, size_t size, uint64_t now_ms);
  size_t size() const { return map_.size(); }

 private:
  struct Entry {
    std::string key;
    std::vector<uint8_t> answer;
    uint64_t stored_ms = 0;
    uint64_t expires_ms = 0;
  };
  static std::string key_of(const dns::Question& q);
  size_t capacity_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
};

}  // namespace ss
