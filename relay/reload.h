#pragma once
// What a reload keeps: the listeners of the running specs that the new specs still have (same
// address, port and protocol) take the new snapshot and are never closed and reopened.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "relay/config.h"

namespace ss {

// For each listener of `next`, the index of the listener of `running` it continues (same
// address, port and protocol), or nullopt for a new one.
std::vector<std::optional<size_t>> match_listeners(const std::vector<ListenerSpec>& running,
                                                   const std::vector<ListenerSpec>& next);

// The listeners of `running` that `next` no longer has (matched as above), in order.
std::vector<size_t> removed_listeners(const std::vector<ListenerSpec>& running,
                                      const std::vector<std::optional<size_t>>& match);

// What a listener's UDP side serves with: its inbound's method, keys and users (ss-server), the
// ACL (a digest of its text) and allow_private_targets, as one string; a reload gives the
// listener's UDP socket a new inbound and outbound when it changes.
std::string udp_keys_signature(const Specs& specs, const ListenerSpec& listener);

}  // namespace ss
