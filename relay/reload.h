#pragma once
// What a reload keeps: the listeners of the running specs that the new specs still have (same
// address, port and protocol) take the new snapshot and are never closed and reopened.

#include <cstddef>
#include <optional>
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

}  // namespace ss
