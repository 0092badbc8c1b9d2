#pragma once
// shadowsocks-libev's ss-manager protocol (spec/protocol.md §4): one command per datagram,
// "<command>: <JSON>" or a bare "<command>", and the replies' text. Pure: no sockets.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ss {

// Requests longer than this are dropped unanswered, as libev drops them.
inline constexpr size_t kMaxManagerRequest = 32767;

enum class ManagerCommand : uint8_t {
  Add,     // "add: {json}": serve a port (replace it if served)
  Remove,  // "remove: {json}": stop serving a port
  List,    // "list": the ports served
  Ping,    // "ping": "stat: {...}", each port's bytes
  Reset,   // "reset" or "reset: {json}" (ours, not libev's): the ping counters start again at 0
  Unknown  // anything else (libev's servers' own "stat" reports among them): no reply
};

struct ManagerRequest {
  ManagerCommand command = ManagerCommand::Unknown;
  // From the first '{' to the end of the datagram (libev's get_data); empty if there is none.
  std::string_view json;
};

// As libev reads a datagram: the command is the first token after leading blanks, ending at a
// blank or ':' (case matters); the JSON runs from the first '{' to the end. Nullopt-like Unknown
// for a datagram that is empty or too long.
ManagerRequest parse_manager_request(std::string_view datagram);

// The replies, in libev's text.
inline constexpr std::string_view kReplyOk = "ok";
inline constexpr std::string_view kReplyErr = "err";
inline constexpr std::string_view kReplyPortNotAvailable = "port is not available";

// "list"'s reply: [\n\t{"server_port":"8001","password":"...","method":"..."},...\n] with the port
// as a string, as libev writes it (strings JSON-escaped here; none: "[\n]").
struct ManagerListEntry {
  uint16_t port = 0;
  std::string password;
  std::string method;
};
std::string manager_list_reply(const std::vector<ManagerListEntry>& ports);

// "ping"'s reply: stat: {"8001":11370,"8002":0} ("stat: {}" with no port).
std::string manager_stat_reply(const std::vector<std::pair<uint16_t, int64_t>>& bytes);

}  // namespace ss
