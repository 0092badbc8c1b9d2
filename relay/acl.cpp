// ACL files: shadowsocks-libev's format (src/acl.c) with shadowsocks-rust's extensions
// (crates/shadowsocks-service/src/acl/mod.rs), parsed line by line into four rule lists.
//
// Syntax. `#` starts a comment anywhere on a line (libev); blank lines are skipped; lines are
// trimmed. Sections: [proxy_all]/[accept_all] and [bypass_all]/[reject_all] set the mode (the
// default is proxy_all: proxy or accept what no rule names); [bypass_list]/[black_list],
// [proxy_list]/[white_list], [outbound_block_list], [outbound_allow_list] (rust) choose where
// the following rules go (before any of them: the bypass list); [outbound_block_all] and
// [outbound_allow_all] (rust) set the outbound default. Any other `[...]` line is an error.
// Rules: an IPv4 or IPv6 address, or a CIDR (host bits ignored); `||name` (rust: the name and
// its subdomains); `|name` (rust: the name only); anything else is a regular expression searched
// anywhere in the host name (libev's pcre_exec, rust's is_match), case-insensitive.
//
// Lookup. The regexes that are really plain rules are recognised and turned into domain rules:
// `(^|\.)name$` and `(?:^|\.)name$` (the name and its subdomains), `^name$` (the name only),
// `\.name$`, `^.*\.name$` (subdomains only), where name is labels of
// [A-Za-z0-9_-] joined by `\.`. Domain rules live in one hash table keyed by the name; a host
// is looked up whole, then at each suffix that follows a dot (one probe per label). IP rules are
// sorted, merged ranges searched by bisection. The remaining regexes are compiled into one
// RE2::Set (RE2 measured faster than PCRE2 for this: docs/BENCHMARKS.md, "ACL lookups").
//
// Precedence (libev): on ss-local the bypass list wins over the proxy list, then the mode
// decides. A domain target is matched by its name; if no name rule decides and the list that
// could change the default has IP rules, the name is resolved (asynchronously; libev blocks its
// loop) and its address decides, and a name that does not resolve is proxied. On ss-server the
// outbound block list wins over the allow list; a domain that no name rule decides is checked again
// on its resolved address; clients are refused if in the black list (accept_all) or not in the
// white list (reject_all).

#include "relay/acl.h"

#include "relay/outbound.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ss {

namespace {

constexpr uint8_t kExact = 1;
constexpr uint8_t kSelfAndSubdomains = 2;
constexpr uint8_t kSubdomainsOnly = 4;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_label_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

// A host name as a rule or lookup key: lower case, without a trailing dot. False if it has a
// byte that cannot be in a host name.
bool normalize_name(std::string_view in, std::string& out) {
  while (!in.empty() && in.back() == '.') in.remove_suffix(1);
  if (in.empty() || in.size() > 255) return false;
  out.clear();
  for (char c : in) {
    if (!is_label_char(c) && c != '.') return false;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return true;
}

// `a\.b\.c` -> "a.b.c"; false if it is not labels of [A-Za-z0-9_-] joined by `\.`.
bool unescape_name(std::string_view in, std::string& out) {
  out.clear();
  bool label = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\\' && i + 1 < in.size() && in[i + 1] == '.') {
      if (!label) return false;
      out.push_back('.');
      label = false;
      ++i;
    } else if (is_label_char(c)) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      label = true;
    } else {
      return false;
    }
  }
  return label;
}

bool strip_prefix(std::string_view& s, std::string_view p) {
  if (s.substr(0, p.size()) != p) return false;
  s.remove_prefix(p.size());
  return true;
}

// A regex line that is really a plain domain rule: its flag and name, or 0.
uint8_t plain_rule_of(std::string_view re, std::string& name) {
  if (re.empty() || re.back() != '$') return 0;
  re.remove_suffix(1);
  uint8_t flag = 0;
  if (strip_prefix(re, "(^|\\.)") || strip_prefix(re, "(?:^|\\.)")) {
    flag = kSelfAndSubdomains;
  } else if (strip_prefix(re, "^.*\\.") || strip_prefix(re, "\\.")) {
    flag = kSubdomainsOnly;
  } else if (strip_prefix(re, "^")) {
    flag = kExact;
  } else {
    return 0;
  }
  return unescape_name(re, name) && name.size() <= 255 ? flag : 0;
}

using U128 = unsigned __int128;

U128 load_v6(const uint8_t* b) {
  U128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | b[i];
  return v;
}

uint32_t load_v4(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

template <typename T>
void merge_ranges(std::vector<std::pair<T, T>>& v) {
  std::sort(v.begin(), v.end());
  size_t out = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (out > 0 &&
        (v[out - 1].second == static_cast<T>(~T{0}) || v[i].first <= v[out - 1].second + 1)) {
      v[out - 1].second = std::max(v[out - 1].second, v[i].second);
    } else {
      v[out++] = v[i];
    }
  }
  v.resize(out);
  v.shrink_to_fit();
}

template <typename T>
bool in_ranges(const std::vector<std::pair<T, T>>& v, T x) {
  // The first range that starts after x; the one before it is the only candidate.
  auto it = std::upper_bound(v.begin(), v.end(), x,
                             [](T val, const std::pair<T, T>& r) { return val < r.first; });
  if (it == v.begin()) return false;
  --it;
  return x <= it->second;
}

}  // namespace

// ---- AclRules -----------------------------------------------------------------------------

struct AclRules::RegexSet {
  RegexSet() : set(options(), RE2::UNANCHORED) {}
  static RE2::Options options() {
    RE2::Options o;
    o.set_case_sensitive(false);
    o.set_log_errors(false);
    o.set_max_mem(int64_t{1} << 30);
    return o;
  }
  RE2::Set set;
};

AclRules::AclRules() = default;
AclRules::~AclRules() = default;
AclRules::AclRules(AclRules&&) noexcept = default;
AclRules& AclRules::operator=(AclRules&&) noexcept = default;

size_t AclRules::Hash::operator()(std::string_view s) const noexcept {
  // FNV-1a: short keys, one per label of a host name.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return static_cast<size_t>(h);
}

void AclRules::build_domains() {
  domain_count_ = building_.size();
  if (domain_count_ == 0) return;
  size_t cap = 16;
  while (cap < domain_count_ * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  for (const auto& [name, flags] : building_) {
    Slot s;
    s.hash = Hash{}(name);
    s.offset = static_cast<uint32_t>(arena_.size());
    s.len = static_cast<uint8_t>(name.size());
    s.flags = flags;
    arena_ += name;
    size_t i = s.hash & (cap - 1);
    while (slots_[i].len != 0) i = (i + 1) & (cap - 1);
    slots_[i] = s;
  }
  arena_.shrink_to_fit();
  building_ = {};
}

uint8_t AclRules::find_domain(std::string_view name) const {
  const uint64_t h = Hash{}(name);
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask; slots_[i].len != 0; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.hash == h && s.len == name.size() &&
        std::memcmp(arena_.data() + s.offset, name.data(), s.len) == 0) {
      return s.flags;
    }
  }
  return 0;
}

bool AclRules::empty() const {
  return !has_ip_rules() && domain_count_ == 0 && regex_count_ == 0;
}

bool AclRules::match_ip(const Address& a) const {
  Address u = a.unmapped();
  if (u.type == Address::Type::IPv4) return !v4_.empty() && in_ranges(v4_, load_v4(u.ip.data()));
  if (u.type == Address::Type::IPv6) return !v6_.empty() && in_ranges(v6_, load_v6(u.ip.data()));
  return false;
}

bool AclRules::match_ip(const sockaddr* sa) const {
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return false;
  return match_ip(Address::from_sockaddr(sa));
}

bool AclRules::match_host(std::string_view host) const {
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 255) return false;
  // Lower case, on the stack: no allocation per lookup.
  std::array<char, 256> buf;
  for (size_t i = 0; i < host.size(); ++i) {
    buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(host[i])));
  }
  std::string_view h(buf.data(), host.size());
  if (domain_count_ > 0) {
    if (find_domain(h) & (kExact | kSelfAndSubdomains)) return true;
    for (size_t dot = h.find('.'); dot != std::string_view::npos; dot = h.find('.', dot + 1)) {
      if (find_domain(h.substr(dot + 1)) & (kSelfAndSubdomains | kSubdomainsOnly)) return true;
    }
  }
  if (regex_count_ > 0) return regex_->set.Match(re2::StringPiece(h.data(), h.size()), nullptr);
  return false;
}

// ---- the parser ---------------------------------------------------------------------------

class AclParser {
 public:
  explicit AclParser(Acl& acl) : acl_(acl) {}

  bool line(std::string_view raw, std::string* why) {
    if (size_t hash = raw.find('#'); hash != std::string_view::npos) raw = raw.substr(0, hash);
    std::string_view s = trim(raw);
    if (s.empty()) return true;
    for (char c : s) {
      if (static_cast<unsigned char>(c) >= 0x80 || (c < 0x20 && c != '\t')) {
        *why = "a byte that is not printable ASCII";
        return false;
      }
    }
    if (s.front() == '[' && s.back() == ']') return section(s, why);
    AclRules& r = acl_.lists_[current_];
    if (strip_prefix(s, "||")) return name_rule(r, s, kSelfAndSubdomains, why);
    if (strip_prefix(s, "|")) return name_rule(r, s, kExact, why);
    switch (ip_rule(r, s, why)) {
      case 1:
        return true;
      case -1:
        return false;
      default:
        break;
    }
    std::string name;
    if (uint8_t flag = plain_rule_of(s, name)) {
      r.building_[name] |= flag;
      return true;
    }
    return regex_rule(r, s, why);
  }

  bool finish(std::string* why) {
    for (AclRules& r : acl_.lists_) {
      merge_ranges(r.v4_);
      merge_ranges(r.v6_);
      r.build_domains();
      if (r.regex_ && !r.regex_->set.Compile()) {
        *why = "the regular expressions do not fit in memory";
        return false;
      }
    }
    return true;
  }

 private:
  bool section(std::string_view s, std::string* why) {
    struct Row {
      const char* name;
      int list;  // -1: a mode
      int mode;  // 0 proxy_all, 1 bypass_all, 2 outbound_allow_all, 3 outbound_block_all
    };
    static constexpr Row kRows[] = {
        {"[proxy_all]", -1, 0},
        {"[accept_all]", -1, 0},
        {"[bypass_all]", -1, 1},
        {"[reject_all]", -1, 1},
        {"[outbound_allow_all]", -1, 2},
        {"[outbound_block_all]", -1, 3},
        {"[bypass_list]", Acl::kBypass},
        {"[black_list]", Acl::kBypass},
        {"[proxy_list]", Acl::kProxy},
        {"[white_list]", Acl::kProxy},
        {"[outbound_block_list]", Acl::kBlock},
        {"[outbound_allow_list]", Acl::kAllow},
    };
    for (const Row& row : kRows) {
      if (s != row.name) continue;
      if (row.list >= 0) {
        current_ = static_cast<Acl::ListId>(row.list);
      } else if (row.mode <= 1) {
        acl_.mode_ = row.mode == 0 ? Acl::Mode::ProxyAll : Acl::Mode::BypassAll;
      } else {
        acl_.outbound_block_all_ = row.mode == 3;
      }
      return true;
    }
    *why = "unknown section " + std::string(s);
    return false;
  }

  static bool name_rule(AclRules& r, std::string_view s, uint8_t flag, std::string* why) {
    std::string name;
    if (!normalize_name(trim(s), name)) {
      *why = "not a domain name: " + std::string(s);
      return false;
    }
    r.building_[name] |= flag;
    return true;
  }

  // 1: an IP or CIDR rule, added; 0: not an IP; -1: an IP with a bad prefix length.
  static int ip_rule(AclRules& r, std::string_view s, std::string* why) {
    std::string_view host = s;
    std::string_view prefix;
    if (size_t slash = s.rfind('/'); slash != std::string_view::npos) {
      host = s.substr(0, slash);
      prefix = s.substr(slash + 1);
    }
    if (host.size() >= INET6_ADDRSTRLEN) return 0;
    char text[INET6_ADDRSTRLEN];
    std::memcpy(text, host.data(), host.size());
    text[host.size()] = '\0';
    uint8_t bytes[16];
    int bits;
    if (inet_pton(AF_INET, text, bytes) == 1) {
      bits = 32;
    } else if (inet_pton(AF_INET6, text, bytes) == 1) {
      bits = 128;
    } else {
      return 0;
    }
    int len = bits;
    if (s.size() != host.size()) {
      len = -1;
      if (!prefix.empty() && prefix.size() <= 3 &&
          std::all_of(prefix.begin(), prefix.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        len = std::stoi(std::string(prefix));
      }
      if (len < 0 || len > bits) {
        *why = "bad prefix length in " + std::string(s);
        return -1;
      }
    }
    if (bits == 32) {
      uint32_t v = load_v4(bytes);
      uint32_t host_mask = len == 0 ? ~uint32_t{0} : (len == 32 ? 0 : (~uint32_t{0} >> len));
      r.v4_.emplace_back(v & ~host_mask, v | host_mask);
    } else {
      U128 v = load_v6(bytes);
      U128 all = ~U128{0};
      U128 host_mask = len == 0 ? all : (len == 128 ? 0 : (all >> len));
      r.v6_.emplace_back(v & ~host_mask, v | host_mask);
    }
    return 1;
  }

  static bool regex_rule(AclRules& r, std::string_view s, std::string* why) {
    if (!r.regex_) r.regex_ = std::make_unique<AclRules::RegexSet>();
    std::string err;
    if (r.regex_->set.Add(re2::StringPiece(s.data(), s.size()), &err) < 0) {
      *why = "not a valid regular expression: " + std::string(s) + " (" + err + ")";
      return false;
    }
    ++r.regex_count_;
    return true;
  }

  Acl& acl_;
  Acl::ListId current_ = Acl::kBypass;
};

// ---- Acl ----------------------------------------------------------------------------------

std::unique_ptr<const Acl> Acl::parse(std::string_view text, std::string* error) {
  auto acl = std::unique_ptr<Acl>(new Acl());
  acl->digest_ = std::hash<std::string_view>()(text);
  AclParser p(*acl);
  size_t line_no = 0;
  std::string why;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!p.line(line, &why)) {
      if (error) *error = "line " + std::to_string(line_no) + ": " + why;
      return nullptr;
    }
  }
  if (!p.finish(&why)) {
    if (error) *error = why;
    return nullptr;
  }
  return acl;
}

std::unique_ptr<const Acl> Acl::load(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error) *error = path + ": cannot be read: " + std::strerror(errno);
    return nullptr;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string why;
  auto acl = parse(text.str(), &why);
  if (!acl && error) *error = path + ": " + why;
  return acl;
}

bool Acl::bypass(const Address& target) const {
  if (target.type == Address::Type::Domain) {
    if (lists_[kBypass].match_host(target.host)) return true;
    if (lists_[kProxy].match_host(target.host)) return false;
  } else {
    if (lists_[kBypass].match_ip(target)) return true;
    if (lists_[kProxy].match_ip(target)) return false;
  }
  return mode_ == Mode::BypassAll;
}

bool Acl::needs_address(const Address& target) const {
  if (target.type != Address::Type::Domain) return false;
  if (lists_[kBypass].match_host(target.host) || lists_[kProxy].match_host(target.host)) {
    return false;
  }
  // Only the list that can change the mode's default matters (rust skips the lookup otherwise;
  // libev always resolves, to the same result).
  return (mode_ == Mode::ProxyAll ? lists_[kBypass] : lists_[kProxy]).has_ip_rules();
}

bool Acl::bypass_resolved(const sockaddr* resolved) const {
  if (lists_[kBypass].match_ip(resolved)) return true;
  if (lists_[kProxy].match_ip(resolved)) return false;
  return mode_ == Mode::BypassAll;
}

Acl::Verdict Acl::outbound(const Address& target) const {
  if (target.type == Address::Type::Domain) {
    if (lists_[kBlock].match_host(target.host)) return Verdict::Block;
    if (lists_[kAllow].match_host(target.host)) return Verdict::Allow;
    return Verdict::Undecided;
  }
  if (lists_[kBlock].match_ip(target)) return Verdict::Block;
  if (lists_[kAllow].match_ip(target)) return Verdict::Allow;
  return outbound_block_all_ ? Verdict::Block : Verdict::Allow;
}

bool Acl::outbound_blocked(const sockaddr* resolved) const {
  if (lists_[kBlock].match_ip(resolved)) return true;
  if (lists_[kAllow].match_ip(resolved)) return false;
  return outbound_block_all_;
}

bool Acl::client_blocked(const sockaddr* peer) const {
  if (lists_[kBypass].match_ip(peer)) return true;
  if (lists_[kProxy].match_ip(peer)) return false;
  return mode_ == Mode::BypassAll;
}

bool Acl::has_client_rules() const {
  return mode_ == Mode::BypassAll || lists_[kBypass].has_ip_rules() ||
         lists_[kProxy].has_ip_rules();
}

bool Acl::has_outbound_rules() const {
  return outbound_block_all_ || !lists_[kBlock].empty() || !lists_[kAllow].empty();
}

// ---- AclRouter (relay/outbound.h) ----------------------------------------------------------

const Outbound* AclRouter::route(const Address& target) {
  if (acl_->outbound(target) == Acl::Verdict::Block) return nullptr;
  return acl_->bypass(target) ? &direct_ : proxy_->route(target);
}

bool AclRouter::needs_address(const Address& target) {
  return acl_->needs_address(target);
}

const Outbound* AclRouter::route_resolved(const Address& target, const sockaddr* resolved) {
  if (acl_->outbound(target) == Acl::Verdict::Block) return nullptr;
  return resolved != nullptr && acl_->bypass_resolved(resolved) ? &direct_ : proxy_->route(target);
}

}  // namespace ss
