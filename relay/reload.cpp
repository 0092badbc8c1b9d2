// Listener matching for a reload (see reload.h).

#include "relay/reload.h"

#include "relay/acl.h"

namespace ss {

std::vector<std::optional<size_t>> match_listeners(const std::vector<ListenerSpec>& running,
                                                   const std::vector<ListenerSpec>& next) {
  std::vector<std::optional<size_t>> match(next.size());
  std::vector<bool> taken(running.size(), false);
  for (size_t j = 0; j < next.size(); ++j) {
    for (size_t i = 0; i < running.size(); ++i) {
      if (taken[i]) continue;
      const ListenerSpec& a = running[i];
      const ListenerSpec& b = next[j];
      if (a.address == b.address && a.port == b.port && a.protocol == b.protocol) {
        match[j] = i;
        taken[i] = true;
        break;
      }
    }
  }
  return match;
}

std::vector<size_t> removed_listeners(const std::vector<ListenerSpec>& running,
                                      const std::vector<std::optional<size_t>>& match) {
  std::vector<bool> kept(running.size(), false);
  for (const std::optional<size_t>& m : match) {
    if (m) kept[*m] = true;
  }
  std::vector<size_t> removed;
  for (size_t i = 0; i < running.size(); ++i) {
    if (!kept[i]) removed.push_back(i);
  }
  return removed;
}

std::string udp_keys_signature(const Specs& specs, const ListenerSpec& l) {
  std::string s = std::to_string(static_cast<int>(l.protocol));
  if (l.inbound >= specs.inbounds.size()) return s;
  const ServerSpec& in = specs.inbounds[l.inbound];
  s += "|" + in.method + "|" + std::string(in.key.begin(), in.key.end());
  for (const auto& k : in.psk_keys) s += "|" + std::string(k.begin(), k.end());
  for (const UserSpec& u : in.users)
    s += "|" + u.name + "=" + std::string(u.key.begin(), u.key.end());
  // What its inbound (client lists) and direct outbound (targets) are given besides the keys.
  s += "|acl=" + (specs.acl ? std::to_string(specs.acl->digest()) : std::string("none"));
  s += specs.direct && !specs.direct->block_private ? "|private" : "|public";
  return s;
}

}  // namespace ss
