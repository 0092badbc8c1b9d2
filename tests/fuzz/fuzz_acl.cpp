// Fuzzes the ACL parser and matcher (relay/acl.h). The input's first line is an ACL rule, the
// following lines are host names to look up.
//   - Acl::parse on the whole input never crashes, and its lookups (hosts, addresses) run;
//   - a rule line that is a valid RE2 and nothing else (no section, IP, `|`) must match a host
//     exactly when RE2 itself, searched case-insensitively, does: this checks the regexes that
//     the parser turns into plain domain rules against the regexes they came from.

#include <re2/re2.h>

#include <string>
#include <string_view>

#include "relay/acl.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ss;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string err;
  if (auto whole = Acl::parse(text, &err)) {
    Address a;
    a.type = Address::Type::IPv4;
    a.ip = {127, 0, 0, 1};
    (void)whole->bypass(a);
    a.type = Address::Type::IPv6;
    (void)whole->outbound(a);
  } else {
    FUZZ_CHECK(err.rfind("line ", 0) == 0 || err.find("memory") != std::string::npos);
  }

  const size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  const std::string rule(text.substr(0, nl));
  // Lines are trimmed (isspace): leave out rules with whitespace, which RE2 would keep; and
  // sections, `|` rules, comments and what may be an address or CIDR.
  if (rule.empty() || rule.find_first_of("# \t\r\v\f") != std::string::npos) return 0;
  if (rule.front() == '|' || (rule.front() == '[' && rule.back() == ']')) return 0;
  if (rule.find_first_not_of(":0123456789abcdefABCDEF./") == std::string::npos) return 0;
  RE2::Options o;
  o.set_case_sensitive(false);
  o.set_log_errors(false);
  RE2 re(rule, o);
  if (!re.ok()) return 0;
  auto acl = Acl::parse("[bypass_list]\n" + rule + "\n", &err);
  if (!acl) return 0;  // e.g. a non-ASCII byte
  std::string_view rest = text.substr(nl + 1);
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    const std::string_view host = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    // ASCII only: RE2 folds some non-ASCII letters to ASCII ones (K, the Kelvin sign, to k).
    if (host.empty() || host.size() > 255 || host.back() == '.') continue;
    bool ascii = true;
    for (char c : host) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (!ascii) continue;
    std::optional<Address> t = make_address(host, 80);
    if (!t || t->type != Address::Type::Domain) continue;
    FUZZ_CHECK(acl->bypass(*t) == RE2::PartialMatch(t->host, re));
  }
  return 0;
}
