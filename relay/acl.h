#pragma once
// Access control lists in shadowsocks-libev's file format, with shadowsocks-rust's extensions
// (see acl.cpp for the syntax and the precedence rules). Pure: text in, an immutable Acl out;
// lookups are const and thread-safe, with no allocation.
//
// Used by ss-local and ss-redir (bypass: the direct outbound, proxy: the Shadowsocks outbound) and
// by ss-server (outbound block/allow lists on top of the SSRF guard, and the client address
// lists).

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "relay/address.h"

namespace re2 {
class RE2;
}

namespace ss {

// One section's rules: IP ranges, plain domain rules and the lines that are really regexes.
class AclRules {
 public:
  AclRules();
  ~AclRules();
  AclRules(AclRules&&) noexcept;
  AclRules& operator=(AclRules&&) noexcept;

  bool match_ip(const Address& ip) const;  // IPv4 or IPv6 (IPv4-mapped IPv6 checked as IPv4)
  bool match_ip(const sockaddr* sa) const;
  // A host name, case-insensitive, with or without a trailing dot.
  bool match_host(std::string_view host) const;
  bool has_ip_rules() const { return !v4_.empty() || !v6_.empty(); }
  bool empty() const;

  // Sizes, for tests and the benchmark.
  size_t ipv4_ranges() const { return v4_.size(); }
  size_t ipv6_ranges() const { return v6_.size(); }
  size_t domain_rules() const { return domain_count_; }
  size_t regex_rules() const { return regex_count_; }

 private:
  friend class AclParser;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept;
  };
  struct Eq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
  };
  using U128 = unsigned __int128;
  std::vector<std::pair<uint32_t, uint32_t>> v4_;  // sorted, merged, inclusive
  std::vector<std::pair<U128, U128>> v6_;
  // While parsing: domain -> kExact | kSelfAndSubdomains | kSubdomainsOnly. Then a flat
  // open-addressing table (linear probing, at most half full) over one arena of names: a probe
  // that misses touches one 16-byte slot, not a node and its string.
  std::unordered_map<std::string, uint8_t, Hash, Eq> building_;
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint8_t len = 0;  // 0: empty (names are never empty)
    uint8_t flags = 0;
  };
  std::vector<Slot> slots_;
  std::string arena_;
  size_t domain_count_ = 0;
  void build_domains();
  uint8_t find_domain(std::string_view name) const;
  struct RegexSet;
  std::unique_ptr<RegexSet> regex_;
  size_t regex_count_ = 0;
};

class Acl {
 public:
  // [proxy_all]/[accept_all] (the default) or [bypass_all]/[reject_all].
  enum class Mode : uint8_t { ProxyAll, BypassAll };

  // Parses the text of an ACL file. Null, with "line N: reason" in *error, on a line that is
  // neither a known section, an IP, a CIDR, a `|`/`||` domain nor a valid regex.
  static std::unique_ptr<const Acl> parse(std::string_view text, std::string* error);
  // The same from a file; *error names the file.
  static std::unique_ptr<const Acl> load(const std::string& path, std::string* error);

  // ss-local, ss-redir: true if `target` goes direct (shadowsocks-libev's order: the bypass
  // list, then the proxy list, then the mode). A domain is matched by name, an IP target by its
  // address.
  bool bypass(const Address& target) const;
  // A domain target no name rule decides, while the ACL has IP rules that could: libev's ss-local
  // then resolves the name and decides by the address (bypass_resolved); so do we, without
  // blocking the loop. A name that does not resolve is proxied (libev's choice).
  bool needs_address(const Address& target) const;
  bool bypass_resolved(const sockaddr* resolved) const;

  // ss-server, an outbound target. A name is matched against the name rules; a domain no name
  // rule decides is Undecided, and its resolved address goes to outbound_blocked(sockaddr).
  enum class Verdict : uint8_t { Allow, Block, Undecided };
  Verdict outbound(const Address& target) const;
  bool outbound_blocked(const sockaddr* resolved) const;
  // ss-server, a client's source address ([black_list]/[white_list] and the mode, as libev).
  bool client_blocked(const sockaddr* peer) const;
  bool has_client_rules() const;
  bool has_outbound_rules() const;

  Mode mode() const { return mode_; }
  const AclRules& bypass_list() const { return lists_[kBypass]; }
  const AclRules& proxy_list() const { return lists_[kProxy]; }
  const AclRules& outbound_block_list() const { return lists_[kBlock]; }
  const AclRules& outbound_allow_list() const { return lists_[kAllow]; }
  // A hash of the text it was parsed from: a reload tells a changed ACL file from the same one.
  uint64_t digest() const { return digest_; }

 private:
  friend class AclParser;
  enum ListId : uint8_t { kBypass, kProxy, kBlock, kAllow, kLists };
  Mode mode_ = Mode::ProxyAll;
  bool outbound_block_all_ = false;  // rust's [outbound_block_all]
  AclRules lists_[kLists];
  uint64_t digest_ = 0;
};

}  // namespace ss
