// shadowsocks-libev's ss-manager protocol (spec/protocol.md §4, libev's manager.c get_action and
// get_data): a datagram's command and JSON, and the list and stat replies in libev's text.

#include "server/manager/manager_protocol.h"

#include <nlohmann/json.hpp>

namespace ss {
namespace {

// A JSON string (bytes that are not UTF-8 replaced, never thrown on).
std::string json_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

ManagerRequest parse_manager_request(std::string_view d) {
  ManagerRequest r;
  if (d.empty() || d.size() > kMaxManagerRequest) return r;
  size_t i = 0;
  while (i < d.size() && is_blank(d[i])) ++i;
  size_t end = i;
  while (end < d.size() && !is_blank(d[end]) && d[end] != ':' && d[end] != '\0') ++end;
  const std::string_view word = d.substr(i, end - i);
  if (word == "add") {
    r.command = ManagerCommand::Add;
  } else if (word == "remove") {
    r.command = ManagerCommand::Remove;
  } else if (word == "list") {
    r.command = ManagerCommand::List;
  } else if (word == "ping") {
    r.command = ManagerCommand::Ping;
  } else if (word == "reset") {
    r.command = ManagerCommand::Reset;
  }
  const size_t brace = d.find('{');
  if (brace != std::string_view::npos) r.json = d.substr(brace);
  return r;
}

std::string manager_list_reply(const std::vector<ManagerListEntry>& ports) {
  std::string out = "[";
  for (size_t i = 0; i < ports.size(); ++i) {
    const ManagerListEntry& e = ports[i];
    out += "\n\t{\"server_port\":\"" + std::to_string(e.port) +
           "\",\"password\":" + json_string(e.password) + ",\"method\":" + json_string(e.method) +
           "}";
    if (i + 1 < ports.size()) out += ',';
  }
  out += "\n]";
  return out;
}

std::string manager_stat_reply(const std::vector<std::pair<uint16_t, int64_t>>& bytes) {
  std::string out = "stat: {";
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i > 0) out += ',';
    out += "\"" + std::to_string(bytes[i].first) + "\":" + std::to_string(bytes[i].second);
  }
  out += '}';
  return out;
}

}  // namespace ss
