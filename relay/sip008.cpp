// SIP008 online configuration documents (see sip008.h; shadowsocks-org "SIP008 Online
// Configuration Delivery"). The servers array is handed to the config's own "servers" parser, so
// a server accepted here is one the config file would accept; only the fields a client uses are
// passed on, custom fields are dropped.

#include "relay/sip008.h"

#include <nlohmann/json.hpp>

#include <exception>

namespace ss {
namespace {

using nlohmann::json;

// The fields of a server entry passed on to the "servers" parser: SIP008's, and the ones
// shadowsocks-rust also reads from an online document. Everything else is a custom field.
constexpr std::string_view kServerFields[] = {
    "server",      "server_port", "password",    "method",      "plugin",
    "plugin_opts", "remarks",     "plugin_args", "plugin_mode", "disabled"};

std::optional<uint64_t> counter(const json& doc, const char* name, std::string* error) {
  if (!doc.contains(name)) return std::nullopt;
  const json& v = doc[name];
  if (!v.is_number_unsigned()) {
    *error = std::string(name) + ": must be a non-negative integer";
    return std::nullopt;
  }
  return v.get<uint64_t>();
}

}  // namespace

std::optional<Sip008Document> parse_sip008(std::string_view text, Role role, std::string* error) {
  std::string why;
  if (error == nullptr) error = &why;
  if (text.size() > kMaxSip008Size) {
    *error = "document larger than " + std::to_string(kMaxSip008Size) + " bytes";
    return std::nullopt;
  }
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    *error = "not valid JSON";
    return std::nullopt;
  }
  if (!doc.is_object()) {
    *error = "must be a JSON object";
    return std::nullopt;
  }
  if (!doc.contains("version") || !doc["version"].is_number_integer() ||
      doc["version"].get<long long>() != 1) {
    *error = "version: must be 1 (SIP008)";
    return std::nullopt;
  }
  if (!doc.contains("servers") || !doc["servers"].is_array()) {
    *error = "servers: missing, or not an array";
    return std::nullopt;
  }
  const json& in = doc["servers"];
  if (in.empty()) {
    *error = "servers: empty (no server to use)";
    return std::nullopt;
  }
  if (in.size() > kMaxSip008Servers) {
    *error = "servers: more than " + std::to_string(kMaxSip008Servers) + " servers";
    return std::nullopt;
  }
  Sip008Document out;
  error->clear();
  out.bytes_used = counter(doc, "bytes_used", error);
  if (!error->empty()) return std::nullopt;
  out.bytes_remaining = counter(doc, "bytes_remaining", error);
  if (!error->empty()) return std::nullopt;
  json entries = json::array();
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string at = "servers[" + std::to_string(i) + "]";
    if (!in[i].is_object()) {
      *error = at + ": must be an object";
      return std::nullopt;
    }
    // SIP008's required fields (id and remarks are labels: not required here, as in rust).
    for (const char* required : {"server", "server_port", "method", "password"}) {
      if (!in[i].contains(required)) {
        *error = at + "." + required + ": missing";
        return std::nullopt;
      }
    }
    json entry = json::object();
    for (std::string_view k : kServerFields) {
      const std::string key(k);
      if (in[i].contains(key)) entry[key] = in[i][key];
    }
    entries.push_back(std::move(entry));
  }
  try {
    out.servers = client_servers_from_json(role, entries);
  } catch (const ConfigError& e) {
    *error = e.what();
    return std::nullopt;
  } catch (const std::exception&) {
    *error = "servers: invalid";
    return std::nullopt;
  }
  for (ServerSpec& s : out.servers) s.source = "online_config";
  return out;
}

std::string describe_server(const ServerSpec& spec) {
  const bool v6 = spec.host.find(':') != std::string::npos;
  std::string s = (v6 ? "[" + spec.host + "]" : spec.host) + ":" + std::to_string(spec.port) +
                  " (" + spec.method;
  if (!spec.plugin.empty()) s += ", plugin " + spec.plugin.name;
  if (!spec.tag.empty()) s += ", \"" + spec.tag.substr(0, 64) + "\"";
  s += ")";
  // The remarks come from the document: no control character reaches the log.
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  }
  return s;
}

bool same_server(const ServerSpec& a, const ServerSpec& b) {
  return a.host == b.host && a.port == b.port && a.method == b.method && a.password == b.password &&
         a.key_b64 == b.key_b64 && a.plugin.name == b.plugin.name &&
         a.plugin.opts == b.plugin.opts && a.plugin.args == b.plugin.args;
}

}  // namespace ss
