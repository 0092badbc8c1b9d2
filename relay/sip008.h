#pragma once
// SIP008 online configuration documents (shadowsocks-org's sip008.md): a JSON object with
// "version": 1 and "servers": [{id, remarks, server, server_port, password, method, plugin?,
// plugin_opts?}, ...], and optionally "bytes_used"/"bytes_remaining". Pure: no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/config.h"

namespace ss {

struct Sip008Document {
  std::vector<ServerSpec>
      servers;  // finalized like the config's "servers" (source "online_config")
  std::optional<uint64_t> bytes_used;
  std::optional<uint64_t> bytes_remaining;
};

// The largest document accepted (the fetch stops reading past it too).
constexpr size_t kMaxSip008Size = 1 << 20;
// The most servers one document may list.
constexpr size_t kMaxSip008Servers = 1000;

// Parses and validates a document for a client of `role`. Each server goes through the same
// checks as a "servers" entry of the config (method known, keys that suit it, host and port
// valid); SIP008's custom fields (and the SIP008 fields shadowsocks-uv has no use for: "id") are
// ignored, as the specification allows. Nullopt, with one line in *error naming the field at fault
// ("servers[2].method: unknown method ..."), if the document is not valid JSON, has no version 1,
// or has no usable server. Never throws.
std::optional<Sip008Document> parse_sip008(std::string_view text, Role role, std::string* error);

// A short description of a server for logs: "host:port (method, remarks)", never its password.
std::string describe_server(const ServerSpec& spec);

// Whether two servers are the same for a refresh: address, port, method, password or key, and
// plugin.
bool same_server(const ServerSpec& a, const ServerSpec& b);

}  // namespace ss
